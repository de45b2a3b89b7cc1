//! Values derived from consecutive samples: rates need two samples of the
//! same server life. A counter reset (the postmaster start time changed, or a
//! counter fell) gives no rate rather than a negative one.

use super::Sample;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Whether the latest sample reached the database.
    pub up: bool,
    /// `ts` of the latest sample.
    pub last_sample: Option<String>,
    /// Seconds between the two samples the rates come from.
    pub window_seconds: Option<f64>,
    /// Transactions (commits and rollbacks) per second.
    pub tps: Option<f64>,
    /// Share of block reads served from shared buffers, 0-1.
    pub cache_hit_ratio: Option<f64>,
    /// Share of transactions rolled back, 0-1.
    pub rollback_ratio: Option<f64>,
    /// Rows inserted, updated and deleted per second.
    pub rows_written_per_second: Option<f64>,
    pub connections: Option<u64>,
    pub max_connections: Option<u64>,
    /// connections / max_connections, 0-1.
    pub connection_saturation: Option<f64>,
    pub db_size_bytes: Option<u64>,
    /// The two samples straddle a restart or a statistics reset: no rates.
    pub counter_reset: bool,
    /// The latest sample's error, when it has one.
    pub error: Option<String>,
    /// Seconds since the last WAL segment was archived (archiving on).
    pub wal_archive_age_seconds: Option<f64>,
    /// Failed archive attempts since the server started.
    pub wal_archive_failures: Option<u64>,
    /// The last archive attempt failed (WAL piles up in pg_wal until it
    /// works again; the database keeps serving).
    pub wal_archive_failing: bool,
    /// The instance's backups (filled in by the API; none when they are off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backups: Option<crate::backups::BackupHealth>,
}

const COUNTERS: &[&str] = &[
    "xact_commit",
    "xact_rollback",
    "blks_hit",
    "blks_read",
    "tup_returned",
    "tup_fetched",
    "tup_inserted",
    "tup_updated",
    "tup_deleted",
    "deadlocks",
    "temp_bytes",
];

/// Seconds since the Unix epoch of an RFC 3339 time.
pub fn epoch(ts: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(ts)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| (num / den * 10_000.0).round() / 10_000.0)
}

fn rate(delta: f64, secs: f64) -> f64 {
    (delta / secs * 100.0).round() / 100.0
}

/// Whether `b` cannot be compared with the earlier `a`.
pub fn reset_between(a: &Sample, b: &Sample) -> bool {
    a.postmaster_start != b.postmaster_start || COUNTERS.iter().any(|c| b.counter(c) < a.counter(c))
}

/// Summarizes samples (oldest first): gauges from the latest, rates from the
/// latest two that reached the database.
pub fn summarize(samples: &[Sample]) -> Summary {
    let latest = samples.last();
    let mut s = Summary {
        up: latest.is_some_and(|l| l.up),
        last_sample: latest.map(|l| l.ts.clone()),
        window_seconds: None,
        tps: None,
        cache_hit_ratio: None,
        rollback_ratio: None,
        rows_written_per_second: None,
        connections: None,
        max_connections: None,
        connection_saturation: None,
        db_size_bytes: None,
        counter_reset: false,
        error: latest.and_then(|l| l.error.clone()),
        wal_archive_age_seconds: None,
        wal_archive_failures: None,
        wal_archive_failing: false,
        backups: None,
    };
    let ups: Vec<&Sample> = samples.iter().filter(|v| v.up).collect();
    let Some(b) = ups.last() else { return s };
    if let Some(a) = b.archiver.as_ref().filter(|a| a.on()) {
        s.wal_archive_age_seconds = epoch(&b.ts).and_then(|now| a.age_seconds(now));
        s.wal_archive_failures = a.failed_count.map(|n| n as u64);
        s.wal_archive_failing = a.failing();
    }
    s.connections = b.total_connections();
    s.max_connections = b.max_connections();
    if let (Some(c), Some(m)) = (s.connections, s.max_connections) {
        s.connection_saturation = ratio(c as f64, m as f64);
    }
    s.db_size_bytes = ups
        .iter()
        .rev()
        .find_map(|v| v.db_size_bytes.map(|n| n as u64));
    // Without an earlier sample, the ratios over the server's life.
    s.cache_hit_ratio = ratio(
        b.counter("blks_hit"),
        b.counter("blks_hit") + b.counter("blks_read"),
    );
    let Some(a) = ups.len().checked_sub(2).map(|i| ups[i]) else {
        return s;
    };
    if reset_between(a, b) {
        s.counter_reset = true;
        return s;
    }
    let (Some(ta), Some(tb)) = (epoch(&a.ts), epoch(&b.ts)) else {
        return s;
    };
    let secs = tb - ta;
    if secs <= 0.0 {
        return s;
    }
    let d = |c: &str| b.counter(c) - a.counter(c);
    s.window_seconds = Some((secs * 1000.0).round() / 1000.0);
    let xacts = d("xact_commit") + d("xact_rollback");
    s.tps = Some(rate(xacts, secs));
    s.rollback_ratio = ratio(d("xact_rollback"), xacts).or(Some(0.0));
    s.rows_written_per_second = Some(rate(
        d("tup_inserted") + d("tup_updated") + d("tup_deleted"),
        secs,
    ));
    if let Some(r) = ratio(d("blks_hit"), d("blks_hit") + d("blks_read")) {
        s.cache_hit_ratio = Some(r);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(ts: &str, start: &str, commit: u64, hit: u64, read: u64, ins: u64) -> Sample {
        sample_of(
            json!({"ts": ts, "v": 1, "up": true, "postmaster_start": start,
               "connections": {"total": 5, "max": 100},
               "counters": {"xact_commit": commit, "xact_rollback": 0, "blks_hit": hit, "blks_read": read,
                            "tup_inserted": ins, "tup_updated": 0, "tup_deleted": 0},
               "db_size_bytes": 1000}),
        )
    }

    fn sample_of(v: serde_json::Value) -> Sample {
        Sample::from_value(v).unwrap()
    }

    #[test]
    fn rates_come_from_the_last_two_samples() {
        let s = summarize(&[
            sample("2026-01-01T00:00:00Z", "x", 100, 900, 100, 0),
            sample("2026-01-01T00:00:10Z", "x", 600, 1800, 100, 2000),
        ]);
        assert_eq!(s.tps, Some(50.0));
        assert_eq!(s.rows_written_per_second, Some(200.0));
        assert_eq!(s.cache_hit_ratio, Some(1.0));
        assert_eq!(s.rollback_ratio, Some(0.0));
        assert_eq!(s.connection_saturation, Some(0.05));
        assert_eq!(s.window_seconds, Some(10.0));
        assert!(s.up && !s.counter_reset);
    }

    #[test]
    fn resets_give_no_negative_rate() {
        // Restart: the postmaster start changed.
        let s = summarize(&[
            sample("2026-01-01T00:00:00Z", "x", 100, 900, 100, 50),
            sample("2026-01-01T00:00:10Z", "y", 5, 10, 5, 0),
        ]);
        assert!(s.counter_reset && s.tps.is_none());
        // A counter fell (pg_stat_reset) without a restart.
        let s = summarize(&[
            sample("2026-01-01T00:00:00Z", "x", 100, 900, 100, 50),
            sample("2026-01-01T00:00:10Z", "x", 150, 10, 5, 60),
        ]);
        assert!(s.counter_reset && s.tps.is_none());
        // Down samples are skipped for rates; the latest says down.
        let down = sample_of(
            json!({"ts": "2026-01-01T00:00:20Z", "v": 1, "up": false, "error": "refused"}),
        );
        let s = summarize(&[
            sample("2026-01-01T00:00:00Z", "x", 100, 900, 100, 0),
            sample("2026-01-01T00:00:10Z", "x", 200, 1000, 100, 0),
            down,
        ]);
        assert!(!s.up);
        assert_eq!((s.tps, s.error.as_deref()), (Some(10.0), Some("refused")));
        assert!(summarize(&[]).last_sample.is_none());
    }
}
