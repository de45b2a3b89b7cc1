//! Console benchmark (issue 14): with 20 instances, the server time of the
//! overview's first paint (`GET /` with a session: the page with every
//! instance and its figures in it), next to the two JSON reads it is made
//! of (`GET /instances`, `GET /monitoring/summaries`) as the baseline, and
//! the weight of every page with its stylesheet and script. Times are to
//! the whole answer on loopback. Not a test: nothing here passes or fails
//! on time.
//!
//! Run: `bash scripts/bench-console.sh` (CONSOLE_INSTANCES=20,
//! BENCH_PORT_BASE=41000).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

mod common;
use common::{batched, env_num, median, ms, ManyHome};

/// One request; the time to the whole answer and the answer.
fn request(port: u16, head: &str, body: &str) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{head}Host: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    (start.elapsed(), out)
}

fn get(port: u16, path: &str, auth: &str) -> (Duration, Vec<u8>) {
    let (t, out) = request(port, &format!("GET {path} HTTP/1.1\r\n{auth}\r\n"), "");
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{path}: {}",
        String::from_utf8_lossy(&out[..out.len().min(300)])
    );
    (t, out)
}

/// The body's size: the answer less its head.
fn body_len(out: &[u8]) -> usize {
    out.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| out.len() - i - 4)
}

fn main() {
    let n = env_num("CONSOLE_INSTANCES", 20) as usize;
    let base = env_num("BENCH_PORT_BASE", 41000) as u16;
    let root = std::env::temp_dir().join(format!("dbaas-console-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let home = ManyHome {
        root,
        range: format!("{base}-{}", base + n as u16 + 10),
    };
    println!("dbaas console benchmark: {n} instances of 128 MB (--no-backups)");
    let names: Vec<String> = (0..n).map(|i| format!("c-{i:02}")).collect();
    batched(&names, 5, |name| {
        home.cmd(&[
            "create",
            name,
            "--memory",
            "128m",
            "--cpus",
            "0.25",
            "--no-backups",
        ])
    });
    let token = format!("console-bench-token-{}", std::process::id());
    let (mut server, port) = home.serve(&token);
    // The agents' first samples, so the figures are in the page.
    std::thread::sleep(Duration::from_secs(12));
    let (_, out) = request(
        port,
        "POST /login HTTP/1.1\r\nOrigin: http://127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        &format!("token={token}"),
    );
    let text = String::from_utf8_lossy(&out);
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let with_cookie = format!("Cookie: {cookie}");
    let with_token = format!("Authorization: Bearer {token}");
    let times = |path: &str, auth: &str| -> Duration {
        median((0..21).map(|_| get(port, path, auth).0).collect())
    };
    let overview = times("/", &with_cookie);
    let list = times("/instances", &with_token);
    let summaries = times("/monitoring/summaries", &with_token);
    println!(
        "overview first paint (GET /, {n} instances with their figures): {} (baseline: GET /instances {} + GET /monitoring/summaries {}); target under 200 ms",
        ms(overview),
        ms(list),
        ms(summaries)
    );
    let (_, page) = get(port, "/", &with_cookie);
    let html = String::from_utf8_lossy(&page).into_owned();
    assert!(html.contains("c-00"), "the page holds the instances");
    let id = html
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let css = body_len(&get(port, "/ui/assets/console.css", &with_cookie).1);
    let js = body_len(&get(port, "/ui/assets/console.js", &with_cookie).1);
    println!(
        "assets: console.css {css} B, console.js {js} B (uncompressed; nothing else is loaded)"
    );
    for (what, path) in [
        ("overview", "/".to_string()),
        ("instance", format!("/ui/instances/{id}")),
        ("tables", format!("/ui/instances/{id}/tables")),
        ("sql", format!("/ui/instances/{id}/sql")),
    ] {
        let (t, out) = get(port, &path, &with_cookie);
        let html = body_len(&out);
        println!(
            "page {what}: {html} B of HTML + assets = {:.1} KB in all (target under 300 KB); served in {}",
            (html + css + js) as f64 / 1024.0,
            ms(t)
        );
    }
    // What the instance page reads once open (its charts are the most).
    for path in [
        format!("/monitoring/{id}/metrics/series?window=1h"),
        format!("/monitoring/{id}/metrics/series?window=24h"),
        format!("/instances/{id}"),
        format!("/monitoring/{id}/agent"),
        format!("/instances/{id}/logs?tail=40"),
    ] {
        let (t, out) = get(port, &path, &with_cookie);
        println!("  then {path}: {} B in {}", body_len(&out), ms(t));
    }
    let _ = server.kill();
    let _ = server.wait();
}
