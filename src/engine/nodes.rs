//! Engines whose instances run on one of several machines (swarm): the
//! nodes, and what only such an engine does. `Engine::multi_node` gives
//! it; a one-host engine has none, and ops say so in their own words.

use crate::error::Result;
use std::path::Path;

/// One machine that runs instances: a swarm node (the compose engine has
/// none: its one host is implied).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NodeInfo {
    pub id: String,
    /// Its hostname, which is its name in the swarm.
    pub name: String,
    /// Where its published ports answer.
    pub address: String,
    /// `ready`, `down`, `unknown`, `disconnected`.
    pub state: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    pub manager: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its memory in bytes and its CPUs.
    pub memory: u64,
    pub cpus: f64,
}

impl NodeInfo {
    /// Labelled for dbaas, up and taking new work.
    pub fn usable(&self) -> bool {
        self.state == "ready"
            && self.availability == "active"
            && self.labels.get("dbaas").is_some_and(|v| v == "true")
    }
}

/// What an engine of several nodes adds to `Engine`.
#[async_trait::async_trait]
pub trait MultiNode: Send + Sync {
    /// The machines instances run on.
    async fn nodes(&self) -> Result<Vec<NodeInfo>>;
    /// Brings the local copy of an instance's metrics files (`dir`, keeping
    /// `keep` rotated ones) up to date with what its agent wrote on its node.
    async fn mirror_metrics(&self, id: &str, dir: &Path, keep: u32) -> Result<()>;
    /// Brings `dir` (backups/<id>/: the backup log, the labels the
    /// repository holds, the newest archived WAL's time) up to date with
    /// the repository the backup sidecar writes on its node.
    async fn mirror_backups(&self, id: &str, dir: &Path) -> Result<()>;
    /// Whether node `to` can take a copy of the instance's data (nothing of
    /// the same name there): checked before the instance stops.
    async fn check_move(&self, id: &str, to: &str) -> Result<()>;
    /// Copies a stopped instance's data from node `from` to node `to`; its
    /// files and registry entry are the caller's.
    async fn move_data(&self, id: &str, image: &str, from: &str, to: &str) -> Result<()>;
    /// Removes what is left of an instance on a node it no longer runs on
    /// (its stopped containers and volumes there).
    async fn clear_node(&self, id: &str, node: &str) -> Result<()>;
}

/// The nodes of `engine`; none where it has one host.
pub async fn nodes_of(engine: &dyn super::Engine) -> Result<Vec<NodeInfo>> {
    match engine.multi_node() {
        Some(m) => m.nodes().await,
        None => Ok(vec![]),
    }
}

/// The multi-node part of `engine`, or the error that `what` needs one.
pub fn needs_nodes<'a>(engine: &'a dyn super::Engine, what: &str) -> Result<&'a dyn MultiNode> {
    engine.multi_node().ok_or_else(|| {
        crate::error::Error::invalid(
            "engine",
            format!(
                "{what} needs a swarm home; this home's engine is {} (one host)",
                engine.kind()
            ),
        )
    })
}
