//! Time series for charts: the samples of a window (the last hour, the last
//! day) folded into a fixed number of buckets, read once and never held
//! whole (a day at one sample a second is 86 400 lines). A bucket without a
//! sample is a gap (null); one whose samples all failed to reach the
//! database is a gap too, and is marked `down`, so a chart can tell "the
//! agent had nothing" from "the database was down".

use super::summary::{epoch, reset_between};
use super::Sample;
use serde::Serialize;

/// Buckets in a window, at most: enough for a chart as wide as a laptop
/// screen, small enough to send every few seconds.
pub const MAX_POINTS: u64 = 240;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Series {
    /// Unix time of the window's start and end, in seconds.
    pub start: f64,
    pub end: f64,
    /// Seconds each point covers.
    pub step_seconds: f64,
    /// Each point's time: the end of its bucket (Unix seconds).
    pub times: Vec<f64>,
    /// Samples in each bucket (0: a gap, the agent had no sample).
    pub samples: Vec<u32>,
    /// The bucket had samples, and none reached the database.
    pub down: Vec<bool>,
    pub tps: Vec<Option<f64>>,
    pub rows_written_per_second: Vec<Option<f64>>,
    /// Share of block reads served from shared buffers in the bucket, 0-1.
    pub cache_hit_ratio: Vec<Option<f64>>,
    pub connections_active: Vec<Option<f64>>,
    pub connections_idle: Vec<Option<f64>>,
    pub connections_idle_in_transaction: Vec<Option<f64>>,
    pub connections_waiting: Vec<Option<f64>>,
    pub db_size_bytes: Vec<Option<f64>>,
    pub locks_waiting: Vec<Option<f64>>,
    /// The longest transaction seen in the bucket, in seconds.
    pub longest_transaction_seconds: Vec<Option<f64>>,
}

/// The step for a window: the window over MAX_POINTS, but never under two
/// sample intervals (a shorter step would show a gap between every two
/// samples).
pub fn step_for(window_seconds: f64, interval_seconds: u32) -> f64 {
    (window_seconds / MAX_POINTS as f64).max(2.0 * f64::from(interval_seconds.max(1)))
}

#[derive(Default, Clone)]
struct Acc {
    samples: u32,
    ups: u32,
    tps: Mean,
    rows: Mean,
    hit: f64,
    read: f64,
    active: Mean,
    idle: Mean,
    idle_tx: Mean,
    waiting: Mean,
    size: Mean,
    locks: Mean,
    longest: Option<f64>,
}

#[derive(Default, Clone, Copy)]
struct Mean(f64, u32);

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.0 += v;
            self.1 += 1;
        }
    }
    fn get(self) -> Option<f64> {
        (self.1 > 0).then(|| round(self.0 / f64::from(self.1)))
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Folds samples, oldest first, into buckets of `step` seconds ending at
/// `end`.
pub struct Builder {
    start: f64,
    step: f64,
    buckets: Vec<Acc>,
    prev_up: Option<(f64, Sample)>,
}

impl Builder {
    pub fn new(end: f64, window_seconds: f64, step: f64) -> Builder {
        let n = (window_seconds / step).ceil().max(1.0) as usize;
        Builder {
            start: end - step * n as f64,
            step,
            buckets: vec![Acc::default(); n],
            prev_up: None,
        }
    }

    pub fn add(&mut self, s: Sample) {
        let Some(t) = epoch(&s.ts) else { return };
        let i = ((t - self.start) / self.step).floor();
        let in_window = i >= 0.0 && (i as usize) < self.buckets.len();
        if !s.up {
            if in_window {
                self.buckets[i as usize].samples += 1;
            }
            return;
        }
        if in_window {
            let b = &mut self.buckets[i as usize];
            b.samples += 1;
            b.ups += 1;
            if let Some(c) = &s.connections {
                b.active.add(c.active);
                b.idle.add(c.idle);
                b.idle_tx.add(c.idle_in_transaction);
                b.waiting.add(c.waiting);
            }
            b.size.add(s.db_size_bytes);
            b.locks.add(s.locks.as_ref().and_then(|l| l.waiting));
            if let Some(l) = s.longest_transaction_seconds {
                b.longest = Some(b.longest.map_or(l, |m: f64| m.max(l)));
            }
            // Rates need the previous sample of the same server life.
            if let Some((pt, p)) = &self.prev_up {
                let dt = t - pt;
                if dt > 0.0 && !reset_between(p, &s) {
                    let d = |c: &str| s.counter(c) - p.counter(c);
                    b.tps
                        .add(Some((d("xact_commit") + d("xact_rollback")) / dt));
                    b.rows.add(Some(
                        (d("tup_inserted") + d("tup_updated") + d("tup_deleted")) / dt,
                    ));
                    b.hit += d("blks_hit");
                    b.read += d("blks_read");
                }
            }
        }
        self.prev_up = Some((t, s));
    }

    pub fn finish(self) -> Series {
        let n = self.buckets.len();
        let mut out = Series {
            start: self.start,
            end: self.start + self.step * n as f64,
            step_seconds: self.step,
            times: Vec::with_capacity(n),
            samples: Vec::with_capacity(n),
            down: Vec::with_capacity(n),
            tps: Vec::with_capacity(n),
            rows_written_per_second: Vec::with_capacity(n),
            cache_hit_ratio: Vec::with_capacity(n),
            connections_active: Vec::with_capacity(n),
            connections_idle: Vec::with_capacity(n),
            connections_idle_in_transaction: Vec::with_capacity(n),
            connections_waiting: Vec::with_capacity(n),
            db_size_bytes: Vec::with_capacity(n),
            locks_waiting: Vec::with_capacity(n),
            longest_transaction_seconds: Vec::with_capacity(n),
        };
        for (i, b) in self.buckets.into_iter().enumerate() {
            out.times
                .push(round(self.start + self.step * (i + 1) as f64));
            out.samples.push(b.samples);
            out.down.push(b.samples > 0 && b.ups == 0);
            out.tps.push(b.tps.get());
            out.rows_written_per_second.push(b.rows.get());
            let blocks = b.hit + b.read;
            out.cache_hit_ratio
                .push((blocks > 0.0).then(|| round(b.hit / blocks)));
            out.connections_active.push(b.active.get());
            out.connections_idle.push(b.idle.get());
            out.connections_idle_in_transaction.push(b.idle_tx.get());
            out.connections_waiting.push(b.waiting.get());
            out.db_size_bytes.push(b.size.get());
            out.locks_waiting.push(b.locks.get());
            out.longest_transaction_seconds.push(b.longest.map(round));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, up: bool, commits: f64) -> Sample {
        let ts = super::super::tail::format_ts(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t),
        );
        let v = serde_json::json!({
            "ts": ts, "v": 2, "up": up, "postmaster_start": "p1",
            "connections": {"total": 3, "active": 1, "idle": 2, "max": 100},
            "counters": {"xact_commit": commits, "blks_hit": commits * 9.0, "blks_read": commits},
            "db_size_bytes": 1000,
            "locks": {"waiting": 0},
            "longest_transaction_seconds": 0.5
        });
        Sample::from_value(v).unwrap()
    }

    #[test]
    fn buckets_rates_gaps_and_down() {
        // 10 buckets of 10 s ending at t=1100.
        let mut b = Builder::new(1100.0, 100.0, 10.0);
        // An older sample primes the rate of the first bucket.
        b.add(sample(995, true, 0.0));
        for t in [1001, 1011, 1021] {
            b.add(sample(t, true, (t - 995) as f64 * 2.0));
        }
        // 1030-1050: nothing (agent had no sample); 1050-1060: down.
        b.add(sample(1052, false, 0.0));
        b.add(sample(1065, true, 1000.0));
        let s = b.finish();
        assert_eq!(s.times.len(), 10);
        assert_eq!((s.start, s.end), (1000.0, 1100.0));
        assert_eq!(s.tps[0], Some(2.0));
        assert_eq!(s.tps[2], Some(2.0));
        assert_eq!(s.tps[3], None);
        assert_eq!(s.connections_idle[3], None, "a gap");
        assert!(!s.down[3]);
        assert_eq!(s.samples[3], 0);
        assert!(s.down[5], "samples, none up");
        assert_eq!(s.connections_active[5], None);
        // The sample after the outage rates against the last one up.
        assert_eq!(s.tps[6], Some(round((1000.0 - 52.0) / 44.0)));
        assert_eq!(s.cache_hit_ratio[0], Some(0.9));
        assert_eq!(s.connections_idle[0], Some(2.0));
        assert_eq!(s.longest_transaction_seconds[1], Some(0.5));
    }

    #[test]
    fn a_restart_gives_no_rate() {
        let mut b = Builder::new(100.0, 100.0, 10.0);
        b.add(sample(5, true, 100.0));
        let mut later = sample(15, true, 50.0);
        later.postmaster_start = Some("p2".into());
        b.add(later);
        let s = b.finish();
        assert_eq!(s.tps[1], None);
        assert_eq!(s.connections_active[1], Some(1.0));
    }

    #[test]
    fn steps() {
        assert_eq!(step_for(3600.0, 10), 20.0);
        assert_eq!(step_for(3600.0, 1), 15.0);
        assert_eq!(step_for(86400.0, 10), 360.0);
        assert_eq!(step_for(3600.0, 0), 15.0);
    }
}
