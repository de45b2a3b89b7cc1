//! /monitoring/{id}/...: the agent's samples (latest, or a time range
//! streamed from the rotated files), a summary of rates, the agent's state,
//! logs and restart; and /metrics for Prometheus.

use super::instances::find;
use super::reply::{self, ErrorBody, Reply};
use super::state::AppState;
use super::Request;
use crate::error::Error;
use crate::metrics::{self, prom, summary::Summary, tail};
use crate::ops::serial::Pool;
use crate::ops::{self, AgentStatus};
use crate::registry::{Instance, State};
use std::sync::Arc;

#[utoipa::path(get, path = "/monitoring/{id}/metrics", tag = "monitoring",
    params(("id" = String, Path, description = "Instance id or name"),
        ("last" = Option<u32>, Query, description = "the latest N samples (default 1, at most 10000)"),
        ("since" = Option<String>, Query, description = "RFC 3339 time, or a duration ago such as 15m; streams every sample in the range, across rotated files"),
        ("until" = Option<String>, Query, description = "RFC 3339 time, or a duration ago (default now)")),
    responses((status = 200, description = "Samples, oldest first (see docs/monitoring.md for the line schema)", body = [Object]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn samples(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let inst = find(state, id)?;
    let dir = metrics::dir_of(&state.home, &inst.id);
    let (since, until) = (req.query_param("since"), req.query_param("until"));
    if since.is_none() && until.is_none() {
        let last = match req.query_param("last").map(|v| v.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) => ops::check_last(n)?,
            // Not a number at all: the same error as one out of bounds.
            Some(Err(_)) => ops::check_last(0)?,
        };
        let got = metrics::read_files(move || tail::last(&dir, last)).await?;
        return Ok(reply::json(200, &got));
    }
    let bound = |name: &str, v: Option<String>, default: &str| {
        match v {
        None => Ok(default.to_string()),
        Some(v) => tail::parse_time(&v).ok_or_else(|| {
            Error::invalid(
                name,
                format!("'{v}' is not an RFC 3339 time (2026-01-02T03:04:05Z) or a duration such as 15m"),
            )
        }),
    }
    };
    let since = bound("since", since, "0000")?;
    let until = bound("until", until, "9999")?;
    Ok(stream_range(dir, since, until))
}

/// Streams `[line,line,...]` in chunks from a blocking reader: memory stays
/// at a chunk or two whatever the range.
fn stream_range(dir: std::path::PathBuf, since: String, until: String) -> Reply {
    let (mut sender, body) = warp::hyper::Body::channel();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(128 * 1024);
        chunk.push(b'[');
        let mut first = true;
        let res = tail::range(&dir, &since, &until, |line| {
            if !first {
                chunk.push(b',');
            }
            first = false;
            chunk.extend_from_slice(line);
            if chunk.len() >= 64 * 1024 {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(128 * 1024));
                tx.blocking_send(full.into()).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away")
                })?;
            }
            Ok(())
        });
        if let Err(e) = res {
            log::info!("metrics range stopped: {e}");
            return;
        }
        chunk.push(b']');
        let _ = tx.blocking_send(chunk.into());
    });
    tokio::spawn(async move {
        while let Some(c) = rx.recv().await {
            if sender.send_data(c).await.is_err() {
                break;
            }
        }
    });
    warp::http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .expect("valid response")
}

#[utoipa::path(get, path = "/monitoring/{id}/metrics/summary", tag = "monitoring",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, description = "Rates from the latest two samples, gauges from the latest", body = Summary),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn summary(state: &Arc<AppState>, id: &str) -> Result<Reply, Error> {
    let inst = find(state, id)?;
    let dir = metrics::dir_of(&state.home, &inst.id);
    let home = state.home.clone();
    let summary = metrics::read_files(move || {
        let mut s = metrics::summary::summarize(&tail::last_samples(&dir, 30));
        s.backups = ops::backup::protection::health(&home, &inst);
        s
    })
    .await?;
    Ok(reply::json(200, &summary))
}

/// The longest window a series covers.
const MAX_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

#[utoipa::path(get, path = "/monitoring/{id}/metrics/series", tag = "monitoring",
    params(("id" = String, Path, description = "Instance id or name"),
        ("window" = Option<String>, Query, description = "how far back: a duration such as 1h (default) or 24h, at most 7d")),
    responses((status = 200, description = "The window in at most 240 points: rates and gauges per point, null where the agent had no sample or the database was down (`down` says which)", body = metrics::series::Series),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn series(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let inst = find(state, id)?;
    let raw = req.query_param("window").unwrap_or_else(|| "1h".into());
    let window = humantime::parse_duration(&raw)
        .ok()
        .filter(|w| w.as_secs() >= 60 && *w <= MAX_WINDOW)
        .ok_or_else(|| {
            Error::invalid(
                "window",
                format!("'{raw}' is not a duration from 1m to 7d, such as 1h or 24h"),
            )
        })?;
    let dir = metrics::dir_of(&state.home, &inst.id);
    let interval = inst.metrics_interval;
    let series = metrics::read_files(move || {
        let now = std::time::SystemTime::now();
        let end = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let w = window.as_secs_f64();
        let step = metrics::series::step_for(w, interval);
        let mut b = metrics::series::Builder::new(end, w, step);
        // Two steps before the window: the first point's rate needs the
        // sample before it.
        let since = now
            .checked_sub(window + std::time::Duration::from_secs_f64(step * 2.0))
            .map(tail::format_ts)
            .unwrap_or_else(|| "0000".into());
        let res = tail::range(&dir, &since, "9999", |line| {
            if let Some(s) = tail::parse(line).and_then(metrics::Sample::from_value) {
                b.add(s);
            }
            Ok(())
        });
        res.map(|_| b.finish())
    })
    .await?
    .map_err(|e| Error::io("reading the metrics files", e))?;
    Ok(reply::json(200, &series))
}

/// One instance's row of the summaries.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct InstanceSummary {
    pub id: String,
    pub name: String,
    /// The latest sample's age in seconds (none before the first).
    pub sample_age_seconds: Option<f64>,
    pub summary: Summary,
}

#[utoipa::path(get, path = "/monitoring/summaries", tag = "monitoring",
    responses((status = 200, description = "The summary of every instance, in one request (what the console's overview shows)", body = [InstanceSummary]),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn summaries(state: &Arc<AppState>) -> Result<Reply, Error> {
    Ok(reply::json(200, &all_summaries(state).await?))
}

/// Every instance's summary (the overview's figures), read concurrently
/// with nothing: one blocking task walks the files.
pub async fn all_summaries(state: &Arc<AppState>) -> Result<Vec<InstanceSummary>, Error> {
    let reg = state.registry()?;
    let insts: Vec<Instance> = reg.owned().cloned().collect();
    let home = state.home.clone();
    metrics::read_files(move || {
        insts
            .into_iter()
            .map(|i| {
                let samples = tail::last_samples(&metrics::dir_of(&home, &i.id), 2);
                let sample_age_seconds = samples.last().and_then(|s| s.age_seconds());
                let mut summary = metrics::summary::summarize(&samples);
                summary.backups = ops::backup::protection::health(&home, &i);
                InstanceSummary {
                    id: i.id,
                    name: i.name,
                    sample_age_seconds,
                    summary,
                }
            })
            .collect()
    })
    .await
}

/// The agent's container is read for this instance alone: the status
/// cache holds the db containers only.
async fn agent_status(state: &Arc<AppState>, inst: &Instance) -> Result<AgentStatus, Error> {
    let ps = ops::instance_containers(&state.home, &inst.id).await?;
    ops::agent_status(&state.home, inst, ps.get(&inst.id)).await
}

#[utoipa::path(get, path = "/monitoring/{id}/agent", tag = "monitoring",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, body = AgentStatus), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, description = "Docker unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn agent(state: &Arc<AppState>, id: &str) -> Result<Reply, Error> {
    let inst = find(state, id)?;
    Ok(reply::json(200, &agent_status(state, &inst).await?))
}

#[utoipa::path(get, path = "/monitoring/{id}/agent/logs", tag = "monitoring",
    params(("id" = String, Path, description = "Instance id or name"),
        ("tail" = Option<u32>, Query, description = "lines from the end (default 100, at most 10000)")),
    responses((status = 200, body = super::reply::LogLines), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "No agent container", body = ErrorBody),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn agent_logs(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let tail = reply::tail_param(req)?;
    let lines = ops::logs(&state.home, id, &ops::Service::Agent, tail).await?;
    Ok(reply::json(200, &reply::LogLines { lines }))
}

#[utoipa::path(post, path = "/monitoring/{id}/agent/restart", tag = "monitoring",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, description = "Restarted; the agent's state after it", body = AgentStatus),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "No agent container", body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn agent_restart(state: &Arc<AppState>, id: &str) -> Result<Reply, Error> {
    let inst = find(state, id)?;
    // Runs to its end whatever happens to this request, serialized with the
    // instance's lifecycle: a stop must not remove the container under it.
    let id = inst.id.clone();
    state
        .ops
        .run(&inst.id, Pool::Keep, move |home| async move {
            ops::restart_agent(&home, &id).await
        })
        .await?;
    Ok(reply::json(200, &agent_status(state, &inst).await?))
}

#[utoipa::path(get, path = "/metrics", tag = "monitoring",
    responses((status = 200, description = "Prometheus text format 0.0.4: the latest sample of every running instance (label dbaas_instance), instances by status, API requests and durations", content_type = "text/plain"),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn prometheus(state: &Arc<AppState>) -> Result<Reply, Error> {
    let reg = state.registry()?;
    let home = state.home.clone();
    let running: Vec<String> = reg
        .owned()
        .filter(|i| i.state == State::Running)
        .map(|i| i.id.clone())
        .collect();
    let with_backups: Vec<crate::registry::Instance> = reg
        .owned()
        .filter(|i| i.backups.is_some())
        .cloned()
        .collect();
    let with_tls: Vec<crate::registry::Instance> = reg.owned().filter(|i| i.tls).cloned().collect();
    let (latest, backups, tls) = metrics::read_files(move || {
        let latest = running
            .into_iter()
            .filter_map(|id| {
                let s = tail::last_samples(&metrics::dir_of(&home, &id), 1).pop()?;
                let age = s.age_seconds().unwrap_or(0.0);
                Some((id, s, age))
            })
            .collect::<Vec<_>>();
        let backups = with_backups
            .iter()
            .filter_map(|i| Some((i.id.clone(), ops::backup::protection::health(&home, i)?)))
            .collect::<Vec<_>>();
        let tls = with_tls
            .iter()
            .filter_map(|i| Some((i.id.clone(), ops::tls::expiry(&home, i)?)))
            .collect::<Vec<_>>();
        (latest, backups, tls)
    })
    .await?;
    let mut families = prom::instance_families(&latest);
    families.extend(prom::backup_families(&backups));
    let mut expiry = prom::Family::new(
        "dbaas_tls_cert_expiry_timestamp_seconds",
        "gauge",
        "When the instance's server certificate expires (Unix time)",
    );
    for (id, at) in &tls {
        expiry.add("", &[("dbaas_instance", id)], *at as f64);
    }
    families.push(expiry);
    let mut by_status = prom::Family::new(
        "dbaas_instances",
        "gauge",
        "Instances in the registry by live status",
    );
    // Docker down must not take the instance metrics with it.
    if let Ok(ps) = state.status().await {
        let mut counts = std::collections::BTreeMap::new();
        for v in crate::ops::views(&reg, &ps) {
            *counts.entry(v.status.as_str()).or_insert(0u64) += 1;
        }
        for (status, n) in counts {
            by_status.add("", &[("status", status)], n as f64);
        }
    }
    families.push(by_status);
    families.extend(state.requests.families());
    Ok(reply::bytes(
        warp::http::StatusCode::OK,
        prom::CONTENT_TYPE,
        prom::render(&families),
    ))
}
