//! Backups (issue 12) on real instances: pgBackRest in the sidecar, WAL
//! archived by the server, restores in one-off containers. Point-in-time
//! recovery to the row, a clone under write load, a lost data volume, a
//! corrupted repository caught by verification, retention, and restoring a
//! destroyed instance's backups.

mod common;
use common::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The instance's backups once its first backup has been taken and
/// verified (the sidecar takes it right after the first start).
fn first_backup(h: &TestHome, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = h.run(&["backups", name, "--json"]).json();
        let done = v["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty() && b[0]["verified"].is_boolean());
        if done {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no verified first backup of {name} after 180 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An instance with the table `w` holding `rows` rows, once its first
/// backup is verified: (id, url, the backups as `backups --json` lists them).
fn with_rows(h: &TestHome, name: &str, extra: &[&str], rows: i64) -> (String, String, Value) {
    let (id, url) = h.create(name, extra);
    connect(&url)
        .execute(
            "CREATE TABLE w (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
            &[],
        )
        .unwrap();
    connect(&url)
        .execute(
            "INSERT INTO w (at) SELECT now() FROM generate_series(1, $1::bigint)",
            &[&rows],
        )
        .unwrap();
    let backups = first_backup(h, name);
    (id, url, backups)
}

fn ids(url: &str) -> Vec<i64> {
    connect(url)
        .query("SELECT id FROM w ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A writer: one row per 100 ms, each committed on its own, until stopped.
/// At row `mark` it reads the server's clock once, after that row's commit
/// and before the next insert: every row before is committed before it,
/// every row after, after it.
struct Writer {
    stop: Arc<AtomicBool>,
    /// Rows committed so far.
    written: Arc<AtomicI64>,
    handle: Option<std::thread::JoinHandle<(i64, Option<String>)>>,
}

impl Writer {
    fn start(url: &str, mark: i64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicI64::new(0));
        let (s, w, url) = (stop.clone(), written.clone(), url.to_string());
        let handle = std::thread::spawn(move || {
            let mut c = connect(&url);
            let (mut n, mut t) = (0, None);
            while !s.load(Ordering::Relaxed) {
                c.execute("INSERT INTO w (at) VALUES (clock_timestamp())", &[])
                    .unwrap();
                n += 1;
                w.store(n, Ordering::Relaxed);
                if n == mark {
                    let r = c
                        .query_one(
                            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                            &[],
                        )
                        .unwrap();
                    t = Some(r.get(0));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (n, t)
        });
        Writer {
            stop,
            written,
            handle: Some(handle),
        }
    }

    /// Until `n` rows are committed (a loaded machine writes slower than
    /// one per 100 ms).
    fn wait_for(&self, n: i64) {
        wait_until(
            &format!("{n} rows written"),
            Duration::from_secs(180),
            || self.written.load(Ordering::Relaxed) >= n,
        );
    }

    fn finish(mut self) -> (i64, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("the writer failed")
    }
}

#[test]
fn point_in_time_recovery_to_the_row_and_a_clone_under_write_load() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("pitr");
    let (_, src, _) = with_rows(&h, "src", &[], 0);
    let mut sections = Sections::default();

    // Rows 1..=30 committed before T, the rest after.
    let writer = Writer::start(&src, 30);
    writer.wait_for(41);
    let (written, t) = writer.finish();
    let t = t.expect("the writer reached its mark");
    assert!(written > 40, "only {written} rows written");

    sections.run("restore --to at a time: exactly the rows before it", || {
        let v = h
            .run(&["restore", "src", "--to", "pitr", "--time", &t, "--json"])
            .json();
        let url = v["url"].as_str().unwrap();
        assert_eq!(ids(url), (1..=30).collect::<Vec<i64>>(), "restored to {t}");
        // Its own passwords: the source's do not open it.
        let src_pw = src.split(':').nth(2).unwrap().split('@').next().unwrap();
        let foreign = url.replacen(
            url.split(':').nth(2).unwrap().split('@').next().unwrap(),
            src_pw,
            1,
        );
        assert!(postgres::Client::connect(&foreign, postgres::NoTls).is_err());
        assert_ne!(
            v["instance"]["port"],
            h.run(&["show", "src", "--json"]).json()["port"]
        );
    });

    sections.run("clone while the source takes writes", || {
        let before = ids(&src).len() as i64;
        let writer = Writer::start(&src, 0);
        std::thread::sleep(Duration::from_millis(500));
        let url = h.run(&["clone", "src", "copy", "--json"]).json()["url"]
            .as_str()
            .unwrap()
            .to_string();
        std::thread::sleep(Duration::from_millis(500));
        let (more, _) = writer.finish();
        let got = ids(&url);
        let n = got.len() as i64;
        assert_eq!(
            got,
            (1..=n).collect::<Vec<i64>>(),
            "a prefix of the source's rows"
        );
        assert!(
            n >= before + 5,
            "the clone has {n} rows, {before} before the writes began"
        );
        assert!(
            n <= before + more,
            "the clone cannot have rows the source never wrote"
        );
        assert_eq!(
            ids(&src).len() as i64,
            before + more,
            "the source kept every write"
        );
    });

    sections.run("bad targets change nothing", || {
        let out = h
            .run(&[
                "restore",
                "src",
                "--to",
                "early",
                "--time",
                "2001-01-01T00:00:00Z",
            ])
            .fails_with(2);
        assert!(
            out.contains("outside the recoverable window") && out.contains(" to "),
            "{out}"
        );
        let out = h.run(&["restore", "src", "--to", "copy"]).fails_with(4);
        assert!(out.contains("already exists"), "{out}");
        let out = h
            .run(&["restore", "src", "--to", "x", "--time", "noon"])
            .fails_with(2);
        assert!(out.contains("RFC 3339"), "{out}");
        let out = h
            .run(&[
                "restore",
                "src",
                "--to",
                "x",
                "--backup",
                "20260101-000000F",
            ])
            .fails_with(3);
        assert!(out.contains("backups src"), "{out}");
        let out = h
            .run(&["restore", "src", "--to", "x", "--in-place"])
            .fails_with(2);
        assert!(out.contains("exactly one of"), "{out}");
        let names: Vec<String> = h
            .run(&["list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    });
    sections.finish();
}

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
    assert!(url.contains("clerk:") && url.ends_with("/shop"), "{url}");
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

#[test]
fn the_api_lists_takes_restores_and_clones() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("backupapi");
    let (id, url, _) = with_rows(&h, "web", &[], 100);
    let s = Server::start(&h, &[]);
    let mut sections = Sections::default();

    sections.run("take one, list, get by label", || {
        let r = s.post(
            "/instances/web/backups",
            &serde_json::json!({"type": "full"}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let b = r.json();
        assert_eq!(b["verified"], true, "{b}");
        assert!(b["verification"]["indexes_checked"].as_u64().unwrap() > 0);
        let label = b["label"].as_str().unwrap();
        let list = s.get("/instances/web/backups").json();
        assert_eq!(list["backups"].as_array().unwrap().len(), 2, "{list}");
        assert!(list["window"]["earliest"].is_string() && list["window"]["latest"].is_string());
        assert_eq!(
            s.get(&format!("/instances/{id}/backups/{label}")).json()["label"],
            label
        );
        assert_eq!(s.get("/instances/web/backups/20200101-000000F").status, 404);
        assert_eq!(s.get("/instances/web/backups/nonsense").status, 400);
        let r = s.post(
            "/instances/web/backups",
            &serde_json::json!({"type": "weekly"}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(s.get("/backups").json().as_array().unwrap().len(), 1);
    });

    sections.run(
        "clone with wait=false: 202, then running with the rows",
        || {
            let r = s.post(
                "/instances/web/clone?wait=false",
                &serde_json::json!({"name": "twin"}),
            );
            assert_eq!(r.status, 202, "{}", r.text());
            let twin_url = r.json()["url"].as_str().unwrap().to_string();
            let deadline = Instant::now() + Duration::from_secs(120);
            while s.get("/instances/twin").json()["status"] != "running" {
                assert!(
                    Instant::now() < deadline,
                    "{}",
                    s.get("/instances/twin").text()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            assert_eq!(ids(&twin_url).len(), 100);
        },
    );

    sections.run("restore: errors named, to a time, and in place", || {
        let r = s.post(
            "/instances/web/restore",
            &serde_json::json!({"to": "old", "time": "2001-01-01T00:00:00Z"}),
        );
        assert_eq!(r.status, 400);
        assert!(
            r.text().contains("outside the recoverable window"),
            "{}",
            r.text()
        );
        let r = s.post("/instances/web/restore", &serde_json::json!({"to": "twin"}));
        assert_eq!(r.status, 409, "{}", r.text());
        let r = s.post(
            "/instances/web/restore",
            &serde_json::json!({"to": "x", "in_place": true}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        let r = s.post(
            "/instances/web/restore",
            &serde_json::json!({"in_place": true}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["kept_aside"]
            .as_str()
            .unwrap()
            .contains("/data.before-restore-"));
        assert_eq!(ids(&url).len(), 100);
    });

    sections.run("the summary, show and /metrics carry the backups", || {
        let sum = s.get("/monitoring/web/metrics/summary").json();
        assert!(sum["backups"]["last_verified"].is_string(), "{sum}");
        let show = s.get("/instances/web").json();
        assert_eq!(show["backups"]["schedule"], "24h");
        assert!(
            show["backup_health"]["concerns"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{show}"
        );
        // The archiver's families come from the agent's samples: wait for
        // one that has them (a loaded machine may not have sampled yet).
        let deadline = Instant::now() + Duration::from_secs(120);
        let m = loop {
            let m = s.get("/metrics").text();
            if m.contains("# TYPE dbaas_wal_archive_failures_total counter")
                || Instant::now() > deadline
            {
                break m;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        for family in [
            "dbaas_backup_last_success_timestamp_seconds",
            "dbaas_backup_last_verified_timestamp_seconds",
            "dbaas_backup_size_bytes",
            "dbaas_backup_concerns",
        ] {
            assert!(
                m.contains(&format!("{family}{{dbaas_instance=\"{id}\"}}")),
                "{family} missing"
            );
        }
        assert!(
            m.contains("# TYPE dbaas_wal_archive_failures_total counter"),
            "archiver families"
        );
    });
    sections.finish();
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

/// The S3-compatible server of these tests: moto behind stunnel (image
/// dbaas/s3test, built by scripts/setup-host.sh), as docs/backups.md tells an
/// operator to run one: on a network of its own, its port published on the
/// gateway of an S3 network this test creates with container-to-container
/// traffic off, so that the instances joined to that network reach the
/// server and not each other. Removed on drop.
struct S3Server {
    network: String,
    container: String,
    gateway: String,
}

impl S3Server {
    fn start(tag: &str) -> S3Server {
        let suffix = format!(
            "{}-{tag}-{:x}",
            std::process::id(),
            Instant::now().elapsed().subsec_nanos()
        );
        let (network, container) = (
            format!("dbaas-test-s3-{suffix}"),
            format!("dbaas-test-s3-{suffix}"),
        );
        docker_ok(&[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "--label",
            "dbaas.test=1",
            &network,
        ]);
        let gateway = docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            &network,
        ])
        .trim()
        .to_string();
        let s = S3Server {
            network,
            container,
            gateway,
        };
        docker_ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            &s.container,
            "--label",
            "dbaas.test=1",
            "-p",
            &format!("{}:443:443", s.gateway),
            "dbaas/s3test",
            "dbaas-test",
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker_ok(&["logs", &s.container]).contains("s3-server: bucket") {
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    }

    /// A settings file (0600) for this server.
    fn settings(&self, h: &TestHome) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = h.root.join("s3.conf");
        // The server's certificate is self-signed, hence verify_tls = n.
        std::fs::write(
            &path,
            format!(
                "endpoint = {}\nbucket = dbaas-test\nregion = us-east-1\nuri_style = path\n\
                 verify_tls = n\naccess_key = AKIATEST\nsecret_key = TopSecretKey123\nnetwork = {}\n",
                self.gateway, self.network
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

/// The instance's backups once its first S3 backup is verified.
fn first_s3_backup(h: &TestHome, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let v = h.run(&["backups", name, "--json"]).json();
        if v["s3"]["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty() && b[0]["verified"].is_boolean())
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no verified S3 backup of {name} after 240 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_s3_repository_gets_every_backup_encrypted_and_restores_when_the_local_one_is_lost() {
    if !docker_required() {
        return;
    }
    // Declared first, so dropped after the instances that use its network.
    let s3 = S3Server::start("repo");
    let h = TestHome::new("s3");
    let settings = s3.settings(&h);

    // Bad settings change nothing.
    use std::os::unix::fs::PermissionsExt;
    let loose = h.root.join("loose.conf");
    std::fs::copy(&settings, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = h
        .run(&["create", "nope", "--s3", loose.to_str().unwrap()])
        .fails_with(2);
    assert!(err.contains("chmod 600"), "{err}");
    let err = h
        .run(&["create", "nope", "--s3", &settings, "--no-backups"])
        .fails_with(2);
    assert!(err.contains("no backups"), "{err}");
    // A network whose containers reach each other is refused.
    let open_net = format!("{}-open", s3.network);
    docker_ok(&["network", "create", "--label", "dbaas.test=1", &open_net]);
    let open_settings = h.root.join("open.conf");
    std::fs::write(
        &open_settings,
        std::fs::read_to_string(&settings)
            .unwrap()
            .replace(&s3.network, &open_net),
    )
    .unwrap();
    std::fs::set_permissions(&open_settings, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = h
        .run(&["create", "nope", "--s3", open_settings.to_str().unwrap()])
        .fails_with(2);
    docker_ok(&["network", "rm", &open_net]);
    assert!(err.contains("enable_icc=false"), "{err}");
    assert!(h.registry_text().is_none_or(|t| !t.contains("nope")));
    assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());

    let (id, _, _) = with_rows(&h, "s3src", &["--s3", &settings], 300);
    // On the S3 network, the containers reach the S3 server (on the
    // gateway) and not each other: the backup sidecar cannot open the db
    // container's port there.
    let db_ip = docker_ok(&[
        "inspect",
        "-f",
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            s3.network
        ),
        &format!("{id}-db-1"),
    ])
    .trim()
    .to_string();
    assert!(!db_ip.is_empty());
    let probe = std::process::Command::new("docker")
        .args([
            "exec",
            &format!("{id}-backup-1"),
            "timeout",
            "3",
            "bash",
            "-c",
        ])
        .arg(format!("echo > /dev/tcp/{db_ip}/5432"))
        .output()
        .unwrap();
    assert!(
        !probe.status.success(),
        "a container on the S3 network reached another's port 5432"
    );
    let dir = h.root.join("instances").join(&id);
    let conf = std::fs::read_to_string(dir.join("pgbackrest.conf")).unwrap();
    assert!(
        conf.contains("repo2-type=s3") && conf.contains("repo2-cipher-type=aes-256-cbc"),
        "{conf}"
    );
    assert!(conf.contains(&format!("repo2-path=/dbaas/{id}")), "{conf}");
    // The keys are in 0600 files only: not in the generated files people
    // read, not in the registry, not in any output.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("secrets/pgbackrest_s3.conf")), 0o600);
    // Beside the repository the host keeps them where no container
    // reaches (config/kept/<id>/), not in backups/<id>/ (mounted into the
    // containers).
    assert_eq!(
        mode(&h.root.join("config/kept").join(&id).join("s3.json")),
        0o600
    );
    assert!(!h.root.join("backups").join(&id).join("s3.json").exists());
    assert!(!h
        .root
        .join("backups")
        .join(&id)
        .join("instance.json")
        .exists());
    for text in [
        conf,
        std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap(),
        h.registry_text().unwrap(),
        h.run(&["show", "s3src", "--json"]).ok(),
    ] {
        assert!(!text.contains("TopSecretKey123"), "a key leaked: {text}");
    }
    let shown = h.run(&["show", "s3src", "--json"]).json();
    assert_eq!(shown["s3"]["endpoint"], s3.gateway.as_str(), "{shown}");

    let v = first_s3_backup(&h, "s3src");
    assert_eq!(v["s3"]["backups"][0]["verified"], true, "{v}");
    let listed = h.run(&["backups", "s3src"]).ok();
    assert!(listed.contains("in the S3 repository"), "{listed}");
    // The bucket holds the repository encrypted.
    let backup = format!("{id}-backup-1");
    let info = docker_ok(&[
        "exec",
        "-u",
        "postgres",
        &backup,
        "pgbackrest",
        &format!("--stanza={id}"),
        "--repo=2",
        "info",
        "--output=json",
    ]);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info[0]["repo"][0]["cipher"], "aes-256-cbc", "{info}");

    // Rows written after the backups reach S3 through WAL archiving; then
    // the local repository is lost.
    let url = h.run(&["url", "s3src"]).ok().trim().to_string();
    connect(&url)
        .execute(
            "INSERT INTO w (at) SELECT now() FROM generate_series(1, 50)",
            &[],
        )
        .unwrap();
    std::fs::remove_dir_all(h.root.join("backups").join(&id).join("repo")).unwrap();
    let err = h
        .run(&["restore", "s3src", "--to", "nope", "--from", "gcs"])
        .fails_with(2);
    assert!(err.contains("local or s3"), "{err}");

    let r = h
        .run(&[
            "restore", "s3src", "--to", "s3dst", "--from", "s3", "--json",
        ])
        .json();
    let restored = r["url"].as_str().unwrap();
    assert_eq!(
        ids(restored).len(),
        350,
        "every committed row, from S3 alone"
    );
    // The restored instance backs up to S3 too, under its own path.
    let new_id = r["instance"]["id"].as_str().unwrap();
    let conf = std::fs::read_to_string(
        h.root
            .join("instances")
            .join(new_id)
            .join("pgbackrest.conf"),
    )
    .unwrap();
    assert!(
        conf.contains(&format!("repo2-path=/dbaas/{new_id}")),
        "{conf}"
    );

    // destroy --delete-backups deletes the S3 copy too.
    let in_bucket = || {
        docker_ok(&[
            "exec",
            "-u",
            "postgres",
            &backup,
            "pgbackrest",
            &format!("--stanza={id}"),
            "--repo=2",
            "--repo2-path=/dbaas",
            "repo-ls",
        ])
    };
    // The restored instance's sidecar creates its stanza once it runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !in_bucket().contains(new_id) {
        assert!(
            Instant::now() < deadline,
            "no stanza of {new_id} in S3: {}",
            in_bucket()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    h.run(&["destroy", "s3dst", "--yes", "--delete-backups"])
        .ok();
    let listed = in_bucket();
    assert!(!listed.contains(new_id) && listed.contains(&id), "{listed}");

    // An instance without S3 refuses an S3 restore, naming why.
    h.create("plain", &["--no-s3"]);
    let err = h
        .run(&["restore", "plain", "--to", "nope", "--from", "s3"])
        .fails_with(4);
    assert!(err.contains("no S3 repository"), "{err}");
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
