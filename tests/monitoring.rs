//! The monitoring agent in real instances, the tailer API, summaries, agent
//! management and Prometheus /metrics (checked by promtool).

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PROMTOOL: &str = "/usr/local/lib/dbaas/prometheus/promtool";

/// Polls the latest samples until one satisfies `pred`.
fn wait_sample(
    s: &Server,
    db: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = s.get(&format!("/monitoring/{db}/metrics?last=3"));
        assert_eq!(r.status, 200, "{}", r.text());
        if let Some(v) = r.json().as_array().unwrap().iter().rev().find(|v| pred(v)) {
            return v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no sample with {what} within {secs} s: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn counter(v: &Value, name: &str) -> i64 {
    v["counters"][name]
        .as_i64()
        .unwrap_or_else(|| panic!("no counter {name} in {v}"))
}

fn db_container(h: &TestHome, id: &str) -> String {
    h.containers_of(id)
        .into_iter()
        .find(|c| c.ends_with("-db-1"))
        .expect("db container")
}

#[test]
fn agent_samples_counters_locks_restarts_and_prometheus() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("monagent");
    let (id, url) = h.create("mon", &["--metrics-interval", "2"]);
    let created = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let s = Server::start(&h, &[]);

    // A fresh sample within two intervals of the instance being ready (and
    // a second for psql to start and connect under a loaded test run).
    let first = wait_sample(&s, "mon", 5, "up after create", |v| {
        v["up"] == true && v["ts"].as_str().unwrap() >= created.as_str()
    });
    let mut c = connect(&url);
    let mut sections = Sections::default();
    sections.run("The first sample has every field", || {
        assert_eq!(first["v"], 2);
        assert_eq!(first["archiver"]["mode"], "on", "{first}");
        assert!(first["archiver"]["failed_count"].is_number(), "{first}");
        assert_eq!(first["instance"], id.as_str());
        for key in [
            "postmaster_start",
            "connections",
            "counters",
            "locks",
            "tables",
            "scrape_seconds",
            "longest_query_seconds",
            "longest_transaction_seconds",
        ] {
            assert!(!first[key].is_null(), "{key} missing in {first}");
        }
        assert!(first["db_size_bytes"].as_u64().unwrap() > 1_000_000);
        assert_eq!(first["connections"]["max"], 100);
    });
    sections.run("The agent connects as the monitoring role, named dbaas-ag...", || {
        // The agent connects as the monitoring role, named dbaas-agent, and
        // leaves itself out of the connection counts.
        let roles: Vec<(String, String)> = c
            .query("SELECT usename::text, application_name FROM pg_stat_activity WHERE application_name = 'dbaas-agent'", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert!(
            roles.is_empty() || roles.iter().all(|(u, _)| u == "dbaas_monitor"),
            "{roles:?}"
        );
    });
    sections.run(
        "A known workload moves the counters by the expected amounts",
        || {
            // A known workload moves the counters by the expected amounts.
            c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
                .unwrap();
            let mark = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let before = wait_sample(&s, "mon", 6, "a sample after CREATE TABLE", |v| {
                v["up"] == true && v["ts"].as_str().unwrap() > mark.as_str()
            });
            c.batch_execute(
                "BEGIN; INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g; COMMIT;",
            )
            .unwrap();
            let mark = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let after = wait_sample(&s, "mon", 6, "a sample after the inserts", |v| {
                v["up"] == true && v["ts"].as_str().unwrap() > mark.as_str()
            });
            let inserted = counter(&after, "tup_inserted") - counter(&before, "tup_inserted");
            assert!(
                (1000..1100).contains(&inserted),
                "tup_inserted moved by {inserted}"
            );
            assert!(counter(&after, "xact_commit") > counter(&before, "xact_commit"));
            let t = after["tables"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == "t")
                .cloned();
            assert!(
                t.is_some_and(|t| t["size_bytes"].as_u64().unwrap() > 8192),
                "{after}"
            );
            let sum = s.get("/monitoring/mon/metrics/summary").json();
            assert!(
                sum["tps"].as_f64().unwrap() >= 0.0
                    && sum["cache_hit_ratio"].as_f64().unwrap() <= 1.0,
                "{sum}"
            );
            assert_eq!(
                (sum["up"].clone(), sum["counter_reset"].clone()),
                (json!(true), json!(false))
            );
            assert!(sum["connection_saturation"].as_f64().unwrap() < 1.0);
        },
    );
    sections.run("A lock held by one session while another waits", || {
        // A lock held by one session while another waits.
        let mut holder = connect(&url);
        holder
            .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE;")
            .unwrap();
        let waiter_url = url.clone();
        let waiter = std::thread::spawn(move || {
            let mut w = connect(&waiter_url);
            w.query_one("SELECT count(*) FROM t", &[])
                .unwrap()
                .get::<_, i64>(0)
        });
        let locked = wait_sample(&s, "mon", 10, "a waiting backend", |v| {
            v["connections"]["waiting"].as_u64().unwrap_or(0) >= 1
                && v["locks"]["blocked_backends"].as_u64().unwrap_or(0) >= 1
                && v["locks"]["waiting"].as_u64().unwrap_or(0) >= 1
        });
        assert!(
            locked["locks"]["by_mode"]["AccessExclusiveLock"]
                .as_u64()
                .unwrap()
                >= 1,
            "{locked}"
        );
        assert!(locked["longest_transaction_seconds"].as_f64().unwrap() > 0.0);
        holder.batch_execute("COMMIT").unwrap();
        assert_eq!(waiter.join().unwrap(), 1000);
        drop((c, holder));
    });
    sections.run("Prometheus: promtool accepts the exposition; the instance...", || {
        // Prometheus: promtool accepts the exposition; the instance is there.
        let r = s.get("/metrics");
        assert_eq!(r.status, 200);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = r.text();
        assert!(
            text.contains(&format!("dbaas_up{{dbaas_instance=\"{id}\"}} 1\n")),
            "{text}"
        );
        assert!(text.contains("dbaas_table_live_rows{"), "{text}");
        assert!(text.contains("dbaas_instances{status=\"running\"} 1\n"));
        assert!(text.contains("dbaas_http_requests_total{route=\"/monitoring/{id}/metrics\",method=\"GET\",status=\"200\"}"), "{text}");
        let path = h.root.join("metrics.txt");
        std::fs::write(&path, &text).unwrap();
        let out = std::process::Command::new(PROMTOOL)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .expect("promtool (scripts/setup-host.sh installs it)");
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(s.call("GET", "/metrics", None, &[]).status, 200);
        let r = http::request(s.port, "GET", "/metrics", None, None, "");
        assert_eq!(r.status, 401, "metrics need the token");
    });
    sections.run(
        "The database restarts under the agent: up: false lines, t...",
        || {
            // The database restarts under the agent: up: false lines, then up again.
            let db = db_container(&h, &id);
            let out = std::process::Command::new("docker")
                .args(["stop", &db])
                .output()
                .unwrap();
            assert!(out.status.success());
            let down = wait_sample(&s, "mon", 15, "up: false", |v| v["up"] == false);
            assert!(down["error"].as_str().unwrap().contains("psql"), "{down}");
            let out = std::process::Command::new("docker")
                .args(["start", &db])
                .output()
                .unwrap();
            assert!(out.status.success());
            let back = wait_sample(&s, "mon", 30, "up again", |v| {
                v["up"] == true && v["postmaster_start"] != first["postmaster_start"]
            });
            assert!(counter(&back, "xact_commit") >= 0);
            let sum = s.get("/monitoring/mon/metrics/summary").json();
            assert!(
                sum["tps"].is_null() || sum["tps"].as_f64().unwrap() >= 0.0,
                "never a negative rate: {sum}"
            );
        },
    );
    sections.run("Agent management", || {
        // Agent management.
        let a = s.get("/monitoring/mon/agent").json();
        assert_eq!(
            (a["state"].as_str(), a["stale"].as_bool()),
            (Some("running"), Some(false)),
            "{a}"
        );
        assert!(a["last_error"].as_str().unwrap().contains("psql"), "{a}");
        assert!(a["last_sample_age_seconds"].as_f64().unwrap() < 6.0);
        let r = s.get("/monitoring/mon/agent/logs?tail=5");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["lines"].is_array());
        let r = s.post_empty("/monitoring/mon/agent/restart");
        assert_eq!(r.status, 200, "{}", r.text());
        let mark = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        wait_sample(&s, "mon", 10, "a sample after the agent restart", |v| {
            v["up"] == true && v["ts"].as_str().unwrap() > mark.as_str()
        });
    });
    sections.run("Stale once it stops writing for three intervals", || {
        // Stale once it stops writing for three intervals.
        let agent = h
            .containers_of(&id)
            .into_iter()
            .find(|c| c.ends_with("-agent-1"))
            .unwrap();
        assert!(std::process::Command::new("docker")
            .args(["stop", "-t", "1", &agent])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_secs(7));
        let a = s.get("/monitoring/mon/agent").json();
        assert_eq!(
            (a["stale"].as_bool(), a["state"].as_str()),
            (Some(true), Some("exited")),
            "{a}"
        );
    });
    sections.run(
        "doctor warns about it (a warning: its exit status stays 0)",
        || {
            // doctor warns about it (a warning: its exit status stays 0).
            let report = h.run(&["doctor"]).ok();
            assert!(
                report.contains("monitoring-agent") && report.contains("not running"),
                "{report}"
            );
        },
    );
    sections.run("The CLI", || {
        // The CLI.
        let out = h.run(&["metrics", "mon", "--last", "2"]).ok();
        assert!(out.contains("COMMITS") && out.lines().count() == 3, "{out}");
        let v = h.run(&["metrics", "mon", "--last", "3", "--json"]).json();
        assert_eq!(v.as_array().unwrap().len(), 3);
        let top = h.run(&["top"]).ok();
        assert!(
            top.contains("mon") && top.contains("running") && top.contains("/100"),
            "{top}"
        );
    });
    sections.run("Bad requests", || {
        // Bad requests.
        assert_eq!(s.get("/monitoring/nope/metrics").status, 404);
        assert_eq!(s.get("/monitoring/mon/metrics?last=0").status, 400);
        assert_eq!(s.get("/monitoring/mon/metrics?since=yesterday").status, 400);
        assert_eq!(s.post_empty("/monitoring/mon/metrics").status, 405);
    });
    sections.finish();
}

#[test]
fn rotation_bounds_disk_use_and_the_tailer_reads_across_files() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("monrot")
        .with_env("DBAAS_METRICS_MAX_BYTES", "4096")
        .with_env("DBAAS_METRICS_KEEP", "2");
    let (id, _) = h.create("rot", &["--metrics-interval", "1"]);
    let s = Server::start(&h, &[]);
    let logs = h.root.join("instances").join(&id).join("logs");
    let files = || -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    };
    // Each line is about 1.5 KB: the file rotates every few samples.
    let deadline = Instant::now() + Duration::from_secs(40);
    while !files().iter().any(|(n, _)| n == "metrics.json.2") {
        assert!(
            Instant::now() < deadline,
            "no second rotation: {:?}",
            files()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(6));
    let fs = files();
    let names: Vec<&str> = fs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec!["metrics.json", "metrics.json.1", "metrics.json.2"],
        "keeps 2 older files"
    );
    for (n, len) in &fs {
        assert!(*len < 4096 + 4096, "{n} is {len} bytes");
        // Every line of every file is a whole sample.
        let text = std::fs::read_to_string(logs.join(n)).unwrap();
        for line in text.lines() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{n}: {e}: {line}"));
            assert!(v["ts"].is_string());
        }
    }

    // The tailer reads the rotated set as one sequence, oldest first.
    let last = s.get("/monitoring/rot/metrics?last=8").json();
    let ts: Vec<&str> = last
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ts"].as_str().unwrap())
        .collect();
    assert_eq!(ts.len(), 8, "{last}");
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    let r = s.get("/monitoring/rot/metrics?since=10m");
    assert_eq!(r.status, 200);
    let all = r.json();
    let all = all.as_array().unwrap();
    let on_disk: usize = fs
        .iter()
        .map(|(n, _)| {
            std::fs::read_to_string(logs.join(n))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert!(
        all.len() >= on_disk,
        "range {} < {} lines on disk",
        all.len(),
        on_disk
    );
    assert!(all
        .windows(2)
        .all(|w| w[0]["ts"].as_str() < w[1]["ts"].as_str()));
    let until = all[2]["ts"].as_str().unwrap();
    let r = s.get(&format!(
        "/monitoring/rot/metrics?since={}&until={}",
        all[0]["ts"].as_str().unwrap(),
        until
    ));
    assert_eq!(r.json().as_array().unwrap().len(), 3);

    // Garbage and a line being written are skipped, never a 500.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("metrics.json"))
        .unwrap();
    f.write_all(b"garbage that is not json\n{\"ts\": \"2026-01-01T00:00:00.000Z\", \"up\": tr")
        .unwrap();
    drop(f);
    for _ in 0..4 {
        let r = s.get("/monitoring/rot/metrics?last=5");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["ts"].is_string()));
        assert_eq!(s.get("/monitoring/rot/metrics/summary").status, 200);
        assert_eq!(s.get("/metrics").status, 200);
        std::thread::sleep(Duration::from_millis(700));
    }
    // A truncated file.
    std::fs::write(logs.join("metrics.json"), b"").unwrap();
    let r = s.get("/monitoring/rot/metrics?last=2");
    assert_eq!(r.status, 200);
    assert!(
        !r.json().as_array().unwrap().is_empty(),
        "older files still answer"
    );
}
