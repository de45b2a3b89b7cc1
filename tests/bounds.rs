//! Bounded work (issue 10, part 6): results past DBAAS_MAX_RESULT_BYTES or
//! DBAAS_MAX_ROWS are refused and cancelled, not buffered; values without a
//! local decoder cost no round trip each; the statement queue is bounded.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn results_queues_and_casts_are_bounded() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("bounds");
    let (id, _) = h.create("bounded", &[]);
    let s = Server::start(
        &h,
        &[
            ("DBAAS_MAX_RESULT_BYTES", "10485760"),
            ("DBAAS_POOL_SIZE", "2"),
            ("DBAAS_DB_CONCURRENCY", "1"),
            ("DBAAS_CONNECT_TIMEOUT", "2s"),
        ],
    );
    let sql = |q: &str| s.post("/database/bounded/sql", &json!({ "sql": q }));

    let mut sections = Sections::default();
    sections.run("An endless result: refused once past the bound, and cance...", || {
        // An endless result: refused once past the bound, and cancelled on the
        // server (nothing of it still runs).
        let t = Instant::now();
        let r = sql("SELECT repeat('x', 10000) FROM generate_series(1, 100000000)");
        assert_eq!(r.status, 400, "{}", r.text());
        let msg = r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(msg.contains("DBAAS_MAX_RESULT_BYTES"), "{msg}");
        // A bound that catches a hang only (the figure is in the bench).
        assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
        wait_until("the endless statement cancelled on the server", Duration::from_secs(60), || {
            superuser_sql(&id, "app", "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 100000000)%' AND state = 'active' AND pid <> pg_backend_pid()") == "0"
        });
        let r = sql("SELECT g FROM generate_series(1, 20000) g");
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("DBAAS_MAX_ROWS"), "{}", r.text());
    });
    sections.run("The same bound across a transaction's statements", || {
        // The same bound across a transaction's statements.
        let r = s.post(
            "/database/bounded/transaction",
            &json!({"statements": [{"sql": "SELECT g FROM generate_series(1, 6000) g"},
                                   {"sql": "SELECT g FROM generate_series(1, 6000) g"}]}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("DBAAS_MAX_ROWS"), "{}", r.text());
    });
    sections.run("The pool still serves", || {
        // The pool still serves.
        assert_eq!(sql("SELECT 1 AS one").status, 200);
    });
    sections.run("3,000 intervals (no local decoder) in one result: a few b...", || {
        // 3,000 intervals (no local decoder) in one result: a few batched casts,
        // not one round trip each.
        superuser_sql(&id, "app", "SELECT extensions.pg_stat_statements_reset()");
        let r = sql("SELECT make_interval(secs => g) AS i FROM generate_series(1, 3000) g");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["rows"][2999]["i"], "00:50:00");
        let casts: i64 = superuser_sql(
            &id,
            "app",
            "SELECT coalesce(sum(calls), 0) FROM extensions.pg_stat_statements WHERE query LIKE 'SELECT $1::text%'",
        )
        .parse()
        .unwrap();
        assert!(
            (1..=3).contains(&casts),
            "{casts} cast statements for 3000 values"
        );
    });
    sections.run(
        "One lane, held by a slow statement: the queue takes 64 mo...",
        || {
            // One lane, held by a slow statement: the queue takes 64 more, refuses
            // the rest at once with Retry-After, and a statement that waited past
            // the deadline (DBAAS_CONNECT_TIMEOUT) is not run.
            let port = s.port;
            let token = s.token.clone();
            let slow = std::thread::spawn({
                let token = token.clone();
                move || {
                    http::request(
                        port,
                        "POST",
                        "/database/bounded/sql",
                        Some(&token),
                        Some(br#"{"sql": "SELECT pg_sleep(4)"}"#),
                        "application/json",
                    )
                }
            });
            std::thread::sleep(Duration::from_millis(500));
            let waiting: Vec<_> = (0..90)
                .map(|_| {
                    let token = token.clone();
                    std::thread::spawn(move || {
                        let t = Instant::now();
                        let r = http::request(
                            port,
                            "POST",
                            "/database/bounded/sql",
                            Some(&token),
                            Some(br#"{"sql": "INSERT INTO pg_temp.nothing VALUES (1)"}"#),
                            "application/json",
                        );
                        (
                            r.status,
                            r.header("retry-after").map(str::to_string),
                            r.text(),
                            t.elapsed(),
                        )
                    })
                })
                .collect();
            let results: Vec<_> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(slow.join().unwrap().status, 200);
            let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
            assert_eq!(
                busy.len(),
                90,
                "every queued statement was refused or timed out: {:?}",
                results.iter().map(|r| r.0).collect::<Vec<_>>()
            );
            for (_, retry, text, _) in &busy {
                assert_eq!(retry.as_deref(), Some("1"), "{text}");
                assert!(text.contains("\"busy\""), "{text}");
            }
            // Told apart by what they say, not by how long they took: a
            // full queue refuses at once, a queued statement after its wait.
            let timed_out = busy.iter().filter(|r| r.2.contains("waited")).count();
            let at_once = busy.len() - timed_out;
            assert!(at_once >= 90 - 64, "only {at_once} refused at once");
            assert!(timed_out >= 1, "no statement reached its queue deadline");
        },
    );
    sections.finish();
}

#[test]
fn a_log_without_end_is_answered_within_its_bound() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("bounds-logs");
    h.create("chatty", &[]);
    // A docker whose `logs` pours out 50 MB; real docker for the rest.
    let docker = write_script(
        &h,
        "docker-chatty-logs",
        "#!/bin/sh\nif [ \"$1\" = logs ]; then yes 'LOG: a line of a container that logs without end' | head -c 50000000 >&2; exit 0; fi\nexec docker \"$@\"\n",
    );
    let s = Server::start(&h, &[("DBAAS_DOCKER", &docker)]);
    let pid = s.pid();
    let r = s.get("/instances/chatty/logs?tail=10000");
    assert_eq!(r.status, 200, "{}", &r.text()[..r.text().len().min(300)]);
    // 1 MiB of lines, plus the JSON quoting of each.
    assert!(
        r.body.len() <= (1 << 20) * 11 / 10,
        "{} bytes",
        r.body.len()
    );
    let lines = r.json()["lines"].as_array().unwrap().len();
    assert!(lines > 1000, "{lines}");
    let rss = rss_kb(pid);
    assert!(rss < 64 * 1024, "server RSS {rss} kB after 50 MB of logs");
}
