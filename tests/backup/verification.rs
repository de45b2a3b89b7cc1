//! Verification catches a corrupted backup, retention prunes, and a dead
//! repository shows while the database serves.

use super::*;

#[test]
fn verification_catches_a_corrupted_backup_and_retention_prunes() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("verify");
    let (id, _, first) = with_rows(&h, "ver", &["--backup-retention", "2"], 1000);
    assert_eq!(first["backups"][0]["verified"], true, "{first}");
    let repo = h.root.join("backups").join(&id).join("repo");
    let mut sections = Sections::default();

    sections.run(
        "retention keeps the last 2 full backups and the WAL they need",
        || {
            let oldest = first["backups"][0]["label"].as_str().unwrap().to_string();
            let b2 = h.run(&["backup", "ver"]).ok().trim().to_string();
            let b3 = h.run(&["backup", "ver"]).ok().trim().to_string();
            let v = h.run(&["backups", "ver", "--json"]).json();
            let labels: Vec<&str> = v["backups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["label"].as_str().unwrap())
                .collect();
            assert_eq!(labels, vec![b2.as_str(), b3.as_str()]);
            assert!(
                !repo.join("backup").join(&id).join(&oldest).exists(),
                "the oldest backup is expired"
            );
            // WAL before the oldest kept backup is gone; from its start on,
            // every segment is kept.
            let kept_from = v["backups"][0]["start_wal"].as_str().unwrap().to_string();
            let expired_from = first["backups"][0]["start_wal"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(expired_from < kept_from, "{expired_from} {kept_from}");
            let segments: Vec<String> = walk(&repo.join("archive"))
                .into_iter()
                .filter(|n| n.len() > 24 && n.as_bytes()[24] == b'-')
                .map(|n| n[..24].to_string())
                .collect();
            assert!(
                !segments.iter().any(|s| s < &kept_from),
                "WAL before {kept_from} is left: {segments:?}"
            );
            for b in v["backups"].as_array().unwrap() {
                let (a, z) = (
                    b["start_wal"].as_str().unwrap(),
                    b["stop_wal"].as_str().unwrap(),
                );
                assert!(
                    segments.iter().any(|s| s == a) && segments.iter().any(|s| s == z),
                    "{a}..{z} kept: {segments:?}"
                );
            }
            assert_eq!(v["backups"][1]["verified"], true);
        },
    );

    sections.run(
        "a corrupted file in the repository fails the verification, named",
        || {
            let label = h.run(&["backups", "ver", "--json"]).json()["backups"][1]["label"]
                .as_str()
                .unwrap()
                .to_string();
            // The biggest file of the backup: a table or index of the app data.
            let dir = repo.join("backup").join(&id).join(&label).join("pg_data");
            let victim = biggest_file(&dir);
            std::fs::write(&victim, b"not what pgBackRest wrote").unwrap();
            let out = h.run(&["backup", "verify", "ver", &label]);
            assert_eq!(out.code(), 1, "{}", out.stderr());
            assert!(
                out.stderr().contains(&label) && out.stderr().contains("failed its verification"),
                "{}",
                out.stderr()
            );
            let v = h.run(&["backups", "ver", "--json"]).json();
            let b = v["backups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["label"] == label.as_str())
                .unwrap()
                .clone();
            assert_eq!(b["verified"], false);
            assert!(
                b["verification"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("restore failed"),
                "{b}"
            );
            let doctor = h.run(&["doctor", "--json"]);
            assert!(
                doctor.stdout().contains(&label) && doctor.stdout().contains("verification"),
                "{}",
                doctor.stdout()
            );
        },
    );
    sections.finish();
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn biggest_file(dir: &std::path::Path) -> std::path::PathBuf {
    fn go(dir: &std::path::Path, best: &mut (u64, std::path::PathBuf)) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                go(&p, best);
            } else {
                let len = e.metadata().unwrap().len();
                if len > best.0 {
                    *best = (len, p);
                }
            }
        }
    }
    let mut best = (0, dir.to_path_buf());
    go(dir, &mut best);
    best.1
}

#[test]
fn a_dead_repository_shows_within_two_archive_timeouts_while_the_database_serves() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("deadrepo");
    let (id, url, _) = with_rows(&h, "arch", &["--metrics-interval", "2"], 0);
    // The repository refuses the server's writes (as a full or dead disk
    // would): archive-push fails.
    let archive = h
        .root
        .join("backups")
        .join(&id)
        .join("repo")
        .join("archive");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o000)).unwrap();
    let broken = Instant::now();
    let failing = |v: &Value| {
        v["backup_health"]["concerns"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c.as_str().unwrap().contains("WAL archiving fails"))
        })
    };
    let mut client = connect(&url);
    let seen = loop {
        // Writes go on, one per second; archive_timeout switches segments.
        client.execute("INSERT INTO w DEFAULT VALUES", &[]).unwrap();
        if failing(&h.run(&["show", "arch", "--json"]).json()) {
            break broken.elapsed();
        }
        assert!(
            broken.elapsed() < Duration::from_secs(120),
            "not flagged within 2 x archive_timeout"
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!(
        "figure: a dead repository flagged after {:.1} s (archive_timeout 60 s)",
        seen.as_secs_f64()
    );
    let doctor = h.run(&["doctor", "--json"]).stdout();
    assert!(doctor.contains("WAL archiving fails"), "{doctor}");
    let top = h.run(&["top", "--json"]).json();
    assert!(
        top[0]["backup_concerns"]
            .to_string()
            .contains("WAL archiving fails"),
        "{top}"
    );
    // The server serves on, and archiving recovers once the repository works.
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o750)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    while failing(&h.run(&["show", "arch", "--json"]).json()) {
        client.execute("INSERT INTO w DEFAULT VALUES", &[]).unwrap();
        assert!(Instant::now() < deadline, "archiving did not recover");
        std::thread::sleep(Duration::from_secs(1));
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM w", &[])
        .unwrap()
        .get(0);
    assert!(n > 10);
}
