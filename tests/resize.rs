//! Live resize (issue 13): memory and CPUs change on the running container
//! without a restart, derived settings reload (or wait for a restart, said
//! so), the new size survives down/up, a port change recreates the
//! container, and refusals change nothing.

mod common;
use common::*;

#[test]
fn resize_changes_limits_live_and_says_what_waits_for_a_restart() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("resize");
    let (id, url) = h.create("rs", &["--memory", "512m", "--cpus", "0.5", "--no-backups"]);
    let db = format!("{id}-db-1");
    let limits = || {
        let v = docker_inspect(&db);
        (
            v["HostConfig"]["Memory"].as_u64().unwrap(),
            v["HostConfig"]["NanoCpus"].as_u64().unwrap(),
        )
    };
    assert_eq!(limits(), (512 << 20, 500_000_000));
    let started = query_text(&url, "SELECT pg_postmaster_start_time()::text");

    // Shared buffers filled (128 MB of a 512 MB instance): shrinking below
    // what it uses is refused, and nothing changes.
    connect(&url)
        .batch_execute("CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 250000) g")
        .unwrap();
    superuser_sql(
        &id,
        "app",
        "CREATE EXTENSION IF NOT EXISTS pg_prewarm; SELECT pg_prewarm('big')",
    );
    let err = h.run(&["resize", "rs", "--memory", "64m"]).fails_with(4);
    assert!(
        err.contains("uses") && err.contains("Give at least"),
        "{err}"
    );
    let err = h
        .run_env(
            &["resize", "rs", "--memory", "2g"],
            &[("DBAAS_MAX_MEMORY", "1g")],
        )
        .fails_with(4);
    assert!(err.contains("DBAAS_MAX_MEMORY"), "{err}");
    let err = h.run(&["resize", "rs", "--cpus", "lots"]).fails_with(2);
    assert!(err.contains("cpus"), "{err}");
    let err = h.run(&["resize", "rs"]).fails_with(2);
    assert!(err.contains("nothing to change"), "{err}");
    h.run(&["resize", "nope", "--cpus", "1"]).fails_with(3);
    assert_eq!(
        limits(),
        (512 << 20, 500_000_000),
        "refusals change nothing"
    );
    assert_eq!(h.run(&["show", "rs", "--json"]).json()["memory"], "512m");

    // Live: new limits, no restart, the reloadable setting at once, the
    // restart-only one pending.
    let r = h
        .run(&["resize", "rs", "--memory", "1g", "--cpus", "1", "--json"])
        .json();
    assert_eq!(r["restarted"], false, "{r}");
    assert_eq!(
        r["pending_restart"],
        serde_json::json!(["shared_buffers"]),
        "{r}"
    );
    assert_eq!(limits(), (1 << 30, 1_000_000_000));
    assert_eq!(
        query_text(&url, "SELECT pg_postmaster_start_time()::text"),
        started
    );
    assert_eq!(
        query_text(&url, "SELECT current_setting('effective_cache_size')"),
        "768MB"
    );
    assert_eq!(
        query_text(
            &url,
            "SELECT pending_restart::text FROM pg_settings WHERE name = 'shared_buffers'"
        ),
        "true"
    );
    let shown = h.run(&["show", "rs", "--json"]).json();
    assert_eq!(
        shown["pending_restart"],
        serde_json::json!(["shared_buffers"]),
        "{shown}"
    );
    assert_eq!(
        (shown["memory"].as_str(), shown["cpus"].as_f64()),
        (Some("1g"), Some(1.0))
    );

    // A restart applies it and clears the pending list.
    h.run(&["restart", "rs"]).ok();
    assert_eq!(
        query_text(&url, "SELECT current_setting('shared_buffers')"),
        "256MB"
    );
    assert!(h
        .run(&["show", "rs", "--json"])
        .json()
        .get("pending_restart")
        .is_none());

    // The next down/up keeps the new size.
    h.run(&["down", "rs"]).ok();
    h.run(&["up", "rs"]).ok();
    assert_eq!(limits(), (1 << 30, 1_000_000_000));
    assert_eq!(query_text(&url, "SELECT count(*)::text FROM big"), "250000");

    // A new port: the container is recreated there, said before.
    let port = h.ports.1;
    let out = h.run(&["resize", "rs", "--port", &port.to_string()]);
    assert!(
        out.stderr().contains("restarts briefly"),
        "{}",
        out.stderr()
    );
    out.ok();
    let moved = h.run(&["url", "rs"]).ok().trim().to_string();
    assert!(moved.contains(&format!(":{port}/")), "{moved}");
    assert_eq!(
        query_text(&moved, "SELECT count(*)::text FROM big"),
        "250000"
    );
    let v = docker_inspect(&db);
    assert_eq!(
        v["HostConfig"]["PortBindings"]["5432/tcp"][0]["HostPort"].as_str(),
        Some(port.to_string().as_str())
    );
}
