//! Monitoring benchmark (prints figures; not a timed test):
//! - the latest sample from a 1 GiB metrics.json against the same read from a
//!   1 MiB file (median of repeated reads; the tailer seeks from the end);
//! - a range query over 24 h of 10-s samples (8,640 lines) streamed through
//!   the tailer, with the process's peak RSS before and after.
//!
//! Run: cargo bench --bench metrics   (scripts/bench-monitoring.sh adds the
//! agent's CPU overhead and the server's RSS during an HTTP range query).

use dbaas::metrics::tail;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A realistic agent line (about 1.4 KB) for time `t`.
fn line(t: SystemTime, n: u64) -> String {
    let ts = tail::format_ts(t);
    format!(
        "{{\"v\": 1, \"ts\": \"{ts}\", \"up\": true, \"error\": null, \"locks\": {{\"by_mode\": {{\"ExclusiveLock\": 1, \"AccessShareLock\": 21}}, \"waiting\": 0, \"blocked_backends\": 0}}, \
\"tables\": [{{\"name\": \"pgbench_accounts\", \"schema\": \"public\", \"dead_rows\": 0, \"idx_scans\": {n}, \"live_rows\": 100000, \"seq_scans\": 2, \"size_bytes\": 15728640}}, \
{{\"name\": \"pgbench_tellers\", \"schema\": \"public\", \"dead_rows\": 0, \"idx_scans\": 0, \"live_rows\": 10, \"seq_scans\": 1, \"size_bytes\": 57344}}, \
{{\"name\": \"pgbench_branches\", \"schema\": \"public\", \"dead_rows\": 0, \"idx_scans\": 0, \"live_rows\": 1, \"seq_scans\": 5, \"size_bytes\": 57344}}, \
{{\"name\": \"pgbench_history\", \"schema\": \"public\", \"dead_rows\": 0, \"idx_scans\": 0, \"live_rows\": 0, \"seq_scans\": 0, \"size_bytes\": 0}}], \
\"counters\": {{\"blks_hit\": {}, \"blks_read\": 3670, \"deadlocks\": 0, \"temp_bytes\": 2031616, \"tup_deleted\": 175, \"tup_fetched\": 2553937, \"tup_updated\": 775, \
\"xact_commit\": {n}, \"tup_inserted\": 117890, \"tup_returned\": 2780040, \"xact_rollback\": 0}}, \"instance\": \"db_bench000\", \
\"connections\": {{\"max\": 100, \"idle\": 0, \"total\": 0, \"active\": 0, \"waiting\": 0, \"idle_in_transaction\": 0}}, \"db_size_bytes\": 23543143, \
\"scrape_seconds\": 0.025, \"postmaster_start\": \"2026-11-28T09:46:37.818Z\", \"longest_query_seconds\": 0, \"longest_transaction_seconds\": 0}}\n",
        n * 3
    )
}

/// Writes samples 10 s apart until the file reaches `bytes` or `lines`;
/// returns the lines written.
fn fill(path: &Path, bytes: u64, lines: u64, start: SystemTime) -> u64 {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let (mut written, mut n) = (0u64, 0u64);
    while written < bytes && n < lines {
        let l = line(start + Duration::from_secs(10 * n), n);
        w.write_all(l.as_bytes()).unwrap();
        written += l.len() as u64;
        n += 1;
    }
    w.flush().unwrap();
    n
}

fn median_latest(dir: &Path, reps: usize) -> Duration {
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let got = tail::last(dir, 1);
            let e = t.elapsed();
            assert_eq!(got.len(), 1);
            e
        })
        .collect();
    times.sort();
    times[reps / 2]
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let root = std::env::temp_dir().join(format!("dbaas-bench-metrics-{}", std::process::id()));
    let (small, big, day) = (root.join("small"), root.join("big"), root.join("day"));
    for d in [&small, &big, &day] {
        std::fs::create_dir_all(d).unwrap();
    }
    let start = UNIX_EPOCH + Duration::from_secs(1_790_000_000);

    // The 24 h range first, while the process is still small.
    let day_lines = fill(&day.join(tail::FILE), u64::MAX, 8640, start);
    let day_bytes = std::fs::metadata(day.join(tail::FILE)).unwrap().len();
    let hwm_before = status_kb("VmHWM:");
    let t = Instant::now();
    let (mut count, mut bytes) = (0usize, 0usize);
    let sent = tail::range(
        &day,
        &tail::format_ts(start),
        &tail::format_ts(start + Duration::from_secs(86_390)),
        |l| {
            count += 1;
            bytes += l.len();
            Ok(())
        },
    )
    .unwrap();
    let range_time = t.elapsed();
    let hwm_after = status_kb("VmHWM:");
    assert_eq!(sent, count);

    let small_lines = fill(&small.join(tail::FILE), 1 << 20, u64::MAX, start);
    let big_lines = fill(&big.join(tail::FILE), 1 << 30, u64::MAX, start);
    // Warm both (page cache), then measure.
    median_latest(&small, 10);
    median_latest(&big, 10);
    let reps = 501;
    let m_small = median_latest(&small, reps);
    let m_big = median_latest(&big, reps);

    println!("monitoring tailer, {reps} reads each (median):");
    println!(
        "  latest sample, 1 MiB file ({small_lines} lines): {:>8.1} µs   (baseline)",
        m_small.as_secs_f64() * 1e6
    );
    println!(
        "  latest sample, 1 GiB file ({big_lines} lines): {:>8.1} µs   ratio {:.2} (target: median <= 1 ms, ratio <= 2)",
        m_big.as_secs_f64() * 1e6,
        m_big.as_secs_f64() / m_small.as_secs_f64()
    );
    println!(
        "  24 h range ({day_lines} samples of 10 s, file {:.1} MiB): {count} samples, {:.1} MiB streamed in {:.0} ms; \
         peak RSS {:.1} MiB before, {:.1} MiB after (+{:.1} MiB)",
        day_bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0,
        range_time.as_secs_f64() * 1e3,
        hwm_before as f64 / 1024.0,
        hwm_after as f64 / 1024.0,
        (hwm_after.saturating_sub(hwm_before)) as f64 / 1024.0
    );
    std::fs::remove_dir_all(&root).unwrap();
}
