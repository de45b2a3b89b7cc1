//! Backups (issue 12) on real instances: pgBackRest in the sidecar, WAL
//! archived by the server, restores in one-off containers. Point-in-time
//! recovery to the row, a clone under write load, a lost data volume, a
//! corrupted repository caught by verification, retention, and restoring a
//! destroyed instance's backups.

#[path = "../common/mod.rs"]
mod common;
use common::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod api;
mod in_place;
mod pitr;
mod policies;
mod s3;
mod verification;

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
