//! Backups over HTTP: list and take them, restore (into a new instance, in
//! place, or undo), clone. The same `ops` calls as the CLI; long operations
//! answer 202 with `wait=false` and run to their end whatever happens to
//! the request.

use super::reply::{self, ErrorBody, Reply};
use super::state::AppState;
use super::Request;
use crate::backups::Backup;
use crate::error::Error;
use crate::ops;
use crate::ops::backup::restore::{FromRepo, InPlace, Target};
use crate::ops::backup::BackupList;
use crate::ops::serial::{joined, Pool};
use serde::Deserialize;
use std::sync::Arc;

/// Body of `POST /instances/{id}/backups` (optional).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// full (default), diff or incr.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Body of `POST /instances/{id}/restore`: exactly one of `to`, `in_place`
/// and `undo`; at most one of `time`, `lsn` and `backup` (none: latest).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// Name of a new instance to restore into (the source keeps running).
    pub to: Option<String>,
    /// Stop the instance, keep its data directory aside, recover, start.
    #[serde(default)]
    pub in_place: bool,
    /// Swap back the data directory an in-place restore kept aside.
    #[serde(default)]
    pub undo: bool,
    /// RFC 3339 time in UTC, such as 2026-11-29T01:02:03Z.
    pub time: Option<String>,
    /// A WAL position such as 0/3000060.
    pub lsn: Option<String>,
    /// A backup label: recover to the end of that backup.
    pub backup: Option<String>,
    /// The repository to restore from: "local" (default) or "s3".
    pub from: Option<String>,
    /// Swarm homes, into a new instance: the node to run it on. A restore
    /// from the local repository runs on the source's node; from S3, on
    /// this one (default: the node with the most free memory).
    pub node: Option<String>,
}

/// Body of `POST /instances/{id}/clone`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneBody {
    /// Name of the new instance.
    pub name: String,
    /// RFC 3339 time in UTC (default: the latest).
    pub time: Option<String>,
    /// The repository to clone from: "local" (default) or "s3".
    pub from: Option<String>,
    /// Swarm homes: the node to run the clone on (as for a restore).
    pub node: Option<String>,
}

#[utoipa::path(get, path = "/instances/{id}/backups", tag = "backups",
    params(("id" = String, Path, description = "Instance id or name, or a destroyed instance's id")),
    responses((status = 200, description = "Backups (oldest first) with their verification, and the recoverable window", body = BackupList),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(state: &Arc<AppState>, key: &str) -> Result<Reply, Error> {
    Ok(reply::json(
        200,
        &ops::backup::list(&state.home, key).await?,
    ))
}

#[utoipa::path(get, path = "/backups", tag = "backups",
    responses((status = 200, description = "The backups of every instance and of every destroyed one", body = Vec<BackupList>),
        (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_all(state: &Arc<AppState>) -> Result<Reply, Error> {
    Ok(reply::json(200, &ops::backup::list_all(&state.home).await?))
}

#[utoipa::path(get, path = "/instances/{id}/backups/{label}", tag = "backups",
    params(("id" = String, Path, description = "Instance id or name"),
        ("label" = String, Path, description = "Backup label, such as 20261129-002717F")),
    responses((status = 200, body = Backup), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(state: &Arc<AppState>, key: &str, label: &str) -> Result<Reply, Error> {
    Ok(reply::json(
        200,
        &ops::backup::get(&state.home, key, label).await?,
    ))
}

#[utoipa::path(post, path = "/instances/{id}/backups", tag = "backups", request_body = Option<BackupBody>,
    params(("id" = String, Path, description = "Instance id or name"),
        ("wait" = Option<bool>, Query, description = "wait for the backup and its verification (default true)")),
    responses((status = 201, description = "Taken, with its verification", body = Backup),
        (status = 202, description = "Started (wait=false): GET /instances/{id}/backups shows it when done", body = BackupList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Not running, backups are off, or a backup of the instance is already under way", body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn take(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let wait = req.flag("wait", true)?;
    let body: BackupBody = if req.body.is_empty() {
        BackupBody::default()
    } else {
        reply::json_body(&req.headers, &req.body, "backup request")?
    };
    let kind = body.kind.unwrap_or_else(|| "full".into());
    if !wait {
        ops::backup::take_in_background(&state.home, key, &kind).await?;
        let list = ops::backup::list(&state.home, key).await?;
        return Ok(reply::json(202, &list));
    }
    // Runs to its end whatever happens to this request.
    let (home, key) = (state.home.clone(), key.to_string());
    let task = tokio::spawn(async move { ops::backup::take(&home, &key, &kind).await });
    Ok(reply::json(201, &joined(task).await?))
}

#[utoipa::path(post, path = "/instances/{id}/restore", tag = "backups", request_body = RestoreBody,
    params(("id" = String, Path, description = "Instance id or name, or a destroyed instance's id"),
        ("wait" = Option<bool>, Query, description = "wait until the restored instance accepts connections (default true)")),
    responses((status = 201, description = "Restored into a new instance (to)", body = crate::ops::Created),
        (status = 200, description = "Restored in place, or undone", body = InPlace),
        (status = 202, description = "Accepted (wait=false): poll GET /instances/{id}", body = crate::ops::InstanceView),
        (status = 400, description = "Bad target, or a time outside the recoverable window (named)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The new name exists, no backups, or nothing to undo", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn restore(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let wait = req.flag("wait", true)?;
    let b: RestoreBody = reply::json_body(&req.headers, &req.body, "restore request")?;
    let target = Target::parse(b.time.as_deref(), b.lsn.as_deref(), b.backup.as_deref())?;
    let from = FromRepo::parse(b.from.as_deref())?;
    match (b.to, b.in_place, b.undo) {
        (Some(to), false, false) => {
            let key = key.to_string();
            let p = state
                .ops
                .provision(wait, to.clone(), move |home| async move {
                    ops::backup::restore::restore_begin(&home, &key, &to, target, from, b.node)
                        .await
                });
            super::instances::provisioned(p.await?)
        }
        (None, true, false) => in_place(state, key, wait, Some((target, from))).await,
        (None, false, true) if target == Target::Latest && b.from.is_none() => {
            in_place(state, key, wait, None).await
        }
        (None, false, true) => Err(Error::invalid(
            "undo",
            "undo takes no time, lsn, backup or from",
        )),
        _ => Err(Error::invalid(
            "to",
            "give exactly one of to, in_place and undo",
        )),
    }
}

/// An in-place restore (or, without a target, its undo) under the
/// instance's lock, as a task that runs to its end.
async fn in_place(
    state: &Arc<AppState>,
    key: &str,
    wait: bool,
    target: Option<(Target, FromRepo)>,
) -> Result<Reply, Error> {
    let inst = super::instances::find(state, key)?;
    let id = inst.id.clone();
    let task = state
        .ops
        .spawn(&inst.id, Pool::Drop, move |home| async move {
            match target {
                Some((t, from)) => {
                    ops::backup::restore::restore_in_place(&home, &id, t, from).await
                }
                None => ops::backup::restore::undo(&home, &id).await,
            }
        });
    if !wait {
        return Ok(reply::json(202, &ops::view(&inst, None)));
    }
    Ok(reply::json(200, &joined(task).await?))
}

#[utoipa::path(post, path = "/instances/{id}/clone", tag = "backups", request_body = CloneBody,
    params(("id" = String, Path, description = "Instance id or name"),
        ("wait" = Option<bool>, Query, description = "wait until the clone accepts connections (default true)")),
    responses((status = 201, description = "Cloned", body = crate::ops::Created),
        (status = 202, description = "Accepted (wait=false): poll GET /instances/{id} of the clone", body = crate::ops::Created),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The name exists, or no backups", body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn clone(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let wait = req.flag("wait", true)?;
    let b: CloneBody = reply::json_body(&req.headers, &req.body, "clone request")?;
    let target = Target::parse(b.time.as_deref(), None, None)?;
    let from = FromRepo::parse(b.from.as_deref())?;
    let key = key.to_string();
    let name = b.name.clone();
    let p = state.ops.provision(wait, name, move |home| async move {
        ops::backup::restore::restore_begin(&home, &key, &b.name, target, from, b.node).await
    });
    super::instances::provisioned(p.await?)
}
