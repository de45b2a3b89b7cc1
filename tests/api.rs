//! The REST API against a real `dbaasctl serve` process and real Docker.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn api_lifecycle_from_create_to_delete() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("apilife");
    let s = Server::start(&h, &[]);

    let r = s.post(
        "/instances",
        &json!({"name": "web", "memory": "256m", "cpus": 0.5, "metrics_interval": 5}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["instance"]["id"].as_str().unwrap().to_string();
    let password = created["password"].as_str().unwrap().to_string();
    let url = created["url"].as_str().unwrap().to_string();
    assert!(url.contains(&password));
    let mut c = connect(&url);
    c.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2), (3);")
        .unwrap();
    drop(c);

    // Passwords only in the create response and /credentials.
    let list = s.get("/instances");
    assert_eq!(list.status, 200);
    assert!(!list.text().contains(&password));
    assert_eq!(list.json().as_array().unwrap().len(), 1);
    let one = s.get("/instances/web");
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["id"], id.as_str());
    assert_eq!(one.json()["metrics_interval"], 5);
    assert!(!one.text().contains(&password));
    assert_eq!(s.get(&format!("/instances/{id}")).json()["name"], "web");
    let cred = s.get("/instances/web/credentials").json();
    assert_eq!(cred["password"], password.as_str());
    assert_eq!(cred["url"], url.as_str());

    // stop, stop again (idempotent, as `dbaasctl down`), start, restart:
    // data survives.
    let r = s.post_empty("/instances/web/stop");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "stopped");
    let r = s.post_empty("/instances/web/stop");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "stopped");
    let r = s.post_empty("/instances/web/start");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post_empty("/instances/web/restart");
    assert_eq!(r.status, 200, "{}", r.text());
    let n: i64 = connect(&url)
        .query_one("SELECT count(*) FROM t", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 3);

    let logs = s.get("/instances/web/logs?tail=20");
    assert_eq!(logs.status, 200);
    let lines = logs.json()["lines"].as_array().unwrap().len();
    assert!(lines > 0 && lines <= 40, "{lines}");
    assert_eq!(s.get("/instances/web/logs?tail=abc").status, 400);

    let r = s.delete("/instances/web");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted"], id.as_str());
    assert_eq!(s.get("/instances/web").status, 404);
    assert!(h.containers_of(&id).is_empty());
    assert!(h.instance_dirs().is_empty());
}

#[test]
fn api_wait_false_and_concurrent_creates() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("apiasync");
    let s = Server::start(&h, &[]);

    // One create, timed, as the reference for the concurrent ones.
    let t = Instant::now();
    assert_eq!(s.post("/instances", &json!({"name": "ref"})).status, 201);
    let one = t.elapsed();

    // wait=false: 202 at once, `creating` until ready.
    let r = s.post("/instances?wait=false", &json!({"name": "bg"}));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["instance"]["status"], "creating");
    let url = r.json()["url"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = s.get("/instances/bg").json()["status"]
            .as_str()
            .unwrap()
            .to_string();
        if st == "running" {
            break;
        }
        // The status cache may lag the registry by up to a second.
        assert_ne!(st, "failed", "bg failed");
        assert!(Instant::now() < deadline, "bg never became running");
        std::thread::sleep(Duration::from_millis(200));
    }
    connect(&url).query_one("SELECT 1", &[]).unwrap();
    // A DELETE waits for the instance's lock, never racing its create.
    assert_eq!(s.delete("/instances/bg").status, 200);

    // 5 concurrent creates.
    let t = Instant::now();
    let threads: Vec<_> = (0..5)
        .map(|i| {
            let (port, token) = (s.port, s.token.clone());
            std::thread::spawn(move || {
                let body = json!({"name": format!("par{i}")}).to_string();
                http::request(
                    port,
                    "POST",
                    "/instances",
                    Some(&token),
                    Some(body.as_bytes()),
                    "application/json",
                )
            })
        })
        .collect();
    for th in threads {
        let r = th.join().unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let five = t.elapsed();
    println!(
        "one create {:.1} s; 5 concurrent creates {:.1} s ({:.2}x one)",
        one.as_secs_f64(),
        five.as_secs_f64(),
        five.as_secs_f64() / one.as_secs_f64()
    );
    assert_eq!(s.get("/instances").json().as_array().unwrap().len(), 6);

    // A failed background create shows `failed` with the reason.
    drop(s);
    let failing = docker_failing_up(&h, "simulated compose failure", 3, false);
    let s = Server::start(&h, &[("DBAAS_DOCKER", &failing)]);
    let r = s.post("/instances?wait=false", &json!({"name": "doomed"}));
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.get("/instances/doomed").json();
        if v["status"] == "failed" {
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .contains("simulated compose failure"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never failed: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.delete("/instances/doomed").status, 200);
}

#[test]
fn cli_and_server_share_the_registry() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("apicli");
    let s = Server::start(&h, &[]);
    let (id, _) = h.create("from-cli", &[]);
    let v = s.get("/instances/from-cli");
    assert_eq!(v.status, 200, "the server sees what the CLI created");
    assert_eq!(v.json()["id"], id.as_str());
    let r = s.post("/instances", &json!({"name": "from-api"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let list = h.run(&["list", "--json"]).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"from-cli") && names.contains(&"from-api"),
        "{names:?}"
    );
    // Delete through the API what the CLI created, and vice versa.
    assert_eq!(s.delete("/instances/from-cli").status, 200);
    h.run(&["destroy", "from-api", "--yes"]).ok();
    assert_eq!(s.get("/instances").json(), json!([]));
    assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 0);
}

#[test]
fn api_error_shapes_for_bad_input() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("apierr");
    let s = Server::start(&h, &[]);
    let check = |r: http::Response, status: u16, code: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        v
    };
    let mut sections = Sections::default();
    sections.run(
        "Every bad value of the lifecycle issue, each naming its f...",
        || {
            // Every bad value of the lifecycle issue, each naming its field.
            let long = "a".repeat(64);
            for (body, field) in [
                (json!({"name": ""}), "name"),
                (json!({"name": "Up"}), "name"),
                (json!({"name": "a b"}), "name"),
                (json!({"name": "a'b"}), "name"),
                (json!({"name": "a/b"}), "name"),
                (json!({"name": ".."}), "name"),
                (json!({"name": "a:b"}), "name"),
                (json!({"name": "a\nb"}), "name"),
                (json!({"name": long}), "name"),
                (json!({"name": "x", "version": 14}), "version"),
                (json!({"name": "x", "memory": "abc"}), "memory"),
                (json!({"name": "x", "memory": "0"}), "memory"),
                (json!({"name": "x", "memory": "-1g"}), "memory"),
                (json!({"name": "x", "memory": "1000000t"}), "memory"),
                (json!({"name": "x", "cpus": 0}), "cpus"),
                (json!({"name": "x", "cpus": -1}), "cpus"),
                (json!({"name": "x", "cpus": 99999}), "cpus"),
                (json!({"name": "x", "port": 80}), "port"),
                (json!({"name": "x", "port": 70000}), "port"),
            ] {
                let v = check(s.post("/instances", &body), 400, "invalid");
                assert_eq!(v["error"]["detail"]["field"], field, "{body}");
            }
        },
    );
    sections.run(
        "Malformed JSON, unknown fields, wrong types, a huge body",
        || {
            // Malformed JSON, unknown fields, wrong types, a huge body.
            let raw = |b: &[u8], ct: &str| {
                http::request(s.port, "POST", "/instances", Some(&s.token), Some(b), ct)
            };
            check(raw(b"{\"name\":", "application/json"), 400, "invalid_json");
            check(
                raw(br#"{"name":"x","extra":true}"#, "application/json"),
                400,
                "invalid_json",
            );
            check(
                raw(br#"{"name":["x"]}"#, "application/json"),
                400,
                "invalid_json",
            );
            check(
                raw(br#"{"name":"x","port":"5432"}"#, "application/json"),
                400,
                "invalid_json",
            );
            check(raw(b"name=x", "text/plain"), 415, "unsupported_media_type");
            let huge = format!(r#"{{"name":"{}"}}"#, "a".repeat(2 << 20));
            check(
                raw(huge.as_bytes(), "application/json"),
                413,
                "payload_too_large",
            );
        },
    );
    sections.run("Path traversal, unknown routes and methods, auth", || {
        // Path traversal, unknown routes and methods, auth.
        check(s.get("/instances/..%2F..%2Fconfig"), 404, "not_found");
        check(s.get("/instances/%2e%2e"), 404, "not_found");
        check(s.get("/no/such/route"), 404, "not_found");
        check(s.delete("/instances"), 405, "method_not_allowed");
        check(
            http::request(s.port, "GET", "/instances", None, None, ""),
            401,
            "unauthorized",
        );
        check(
            http::request(
                s.port,
                "GET",
                "/instances",
                Some("wrong-token-000000"),
                None,
                "",
            ),
            401,
            "unauthorized",
        );
        assert_eq!(h.registry_text(), None, "nothing was written");
    });
    sections.run("Conflicts: a taken name, a taken port", || {
        // Conflicts: a taken name, a taken port.
        assert_eq!(s.post("/instances", &json!({"name": "one"})).status, 201);
        check(
            s.post("/instances", &json!({"name": "one"})),
            409,
            "conflict",
        );
        check(
            s.post("/instances", &json!({"name": "two", "port": h.ports.0})),
            409,
            "conflict",
        );
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = listener.local_addr().unwrap().port();
        check(
            s.post("/instances", &json!({"name": "two", "port": busy})),
            409,
            "conflict",
        );
        check(
            s.post("/instances/one/start?wait=maybe", &json!({})),
            400,
            "invalid",
        );
    });
    sections.run(
        "Docker down: 503; a failing docker compose: 500 with its ...",
        || {
            // Docker down: 503; a failing docker compose: 500 with its stderr.
            let down = Server::start(&h, &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
            let r = down.create_raw(br#"{"name":"x"}"#);
            check(r, 503, "docker_unavailable");
        },
    );
    sections.run(
        "The image missing, Compose v2 missing: 503 naming the fix",
        || {
            // The image missing, Compose v2 missing: 503 naming the fix.
            let no_image = Server::start(&h, &[("DBAAS_IMAGE", "dbaas/missing-{version}")]);
            let r = no_image.create_raw(br#"{"name":"x"}"#);
            let v = check(r, 503, "docker_unavailable");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("dbaas/missing-15"),
                "{v}"
            );
            let no_compose_docker = docker_without_compose(&h);
            let no_compose = Server::start(&h, &[("DBAAS_DOCKER", &no_compose_docker)]);
            let r = no_compose.create_raw(br#"{"name":"x"}"#);
            let v = check(r, 503, "docker_unavailable");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("setup-host.sh"),
                "{v}"
            );
            let failing = docker_failing_up(&h, "Error: simulated compose failure", 9, false);
            let bad = Server::start(&h, &[("DBAAS_DOCKER", &failing)]);
            let r = bad.create_raw(br#"{"name":"y"}"#);
            let v = check(r, 500, "docker_failed");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("rolled back"),
                "{v}"
            );
            assert!(
                v["error"]["detail"]["stderr"]
                    .as_str()
                    .unwrap()
                    .contains("simulated compose failure"),
                "{v}"
            );
            assert!(
                v["error"]["detail"]["command"]
                    .as_str()
                    .unwrap()
                    .contains("compose"),
                "{v}"
            );
            assert_eq!(
                s.get("/instances").json().as_array().unwrap().len(),
                1,
                "the failed create left nothing"
            );
        },
    );
    sections.finish();
}

#[test]
fn server_shuts_down_gracefully_on_sigterm() {
    let h = TestHome::new("apiterm");
    let mut s = Server::start(&h, &[]);
    assert_eq!(
        http::request(s.port, "GET", "/openapi.json", None, None, "").status,
        200
    );
    unsafe {
        libc::kill(s.pid() as i32, libc::SIGTERM);
    }
    let status = s.wait_exit();
    assert!(status.success(), "{status:?}");
}
