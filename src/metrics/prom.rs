//! The Prometheus text exposition format (0.0.4): one HELP and one TYPE per
//! family, each family's samples together, label values escaped, counters
//! ending in `_total`, base units, no timestamps. Instances are labelled
//! `dbaas_instance` (Prometheus owns `instance`).

use super::sample::{Connections, Sample, TableSample};
use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One point of a family: name suffix (`_bucket`...), labels, value.
pub type Point = (String, Vec<(String, String)>, f64);

pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    /// counter, gauge or histogram
    pub kind: &'static str,
    pub samples: Vec<Point>,
}

impl Family {
    pub fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: vec![],
        }
    }

    /// A sample of this family; `suffix` is for histograms (`_bucket`...).
    pub fn add(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.samples.push((
            suffix.to_string(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        ));
    }
}

pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (suffix, labels, v) in &f.samples {
            out.push_str(f.name);
            out.push_str(suffix);
            if !labels.is_empty() {
                out.push('{');
                let parts: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                out.push_str(&parts.join(","));
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(*v));
        }
    }
    out
}

/// The counters of pg_stat_database: sample key, family, help.
const COUNTERS: &[(&str, &str, &str)] = &[
    (
        "xact_commit",
        "dbaas_transactions_committed_total",
        "Transactions committed",
    ),
    (
        "xact_rollback",
        "dbaas_transactions_rolled_back_total",
        "Transactions rolled back",
    ),
    (
        "blks_hit",
        "dbaas_blocks_hit_total",
        "Block reads served from shared buffers",
    ),
    (
        "blks_read",
        "dbaas_blocks_read_total",
        "Blocks read from disk or the OS cache",
    ),
    (
        "tup_returned",
        "dbaas_rows_returned_total",
        "Rows returned by scans",
    ),
    (
        "tup_fetched",
        "dbaas_rows_fetched_total",
        "Rows fetched by index scans",
    ),
    ("tup_inserted", "dbaas_rows_inserted_total", "Rows inserted"),
    ("tup_updated", "dbaas_rows_updated_total", "Rows updated"),
    ("tup_deleted", "dbaas_rows_deleted_total", "Rows deleted"),
    ("deadlocks", "dbaas_deadlocks_total", "Deadlocks detected"),
    (
        "temp_bytes",
        "dbaas_temp_bytes_total",
        "Bytes written to temporary files",
    ),
];

type TableValue = fn(&TableSample) -> Option<f64>;

/// Per-table families: name, type, help, value.
const TABLES: &[(&str, &str, &str, TableValue)] = &[
    (
        "dbaas_table_size_bytes",
        "gauge",
        "Total size of a table (with indexes and TOAST)",
        |t| t.size_bytes,
    ),
    (
        "dbaas_table_live_rows",
        "gauge",
        "Estimated live rows of a table",
        |t| t.live_rows,
    ),
    (
        "dbaas_table_dead_rows",
        "gauge",
        "Estimated dead rows of a table",
        |t| t.dead_rows,
    ),
    (
        "dbaas_table_seq_scans_total",
        "counter",
        "Sequential scans of a table",
        |t| t.seq_scans,
    ),
    (
        "dbaas_table_idx_scans_total",
        "counter",
        "Index scans of a table",
        |t| t.idx_scans,
    ),
];

/// The gauges of one instance, in exposition order: name, help, value.
type Gauge = (&'static str, &'static str, fn(&Sample) -> Option<f64>);

/// Those that come before the counters...
const HEAD_GAUGES: &[Gauge] = &[
    (
        "dbaas_scrape_duration_seconds",
        "How long the agent's latest sample took",
        |s| s.scrape_seconds,
    ),
    (
        "dbaas_postmaster_start_time_seconds",
        "When the PostgreSQL server started (Unix time)",
        |s| {
            s.postmaster_start
                .as_deref()
                .and_then(super::summary::epoch)
        },
    ),
];

/// ...and those that come after them.
const TAIL_GAUGES: &[Gauge] = &[
    (
        "dbaas_database_size_bytes",
        "Size of the app database",
        |s| s.db_size_bytes,
    ),
    ("dbaas_locks_waiting", "Locks not yet granted", |s| {
        s.locks.as_ref().and_then(|l| l.waiting)
    }),
    (
        "dbaas_blocked_backends",
        "Backends waiting for another's lock",
        |s| s.locks.as_ref().and_then(|l| l.blocked_backends),
    ),
    (
        "dbaas_longest_query_seconds",
        "Runtime of the longest running query",
        |s| s.longest_query_seconds,
    ),
    (
        "dbaas_longest_transaction_seconds",
        "Age of the oldest open transaction",
        |s| s.longest_transaction_seconds,
    ),
];

/// Families for the latest sample of each instance: (id, sample, age in
/// seconds). A sample that did not reach the database gives only `up`, the
/// age and the scrape's duration.
pub fn instance_families(latest: &[(String, Sample, f64)]) -> Vec<Family> {
    let mut up = Family::new(
        "dbaas_up",
        "gauge",
        "1 when the latest agent sample reached the database",
    );
    let mut age = Family::new(
        "dbaas_sample_age_seconds",
        "gauge",
        "Age of the latest agent sample",
    );
    let gauges = |list: &[Gauge]| -> Vec<Family> {
        list.iter()
            .map(|(n, h, _)| Family::new(n, "gauge", h))
            .collect()
    };
    let (mut head, mut tail) = (gauges(HEAD_GAUGES), gauges(TAIL_GAUGES));
    let mut conns = Family::new(
        "dbaas_connections",
        "gauge",
        "Client connections by state (the agent's own excluded)",
    );
    let mut max = Family::new("dbaas_connections_max", "gauge", "max_connections");
    let mut counters: Vec<Family> = COUNTERS
        .iter()
        .map(|(_, n, h)| Family::new(n, "counter", h))
        .collect();
    let mut locks = Family::new("dbaas_locks", "gauge", "Locks held or awaited, by mode");
    let mut tables: Vec<Family> = TABLES
        .iter()
        .map(|(n, t, h, _)| Family::new(n, t, h))
        .collect();
    for (id, s, sample_age) in latest {
        let l = [("dbaas_instance", id.as_str())];
        up.add("", &l, if s.up { 1.0 } else { 0.0 });
        age.add("", &l, *sample_age);
        let add = |fams: &mut [Family], list: &[Gauge]| {
            for (fam, (_, _, value)) in fams.iter_mut().zip(list) {
                if let Some(n) = value(s) {
                    fam.add("", &l, n);
                }
            }
        };
        if !s.up {
            // The scrape's duration is known even when it failed.
            add(&mut head[..1], HEAD_GAUGES);
            continue;
        }
        add(&mut head, HEAD_GAUGES);
        if let Some(c) = &s.connections {
            add_connections(&mut conns, &mut max, id, c);
        }
        for ((key, _, _), fam) in COUNTERS.iter().zip(counters.iter_mut()) {
            if let Some(n) = s.counters.get(*key) {
                fam.add("", &l, *n);
            }
        }
        add(&mut tail[..1], TAIL_GAUGES);
        for (mode, n) in s.locks.iter().flat_map(|l| &l.by_mode) {
            locks.add("", &[("dbaas_instance", id), ("mode", mode)], *n);
        }
        add(&mut tail[1..], &TAIL_GAUGES[1..]);
        add_tables(&mut tables, id, &s.tables);
    }
    let mut out = vec![up, age];
    out.append(&mut head);
    out.extend(archiver_families(latest));
    out.extend([conns, max]);
    out.append(&mut counters);
    let mut rest = tail.into_iter();
    out.extend(rest.next());
    out.push(locks);
    out.extend(rest);
    out.append(&mut tables);
    out
}

/// pg_stat_archiver of the instances that archive.
fn archiver_families(latest: &[(String, Sample, f64)]) -> [Family; 2] {
    let mut age = Family::new(
        "dbaas_wal_archive_age_seconds",
        "gauge",
        "Seconds since the last WAL segment was archived (grows on an idle instance: a segment is switched only after writes)",
    );
    let mut failures = Family::new(
        "dbaas_wal_archive_failures_total",
        "counter",
        "Failed attempts to archive a WAL segment since the server started",
    );
    for (id, s, _) in latest.iter().filter(|(_, s, _)| s.up) {
        let Some(a) = s.archiver.as_ref().filter(|a| a.on()) else {
            continue;
        };
        let l = [("dbaas_instance", id.as_str())];
        if let Some(n) = super::summary::epoch(&s.ts).and_then(|now| a.age_seconds(now)) {
            age.add("", &l, n);
        }
        if let Some(n) = a.failed_count {
            failures.add("", &l, n);
        }
    }
    [age, failures]
}

/// The backups of each instance that has them.
pub fn backup_families(health: &[(String, crate::backups::BackupHealth)]) -> Vec<Family> {
    let mut success = Family::new(
        "dbaas_backup_last_success_timestamp_seconds",
        "gauge",
        "When the newest backup finished (Unix time)",
    );
    let mut verified = Family::new(
        "dbaas_backup_last_verified_timestamp_seconds",
        "gauge",
        "When the newest backup that passed its restore verification finished (Unix time)",
    );
    let mut size = Family::new(
        "dbaas_backup_size_bytes",
        "gauge",
        "Size of the database in the newest backup",
    );
    let mut concerns = Family::new(
        "dbaas_backup_concerns",
        "gauge",
        "Problems doctor reports about an instance's backups (0 when all is well)",
    );
    for (id, h) in health {
        let l = [("dbaas_instance", id.as_str())];
        let epoch = |t: &Option<String>| t.as_deref().and_then(super::summary::epoch);
        if let Some(t) = epoch(&h.last_success) {
            success.add("", &l, t);
        }
        if let Some(t) = epoch(&h.last_verified) {
            verified.add("", &l, t);
        }
        if let Some(n) = h.size_bytes {
            size.add("", &l, n as f64);
        }
        concerns.add("", &l, h.concerns.len() as f64);
    }
    vec![success, verified, size, concerns]
}

fn add_connections(conns: &mut Family, max: &mut Family, id: &str, c: &Connections) {
    for (state, n) in c.by_state() {
        if let Some(n) = n {
            conns.add("", &[("dbaas_instance", id), ("state", state)], n);
        }
    }
    if let Some(n) = c.max {
        max.add("", &[("dbaas_instance", id)], n);
    }
}

fn add_tables(fams: &mut [Family], id: &str, tables: &[TableSample]) {
    for t in tables {
        let l = [
            ("dbaas_instance", id),
            ("schema", t.schema.as_str()),
            ("table", t.name.as_str()),
        ];
        for (fam, (_, _, _, value)) in fams.iter_mut().zip(TABLES) {
            if let Some(n) = value(t) {
                fam.add("", &l, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_families_with_escaped_labels() {
        let mut f = Family::new("dbaas_x_total", "counter", "X");
        f.add("", &[("a", "q\"b\\c\nd")], 3.0);
        f.add("", &[("a", "z")], 0.5);
        let empty = Family::new("dbaas_empty", "gauge", "nothing");
        assert_eq!(
            render(&[f, empty]),
            "# HELP dbaas_x_total X\n# TYPE dbaas_x_total counter\ndbaas_x_total{a=\"q\\\"b\\\\c\\nd\"} 3\ndbaas_x_total{a=\"z\"} 0.5\n"
        );
    }

    #[test]
    fn instance_samples_become_labelled_series() {
        let s = json!({"ts": "2026-01-01T00:00:00.000Z", "up": true, "postmaster_start": "2026-01-01T00:00:00.000Z",
            "connections": {"active": 1, "idle": 2, "idle_in_transaction": 0, "waiting": 0, "max": 100},
            "counters": {"xact_commit": 10}, "locks": {"by_mode": {"AccessShareLock": 3}, "waiting": 0, "blocked_backends": 0},
            "tables": [{"schema": "public", "name": "t", "size_bytes": 8192, "live_rows": 1, "dead_rows": 0, "seq_scans": 1, "idx_scans": 0}]});
        let s = Sample::from_value(s).unwrap();
        let text = render(&instance_families(&[("db_1".into(), s, 2.0)]));
        assert!(text.contains("dbaas_up{dbaas_instance=\"db_1\"} 1\n"));
        assert!(text.contains("dbaas_transactions_committed_total{dbaas_instance=\"db_1\"} 10\n"));
        assert!(text.contains(
            "dbaas_table_size_bytes{dbaas_instance=\"db_1\",schema=\"public\",table=\"t\"} 8192\n"
        ));
        assert!(!text.contains(" instance="));
        assert_eq!(text.matches("# TYPE dbaas_up ").count(), 1);
    }
}
