//! Nobody without the token can exhaust the server (issue 10, part 5):
//! slow bodies and idle connections in their hundreds, while a client with
//! the token is still answered within a second, and the server stays small.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Whether the server closed the connection (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn slow_and_idle_connections_without_a_token_do_not_starve_the_api() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("exhaust");
    h.create("busy", &[]);
    let s = Server::start(&h, &[]);
    let pid = s.pid();

    // 300 connections announcing 30 MB bodies without a token.
    let mut slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut c = connect(s.port);
            let head = format!(
                "POST /database/busy/sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                30 * 1024 * 1024
            );
            c.write_all(head.as_bytes()).unwrap();
            c
        })
        .collect();
    // 300 that send nothing at all.
    let mut idle: Vec<TcpStream> = (0..300).map(|_| connect(s.port)).collect();

    let started = Instant::now();
    let mut max_rss = 0;
    let mut worst = Duration::ZERO;
    let chunk = vec![b'x'; 1024];
    let mut answered_401 = 0;
    while started.elapsed() < Duration::from_secs(12) {
        // 1 KB per second on each slow connection (ignoring the ones the
        // server already closed).
        for c in &mut slow {
            let _ = c.write_all(&chunk);
        }
        for _ in 0..4 {
            let t = Instant::now();
            let r = s.get("/instances");
            let took = t.elapsed();
            assert_eq!(r.status, 200, "{}", r.text());
            // A hang only: how fast it answers is the printed figure.
            assert!(
                took < Duration::from_secs(10),
                "GET /instances took {took:?}"
            );
            worst = worst.max(took);
            max_rss = max_rss.max(rss_kb(pid));
            std::thread::sleep(Duration::from_millis(200));
        }
        if answered_401 == 0 {
            // The slow ones were answered 401 from their headers alone.
            let c = &mut slow[0];
            c.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 64];
            if let Ok(n) = c.read(&mut buf) {
                assert!(
                    String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"),
                    "{}",
                    String::from_utf8_lossy(&buf[..n])
                );
                answered_401 += 1;
            }
        }
    }
    assert_eq!(
        answered_401, 1,
        "a slow body without a token was not answered 401"
    );
    // Idle connections are closed once the header deadline (10 s) passed.
    assert!(
        idle.iter_mut()
            .take(20)
            .all(|c| closed_within(c, Duration::from_secs(2))),
        "idle connections outlived the header deadline"
    );
    eprintln!(
        "600 hostile connections for 12 s: worst GET /instances {:.1} ms, server RSS at most {} kB",
        worst.as_secs_f64() * 1000.0,
        max_rss
    );
    assert!(
        max_rss > 0 && max_rss < 100 * 1024,
        "server RSS {max_rss} kB"
    );
}

#[test]
fn connections_beyond_the_cap_are_refused_until_others_close() {
    let h = TestHome::new("conncap");
    let s = Server::start(&h, &[("DBAAS_MAX_CONNECTIONS", "20")]);
    // Twenty kept-alive connections, each known to be served.
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut c = connect(s.port);
            c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 16];
            c.read_exact(&mut buf).unwrap();
            assert!(buf.starts_with(b"HTTP/1.1 200"));
            c
        })
        .collect();
    let mut extra = connect(s.port);
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)),
        "the 21st connection was served"
    );
    // The held ones reach the header deadline and close; then new
    // connections are served again.
    assert!(held
        .iter_mut()
        .all(|c| closed_within(c, Duration::from_secs(15))));
    let r = s.get("/health");
    assert_eq!(r.status, 200, "{}", r.text());
    let bad = TestHome::new("conncap-bad");
    let mut c = bad.command(&["serve", "--listen", "127.0.0.1:0"]);
    let out = c.env("DBAAS_MAX_CONNECTIONS", "0").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DBAAS_MAX_CONNECTIONS"));
}
