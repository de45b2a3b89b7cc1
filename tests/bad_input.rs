//! Every bad input gets a clear error, a non-zero exit code, and changes
//! nothing: the registry and instances/ are as they were.

mod common;
use common::*;

/// Runs a create that must fail with `code` and a message containing each
/// of `needles`, and checks that nothing changed.
fn rejected(h: &TestHome, args: &[&str], env: &[(&str, &str)], code: i32, needles: &[&str]) {
    let before = (h.registry_text(), h.instance_dirs());
    let run = h.run_env(args, env);
    let err = run.fails_with(code);
    for n in needles {
        assert!(
            err.contains(n),
            "stderr of `{}` should mention {n:?}:\n{err}",
            run.cmd
        );
    }
    assert_eq!(
        (h.registry_text(), h.instance_dirs()),
        before,
        "`{}` changed state",
        run.cmd
    );
}

#[test]
fn invalid_values_are_rejected_before_anything_happens() {
    // Pure validation: no Docker needed, and none is touched.
    let h = TestHome::new("invalid");
    let long = "a".repeat(64);
    for name in [
        "",
        "Demo",
        "my db",
        "a'b",
        "a\"b",
        "a/b",
        "..",
        "a:b",
        "a#b",
        "{x}",
        "a\nb",
        "-a",
        "db_1",
        long.as_str(),
    ] {
        // `--` so that argh takes "-a" as the name, not as a flag.
        rejected(&h, &["create", "--", name], &[], 2, &["invalid name"]);
    }
    rejected(
        &h,
        &["create", "x", "--version", "14"],
        &[],
        2,
        &["invalid version", "13, 15, 17"],
    );
    rejected(
        &h,
        &["create", "x", "--version", "abc"],
        &[],
        2,
        &["invalid version"],
    );
    for m in ["abc", "0", "-1g", "1000000t"] {
        rejected(
            &h,
            &["create", "x", "--memory", m],
            &[],
            2,
            &["invalid memory"],
        );
    }
    for c in ["0", "-1", "99999", "abc"] {
        rejected(&h, &["create", "x", "--cpus", c], &[], 2, &["invalid cpus"]);
    }
    for p in ["0", "80", "1023", "65536"] {
        rejected(&h, &["create", "x", "--port", p], &[], 2, &["invalid port"]);
    }
    rejected(
        &h,
        &["create", "x", "--user", "postgres"],
        &[],
        2,
        &["invalid user", "reserved"],
    );
    rejected(
        &h,
        &["create", "x", "--database", "a-b"],
        &[],
        2,
        &["invalid database"],
    );
    rejected(
        &h,
        &["create", "x"],
        &[("DBAAS_PORT_RANGE", "70-80")],
        2,
        &["DBAAS_PORT_RANGE"],
    );
    // Unknown instance for every command that takes one.
    for cmd in ["up", "down", "restart", "show", "url", "logs", "psql"] {
        let err = h.run(&[cmd, "nope"]).fails_with(3);
        assert!(err.contains("'nope' not found"), "{cmd}: {err}");
    }
    assert!(h.registry_text().is_none() && h.instance_dirs().is_empty());
}

#[test]
fn docker_problems_name_their_fix() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dockerbad");
    // No daemon.
    rejected(
        &h,
        &["create", "x"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
        5,
        &["Docker daemon is not reachable", "systemctl start docker"],
    );
    // No Compose v2: a docker CLI without the compose plugin.
    let no_compose = docker_without_compose(&h);
    rejected(
        &h,
        &["create", "x"],
        &[("DBAAS_DOCKER", &no_compose)],
        5,
        &["Compose v2", "scripts/setup-host.sh"],
    );
    // The docker CLI itself missing.
    rejected(
        &h,
        &["create", "x"],
        &[("DBAAS_DOCKER", "/nonexistent/docker")],
        5,
        &["docker CLI"],
    );
    // The image missing.
    rejected(
        &h,
        &["create", "x"],
        &[("DBAAS_IMAGE", "dbaas/postgres:{version}-missing")],
        5,
        &["image dbaas/postgres:15-missing is missing"],
    );
    rejected(
        &h,
        &["create", "x", "--version", "13"],
        &[("DBAAS_IMAGE", "dbaas/nothing-{version}")],
        5,
        &["dbaas/nothing-13", "missing"],
    );
    // doctor says the same.
    let run = h.run_env(
        &["doctor"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_ne!(run.code(), 0);
    assert!(
        run.stdout().contains("systemctl start docker"),
        "{}",
        run.stdout()
    );
}

#[test]
fn taken_names_and_ports_conflict() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("taken");
    let (_, _) = h.create("one", &[]);
    rejected(&h, &["create", "one"], &[], 4, &["'one' already exists"]);
    let used = h.ports.0.to_string();
    rejected(
        &h,
        &["create", "two", "--port", &used],
        &[],
        4,
        &["already used by instance 'one'"],
    );
    // A port held by another program.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let busy = listener.local_addr().unwrap().port();
    if busy >= 1024 {
        rejected(
            &h,
            &["create", "two", "--port", &busy.to_string()],
            &[],
            4,
            &["already in use"],
        );
    }
    // Every port of the range used: a clear error too.
    let range = format!("{}-{}", h.ports.0, h.ports.0);
    rejected(
        &h,
        &["create", "two"],
        &[("DBAAS_PORT_RANGE", &range)],
        4,
        &["no free port"],
    );
}

#[test]
fn compose_failure_is_reported_and_rolled_back() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("composefail");
    // The real `docker compose up` runs (containers exist), then the command
    // reports a failure, as when a later service fails to start.
    let failing = docker_failing_up(
        &h,
        "Error response from daemon: simulated failure of a later step",
        17,
        true,
    );
    let run = h.run_env(&["create", "bad"], &[("DBAAS_DOCKER", &failing)]);
    let err = run.fails_with(1);
    for needle in [
        "rolled back",
        "compose",
        "up -d",
        "exit status: 17",
        "simulated failure of a later step",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 0);
    assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());
    // No container of this home is left.
    let ps = h.run(&["doctor", "--json"]);
    let findings: serde_json::Value = serde_json::from_str(&ps.stdout()).unwrap();
    assert!(
        !findings.to_string().contains("orphan-containers"),
        "{findings}"
    );

    // --keep-on-failure keeps it for debugging, recorded as failed.
    let run = h.run_env(
        &["create", "kept", "--keep-on-failure"],
        &[("DBAAS_DOCKER", &failing)],
    );
    let err = run.fails_with(1);
    assert!(err.contains("kept for debugging"), "{err}");
    let list = h.run(&["list", "--json"]).json();
    assert_eq!(list[0]["status"], "failed");
    assert!(list[0]["error"]
        .as_str()
        .unwrap()
        .contains("simulated failure"));
    assert_eq!(h.instance_dirs().len(), 1);
    h.run(&["destroy", "kept", "--yes"]).ok();
    assert!(h.instance_dirs().is_empty());
}

/// `dump --format custom` onto a terminal is refused (it is binary); the
/// same to a pipe or a file is not refused for that. `script` gives the
/// command a terminal as its standard output.
#[test]
fn a_binary_dump_onto_a_terminal_is_refused() {
    let h = TestHome::new("dump-tty");
    let cmd = format!(
        "DBAAS_HOME='{}' '{}' dump nosuch --format custom; echo \"exit=$?\"",
        h.root.display(),
        BIN
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit=2"), "{text}");
    assert!(text.contains("redirect it to a file"), "{text}");
    // Not a terminal: the refusal is for the instance, not the output.
    let run = h.run(&["dump", "nosuch", "--format", "custom"]);
    let err = run.fails_with(3);
    assert!(!err.contains("redirect it to a file"), "{err}");
}
