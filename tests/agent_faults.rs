//! The monitoring agent survives every state of its database (issue 10,
//! part 4): down, restarting, refusing connections, its DNS name missing,
//! the monitoring role's password changed. Each for three intervals, with
//! one `"up": false` line per interval counted, and recovery by itself.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn lines(h: &TestHome, id: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(h.root.join(format!("instances/{id}/logs/metrics.json")))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// As the superuser over the container's local socket.
fn superuser(container: &str, sql: &str) {
    let id = container.trim_end_matches("-db-1");
    superuser_sql(id, "postgres", sql);
}

fn wait_up(h: &TestHome, id: &str, from: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(45);
    while !lines(h, id).iter().skip(from).any(|v| v["up"] == true) {
        assert!(
            Instant::now() < deadline,
            "the agent did not recover after {what}: {:?}",
            lines(h, id).iter().skip(from).last()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Holds a fault until the agent has written three samples under it (each
/// `up: false` with a reason) and checks that its container neither
/// restarted nor is restarting. Waits for samples, not for a time: a
/// loaded machine may write them late.
fn hold(h: &TestHome, id: &str, agent: &str, what: &str) -> usize {
    let restarts = docker_ok(&["inspect", "-f", "{{.RestartCount}}", agent]);
    let start = lines(h, id).len();
    // The fault is in force from the first sample that says so (one taken
    // before it may still be in flight).
    let mut from = start;
    wait_until(
        &format!("{what}: a sample under the fault"),
        Duration::from_secs(60),
        || match lines(h, id)
            .iter()
            .skip(start)
            .position(|v| v["up"] == false)
        {
            Some(i) => {
                from = start + i;
                true
            }
            None => false,
        },
    );
    wait_until(
        &format!("{what}: three samples under the fault"),
        Duration::from_secs(60),
        || lines(h, id).len() >= from + 3,
    );
    let seen: Vec<Value> = lines(h, id).into_iter().skip(from).take(3).collect();
    for v in &seen {
        assert_eq!(v["up"], false, "{what}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}: no reason in {v}"
        );
    }
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.Status}}", agent]),
        "running",
        "{what}"
    );
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.RestartCount}}", agent]),
        restarts,
        "{what}: the agent restarted"
    );
    eprintln!("{what}: {} up:false lines in a row", seen.len());
    from + seen.len()
}

#[test]
fn the_agent_keeps_writing_through_every_database_fault() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("agentfaults");
    let (id, _) = h.create("blind", &["--metrics-interval", "1"]);
    let db = h
        .containers_of(&id)
        .into_iter()
        .find(|c| c.ends_with("-db-1"))
        .unwrap();
    let agent = h
        .containers_of(&id)
        .into_iter()
        .find(|c| c.ends_with("-agent-1"))
        .unwrap();
    wait_up(&h, &id, 0, "create");
    let kick =
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'dbaas_monitor'";

    // Refusing connections (to the monitoring role).
    superuser(&db, "ALTER ROLE dbaas_monitor CONNECTION LIMIT 0");
    superuser(&db, kick);
    let n = hold(&h, &id, &agent, "refusing connections");
    superuser(&db, "ALTER ROLE dbaas_monitor CONNECTION LIMIT -1");
    wait_up(&h, &id, n, "refusing connections");

    // The monitoring role's password changed, then changed back.
    let password = std::fs::read_to_string(
        h.root
            .join(format!("instances/{id}/secrets/monitor_password")),
    )
    .unwrap()
    .trim()
    .to_string();
    superuser(&db, "ALTER ROLE dbaas_monitor PASSWORD 'not-the-agents'");
    superuser(&db, kick);
    let n = hold(&h, &id, &agent, "password changed");
    superuser(
        &db,
        &format!("ALTER ROLE dbaas_monitor PASSWORD '{password}'"),
    );
    wait_up(&h, &id, n, "password changed");

    // Down: stopped, so its name no longer resolves either.
    docker_ok(&["stop", "-t", "2", &db]);
    let n = hold(&h, &id, &agent, "database down");
    docker_ok(&["start", &db]);
    wait_up(&h, &id, n, "database down");

    // Restarting: PostgreSQL's main process killed from the host, as the
    // OOM killer would, three times; the restart policy brings it back.
    let from = lines(&h, &id).len();
    for _ in 0..3 {
        let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &db]);
        if pid != "0" {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    assert!(
        lines(&h, &id).iter().skip(from).any(|v| v["up"] == false),
        "no up:false line while restarting"
    );
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.Status}}", &agent]),
        "running"
    );
    wait_up(&h, &id, lines(&h, &id).len(), "restarting");

    // Its DNS name missing: the container removed.
    docker_ok(&["rm", "-f", &db]);
    let n = hold(&h, &id, &agent, "name missing");
    h.run(&["up", "blind"]).ok();
    wait_up(&h, &id, n, "name missing");
}
