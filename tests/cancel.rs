//! Requests that go away: an operation started by a request runs to its
//! end whether or not the client is still there, statements of a client
//! that left do not commit, and a panic in a handler is a 500 (issue 10,
//! parts 2 and 3).

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls GET /instances/{name} until `done` accepts its answer.
fn wait_for(s: &Server, name: &str, what: &str, done: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = s.get(&format!("/instances/{name}"));
        let status = if r.status == 200 {
            r.json()["status"].as_str().unwrap_or("").to_string()
        } else {
            String::new()
        };
        if done(r.status, &status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {what}: {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// When the instance's PostgreSQL started, or None while it does not answer.
fn postmaster_start(s: &Server, name: &str) -> Option<String> {
    let r = s.post(
        &format!("/database/{name}/sql"),
        &json!({"sql": "SELECT pg_postmaster_start_time()::text AS t"}),
    );
    (r.status == 200)
        .then(|| r.json()["rows"][0]["t"].to_string())
        .filter(|t| t != "null")
}

/// Every route works on a running instance.
fn routes_work(s: &Server, name: &str) {
    for path in [
        format!("/instances/{name}"),
        format!("/instances/{name}/credentials"),
        format!("/instances/{name}/logs?tail=5"),
        format!("/monitoring/{name}/agent"),
        format!("/database/{name}/tables"),
    ] {
        let r = s.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = s.post(
        &format!("/database/{name}/sql"),
        &json!({"sql": "SELECT 1 AS one"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn operations_run_to_their_end_when_the_client_leaves() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("cancel");
    let s = Server::start(&h, &[]);
    let hang_up = |method: &str, path: &str, body: &str, after: Duration| {
        http::send_and_hang_up(s.port, method, path, &s.token, body, after)
    };
    for (i, ms) in [200u64, 1000, 3000].into_iter().enumerate() {
        let after = Duration::from_millis(ms);
        let name = format!("wedge{i}");
        hang_up(
            "POST",
            "/instances",
            &json!({"name": name}).to_string(),
            after,
        );
        wait_for(&s, &name, "running", |_, st| st == "running");
        routes_work(&s, &name);

        hang_up("POST", &format!("/instances/{name}/stop"), "", after);
        wait_for(&s, &name, "stopped", |_, st| st == "stopped");
        hang_up("POST", &format!("/instances/{name}/start"), "", after);
        wait_for(&s, &name, "running", |_, st| st == "running");
        routes_work(&s, &name);

        let started = postmaster_start(&s, &name).expect("running");
        hang_up("POST", &format!("/instances/{name}/restart"), "", after);
        // The status may read `running` before the restart has begun: wait
        // for the new server (which also shows the restart ran to its end).
        let deadline = Instant::now() + Duration::from_secs(90);
        while postmaster_start(&s, &name).is_none_or(|t| t == started) {
            assert!(Instant::now() < deadline, "{name} was not restarted");
            std::thread::sleep(Duration::from_millis(200));
        }
        wait_for(&s, &name, "running", |_, st| st == "running");
        routes_work(&s, &name);

        hang_up(
            "POST",
            &format!("/monitoring/{name}/agent/restart"),
            "",
            after,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = s.get(&format!("/monitoring/{name}/agent"));
            if r.status == 200 && r.json()["state"] == "running" {
                break;
            }
            assert!(Instant::now() < deadline, "agent: {}", r.text());
            std::thread::sleep(Duration::from_millis(200));
        }

        // The containers carry the id in their label, not the name.
        let id = s.get(&format!("/instances/{name}")).json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!h.containers_of(&id).is_empty(), "no containers of {id}");
        hang_up("DELETE", &format!("/instances/{name}"), "", after);
        wait_for(&s, &name, "gone", |code, _| code == 404);
        assert_eq!(h.containers_of(&id), Vec::<String>::new());
    }
    let reg = h.registry();
    assert_eq!(reg["instances"].as_array().map(Vec::len), Some(0), "{reg}");
}

#[test]
fn statements_of_a_client_that_left_do_not_commit() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("cancel-db");
    let (_, url) = h.create("gone", &[]);
    let s = Server::start(&h, &[("DBAAS_REQUEST_TIMEOUT", "1s")]);
    let r = s.post(
        "/database/gone/sql",
        &json!({"sql": "CREATE TABLE t (id int)"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Answered 504 by the request bound while the transaction still runs.
    let r = s.post(
        "/database/gone/transaction",
        &json!({"statements": [{"sql": "INSERT INTO t VALUES (1)"}, {"sql": "SELECT pg_sleep(2)"}]}),
    );
    assert_eq!(r.status, 504, "{}", r.text());
    // The same for /sql and a row write behind a slow statement on a
    // client that hangs up.
    http::send_and_hang_up(
        s.port,
        "POST",
        "/database/gone/sql",
        &s.token,
        &json!({"sql": "INSERT INTO t SELECT 2 FROM pg_sleep(2)"}).to_string(),
        Duration::from_millis(300),
    );
    // Until the server's sessions have ended their statements (rolled back).
    wait_until(
        "the abandoned statements ended",
        Duration::from_secs(60),
        || other_backends(&url, &["active", "idle in transaction"]) == 0,
    );
    let mut c = connect(&url);
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
    assert_eq!(n, 0, "a statement committed after its request was answered");
    // The server still serves the instance.
    let r = s.post("/database/gone/tables/t/rows", &json!({"id": 3}));
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn a_panic_in_a_handler_is_a_500_and_the_server_goes_on() {
    let h = TestHome::new("panic");
    let s = Server::start(&h, &[("DBAAS_TEST_FAULTS", "1")]);
    for _ in 0..3 {
        let r = s.post_empty("/_test/panic");
        assert_eq!(r.status, 500, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "internal");
    }
    let r = s.get("/instances");
    assert_eq!(r.status, 200, "{}", r.text());
    // Without the setting the hook does not exist.
    let h2 = TestHome::new("panic-off");
    let s2 = Server::start(&h2, &[]);
    assert_eq!(s2.post_empty("/_test/panic").status, 404);
}

#[test]
fn the_reported_panicking_name_is_a_clear_error() {
    let h = TestHome::new("panic-name");
    let name = format!("a{}", "é".repeat(63));
    let r = h.run(&["create", &name]);
    let err = r.fails_with(2);
    assert!(err.contains("longer than 63"), "{err}");
    let s = Server::start(&h, &[]);
    let r = s.post("/instances", &json!({ "name": name }));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["detail"]["field"], "name");
    assert!(h.registry_text().is_none() || h.registry()["instances"] == json!([]));
}
