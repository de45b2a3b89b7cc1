//! What an instance is, described once from its registry entry for every
//! engine to render: the compose file (engine/compose/render.rs) and the
//! swarm stack (engine/swarm/stack_file.rs) read the same fields, so a
//! new component, port, setting or file is added here once.

use super::pg_config::{tuning, Tuning};
use super::repository::render_pgbackrest;
use super::{AGENT_FILES, AGENT_UID, INIT_SCRIPTS, MONITOR_USER};
use crate::registry::Instance;

/// One instance, as its containers are to be made.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub id: String,
    pub name: String,
    /// This home's tag, on every container, volume and network.
    pub home_tag: String,
    pub version: u32,
    pub image: String,
    /// A swarm node it is pinned to (none: this host).
    pub node: Option<String>,
    /// The host address its port is published on, as a port mapping
    /// writes it (an IPv6 address bracketed).
    pub bind_address: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub monitor_user: &'static str,
    /// The db container's limits, and what PostgreSQL derives from them.
    pub memory_bytes: String,
    pub cpus: String,
    pub tuning: Tuning,
    /// The monitoring agent.
    pub agent: AgentSpec,
    /// The backup sidecar and WAL archiving.
    pub backups: bool,
    pub backup_schedule: String,
    /// A second, S3-compatible repository (only with backups).
    pub s3: bool,
    /// A Docker network through which the S3 repository is reached.
    pub s3_network: Option<String>,
    /// The instance's own network (a block of DBAAS_SUBNET_POOL).
    pub subnet: Option<String>,
    /// Hashes of the files shipped into the containers.
    pub shipped: ShippedHashes,
}

/// The agent's container: its user and its sampling.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub uid: u32,
    pub interval: u32,
    pub max_bytes: u64,
    pub keep: u32,
}

/// Short hashes of the files the containers get: a swarm config cannot
/// change in place, so a new content is a new name.
#[derive(Debug, Clone)]
pub struct ShippedHashes {
    pub init_superuser: String,
    pub init_users: String,
    pub init_monitoring: String,
    pub agent_sh: String,
    pub agent_sample: String,
    pub backup_sh: String,
    /// Of the rendered pgbackrest.conf (empty without backups).
    pub pgbackrest_conf: String,
}

/// An engine's project file: its name in the instance directory and text.
pub struct ProjectFile {
    pub file: &'static str,
    pub text: String,
}

impl InstanceSpec {
    pub fn of(inst: &Instance, home_tag: &str) -> InstanceSpec {
        let s3 = inst.s3.as_ref().filter(|_| inst.backups.is_some());
        InstanceSpec {
            id: inst.id.clone(),
            name: inst.name.clone(),
            home_tag: home_tag.to_string(),
            version: inst.version,
            image: inst.image.clone(),
            node: inst.node.clone(),
            bind_address: if inst.bind_address.contains(':') {
                format!("[{}]", inst.bind_address)
            } else {
                inst.bind_address.clone()
            },
            port: inst.port,
            database: inst.database.clone(),
            user: inst.user.clone(),
            monitor_user: MONITOR_USER,
            memory_bytes: crate::validate::format_bytes(inst.memory),
            cpus: format!("{}", inst.cpus),
            tuning: tuning(inst.memory),
            agent: AgentSpec {
                uid: AGENT_UID,
                interval: inst.metrics_interval,
                max_bytes: inst.metrics_max_bytes,
                keep: inst.metrics_keep,
            },
            backups: inst.backups.is_some(),
            backup_schedule: inst
                .backups
                .as_ref()
                .map_or(String::new(), |b| b.schedule.clone()),
            s3: s3.is_some(),
            s3_network: s3.and_then(|r| r.network.clone()),
            subnet: inst.subnet.clone(),
            shipped: shipped_hashes(inst),
        }
    }
}

fn shipped_hashes(inst: &Instance) -> ShippedHashes {
    let agent: Vec<(&str, &str)> = AGENT_FILES.iter().map(|(n, b, _)| (*n, *b)).collect();
    ShippedHashes {
        init_superuser: shipped(INIT_SCRIPTS, "00-superuser-local-only.sh"),
        init_users: shipped(INIT_SCRIPTS, "01-init-users.sql"),
        init_monitoring: shipped(INIT_SCRIPTS, "02-monitoring-setup.sql"),
        agent_sh: shipped(&agent, "agent.sh"),
        agent_sample: shipped(&agent, "sample.sql"),
        backup_sh: shipped(&agent, "backup.sh"),
        pgbackrest_conf: inst
            .backups
            .as_ref()
            .map_or(String::new(), |p| content_hash(&render_pgbackrest(inst, p))),
    }
}

fn content_hash(body: &str) -> String {
    crate::home::fnv1a_hex(body.as_bytes())
}

fn shipped(files: &[(&'static str, &'static str)], name: &str) -> String {
    content_hash(
        files
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, b)| b),
    )
}
