//! The machines of a home: binding a home to its engine (`init`), and the
//! swarm's nodes with the instances each holds (`nodes`, GET /nodes).

use super::blocking;
use crate::engine;
/// A node of the swarm, as the engine reports it (the API documents it).
pub use crate::engine::NodeInfo;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry;
use crate::settings::{EngineKind, ENGINE_FILE};
use serde::Serialize;

/// One instance on a node, with the budget it holds there.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Placed {
    pub id: String,
    pub name: String,
    pub memory: u64,
    pub cpus: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeView {
    #[serde(flatten)]
    pub node: NodeInfo,
    /// Takes new instances: labelled dbaas=true, ready and active.
    pub usable: bool,
    pub instances: Vec<Placed>,
    /// The memory limits of its instances, and what is left of its memory.
    pub memory_used: u64,
    pub memory_free: u64,
}

/// Binds the home to `engine` (config/engine). Changing it while instances
/// exist is refused: they would be left to an engine that does not know
/// them. Binding a home to swarm checks that a manager answers first.
pub async fn init(home: &Home, engine: &str) -> Result<EngineKind> {
    let kind = EngineKind::parse(engine)?;
    let current = home.settings.engine;
    let reg = {
        let home = home.clone();
        blocking(move || registry::load(&home)).await?
    };
    if kind != current && !reg.instances.is_empty() {
        return Err(Error::Conflict(format!(
            "this home's engine is {} and it holds {} instance(s); destroy them first, or use another DBAAS_HOME for {}",
            current.as_str(),
            reg.instances.len(),
            kind.as_str()
        )));
    }
    let mut s = (*home.settings).clone();
    s.engine = kind;
    let probe = Home::new(s);
    let target = engine::of(&probe);
    // An engine of nodes must reach its manager before a home is bound to it.
    if target.multi_node().is_some() {
        let checks = target.host_checks().await;
        if let Some(c) = checks.iter().find(|c| c.fatal && c.outcome.is_err()) {
            return Err(Error::Docker(format!(
                "{}: {}; {}",
                c.check,
                c.outcome.as_ref().err().map_or("", String::as_str),
                c.fix
            )));
        }
    }
    let dir = home.config_dir();
    blocking(move || {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        registry::write_atomic(
            &dir.join(ENGINE_FILE),
            format!("{}\n", kind.as_str()).as_bytes(),
            0o644,
        )
    })
    .await?;
    Ok(kind)
}

/// Every node of the swarm with its instances; empty on compose.
pub async fn nodes(home: &Home) -> Result<Vec<NodeView>> {
    let nodes = engine::nodes_of(engine::of(home).as_ref()).await?;
    let reg = {
        let home = home.clone();
        blocking(move || registry::load(&home)).await?
    };
    Ok(nodes
        .into_iter()
        .map(|n| {
            let instances: Vec<Placed> = reg
                .owned()
                .filter(|i| i.node.as_deref() == Some(n.name.as_str()))
                .map(|i| Placed {
                    id: i.id.clone(),
                    name: i.name.clone(),
                    memory: i.memory,
                    cpus: i.cpus,
                })
                .collect();
            let used = super::placement::used_on(&reg, &n.name);
            NodeView {
                usable: n.usable(),
                memory_free: n.memory.saturating_sub(used),
                memory_used: used,
                instances,
                node: n,
            }
        })
        .collect())
}
