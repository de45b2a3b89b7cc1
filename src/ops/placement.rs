//! Where a new instance runs on a swarm: on a node labelled for dbaas
//! (`dbaas=true`), up and active, whose memory less the limits of the
//! instances already placed there holds the new one; the freest such node,
//! or the one the user names. Decided under the registry lock, so two
//! creates cannot both count the same free memory.

use crate::engine::NodeInfo;
use crate::error::{Error, Result};
use crate::registry::Registry;

/// The chosen node: its name and the address its published ports answer on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    pub address: String,
}

/// Memory of `node` that instances of this home hold (their limits).
pub fn used_on(reg: &Registry, node: &str) -> u64 {
    reg.instances
        .iter()
        .filter(|i| i.node.as_deref() == Some(node))
        .map(|i| i.memory)
        .sum()
}

/// Refuses a resize to `memory` of an instance on `node` when the node's
/// memory, less what the home's other instances there hold, is less.
/// `reg` is the registry without the instance.
pub fn check_node(reg: &Registry, nodes: &[NodeInfo], node: &str, memory: u64) -> Result<()> {
    let Some(n) = nodes.iter().find(|n| n.name == node) else {
        return Err(Error::Conflict(format!(
            "the instance's node '{node}' is not in the swarm; `dbaasctl nodes` lists its nodes"
        )));
    };
    let free = n.memory.saturating_sub(used_on(reg, node));
    if free < memory {
        return Err(Error::Conflict(format!(
            "node '{node}' has {} MB free for this instance, less than the {} MB asked for; ask for less --memory",
            free >> 20,
            memory >> 20
        )));
    }
    Ok(())
}

pub fn choose(
    reg: &Registry,
    nodes: &[NodeInfo],
    memory: u64,
    wanted: Option<&str>,
) -> Result<Placement> {
    let free = |n: &NodeInfo| n.memory.saturating_sub(used_on(reg, &n.name));
    let fmt_mb = |b: u64| format!("{} MB", b >> 20);
    if let Some(name) = wanted {
        let Some(n) = nodes.iter().find(|n| n.name == name) else {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::invalid(
                "node",
                format!(
                    "the swarm has no node '{name}'; its nodes are: {}",
                    names.join(", ")
                ),
            ));
        };
        if !n.usable() {
            return Err(Error::Conflict(format!(
                "node '{name}' does not take new instances (state {}, availability {}, dbaas label {}); choose another --node or omit it",
                n.state,
                n.availability,
                n.labels.get("dbaas").map_or("missing", String::as_str)
            )));
        }
        if free(n) < memory {
            return Err(Error::Conflict(format!(
                "node '{name}' has {} free of {} for instances, less than the {} asked for; choose another --node, omit it, or ask for less --memory",
                fmt_mb(free(n)),
                fmt_mb(n.memory),
                fmt_mb(memory)
            )));
        }
        return Ok(Placement {
            node: n.name.clone(),
            address: n.address.clone(),
        });
    }
    let best = nodes
        .iter()
        .filter(|n| n.usable() && free(n) >= memory)
        .max_by_key(|n| (free(n), std::cmp::Reverse(n.name.clone())));
    match best {
        Some(n) => Ok(Placement {
            node: n.name.clone(),
            address: n.address.clone(),
        }),
        None if nodes.iter().any(|n| n.usable()) => Err(Error::Conflict(format!(
            "no node has {} free for a new instance; destroy instances, add nodes, or ask for less --memory",
            fmt_mb(memory)
        ))),
        None => Err(Error::Conflict(
            "no node of the swarm takes new instances: label some with `docker node update --label-add dbaas=true NODE` (they must be up and active)".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Instance;

    fn node(name: &str, gb: u64, state: &str, avail: &str, label: bool) -> NodeInfo {
        let mut labels = std::collections::BTreeMap::new();
        if label {
            labels.insert("dbaas".to_string(), "true".to_string());
        }
        NodeInfo {
            id: name.into(),
            name: name.into(),
            address: format!("10.0.0.{}", name.len()),
            state: state.into(),
            availability: avail.into(),
            manager: false,
            labels,
            memory: gb << 30,
            cpus: 2.0,
        }
    }

    fn placed(node: &str, memory: u64) -> Instance {
        let mut i = Instance::fixture("db_00000001", "x", 6000);
        i.node = Some(node.into());
        i.memory = memory;
        i
    }

    #[test]
    fn the_freest_usable_node_wins() {
        let nodes = vec![
            node("a", 4, "ready", "active", true),
            node("bb", 4, "ready", "active", true),
            node("ccc", 8, "down", "active", true),
            node("dddd", 8, "ready", "drain", true),
            node("eeeee", 8, "ready", "active", false),
        ];
        let mut reg = Registry::default();
        assert_eq!(choose(&reg, &nodes, 1 << 30, None).unwrap().node, "a");
        reg.instances.push(placed("a", 1 << 30));
        assert_eq!(choose(&reg, &nodes, 1 << 30, None).unwrap().node, "bb");
        assert_eq!(choose(&reg, &nodes, 1 << 30, Some("a")).unwrap().node, "a");
        assert!(choose(&reg, &nodes, 1 << 30, Some("ccc")).is_err());
        assert!(choose(&reg, &nodes, 1 << 30, Some("dddd")).is_err());
        assert!(choose(&reg, &nodes, 1 << 30, Some("zz")).is_err());
        assert!(choose(&reg, &nodes, 5 << 30, None).is_err());
        assert!(choose(&reg, &nodes, 4 << 30, Some("a")).is_err());
        assert!(choose(&reg, &[], 1, None).is_err());
    }
}
