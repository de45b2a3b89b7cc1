//! A create killed with SIGKILL midway leaves nothing that `doctor` does not
//! report and that `doctor --fix` or `destroy` cannot clean.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Starts a create and returns it once its containers exist (the worst
/// moment: registry entry, directory and containers, no readiness yet).
fn create_until_containers_exist(h: &TestHome, name: &str) -> (std::process::Child, String) {
    let mut child = h
        .command(&["create", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        assert!(
            Instant::now() < deadline,
            "create never got to its containers"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "create finished before it could be killed"
        );
        let reg = h.registry();
        if let Some(id) = reg["instances"][0]["id"].as_str() {
            if !h.containers_of(id).is_empty() {
                break id.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (child, id)
}

fn killed_create(h: &TestHome, name: &str) -> String {
    let (mut child, id) = create_until_containers_exist(h, name);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    id
}

#[test]
fn interrupted_create_rolls_back() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("sigint");
    let (child, id) = create_until_containers_exist(&h, "ctrlc");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("rolled back") && err.contains(&id), "{err}");
    assert!(h.containers_of(&id).is_empty());
    assert!(h.instance_dirs().is_empty());
    assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 0);
}

#[test]
fn killed_create_is_reported_and_fixed_by_doctor() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("killfix");
    let id = killed_create(&h, "victim");

    let run = h.run(&["doctor"]);
    assert_ne!(
        run.code(),
        0,
        "doctor must fail while an interrupted create is left"
    );
    let report = run.stdout();
    assert!(
        report.contains("interrupted-create") && report.contains(&id),
        "{report}"
    );
    assert!(report.contains("doctor --fix"), "{report}");
    let list = h.run(&["list", "--json"]).json();
    assert_eq!(list[0]["status"], "interrupted");

    h.run(&["doctor", "--fix"]).ok();
    assert!(
        h.containers_of(&id).is_empty(),
        "containers left after doctor --fix"
    );
    assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());
    assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 0);
    h.run(&["doctor"]).ok();

    // The name is free again.
    h.create("victim", &[]);
}

#[test]
fn killed_create_is_cleaned_by_destroy() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("killdestroy");
    let id = killed_create(&h, "victim");
    h.run(&["destroy", "victim", "--yes"]).ok();
    assert!(h.containers_of(&id).is_empty());
    assert!(h.instance_dirs().is_empty());
    assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 0);
}

#[test]
fn doctor_reports_orphans_and_missing_containers() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("orphans");
    let (id, _) = h.create("o1", &[]);
    // Containers removed behind dbaas's back: reported with the fix.
    let dir = h.root.join("instances").join(&id);
    let out = std::process::Command::new("docker")
        .args(["compose", "down"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = h.run(&["doctor"]).stdout();
    assert!(
        report.contains("missing-containers") && report.contains("dbaasctl up o1"),
        "{report}"
    );
    // An entry removed from the registry while its containers run: orphans.
    h.run(&["up", "o1"]).ok();
    let mut reg = h.registry();
    reg["instances"] = serde_json::json!([]);
    std::fs::write(h.root.join("config/instances.json"), reg.to_string()).unwrap();
    let run = h.run(&["doctor"]);
    assert_ne!(run.code(), 0);
    let report = run.stdout();
    assert!(
        report.contains("orphan-containers") && report.contains(&id),
        "{report}"
    );
    assert!(report.contains("orphan-directory"), "{report}");
    h.run(&["doctor", "--fix"]);
    assert!(h.containers_of(&id).is_empty());
    // The directory (and its data) is never deleted by doctor.
    assert!(dir.join("data").is_dir());
}
