//! Host safety (issue 10, part 8): a home others can write, a token file
//! others can read, symlinks planted under instances/, the host's memory
//! and disk budget, control characters on the terminal, host paths in API
//! errors.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn chmod(p: &std::path::Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_home_or_token_others_can_touch_is_refused() {
    let h = TestHome::new("unsafe-home");
    for mode in [0o777, 0o775, 0o1777] {
        chmod(&h.root, mode);
        let err = h.run(&["list"]).fails_with(2);
        assert!(err.contains("chmod go-w"), "{mode:o}: {err}");
    }
    chmod(&h.root, 0o755);
    h.run(&["list"]).ok();
    std::fs::create_dir_all(h.root.join("config")).unwrap();
    let token = h.root.join("config/api-token");
    std::fs::write(&token, "0123456789abcdef0123456789\n").unwrap();
    chmod(&token, 0o644);
    let out = h
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DBAAS_API_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn budgets_symlinks_terminals_and_paths() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("host-safety");
    // The host's disk budget: nothing is created.
    let err = h
        .run_env(&["create", "full"], &[("DBAAS_MIN_FREE_DISK", "100000g")])
        .fails_with(4);
    assert!(err.contains("DBAAS_MIN_FREE_DISK"), "{err}");
    assert!(h.instance_dirs().is_empty());
    // The memory budget: 512m fits in 700m, a second 512m does not.
    let budget = [("DBAAS_MAX_MEMORY", "700m")];
    let v = h.run_env(&["create", "safe", "--json"], &budget).json();
    let id = v["instance"]["id"].as_str().unwrap().to_string();
    let err = h.run_env(&["create", "more"], &budget).fails_with(4);
    assert!(err.contains("DBAAS_MAX_MEMORY"), "{err}");
    assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 1);
    let s = Server::start(&h, &budget);
    let r = s.post("/instances", &json!({"name": "more"}));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("DBAAS_MAX_MEMORY"), "{}", r.text());
    // Provisioning slots live under the home.
    assert!(h.root.join("config/provision-slots").is_dir());

    // Control characters are shown escaped, not sent to the terminal.
    let out = h
        .run(&["sql", "safe", "SELECT E'\\x1b[31mred\\n\\x07' AS v"])
        .ok();
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("\\x1b[31mred\\n\\x07"), "{out}");

    // A symlink planted where the agent writes is never followed.
    let dir = h.root.join(format!("instances/{id}"));
    let metrics = dir.join("logs/metrics.json");
    std::fs::remove_file(&metrics).ok();
    let secret = h.root.join("not-for-clients");
    std::fs::write(
        &secret,
        "{\"v\":1,\"ts\":\"2030-01-01T00:00:00Z\",\"secret\":\"leaked\"}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, &metrics).unwrap();
    let r = s.get("/monitoring/safe/metrics?last=5");
    assert!(!r.text().contains("leaked"), "{}", r.text());
    // And a secret replaced by a symlink is refused, with no host path in
    // the API's answer.
    let app = dir.join("secrets/app_password");
    std::fs::remove_file(&app).unwrap();
    std::os::unix::fs::symlink(&secret, &app).unwrap();
    let err = h.run(&["url", "safe"]);
    assert_ne!(err.code(), 0);
    assert!(!err.stdout().contains("leaked"));
    let r = s.get("/instances/safe/credentials");
    assert!(r.status >= 400, "{}", r.text());
    assert!(!r.text().contains("leaked"), "{}", r.text());
    let root = h.root.to_string_lossy().to_string();
    assert!(!r.text().contains(&root), "a host path in {}", r.text());
    assert!(r.text().contains("$DBAAS_HOME"), "{}", r.text());
}
