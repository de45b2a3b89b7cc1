//! The CLI and the API are two faces of the same operations: a table of
//! operations is run through both on the same instances, and the outcomes
//! must agree (success, or the same kind of error: exit status and HTTP
//! status mapped to one name).

mod common;

use common::*;
use serde_json::json;

/// What an operation came to, named the same for both faces.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    Ok,
    Invalid,
    NotFound,
    Conflict,
    Other(i32),
}

fn from_exit(code: i32) -> Outcome {
    match code {
        0 => Outcome::Ok,
        2 => Outcome::Invalid,
        3 => Outcome::NotFound,
        4 => Outcome::Conflict,
        c => Outcome::Other(c),
    }
}

fn from_http(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Ok,
        400 => Outcome::Invalid,
        404 => Outcome::NotFound,
        409 => Outcome::Conflict,
        s => Outcome::Other(i32::from(s)),
    }
}

/// One operation as each face spells it.
struct Op<'a> {
    what: &'a str,
    cli: Vec<&'a str>,
    method: &'a str,
    path: String,
    body: Option<serde_json::Value>,
}

fn op<'a>(what: &'a str, cli: &[&'a str], method: &'a str, path: &str) -> Op<'a> {
    Op {
        what,
        cli: cli.to_vec(),
        method,
        path: path.to_string(),
        body: None,
    }
}

fn via_cli(h: &TestHome, o: &Op) -> Outcome {
    let r = h.run(&o.cli);
    let out = from_exit(r.code());
    eprintln!("cli {:?}: {out:?} {}", o.cli, r.stderr().trim());
    out
}

fn via_api(s: &Server, o: &Op) -> Outcome {
    let r = s.call(o.method, &o.path, o.body.as_ref(), &[]);
    let out = from_http(r.status);
    eprintln!("api {} {}: {out:?} {}", o.method, o.path, r.text());
    out
}

/// Runs `o` through the CLI, then through the API, on the state the first
/// left; both must come to `expected`.
fn both(h: &TestHome, s: &Server, o: Op, expected: Outcome) {
    let cli = via_cli(h, &o);
    let api = via_api(s, &o);
    assert_eq!(
        (cli, api),
        (expected, expected),
        "{}: the CLI and the API disagree or are wrong",
        o.what
    );
}

/// Runs `o` through the API first, then through the CLI.
fn both_api_first(h: &TestHome, s: &Server, o: Op, expected: Outcome) {
    let api = via_api(s, &o);
    let cli = via_cli(h, &o);
    assert_eq!(
        (cli, api),
        (expected, expected),
        "{}: the CLI and the API disagree or are wrong",
        o.what
    );
}

#[test]
fn lifecycle_outcomes_agree() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("parity");
    let s = Server::start(&h, &[]);
    let p = "/instances/par";

    let r = s.post("/instances", &json!({"name": "par", "memory": "256m"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let mut again = op(
        "create again",
        &["create", "par", "--memory", "256m"],
        "POST",
        "/instances",
    );
    again.body = Some(json!({"name": "par", "memory": "256m"}));
    both(&h, &s, again, Outcome::Conflict);

    // Each transition is made first by one face; the other then repeats it.
    both(
        &h,
        &s,
        op("stop", &["down", "par"], "POST", &format!("{p}/stop")),
        Outcome::Ok,
    );
    both(
        &h,
        &s,
        op("stop again", &["down", "par"], "POST", &format!("{p}/stop")),
        Outcome::Ok,
    );
    both_api_first(
        &h,
        &s,
        op("start", &["up", "par"], "POST", &format!("{p}/start")),
        Outcome::Ok,
    );
    both(
        &h,
        &s,
        op("start again", &["up", "par"], "POST", &format!("{p}/start")),
        Outcome::Ok,
    );
    both(
        &h,
        &s,
        op(
            "restart",
            &["restart", "par"],
            "POST",
            &format!("{p}/restart"),
        ),
        Outcome::Ok,
    );
    both(&h, &s, op("show", &["show", "par"], "GET", p), Outcome::Ok);
    both(
        &h,
        &s,
        op(
            "credentials",
            &["url", "par"],
            "GET",
            &format!("{p}/credentials"),
        ),
        Outcome::Ok,
    );
    both(
        &h,
        &s,
        op(
            "logs",
            &["logs", "par", "--tail", "5"],
            "GET",
            &format!("{p}/logs?tail=5"),
        ),
        Outcome::Ok,
    );
    both(
        &h,
        &s,
        op(
            "tail too long",
            &["logs", "par", "--tail", "20000"],
            "GET",
            &format!("{p}/logs?tail=20000"),
        ),
        Outcome::Invalid,
    );

    // Destroy: the first face removes it, the second finds nothing.
    let id = h.run(&["show", "par", "--json"]).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!h.containers_of(&id).is_empty(), "no containers of {id}");
    let destroy = || op("destroy", &["destroy", "par", "--yes"], "DELETE", p);
    assert_eq!(via_api(&s, &destroy()), Outcome::Ok);
    both(&h, &s, destroy(), Outcome::NotFound);
    assert_eq!(h.containers_of(&id), Vec::<String>::new());
}

#[test]
fn not_found_outcomes_agree() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("parity-404");
    let s = Server::start(&h, &[]);
    let p = "/instances/nosuch";
    for o in [
        op("start", &["up", "nosuch"], "POST", &format!("{p}/start")),
        op("stop", &["down", "nosuch"], "POST", &format!("{p}/stop")),
        op(
            "restart",
            &["restart", "nosuch"],
            "POST",
            &format!("{p}/restart"),
        ),
        op("show", &["show", "nosuch"], "GET", p),
        op(
            "credentials",
            &["url", "nosuch"],
            "GET",
            &format!("{p}/credentials"),
        ),
        op("logs", &["logs", "nosuch"], "GET", &format!("{p}/logs")),
        op("destroy", &["destroy", "nosuch", "--yes"], "DELETE", p),
        op(
            "sql",
            &["sql", "nosuch", "SELECT 1"],
            "POST",
            "/database/nosuch/sql",
        ),
        op(
            "tables",
            &["tables", "nosuch"],
            "GET",
            "/database/nosuch/tables",
        ),
        op(
            "metrics",
            &["metrics", "nosuch"],
            "GET",
            "/monitoring/nosuch/metrics",
        ),
    ] {
        let mut o = o;
        if o.path.ends_with("/sql") {
            o.body = Some(json!({"sql": "SELECT 1"}));
        }
        both(&h, &s, o, Outcome::NotFound);
    }
}

#[test]
fn outcomes_while_creating_agree() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("parity-creating");
    // `compose up` of this server takes 6 s longer: long enough to ask.
    let slow = write_script(
        &h,
        "docker-slow-up",
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = up ] && up=1; done\n\
         if [ \"$1\" = compose ] && [ -n \"$up\" ]; then sleep 6; fi\nexec docker \"$@\"\n",
    );
    let s = Server::start(&h, &[("DBAAS_DOCKER", &slow)]);
    let r = s.post(
        "/instances?wait=false",
        &json!({"name": "slow", "memory": "256m"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let p = "/instances/slow";
    for o in [
        op(
            "credentials",
            &["url", "slow"],
            "GET",
            &format!("{p}/credentials"),
        ),
        op("start", &["up", "slow"], "POST", &format!("{p}/start")),
        op("stop", &["down", "slow"], "POST", &format!("{p}/stop")),
        op(
            "restart",
            &["restart", "slow"],
            "POST",
            &format!("{p}/restart"),
        ),
        op("destroy", &["destroy", "slow", "--yes"], "DELETE", p),
    ] {
        let status = s.get(p).json()["status"].clone();
        assert_eq!(status, "creating", "the create ended too soon for the test");
        both(&h, &s, o, Outcome::Conflict);
    }
    // Then it finishes, and both faces see it running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while s.get(p).json()["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "{}", s.get(p).text());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    both(
        &h,
        &s,
        op(
            "credentials",
            &["url", "slow"],
            "GET",
            &format!("{p}/credentials"),
        ),
        Outcome::Ok,
    );
}
