//! move: a swarm instance to another node, by a copy of its data. The
//! instance stops, its data volume (and its backup repository's: one
//! history, carried along) is copied to the new node, the registry
//! and stack name the new node, and it starts there; only then does the old
//! node's copy go. Any failure before that leaves it on the old node, as it
//! was, and removes what the move made on the new one.

use super::lifecycle::{operate, up_inner};
use super::placement::{choose, Placement};
use super::views::InstanceView;
use super::{blocking, find};
use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::provision;
use crate::registry::{self, Instance, Intent, State};

/// What a move did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Moved {
    pub instance: InstanceView,
    /// The node it was on.
    pub from: String,
    /// The old node's copy could not be removed (the move itself
    /// succeeded): what went wrong, for the user to clean up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_behind: Option<String>,
}

pub async fn move_to(home: &Home, key: &str, node: &str) -> Result<Moved> {
    let inst = find(home, key).await?;
    let Some(from) = inst.node.clone() else {
        return Err(Error::invalid(
            "engine",
            "moving an instance to another node needs a swarm home; this home's engine is compose (one host)",
        ));
    };
    if from == node {
        return Err(Error::Conflict(format!(
            "'{}' is on node {node} already",
            inst.name
        )));
    }
    let engine = engine::of(home);
    let nodes = engine::needs_nodes(engine.as_ref(), "moving an instance to another node")?
        .nodes()
        .await?;
    let (h, id, memory) = (home.clone(), inst.id.clone(), inst.memory);
    let others = blocking(move || {
        let mut reg = registry::load(&h)?;
        reg.remove(&id);
        Ok(reg)
    })
    .await?;
    let to = choose(&others, &nodes, memory, Some(node))?;
    let left_behind = std::sync::Arc::new(std::sync::Mutex::new(None));
    let lb = left_behind.clone();
    let from2 = from.clone();
    let view = operate(home, key, Intent::Start, move |inst| async move {
        relocate(home, inst, &from2, to, &lb).await
    })
    .await?;
    let left_behind = left_behind.lock().map(|mut l| l.take()).unwrap_or(None);
    Ok(Moved {
        instance: view,
        from,
        left_behind,
    })
}

async fn relocate(
    home: &Home,
    inst: Instance,
    from: &str,
    to: Placement,
    left_behind: &std::sync::Mutex<Option<String>>,
) -> Result<InstanceView> {
    let engine = engine::of(home);
    let nodes = engine::needs_nodes(engine.as_ref(), "moving an instance to another node")?;
    let was_running = inst.state == State::Running;
    // Refusable before anything stops.
    nodes.check_move(&inst.id, &to.node).await?;
    // Stopped, and waited for: the copy reads a cleanly shut down cluster.
    engine.down(&inst.id).await?;
    // A failed copy removes what it made; the old node's data was only read.
    if let Err(e) = nodes.move_data(&inst.id, &inst.image, from, &to.node).await {
        if was_running {
            up_inner(home, inst).await?;
        }
        return Err(e);
    }
    let moved = async {
        let updated = pin(home, &inst.id, &to.node, &to.address).await?;
        if was_running {
            up_inner(home, updated).await
        } else {
            super::views::status_view(home, &updated).await
        }
    }
    .await;
    match moved {
        Ok(view) => {
            if let Err(e) = nodes.clear_node(&inst.id, from).await {
                let what = format!(
                    "the old copy on {from} could not be removed ({e}); remove its volumes {id}_data and {id}_repo there by hand",
                    id = inst.id
                );
                log::warn!("{what}");
                if let Ok(mut l) = left_behind.lock() {
                    *l = Some(what);
                }
            }
            Ok(view)
        }
        Err(e) => {
            // Back as it was: pinned to the old node, and the new node's
            // copy (made by this move) removed.
            let _ = engine.down(&inst.id).await;
            let _ = nodes.clear_node(&inst.id, &to.node).await;
            let back = pin(home, &inst.id, from, &inst.bind_address).await?;
            if was_running {
                up_inner(home, back).await?;
            }
            Err(e)
        }
    }
}

/// The registry entry and the stack file naming `node` (and its address).
async fn pin(home: &Home, id: &str, node: &str, address: &str) -> Result<Instance> {
    let (h, id, node, address) = (
        home.clone(),
        id.to_string(),
        node.to_string(),
        address.to_string(),
    );
    blocking(move || {
        let updated = registry::update(&h, |reg| {
            let i = reg.find_mut(&id).ok_or_else(|| registry::not_found(&id))?;
            i.node = Some(node);
            i.bind_address = address;
            Ok(i.clone())
        })?;
        provision::rewrite(
            &h.instance_dir(&id),
            &updated,
            &crate::engine::project_file(&updated, &h.tag()),
        )?;
        Ok(updated)
    })
    .await
}
