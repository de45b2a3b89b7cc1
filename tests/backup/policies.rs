//! Backup policies: off, bad values refused, a destroyed instance's kept
//! backups restored, restores cut short.

use super::*;

#[test]
fn a_destroyed_instance_is_restored_from_its_kept_backups() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("kept");
    let (id, _, _) = with_rows(&h, "gone", &["--database", "shop", "--user", "clerk"], 500);
    h.run(&["backup", "gone"]).ok();
    let err = h.run(&["destroy", "gone", "--yes"]).stderr();
    assert!(err.contains("backups are kept"), "{err}");
    let all = h.run(&["backups", "--all", "--json"]).json();
    let kept = all
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["instance"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(kept["destroyed"], true);
    assert_eq!(kept["name"], "gone");
    let v = h
        .run(&["restore", "gone", "--to", "again", "--json"])
        .json();
    assert_eq!(v["instance"]["database"], "shop");
    let url = v["url"].as_str().unwrap();
    let path = url.split('?').next().unwrap();
    assert!(url.contains("clerk:") && path.ends_with("/shop"), "{url}");
    assert_eq!(ids(url).len(), 500);
    // --delete-backups removes them.
    h.run(&["destroy", "again", "--yes", "--delete-backups"])
        .ok();
    let new_id = v["instance"]["id"].as_str().unwrap();
    assert!(!h.root.join("backups").join(new_id).exists());
    assert!(
        h.root.join("backups").join(&id).exists(),
        "only its own backups go"
    );
}

#[test]
fn backups_off_and_bad_policies() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("nobackup");
    for (args, want) in [
        (
            vec!["--backup-schedule", "often"],
            "invalid backup_schedule",
        ),
        (
            vec!["--backup-schedule", "daily@25:00"],
            "not a time of day",
        ),
        (vec!["--backup-retention", "0"], "invalid backup_retention"),
        (
            vec!["--no-backups", "--backup-retention", "3"],
            "no backups",
        ),
    ] {
        let mut all = vec!["create", "x"];
        all.extend(args);
        let out = h.run(&all).fails_with(2);
        assert!(out.contains(want), "{out}");
    }
    assert!(h.instance_dirs().is_empty());
    let (id, _) = h.create("plain", &["--no-backups"]);
    let svc = h.containers_of(&id);
    assert_eq!(svc.len(), 2, "db and agent only: {svc:?}");
    let out = h.run(&["backup", "plain"]).fails_with(4);
    assert!(out.contains("backup enable plain"), "{out}");
    let err = h
        .run(&["backup", "enable", "plain", "--schedule", "6h"])
        .stderr();
    assert!(err.contains("restarted once"), "{err}");
    assert_eq!(h.containers_of(&id).len(), 3);
    let v = first_backup(&h, "plain");
    assert_eq!(v["schedule"], "6h");
    assert_eq!(v["backups"][0]["reason"], "first");
    let err = h
        .run(&["backup", "config", "plain", "--retention", "3"])
        .stderr();
    assert!(!err.contains("restarted"), "{err}");
    assert_eq!(
        h.run(&["backups", "plain", "--json"]).json()["retention"],
        "3"
    );
}

#[test]
fn restores_cut_short_leave_the_source_untouched_and_the_target_cleanable() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("cutrestore");
    let (_, url, _) = with_rows(&h, "origin", &[], 300);
    for delay in [1500u64, 3500] {
        // Killed (SIGKILL) while it provisions or recovers the new instance.
        let mut child = h
            .command(&["restore", "origin", "--to", "half"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        h.run(&["doctor", "--fix"]);
        let names: Vec<String> = h
            .run(&["list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        // Either the restore finished before the kill, or nothing is left.
        if names.contains(&"half".to_string()) {
            assert_eq!(
                h.run(&["show", "half", "--json"]).json()["status"],
                "running"
            );
            h.run(&["destroy", "half", "--yes", "--delete-backups"])
                .ok();
        }
        assert_eq!(
            h.instance_dirs().len(),
            1,
            "cut at {delay} ms: {:?}",
            h.instance_dirs()
        );
        let open = open_findings(&h);
        assert!(open.is_empty(), "cut at {delay} ms: {open:?}");
        let kept: Vec<String> = std::fs::read_dir(h.root.join("backups"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            kept.len(),
            1,
            "no repository of a rolled-back target: {kept:?}"
        );
        assert_eq!(ids(&url).len(), 300, "the source is untouched");
    }
    // And one to its end, that the cut ones did not disturb.
    let v = h
        .run(&["restore", "origin", "--to", "whole", "--json"])
        .json();
    assert_eq!(ids(v["url"].as_str().unwrap()).len(), 300);
}
