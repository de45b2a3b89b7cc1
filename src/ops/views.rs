//! What users see of an instance: its registry entry with a live `Status`
//! worked out from the engine's containers, for `list`, `show` and the API.

use super::{blocking, creator_alive, find};
use crate::engine::{self, Container, ContainerState, Health, PsMap, Service};
use crate::error::Result;
use crate::home::Home;
use crate::metrics::{self, tail};
use crate::registry::{self, Instance, Registry, State};
use crate::validate;
use serde::Serialize;
use std::collections::HashMap;
use std::time::SystemTime;

/// An instance as users see it: the registry entry plus its live status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub image: String,
    pub status: Status,
    /// What the status alone does not say: for `node-down`, the node and
    /// whether it is down or drained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    /// The health check's last word: starting, healthy or unhealthy.
    pub health: Option<String>,
    pub port: u16,
    pub bind_address: String,
    pub memory: String,
    pub memory_bytes: u64,
    pub cpus: f64,
    pub database: String,
    pub user: String,
    pub created_at: String,
    pub age_seconds: u64,
    pub containers: Vec<String>,
    pub error: Option<String>,
    /// Seconds between the monitoring agent's samples.
    pub metrics_interval: u32,
    /// The backup schedule and retention; null when backups are off.
    pub backups: Option<crate::backups::BackupPolicy>,
    /// The second backup repository, S3-compatible (its keys are never
    /// shown); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<crate::backups::s3::S3Repo>,
    /// Settings a resize changed that need a restart (`restart`, or
    /// `resize --restart`); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
    /// The state of its backups and WAL archiving (`show` and GET
    /// /instances/{id} only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_health: Option<crate::backups::BackupHealth>,
    /// The swarm node it is pinned to; absent on the compose engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// It serves TLS with a certificate of the home's authority; one made
    /// before dbaas had TLS gets it at its next restart (`ssl` is then in
    /// pending_restart).
    pub tls: bool,
    /// When its server certificate expires (`show` and GET
    /// /instances/{id} only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_expires_at: Option<String>,
    /// Where clients connect (loopback for a wildcard bind): for printing.
    #[serde(skip)]
    pub connect_host: String,
}

pub fn view(inst: &Instance, containers: Option<&Vec<Container>>) -> InstanceView {
    let (status, health) = live_status(inst, containers);
    let age = humantime::parse_rfc3339(&inst.created_at)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    InstanceView {
        id: inst.id.clone(),
        name: inst.name.clone(),
        version: inst.version,
        image: inst.image.clone(),
        status_detail: (status == Status::NodeDown)
            .then(|| containers.and_then(|cs| engine::service_of(cs, &Service::Db)))
            .flatten()
            .map(|c| c.status.trim_start_matches("node-down: ").to_string()),
        status,
        health: health.map(|h| h.as_str().to_string()),
        port: inst.port,
        bind_address: inst.bind_address.clone(),
        node: inst.node.clone(),
        memory: validate::format_bytes(inst.memory),
        memory_bytes: inst.memory,
        cpus: inst.cpus,
        database: inst.database.clone(),
        user: inst.user.clone(),
        created_at: inst.created_at.clone(),
        age_seconds: age,
        containers: containers
            .map(|cs| cs.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
        error: inst.error.clone(),
        metrics_interval: inst.metrics_interval,
        backups: inst.backups.clone(),
        s3: inst.s3.clone(),
        pending_restart: pending_restart(inst),
        tls: inst.tls,
        tls_expires_at: None,
        backup_health: None,
        connect_host: super::connect_host(inst),
    }
}

/// What a restart would change: a resize's settings, and TLS for an
/// instance made before it.
fn pending_restart(inst: &Instance) -> Vec<String> {
    let mut p = inst.pending_restart.clone();
    if !inst.tls {
        p.push("ssl".into());
    }
    p
}

/// `view` with the state of its backups (files only: the repository's log
/// and the agent's latest sample).
pub async fn view_with_backups(
    home: &Home,
    inst: &Instance,
    containers: Option<&Vec<Container>>,
) -> Result<InstanceView> {
    let mut v = view(inst, containers);
    v.backup_health = backup_health(home, inst).await?;
    v.tls_expires_at = super::tls::expiry_text(home, inst);
    Ok(v)
}

async fn backup_health(
    home: &Home,
    inst: &Instance,
) -> Result<Option<crate::backups::BackupHealth>> {
    let (home, inst) = (home.clone(), inst.clone());
    crate::metrics::read_files(move || super::backup::protection::health(&home, &inst)).await
}

/// The live status of an instance, as `list`, `show` and the API report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A create is running.
    Creating,
    /// The create's process died; `doctor --fix` or the next `serve` rolls
    /// it back.
    Interrupted,
    /// Provisioning failed; the entry holds the reason.
    Failed,
    /// PostgreSQL runs and accepts the app user.
    Running,
    /// Started, before its first health check passed.
    Starting,
    /// Runs, but its health check fails.
    Unhealthy,
    Restarting,
    /// Its container ended without `down`.
    Exited,
    /// Stopped by `down`: no containers, data kept.
    Stopped,
    /// Should run, but has no container.
    Missing,
    /// Its swarm node is down or drained: its data is there, and it is not
    /// started anywhere else (`status_detail` names the node).
    #[serde(rename = "node-down")]
    NodeDown,
    Created,
    Paused,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
            Status::Running => "running",
            Status::Starting => "starting",
            Status::Unhealthy => "unhealthy",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Stopped => "stopped",
            Status::Missing => "missing",
            Status::NodeDown => "node-down",
            Status::Created => "created",
            Status::Paused => "paused",
            Status::Unknown => "unknown",
        }
    }

    /// Whether PostgreSQL is up to take connections: the one answer to "is
    /// it running?" for SQL, the data API and `doctor`.
    pub fn serves(self) -> bool {
        matches!(self, Status::Running | Status::Unhealthy)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The registry's record plus the engine's containers, as a `Status` and
/// the health check's word.
pub fn live_status(
    inst: &Instance,
    containers: Option<&Vec<Container>>,
) -> (Status, Option<Health>) {
    match inst.state {
        State::Creating if creator_alive(inst) => return (Status::Creating, None),
        State::Creating => return (Status::Interrupted, None),
        State::Failed => return (Status::Failed, None),
        _ => {}
    }
    let db = containers.and_then(|cs| engine::service_of(cs, &Service::Db));
    let Some(c) = db else {
        return match inst.state {
            State::Stopped => (Status::Stopped, None),
            _ => (Status::Missing, None),
        };
    };
    let status = match (&c.state, c.health) {
        // Readiness was checked by dbaas itself; the first health check
        // comes one interval later.
        (ContainerState::Running, Some(Health::Starting)) if inst.state == State::Running => {
            Status::Running
        }
        (ContainerState::Running, Some(Health::Starting)) => Status::Starting,
        (ContainerState::Running, Some(Health::Unhealthy)) => Status::Unhealthy,
        (ContainerState::Running, _) => Status::Running,
        (ContainerState::Restarting, _) => Status::Restarting,
        (ContainerState::NodeDown, _) => Status::NodeDown,
        (s, _) if s.ended() => Status::Exited,
        (ContainerState::Created, _) => Status::Created,
        (ContainerState::Paused, _) => Status::Paused,
        _ => Status::Unknown,
    };
    (status, c.health)
}

/// Every container of one instance (db, agent, backup sidecar).
pub async fn instance_containers(home: &Home, id: &str) -> Result<PsMap> {
    engine::of(home).ps(Some(id)).await
}

pub async fn status_view(home: &Home, inst: &Instance) -> Result<InstanceView> {
    let ps = instance_containers(home, &inst.id).await?;
    Ok(view(inst, ps.get(&inst.id)))
}

/// All instances with their live status: one registry read, one docker call.
pub async fn list(home: &Home) -> Result<Vec<InstanceView>> {
    let (reg, ps) = registry_and_containers(home).await?;
    Ok(views(&reg, &ps))
}

/// The registry and, when it has instances, their containers.
async fn registry_and_containers(home: &Home) -> Result<(Registry, PsMap)> {
    let reg = blocking({
        let home = home.clone();
        move || registry::load(&home)
    })
    .await?;
    // The views read the db containers alone.
    let ps: PsMap = if reg.instances.is_empty() {
        HashMap::new()
    } else {
        engine::of(home).ps_service(&Service::Db).await?
    };
    Ok((reg, ps))
}

/// The db container of every instance of this home, from one engine call
/// (what the API's status cache holds: the status is read off the db
/// containers alone, and at 200 instances listing the agents as well
/// doubled the daemon's work).
pub async fn containers(home: &Home) -> Result<PsMap> {
    engine::of(home).ps_service(&Service::Db).await
}

pub fn views(reg: &Registry, ps: &PsMap) -> Vec<InstanceView> {
    reg.owned().map(|i| view(i, ps.get(&i.id))).collect()
}

pub async fn show(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key).await?;
    let mut v = status_view(home, &inst).await?;
    super::mirror::sync_backups(home, &inst).await;
    v.backup_health = backup_health(home, &inst).await?;
    v.tls_expires_at = super::tls::expiry_text(home, &inst);
    Ok(v)
}

/// One line of `top`: an instance with figures from its latest samples.
#[derive(Debug, Serialize)]
pub struct TopRow {
    pub name: String,
    pub id: String,
    pub status: Status,
    pub connections: Option<u64>,
    pub max_connections: Option<u64>,
    pub tps: Option<f64>,
    pub cache_hit_ratio: Option<f64>,
    pub db_size_bytes: Option<u64>,
    pub sample_age_seconds: Option<f64>,
    /// What is wrong with its backups (empty: nothing); None when they are
    /// off.
    pub backup_concerns: Option<Vec<String>>,
}

/// Every instance with its load, from the last 30 samples of each. The
/// files are read while docker lists the containers: at 200 instances
/// each takes about as long as the other.
pub async fn top(home: &Home) -> Result<Vec<TopRow>> {
    super::mirror::sync(home, None).await;
    let reg = blocking({
        let home = home.clone();
        move || registry::load(&home)
    })
    .await?;
    let owned: Vec<Instance> = reg.owned().cloned().collect();
    let h = home.clone();
    let figures = crate::metrics::read_files(move || {
        owned
            .iter()
            .map(|inst| {
                // The rates need the latest two samples that reached the
                // database: three lines read almost always find them (at
                // 200 instances, reading 30 each was most of `top`).
                let dir = metrics::dir_of(&h, &inst.id);
                let mut samples = tail::last_samples(&dir, 3);
                if samples.len() == 3 && samples.iter().filter(|s| s.up).count() < 2 {
                    samples = tail::last_samples(&dir, 30);
                }
                let age = samples.last().and_then(metrics::Sample::age_seconds);
                let concerns = super::backup::protection::health(&h, inst).map(|x| x.concerns);
                (metrics::summary::summarize(&samples), age, concerns)
            })
            .collect::<Vec<_>>()
    });
    let ps = async {
        if reg.instances.is_empty() {
            Ok(HashMap::new())
        } else {
            engine::of(home).ps_service(&Service::Db).await
        }
    };
    let (figures, ps) = tokio::join!(figures, ps);
    Ok(views(&reg, &ps?)
        .into_iter()
        .zip(figures?)
        .map(|(v, (s, age, concerns))| TopRow {
            sample_age_seconds: age,
            name: v.name,
            id: v.id,
            status: v.status,
            connections: s.connections,
            max_connections: s.max_connections,
            tps: s.tps,
            cache_hit_ratio: s.cache_hit_ratio,
            db_size_bytes: s.db_size_bytes,
            backup_concerns: concerns,
        })
        .collect())
}
