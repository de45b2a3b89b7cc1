//! What the benchmarks share: settings from the environment, medians, and
//! timing a command.
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dbaasctl");

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// How long a command that must succeed takes, its output dropped.
pub fn time_cmd(mut c: Command) -> Duration {
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let st = c.status().unwrap();
    let took = start.elapsed();
    assert!(st.success());
    took
}

/// Runs the command `cmd` makes of every item, `batch` at a time; panics
/// on a failure, with its standard error.
pub fn batched(items: &[String], batch: usize, cmd: impl Fn(&str) -> Command) {
    for chunk in items.chunks(batch) {
        let children: Vec<_> = chunk
            .iter()
            .map(|n| {
                cmd(n)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
