//! What a swarm manager reports, read into dbaas's types: `docker service
//! ps` lines into containers (a task's state in Docker's container words),
//! `docker node inspect` into nodes, and the containers of an instance
//! whose node is down or drained marked so.

use crate::engine::{Container, ContainerState, Health, NodeInfo, PsMap, Service};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, HashMap};

pub const TASK_FORMAT: &str = "{{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.Error}}";

/// `docker service ps` lines into containers by instance: the task state
/// in Docker's container words.
pub fn parse_tasks(out: &str) -> Vec<(String, Container)> {
    let mut v = vec![];
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = line.split('\t');
        let (Some(name), Some(node), Some(current)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let error = f.next().unwrap_or("").trim();
        // `<id>_<service>.<slot>`
        let Some((id, svc)) = name.split('.').next().and_then(|s| s.rsplit_once('_')) else {
            continue;
        };
        let word = current
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_lowercase();
        // Swarm holds a task with a health check in `starting` until its
        // first check passes: its container runs.
        let health = (word == "starting").then_some(Health::Starting);
        let state = match word.as_str() {
            "running" | "starting" => ContainerState::Running,
            "new" | "pending" | "assigned" | "accepted" | "preparing" | "ready" => {
                ContainerState::Created
            }
            "complete" | "shutdown" | "failed" | "rejected" | "orphaned" | "remove" => {
                ContainerState::Exited
            }
            other => ContainerState::Unknown(other.to_string()),
        };
        let mut status = format!("{current} on {node}");
        if !error.is_empty() {
            status.push_str(&format!(": {error}"));
        }
        v.push((
            id.to_string(),
            Container {
                name: name.to_string(),
                service: Service::parse(svc),
                state,
                health,
                status,
            },
        ));
    }
    v
}

/// Why a node cannot run its instances now: `down` (not ready: stopped,
/// unreachable) or `drained`; None when it can. A paused node keeps
/// running what it has.
pub fn unavailable(node: &NodeInfo) -> Option<&'static str> {
    if node.state != "ready" {
        Some("down")
    } else if node.availability == "drain" {
        Some("drained")
    } else {
        None
    }
}

/// Why a node is unavailable when the swarm no longer lists it.
pub const GONE_FROM_SWARM: &str = "gone from the swarm";

/// Why the node named `name` cannot run its instances now (`unavailable`,
/// or GONE_FROM_SWARM when the swarm no longer lists it); None when it can.
pub fn why_unavailable(nodes: &[NodeInfo], name: &str) -> Option<&'static str> {
    match nodes.iter().find(|n| n.name == name) {
        Some(n) => unavailable(n),
        None => Some(GONE_FROM_SWARM),
    }
}

/// Marks every container of an instance pinned to an unavailable node as
/// `NodeDown`, naming the node: Swarm shows such a task as pending with no
/// node (it may not run elsewhere), or as still running on a node that no
/// longer answers, and neither is the truth.
pub fn mark_node_down(map: &mut PsMap, pinned: &HashMap<String, String>, nodes: &[NodeInfo]) {
    for (id, containers) in map.iter_mut() {
        let Some(node) = pinned.get(id) else {
            continue;
        };
        if let Some(why) = why_unavailable(nodes, node) {
            for c in containers.iter_mut() {
                c.state = ContainerState::NodeDown;
                c.status = format!("node-down: node {node} is {why}");
            }
        }
    }
}

/// `docker node inspect` JSON into nodes.
pub fn parse_nodes(json: &str) -> Result<Vec<NodeInfo>> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::Docker(format!("unexpected docker node inspect output: {e}")))?;
    let mut nodes = vec![];
    for n in v.as_array().into_iter().flatten() {
        let s = |p: &str| {
            n.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        let labels: BTreeMap<String, String> = n
            .pointer("/Spec/Labels")
            .and_then(|l| l.as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let num = |p: &str| n.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
        nodes.push(NodeInfo {
            id: s("/ID"),
            name: s("/Description/Hostname"),
            address: s("/Status/Addr"),
            state: s("/Status/State"),
            availability: s("/Spec/Availability"),
            manager: n.pointer("/ManagerStatus").is_some(),
            labels,
            memory: num("/Description/Resources/MemoryBytes"),
            cpus: num("/Description/Resources/NanoCPUs") as f64 / 1e9,
        });
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_become_containers() {
        let out = "db_1a2b_db.1\tn-w1\tRunning 5 minutes ago\t\n\
                   db_1a2b_agent.1\tn-w1\tPreparing 2 seconds ago\t\n\
                   db_3c_db.1\tn-w2\tRejected 1 second ago\tNo such image: x\n";
        let v = parse_tasks(out);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0, "db_1a2b");
        assert_eq!(v[0].1.service, Service::Db);
        assert!(v[0].1.running());
        assert_eq!(v[1].1.service, Service::Agent);
        assert_eq!(v[1].1.state, ContainerState::Created);
        let starting = parse_tasks("db_9_db.1\tn\tStarting 3 seconds ago\t\n");
        assert!(starting[0].1.running());
        assert_eq!(starting[0].1.health, Some(Health::Starting));
        assert_eq!(v[2].0, "db_3c");
        assert_eq!(v[2].1.state, ContainerState::Exited);
        assert!(v[2].1.status.contains("No such image"), "{}", v[2].1.status);
    }

    fn node(name: &str, state: &str, availability: &str) -> NodeInfo {
        NodeInfo {
            id: name.into(),
            name: name.into(),
            address: String::new(),
            state: state.into(),
            availability: availability.into(),
            manager: false,
            labels: BTreeMap::new(),
            memory: 0,
            cpus: 0.0,
        }
    }

    #[test]
    fn instances_on_an_unavailable_node_are_node_down() {
        let out = "db_a_db.1\tw1\tRunning 5 minutes ago\t\n\
                   db_b_db.2\t\tPending 3 seconds ago\t\n\
                   db_c_db.1\tw3\tRunning 1 minute ago\t\n\
                   db_d_db.1\tw4\tRunning 1 minute ago\t\n";
        let mut map = PsMap::new();
        for (id, c) in parse_tasks(out) {
            map.entry(id).or_default().push(c);
        }
        let pinned: HashMap<String, String> = [
            ("db_a", "w1"),
            ("db_b", "w2"),
            ("db_c", "w3"),
            ("db_d", "w4"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .into();
        let nodes = [
            node("w1", "ready", "active"),
            node("w2", "down", "active"),
            node("w3", "ready", "drain"),
            node("w4", "ready", "pause"),
        ];
        mark_node_down(&mut map, &pinned, &nodes);
        assert!(map["db_a"][0].running());
        assert_eq!(map["db_b"][0].state, ContainerState::NodeDown);
        assert_eq!(map["db_b"][0].status, "node-down: node w2 is down");
        assert_eq!(map["db_c"][0].status, "node-down: node w3 is drained");
        assert!(map["db_d"][0].running(), "a paused node keeps its tasks");
        let mut gone = map.clone();
        mark_node_down(&mut gone, &pinned, &nodes[1..]);
        assert_eq!(
            gone["db_a"][0].status,
            "node-down: node w1 is gone from the swarm"
        );
    }

    #[test]
    fn nodes_parse_from_inspect() {
        let json = r#"[{"ID":"abc","Spec":{"Labels":{"dbaas":"true"},"Availability":"active"},
            "Description":{"Hostname":"n1","Resources":{"NanoCPUs":2000000000,"MemoryBytes":1073741824}},
            "Status":{"State":"ready","Addr":"10.0.0.2"},"ManagerStatus":{"Leader":true}}]"#;
        let n = parse_nodes(json).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].name, "n1");
        assert_eq!(n[0].address, "10.0.0.2");
        assert_eq!(n[0].cpus, 2.0);
        assert!(n[0].manager && n[0].usable());
        assert!(parse_nodes("nope").is_err());
    }
}
