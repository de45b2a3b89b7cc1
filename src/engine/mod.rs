//! The seam between dbaas and whatever runs an instance's containers. Every
//! container operation (up, down, restart, status, logs, attach, host
//! checks) goes through `Engine`; `ops/` and the faces never name docker.
//! Today there is one engine, `docker compose` subprocesses (compose.rs);
//! a second (Docker Swarm stacks) is added here, in `of`, and nowhere else.

pub mod compose;
pub mod discovery;
pub mod docker;
pub mod docker_api;
#[cfg(test)]
pub mod fake;
pub mod image_lock;
pub mod nodes;
pub mod swarm;

use crate::error::Result;
use crate::home::Home;
use crate::provision::spec::{InstanceSpec, ProjectFile};
use std::collections::HashMap;
use std::sync::Arc;

pub use nodes::{needs_nodes, nodes_of, MultiNode, NodeInfo};

/// An instance's project file, rendered by the engine it runs on: a swarm
/// instance's (pinned to a node) is its stack, any other's its compose file.
pub fn project_file(inst: &crate::registry::Instance, home_tag: &str) -> ProjectFile {
    let spec = InstanceSpec::of(inst, home_tag);
    match spec.node {
        Some(_) => swarm::stack_file(&spec),
        None => compose::compose_file(&spec),
    }
}

/// Where an instance's backup repository lives when it is not in
/// backups/<id>/ on this host: a swarm instance's is a volume on its node.
pub fn repository_elsewhere(inst: &crate::registry::Instance) -> Option<String> {
    inst.node.as_ref().map(|node| {
        format!(
            "the volume {} on node {node}",
            swarm::relocate::repo_volume(&inst.id)
        )
    })
}

/// An instance's services, as the generated project names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Service {
    /// PostgreSQL.
    Db,
    /// The monitoring agent.
    Agent,
    /// The backup sidecar (instances with backups).
    Backup,
    /// Anything else a project holds (none today).
    Other(String),
}

impl Service {
    pub fn parse(s: &str) -> Service {
        match s {
            "db" => Service::Db,
            "agent" => Service::Agent,
            "backup" => Service::Backup,
            other => Service::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Service::Db => "db",
            Service::Agent => "agent",
            Service::Backup => "backup",
            Service::Other(s) => s,
        }
    }
}

/// A container's life-cycle state, as Docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    Exited,
    Paused,
    Dead,
    Removing,
    /// A swarm task on a node that is down or drained: nothing can be said
    /// of its container until the node is back (`Container::status` names
    /// the node).
    NodeDown,
    Unknown(String),
}

impl ContainerState {
    pub fn parse(s: &str) -> ContainerState {
        match s {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "restarting" => ContainerState::Restarting,
            "exited" => ContainerState::Exited,
            "paused" => ContainerState::Paused,
            "dead" => ContainerState::Dead,
            "removing" => ContainerState::Removing,
            other => ContainerState::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Restarting => "restarting",
            ContainerState::Exited => "exited",
            ContainerState::Paused => "paused",
            ContainerState::Dead => "dead",
            ContainerState::Removing => "removing",
            ContainerState::NodeDown => "node-down",
            ContainerState::Unknown(s) => s,
        }
    }

    /// Stopped for good: it will not come back by itself.
    pub fn ended(&self) -> bool {
        matches!(self, ContainerState::Exited | ContainerState::Dead)
    }
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a container's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One container of an instance.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub service: Service,
    pub state: ContainerState,
    pub health: Option<Health>,
    /// The engine's own words, such as `Up 3 minutes (healthy)`.
    pub status: String,
}

impl Container {
    pub fn running(&self) -> bool {
        self.state == ContainerState::Running
    }
}

/// Containers by instance id.
pub type PsMap = HashMap<String, Vec<Container>>;

/// The container of `service` among an instance's containers.
pub fn service_of<'a>(containers: &'a [Container], service: &Service) -> Option<&'a Container> {
    containers.iter().find(|c| &c.service == service)
}

/// The PostgreSQL container of instance `id` in a status map.
pub fn db_container<'a>(ps: &'a PsMap, id: &str) -> Option<&'a Container> {
    ps.get(id).and_then(|cs| service_of(cs, &Service::Db))
}

/// What to attach the user's terminal to.
pub enum Attach<'a> {
    /// `psql` inside the db container, as `user` on `database`.
    Psql {
        user: &'a str,
        database: &'a str,
        command: Option<&'a str>,
        tty: bool,
    },
    /// The db container's log.
    Logs { tail: u32, follow: bool },
    /// A program in a service's container, its output streamed to the
    /// user's (never held whole).
    Run { service: Service, argv: Vec<String> },
}

/// What a one-off container gets at `target`.
pub struct Mount {
    pub from: MountFrom,
    pub target: &'static str,
    pub read_only: bool,
}

/// Where a one-off container's mount comes from.
pub enum MountFrom {
    /// A file or directory of this host: bound on one host (compose),
    /// copied into the container where it runs on another machine (swarm).
    Path(std::path::PathBuf),
    /// The backup repository of instance `id`: `dir` (backups/<id>) on one
    /// host, the volume `<id>_repo` on a swarm node.
    Repository { id: String, dir: std::path::PathBuf },
}

/// One check of the host the engine needs, for `doctor`.
pub struct HostCheck {
    pub check: &'static str,
    /// What was found, or what is wrong.
    pub outcome: std::result::Result<String, String>,
    /// How to fix it when it is wrong.
    pub fix: &'static str,
    /// Nothing else can be checked while this one fails.
    pub fatal: bool,
}

/// Which engine a home is bound to (config/engine).
pub use crate::settings::EngineKind;

/// What an engine can do: `ops` asks this, never which engine it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A warm pool of started spares.
    pub warm_pool: bool,
    /// An S3 repository reached through a Docker network of this host.
    pub s3_network: bool,
    /// A restore in place (the data directory is on this host).
    pub in_place_restore: bool,
}

impl Capabilities {
    /// One host's engine (compose): all of them.
    pub const ONE_HOST: Capabilities = Capabilities {
        warm_pool: true,
        s3_network: true,
        in_place_restore: true,
    };
}

/// What runs the containers of instances.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// `compose` or `swarm`, as doctor, list and /health show it.
    fn kind(&self) -> &'static str {
        "compose"
    }
    /// Whether an S3 network keeps its containers apart (doctor asks it of
    /// the networks older instances joined; a create is refused one that
    /// does not, in `preflight`).
    async fn check_s3_network(&self, _network: &str) -> Result<()> {
        Ok(())
    }
    /// What it can do (one host's engine: all but nodes).
    fn capabilities(&self) -> Capabilities {
        Capabilities::ONE_HOST
    }
    /// Where instances run, in a sentence (doctor's first line).
    fn describe(&self) -> &'static str {
        "compose: instances run on this host"
    }
    /// Before a create: the engine answers, the image is there, its tools
    /// are installed, the S3 network (if any) keeps its containers apart;
    /// errors say how to fix each.
    async fn preflight(&self, image: &str, s3_network: Option<&str>) -> Result<()>;
    /// Whether an instance's generated project is on disk.
    fn provisioned(&self, id: &str) -> bool;
    /// Whether the generated project defines `service` (older instances
    /// lack the agent).
    fn defines(&self, id: &str, service: &Service) -> bool;
    /// Starts (or updates) every service of an instance; does not wait for
    /// readiness. Idempotent.
    async fn up(&self, id: &str) -> Result<()>;
    /// Starts one service (and the network it needs) without those that
    /// depend on it, so that a create can wait for PostgreSQL while the
    /// others start.
    async fn up_service(&self, id: &str, service: &Service) -> Result<()>;
    /// Stops and removes the containers; data stays. Works from the id
    /// alone, so it also cleans up when the directory is gone. Idempotent.
    async fn down(&self, id: &str) -> Result<()>;
    /// Restarts every running service in place.
    async fn restart(&self, id: &str) -> Result<()>;
    /// Restarts one service.
    async fn restart_service(&self, id: &str, service: &Service) -> Result<()>;
    /// The containers of every instance of this home (or of one), in one call.
    async fn ps(&self, only: Option<&str>) -> Result<PsMap>;
    /// The containers of one service of every instance, in one call: what
    /// the list views need (the db's), at a third of the cost of `ps`.
    async fn ps_service(&self, service: &Service) -> Result<PsMap>;
    /// The newest `tail` lines of a service's log, at most `max_bytes`.
    async fn logs(
        &self,
        id: &str,
        service: &Service,
        tail: u32,
        max_bytes: usize,
    ) -> Result<Vec<String>>;
    /// Runs with the user's terminal attached; returns the exit status.
    async fn attach(&self, id: &str, what: Attach<'_>) -> Result<i32>;
    /// A program in a service's container with all three pipes, for the
    /// caller to stream through; killed when the child is dropped.
    async fn exec_piped(
        &self,
        id: &str,
        service: &Service,
        argv: &[String],
    ) -> Result<tokio::process::Child>;
    /// A program in a running service's container, to its end (bounded by
    /// `timeout`); returns its standard output. A failure carries the tail
    /// of its standard error.
    async fn exec(
        &self,
        id: &str,
        service: &Service,
        argv: &[String],
        timeout: std::time::Duration,
    ) -> Result<String>;
    /// A program in a new, one-off container of `service` (its image,
    /// volumes, secrets and limits, plus `mounts`; no other service is
    /// started and no port published), removed when it ends.
    async fn run_once(
        &self,
        id: &str,
        service: &Service,
        mounts: &[Mount],
        argv: &[String],
        timeout: std::time::Duration,
    ) -> Result<String>;
    /// The host checks of `doctor`, in order.
    async fn host_checks(&self) -> Vec<HostCheck>;
    /// Whether an image is present where the engine runs containers.
    async fn image_present(&self, image: &str) -> bool;
    /// Changes the memory and CPU limits of a running service's container
    /// in place (no restart).
    async fn update_limits(
        &self,
        id: &str,
        service: &Service,
        memory: u64,
        cpus: f64,
    ) -> Result<()>;
    /// Brings the running containers in line with the rewritten project
    /// file (port, limits, environment), restarting what changed, and
    /// returns once that has been started: a restart after a resize.
    async fn apply_changes(&self, id: &str) -> Result<()> {
        self.up(id).await
    }
    /// The id of an image (a template records it, to notice a rebuilt image).
    async fn image_id(&self, image: &str) -> Result<String>;
    /// Fills the empty directory `dir` with a cluster made by the image's
    /// own initdb (its `dbaas-template` command), for new instances to copy.
    async fn make_template(
        &self,
        image: &str,
        dir: &std::path::Path,
        timeout: std::time::Duration,
    ) -> Result<()>;
    /// The multi-node part of the engine, where it has one (swarm): the
    /// nodes, moving data between them, the copies of what agents and
    /// sidecars write on them.
    fn multi_node(&self) -> Option<&dyn MultiNode> {
        None
    }
    /// Removes an instance's containers and whatever else of it the engine
    /// keeps (a swarm node's volumes; its backup repository there unless
    /// `keep_backups` is false); the instance directory is the caller's, and
    /// so is backups/<id>/ on a single host.
    async fn destroy(&self, id: &str, _keep_backups: bool) -> Result<()> {
        self.down(id).await
    }
}

/// The engine of a home.
pub fn of(home: &Home) -> Arc<dyn Engine> {
    #[cfg(test)]
    if let Some(fake) = fake::for_home(&home.root) {
        return fake;
    }
    match home.settings.engine {
        EngineKind::Compose => Arc::new(compose::Compose::new(home)),
        EngineKind::Swarm => Arc::new(swarm::Swarm::new(home)),
    }
}
