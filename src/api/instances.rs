//! /health and /instances: the CLI's lifecycle over HTTP, through the same
//! `ops` functions. Requests for one instance are serialized by a per-instance
//! lock; different instances proceed in parallel.

use super::reply::{self, ErrorBody, LogLines, Reply};
use super::state::AppState;
use super::Request;
use crate::error::Error;
use crate::ops::nodes::NodeView;
use crate::ops::serial::{joined, Pool};
use crate::ops::{self, CreateRequest, Created, InstanceView};
use crate::registry::{Instance, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// "ok" when Docker and the registry are usable, else "degraded".
    pub status: String,
    /// Whether Docker answered its last check (made by the server in the
    /// background, at most a few seconds ago; never by this request).
    pub docker: bool,
    /// Seconds since that check.
    pub docker_checked_seconds_ago: Option<f64>,
    pub registry: bool,
    /// The engine this home is bound to: compose or swarm.
    pub engine: String,
}

/// Body of `POST /instances`: the CLI's `create` flags.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// 1-63 characters: lowercase letters, digits and '-'.
    pub name: String,
    /// PostgreSQL major version: 13, 15 or 17 (default 15).
    #[schema(value_type = Option<u32>)]
    pub version: Option<serde_json::Value>,
    /// Memory limit such as "512m" or "2g" (default 512m).
    pub memory: Option<String>,
    /// CPU limit (default 1.0).
    #[schema(value_type = Option<f64>)]
    pub cpus: Option<serde_json::Value>,
    /// Host port (default: the lowest free port of the range).
    pub port: Option<u32>,
    /// Application database (default app).
    pub database: Option<String>,
    /// Application user (default app).
    pub user: Option<String>,
    /// Seconds between monitoring samples, 1-3600 (default 10).
    #[schema(value_type = Option<u32>)]
    pub metrics_interval: Option<serde_json::Value>,
    /// When full backups are taken: "24h" (default), "6h", "30m" or
    /// "daily@HH:MM" (UTC).
    pub backup_schedule: Option<String>,
    /// How long backups are kept: "7d" (default, days of recovery) or a
    /// count of full backups such as "3".
    #[schema(value_type = Option<String>)]
    pub backup_retention: Option<serde_json::Value>,
    /// No WAL archiving and no backups (default false).
    #[serde(default)]
    pub no_backups: bool,
    /// No second backup repository in S3, though the host has one
    /// (DBAAS_S3); default false.
    #[serde(default)]
    pub no_s3: bool,
    /// The swarm node to run on (swarm homes; default: the node with the
    /// most free memory).
    pub node: Option<String>,
    /// Accept TCP logins without TLS too; default false (TLS only).
    #[serde(default)]
    pub allow_plaintext: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub deleted: String,
    pub data_kept: bool,
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "Liveness, with whether Docker and the registry are usable", body = Health)))]
pub fn health(state: &Arc<AppState>) -> Reply {
    let docker = state.docker_health();
    let registry = state.registry().is_ok();
    let ok = docker.is_some_and(|(ok, _)| ok);
    let status = if ok && registry { "ok" } else { "degraded" };
    reply::json(
        200,
        &Health {
            status: status.into(),
            docker: ok,
            docker_checked_seconds_ago: docker
                .map(|(_, age)| (age.as_secs_f64() * 10.0).round() / 10.0),
            registry,
            engine: state.home.settings.engine.as_str().into(),
        },
    )
}

#[utoipa::path(get, path = "/nodes", tag = "instances",
    responses((status = 200, description = "The swarm's nodes with their instances and budgets (none on the compose engine)", body = Vec<NodeView>),
        (status = 401, body = ErrorBody), (status = 503, description = "Docker unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn nodes(state: &Arc<AppState>) -> Result<Reply, Error> {
    Ok(reply::json(200, &ops::nodes::nodes(&state.home).await?))
}

#[utoipa::path(get, path = "/instances", tag = "instances",
    responses((status = 200, description = "Every instance with its live status (no passwords)", body = [InstanceView]),
        (status = 401, body = ErrorBody), (status = 503, description = "Docker unreachable", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(state: &Arc<AppState>) -> Result<Reply, Error> {
    let reg = state.registry()?;
    if reg.instances.is_empty() {
        return Ok(reply::json(200, &Vec::<InstanceView>::new()));
    }
    let should_run: Vec<&str> = reg
        .instances
        .iter()
        .filter(|i| i.state == State::Running)
        .map(|i| i.id.as_str())
        .collect();
    let ps = state.status_for(&should_run).await?;
    Ok(reply::json(200, &ops::views(&reg, &ps)))
}

pub(crate) fn find(state: &AppState, key: &str) -> Result<Instance, Error> {
    state.registry()?.get(key).cloned()
}

#[utoipa::path(get, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, body = InstanceView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(state: &Arc<AppState>, key: &str) -> Result<Reply, Error> {
    let inst = find(state, key)?;
    let should_run: &[&str] = if inst.state == State::Running {
        &[&inst.id]
    } else {
        &[]
    };
    let ps = state.status_for(should_run).await?;
    let v = ops::views::view_with_backups(&state.home, &inst, ps.get(&inst.id)).await?;
    Ok(reply::json(200, &v))
}

#[utoipa::path(get, path = "/instances/{id}/credentials", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, body = ops::Credentials), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Still being created, or failed", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn credentials(state: &Arc<AppState>, key: &str) -> Result<Reply, Error> {
    Ok(reply::json(200, &ops::credentials(&state.home, key).await?))
}

fn parse_body(req: &Request) -> Result<CreateBody, Error> {
    reply::json_body(&req.headers, &req.body, "create request")
}

/// Numbers or strings are both accepted for version and cpus.
fn scalar(v: Option<serde_json::Value>, field: &str) -> Result<Option<String>, Error> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(Error::invalid(field, format!("{other} is not a number"))),
    }
}

#[utoipa::path(post, path = "/instances", tag = "instances", request_body = CreateBody,
    params(("wait" = Option<bool>, Query, description = "wait until the instance accepts connections (default true)")),
    responses(
        (status = 201, description = "Created and ready; the only response with the password besides /credentials", body = Created),
        (status = 202, description = "Accepted (wait=false): poll GET /instances/{id} until running or failed", body = Created),
        (status = 400, description = "Invalid field, malformed JSON or unknown field", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "Name or port taken", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 500, description = "docker compose failed; detail has the command and stderr", body = ErrorBody),
        (status = 503, description = "Docker, Compose v2 or the image missing", body = ErrorBody),
        (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(state: &Arc<AppState>, req: &Request) -> Result<Reply, Error> {
    let wait = req.flag("wait", true)?;
    let body = parse_body(req)?;
    let creq = CreateRequest {
        metrics_interval: scalar(body.metrics_interval, "metrics_interval")?,
        name: body.name,
        version: scalar(body.version, "version")?,
        memory: body.memory,
        cpus: scalar(body.cpus, "cpus")?,
        port: body.port,
        database: body.database,
        user: body.user,
        backup_schedule: body.backup_schedule,
        backup_retention: scalar(body.backup_retention, "backup_retention")?,
        no_backups: body.no_backups,
        s3: if body.no_s3 {
            crate::backups::s3::S3Choice::Off
        } else {
            crate::backups::s3::S3Choice::HostDefault
        },
        keep_on_failure: false,
        node: body.node,
        allow_plaintext: body.allow_plaintext,
    };
    provisioned(state.ops.create(creq, wait).await?)
}

/// 201 for an instance ready (or a spare claimed), 202 for one under way.
pub(super) fn provisioned(p: ops::serial::Provisioned) -> Result<Reply, Error> {
    Ok(match p {
        ops::serial::Provisioned::Done(c) => reply::json(201, &c),
        ops::serial::Provisioned::Accepted(c) => reply::json(202, &c),
    })
}

#[utoipa::path(post, path = "/instances/{id}/start", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name"),
        ("wait" = Option<bool>, Query, description = "wait until it accepts connections (default true)")),
    responses((status = 200, body = InstanceView), (status = 400, description = "Invalid query parameter", body = ErrorBody), (status = 202, body = InstanceView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 500, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_doc() {}

#[utoipa::path(post, path = "/instances/{id}/stop", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, body = InstanceView), (status = 400, description = "Invalid query parameter", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Being created, or failed", body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stop_doc() {}

#[utoipa::path(post, path = "/instances/{id}/restart", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, body = InstanceView), (status = 400, description = "Invalid query parameter", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 500, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn restart_doc() {}

/// Body of `PATCH /instances/{id}`: at least one field.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResizeBody {
    /// New memory limit such as "1g" (changed live; below what it uses now,
    /// or past the host budget, is refused).
    pub memory: Option<String>,
    /// New CPU limit such as "2" or "0.5" (changed live).
    #[schema(value_type = Option<String>)]
    pub cpus: Option<serde_json::Value>,
    /// New host port (recreates the container: a short restart).
    pub port: Option<u32>,
    /// Restart now, so that restart-only settings apply (default false).
    #[serde(default)]
    pub restart: bool,
}

#[utoipa::path(patch, path = "/instances/{id}", tag = "instances", request_body = ResizeBody,
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, description = "Resized; settings needing a restart are in pending_restart", body = crate::ops::resize::Resized),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Below what it uses, past the host budget, or the port is taken", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resize(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let b: ResizeBody = reply::json_body(&req.headers, &req.body, "resize request")?;
    let inst = find(state, key)?;
    ops::refuse_if_creating(&inst)?;
    let r = ops::resize::ResizeRequest {
        memory: b.memory,
        cpus: scalar(b.cpus, "cpus")?,
        port: b.port,
        restart: b.restart,
    };
    let id = inst.id.clone();
    let resized = state
        .ops
        .run(&inst.id, Pool::Keep, move |home| async move {
            ops::resize::resize(&home, &id, r).await
        })
        .await?;
    Ok(reply::json(200, &resized))
}

/// Body of `POST /instances/{id}/move`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The swarm node to move it to (GET /nodes lists them).
    pub node: String,
}

#[utoipa::path(post, path = "/instances/{id}/move", tag = "instances", request_body = MoveBody,
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, description = "Moved: it runs on the node (a stopped one stays stopped there)", body = crate::ops::relocate::Moved),
        (status = 400, description = "Not a swarm home, or no such node", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "On that node already, the node has no room or takes no instances, or the instance's node is down", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn move_to(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let b: MoveBody = reply::json_body(&req.headers, &req.body, "move request")?;
    let inst = find(state, key)?;
    ops::refuse_if_creating(&inst)?;
    let id = inst.id.clone();
    let moved = state
        .ops
        .run(&inst.id, Pool::Drop, move |home| async move {
            ops::relocate::move_to(&home, &id, &b.node).await
        })
        .await?;
    Ok(reply::json(200, &moved))
}

/// start / stop / restart, serialized per instance.
pub async fn action(
    state: &Arc<AppState>,
    req: &Request,
    key: &str,
    action: &str,
) -> Result<Reply, Error> {
    let inst = find(state, key)?;
    let wait = req.flag("wait", true)?;
    // A create holds the lock to its end: its rule is answered at once.
    ops::refuse_if_creating(&inst)?;
    // The operation, waiting for the instance's lock included, runs to its
    // end whatever happens to this request.
    let (id, op) = (inst.id.clone(), action.to_string());
    let task = state
        .ops
        .spawn(&inst.id, Pool::Drop, move |home| async move {
            let res = match op.as_str() {
                "start" => ops::up(&home, &id).await,
                "stop" => ops::down(&home, &id).await,
                _ => ops::restart(&home, &id).await,
            };
            if let Err(e) = &res {
                log::warn!("{op} of {id} failed: {e}");
            }
            res
        });
    if !wait && action == "start" {
        return Ok(reply::json(202, &ops::view(&inst, None)));
    }
    Ok(reply::json(200, &joined(task).await?))
}

#[utoipa::path(delete, path = "/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name"),
        ("keep_data" = Option<bool>, Query, description = "keep instances/<id>/ and its data"),
        ("delete_backups" = Option<bool>, Query, description = "also delete its backups (kept in backups/<id>/ by default)")),
    responses((status = 200, body = Deleted), (status = 400, description = "Invalid query parameter", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn destroy(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let keep_data = req.flag("keep_data", false)?;
    let delete_backups = req.flag("delete_backups", false)?;
    let inst = find(state, key)?;
    ops::refuse_if_creating(&inst)?;
    // Runs to its end, waiting for the lock included, whatever happens to
    // this request.
    let id = inst.id.clone();
    let inst = state
        .ops
        .run(&inst.id, Pool::Drop, move |home| async move {
            ops::destroy(&home, &id, keep_data, delete_backups).await
        })
        .await?;
    let deleted = Deleted {
        deleted: inst.id,
        data_kept: keep_data,
    };
    Ok(reply::json(200, &deleted))
}

#[utoipa::path(get, path = "/instances/{id}/logs", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name"),
        ("tail" = Option<u32>, Query, description = "lines from the end (default 100, at most 10000)")),
    responses((status = 200, body = LogLines), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "No container (instance down)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn logs(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let tail = reply::tail_param(req)?;
    let lines = ops::logs(&state.home, key, &ops::Service::Db, tail).await?;
    Ok(reply::json(200, &LogLines { lines }))
}
