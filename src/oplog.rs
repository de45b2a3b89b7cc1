//! logs/provisioning.log: one line per operation step (time, instance, step,
//! duration, outcome). Values logged here never include secrets.

use crate::home::Home;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub fn record(home: &Home, id: &str, step: &str, took: Duration, outcome: &str) {
    log::info!("{id} {step} {}ms {outcome}", took.as_millis());
    let dir = home.logs_dir();
    let line = format!(
        "{} {id} {step} {}ms {outcome}\n",
        now_rfc3339(),
        took.as_millis()
    );
    // Logging must never fail an operation: errors are reported and dropped.
    let res = std::fs::create_dir_all(&dir).and_then(|_| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("provisioning.log"))?
            .write_all(line.as_bytes())
    });
    if let Err(e) = res {
        log::warn!(
            "cannot write {}: {e}",
            dir.join("provisioning.log").display()
        );
    }
}

/// `record` from async code: the append runs on a blocking thread.
pub async fn record_async(home: &Home, id: &str, step: &str, took: Duration, outcome: &str) {
    let (home, id, step, outcome) = (
        home.clone(),
        id.to_string(),
        step.to_string(),
        outcome.to_string(),
    );
    let done = tokio::task::spawn_blocking(move || record(&home, &id, &step, took, &outcome)).await;
    if let Err(e) = done {
        log::warn!("writing the provisioning log failed: {e}");
    }
}

/// Times one step and records it with its outcome.
pub async fn step<T, E: std::fmt::Display>(
    home: &Home,
    id: &str,
    name: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = Instant::now();
    let res = fut.await;
    let outcome = match &res {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("error: {}", e.to_string().lines().next().unwrap_or("")),
    };
    record_async(home, id, name, start.elapsed(), &outcome).await;
    res
}
