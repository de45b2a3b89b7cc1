//! Restores in place and their undo: a lost data volume, and every step
//! killed.

use super::*;

/// The data directories in-place restores and undos kept aside, oldest
/// first.
fn kept_dirs(h: &TestHome, id: &str) -> Vec<std::path::PathBuf> {
    let dir = h.root.join("instances").join(id);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data.before-") || n.starts_with("data.incomplete-"))
        .collect();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

#[test]
fn lost_data_volume_restored_in_place_then_undone() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("inplace");
    let (id, url, _) = with_rows(&h, "vol", &[], 0);
    let mut sections = Sections::default();

    sections.run("every row committed archive_timeout before the kill is back", || {
        // A steady writer for longer than archive_timeout (60 s).
        let writer = Writer::start(&url, 0);
        std::thread::sleep(Duration::from_secs(75));
        let (written, _) = writer.finish();
        let rows: Vec<(i64, f64)> = connect(&url)
            .query("SELECT id, extract(epoch FROM at)::float8 FROM w ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(rows.len() as i64, written);
        let killed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        docker_ok(&["kill", &format!("{id}-db-1")]);
        let data = h.root.join("instances").join(&id).join("data");
        for e in std::fs::read_dir(&data).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
        h.run(&["restore", "vol", "--in-place"]).ok();
        let back = ids(&url);
        let must: Vec<i64> = rows.iter().filter(|(_, at)| *at < killed_at - 60.0).map(|r| r.0).collect();
        assert!(!must.is_empty());
        assert!(must.iter().all(|i| back.contains(i)), "rows older than 60 s are missing");
        let newest_back = rows.iter().filter(|r| back.contains(&r.0)).map(|r| r.1).fold(0.0, f64::max);
        eprintln!(
            "figure: RPO after a lost data volume under 10 writes/s: {:.1} s of commits lost ({} of {written} rows back)",
            killed_at - newest_back,
            back.len()
        );
    });

    sections.run("in place to a time, and --undo swaps the data back", || {
        let all = ids(&url);
        let t = connect(&url)
            .query_one("SELECT to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM w WHERE id <= $1", &[&all[all.len() / 2]])
            .unwrap()
            .get::<_, String>(0);
        h.run(&["restore", "vol", "--in-place", "--time", &t]).ok();
        let half = ids(&url);
        // T is the insert time of the middle row: its commit came after T.
        assert_eq!(half, all[..all.len() / 2].to_vec());
        // Both replaced directories are kept (the first restore's, emptied
        // by the "lost volume", and this one's), never deleted implicitly.
        let kept = kept_dirs(&h, &id);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept[1].join("PG_VERSION").is_file(), "{kept:?}");
        h.run(&["restore", "vol", "--undo"]).ok();
        assert_eq!(ids(&url), all);
        assert_eq!(h.run(&["show", "vol", "--json"]).json()["status"], "running");
        // --prune deletes what was kept, and says what.
        let out = h.run(&["restore", "vol", "--prune"]).stderr();
        assert_eq!(out.matches("deleted ").count(), 2, "{out}");
        assert!(kept_dirs(&h, &id).is_empty());
    });
    sections.finish();
}

/// Whether the live data is the original (it has the table written after
/// the backup) or the restored one (it has not).
fn has_after(url: &str) -> bool {
    let n: i64 = connect(url)
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'after_backup'",
            &[],
        )
        .unwrap()
        .get(0);
    n == 1
}

#[test]
fn in_place_restores_and_undos_killed_at_every_step_lose_nothing() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("killinplace");
    let (id, url, first) = with_rows(&h, "k", &[], 50);
    let label = first["backups"][0]["label"].as_str().unwrap().to_string();
    connect(&url)
        .batch_execute("CREATE TABLE after_backup (x int)")
        .unwrap();
    // (the step the process dies at, whether the restored data is live after
    // doctor --fix). Before the recovery ended the original comes back;
    // after it, the restored data stays.
    for (step, restored_live) in [
        ("set-aside", false),
        ("recovering", false),
        ("recovered", true),
    ] {
        let r = h.run_env(
            &["restore", "k", "--in-place", "--backup", &label],
            &[("DBAAS_CRASH_AT", step)],
        );
        assert_ne!(
            r.code(),
            0,
            "{step}: the process was not killed: {}",
            r.stderr()
        );
        h.run(&["doctor", "--fix"]);
        assert_eq!(
            h.run(&["show", "k", "--json"]).json()["status"],
            "running",
            "{step}"
        );
        assert_eq!(
            has_after(&url),
            !restored_live,
            "{step}: the wrong data is live"
        );
        if restored_live {
            // The original is kept, and comes back with --undo.
            let kept = kept_dirs(&h, &id);
            assert!(
                kept.iter().any(|k| k.join("PG_VERSION").is_file()
                    && k.to_string_lossy().contains("data.before-restore-")),
                "{kept:?}"
            );
            h.run(&["restore", "k", "--undo"]).ok();
            assert!(
                has_after(&url),
                "{step}: --undo did not bring the original back"
            );
        }
        eprintln!("killed at {step}: kept {:?}", kept_dirs(&h, &id));
    }
    // Now restored data live, the original kept; an undo killed at each of
    // its steps leaves one live and the other kept.
    h.run(&["restore", "k", "--in-place", "--backup", &label])
        .ok();
    assert!(!has_after(&url));
    for step in ["out", "in"] {
        let before = has_after(&url);
        let r = h.run_env(&["restore", "k", "--undo"], &[("DBAAS_CRASH_AT", step)]);
        assert_ne!(r.code(), 0, "undo {step}: not killed: {}", r.stderr());
        h.run(&["doctor", "--fix"]);
        assert_eq!(
            h.run(&["show", "k", "--json"]).json()["status"],
            "running",
            "undo {step}"
        );
        let now = has_after(&url);
        eprintln!("undo killed at {step}: the original live before {before}, after {now}");
        // Whichever is live, the other is kept: one more undo swaps them.
        h.run(&["restore", "k", "--undo"]).ok();
        assert_eq!(
            has_after(&url),
            !now,
            "undo {step}: the other one was not kept"
        );
    }
}
