//! One line of metrics.json (schema version 2, written by agent/sample.sql
//! and agent.sh), as a type: what the summary, the Prometheus exposition,
//! `doctor`, `top` and `metrics` read. The API's raw sample routes pass the
//! lines through untouched; fields a later version adds are ignored here.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Numbers are read as f64 whatever PostgreSQL printed (counters are sums,
/// numeric): a sample is never dropped for an integer written as 1.0.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Sample {
    pub ts: String,
    /// Schema version: 2 adds `archiver`.
    pub v: u32,
    pub instance: Option<String>,
    /// Whether this sample reached the database.
    pub up: bool,
    pub scrape_seconds: Option<f64>,
    /// Why the sample did not reach the database.
    pub error: Option<String>,
    pub postmaster_start: Option<String>,
    pub connections: Option<Connections>,
    /// Cumulative counters of pg_stat_database, by column name.
    pub counters: BTreeMap<String, f64>,
    pub db_size_bytes: Option<f64>,
    pub locks: Option<Locks>,
    pub longest_query_seconds: Option<f64>,
    pub longest_transaction_seconds: Option<f64>,
    pub tables: Vec<TableSample>,
    /// pg_stat_archiver (schema 2).
    pub archiver: Option<Archiver>,
}

/// The WAL archiver's state, from pg_stat_archiver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Archiver {
    /// archive_mode: on or off.
    pub mode: Option<String>,
    pub archived_count: Option<f64>,
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<String>,
    pub failed_count: Option<f64>,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<String>,
}

impl Archiver {
    /// Archiving is on.
    pub fn on(&self) -> bool {
        matches!(self.mode.as_deref(), Some("on" | "always"))
    }

    /// The last attempt failed: its failure is newer than its last success.
    pub fn failing(&self) -> bool {
        match (&self.last_failed_time, &self.last_archived_time) {
            (Some(f), Some(a)) => f > a,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// Seconds since the last segment was archived, at `now` (Unix time).
    pub fn age_seconds(&self, now: f64) -> Option<f64> {
        let t = super::summary::epoch(self.last_archived_time.as_deref()?)?;
        Some((now - t).max(0.0))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Connections {
    pub total: Option<f64>,
    pub active: Option<f64>,
    pub idle: Option<f64>,
    pub idle_in_transaction: Option<f64>,
    pub waiting: Option<f64>,
    pub max: Option<f64>,
}

impl Connections {
    /// The count of one state by its label in the exposition.
    pub fn by_state(&self) -> [(&'static str, Option<f64>); 4] {
        [
            ("active", self.active),
            ("idle", self.idle),
            ("idle_in_transaction", self.idle_in_transaction),
            ("waiting", self.waiting),
        ]
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Locks {
    pub by_mode: BTreeMap<String, f64>,
    pub waiting: Option<f64>,
    pub blocked_backends: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TableSample {
    pub schema: String,
    pub name: String,
    pub size_bytes: Option<f64>,
    pub live_rows: Option<f64>,
    pub dead_rows: Option<f64>,
    pub seq_scans: Option<f64>,
    pub idx_scans: Option<f64>,
}

impl Sample {
    /// A raw line as read by tail.rs; None when it is not a sample.
    pub fn from_value(v: serde_json::Value) -> Option<Sample> {
        serde_json::from_value(v).ok()
    }

    pub fn counter(&self, name: &str) -> f64 {
        self.counters.get(name).copied().unwrap_or(0.0)
    }

    /// Seconds since this sample was taken.
    pub fn age_seconds(&self) -> Option<f64> {
        let t = super::summary::epoch(&self.ts)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(((now - t).max(0.0) * 1000.0).round() / 1000.0)
    }

    pub fn total_connections(&self) -> Option<u64> {
        self.connections
            .as_ref()
            .and_then(|c| c.total)
            .map(|n| n as u64)
    }

    pub fn max_connections(&self) -> Option<u64> {
        self.connections
            .as_ref()
            .and_then(|c| c.max)
            .map(|n| n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_up_and_a_down_line() {
        let up: Sample = serde_json::from_str(
            r#"{"ts":"2026-01-01T00:00:00.000Z","v":1,"up":true,"connections":{"total":3,"max":100},
               "counters":{"xact_commit":10,"blks_hit":2.0},"tables":[{"schema":"public","name":"t","size_bytes":8192}],
               "locks":{"by_mode":{"AccessShareLock":2}},"error":null,"later":"ignored"}"#,
        )
        .unwrap();
        assert!(up.up && up.error.is_none());
        assert_eq!(
            (up.total_connections(), up.max_connections()),
            (Some(3), Some(100))
        );
        assert_eq!(
            (up.counter("xact_commit"), up.counter("blks_hit")),
            (10.0, 2.0)
        );
        assert_eq!(up.counter("missing"), 0.0);
        assert_eq!(up.tables[0].size_bytes, Some(8192.0));
        let down: Sample = serde_json::from_str(
            r#"{"ts":"2026-01-01T00:00:10.000Z","v":1,"up":false,"scrape_seconds":0.5,"error":"refused"}"#,
        )
        .unwrap();
        assert!(!down.up);
        assert_eq!(down.error.as_deref(), Some("refused"));
        assert!(down.connections.is_none() && down.tables.is_empty());
    }

    #[test]
    fn the_archiver_fails_while_its_last_failure_is_newer() {
        let s: Sample = serde_json::from_str(
            r#"{"ts":"2026-01-01T00:00:00.000Z","v":2,"up":true,"archiver":{"mode":"on","archived_count":3,
               "last_archived_time":"2026-01-01T00:00:00.000Z","failed_count":2,"last_failed_time":"2026-01-01T00:01:00.000Z"}}"#,
        )
        .unwrap();
        let a = s.archiver.unwrap();
        assert!(a.on() && a.failing());
        let now = super::super::summary::epoch("2026-01-01T00:02:00.000Z").unwrap();
        assert_eq!(a.age_seconds(now), Some(120.0));
        let ok = Archiver {
            last_failed_time: Some("2026-01-01T00:00:00.000Z".into()),
            last_archived_time: Some("2026-01-01T00:01:00.000Z".into()),
            ..Default::default()
        };
        assert!(!ok.failing() && !ok.on());
    }
}
