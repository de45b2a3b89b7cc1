//! What a swarm manager reports, read into dbaas's types: `docker service
//! ps` lines into containers (a task's state in Docker's container words,
//! a task on a node that is down marked so), `docker node inspect` into
//! nodes.

use super::{Container, ContainerState, Health, NodeInfo, Service};
use crate::error::{Error, Result};
use std::collections::BTreeMap;

pub const TASK_FORMAT: &str = "{{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.Error}}";

/// `docker service ps` lines into containers by instance: the task state
/// in Docker's container words, and a task on a node that is down says so.
pub fn parse_tasks(out: &str, down_nodes: &[&str]) -> Vec<(String, Container)> {
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
        let mut state = match word.as_str() {
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
        if down_nodes.contains(&node) {
            state = ContainerState::Unknown("node-down".into());
            status = format!("node-down: {node} is not reachable ({current})");
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
        let v = parse_tasks(out, &["n-w2"]);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0, "db_1a2b");
        assert_eq!(v[0].1.service, Service::Db);
        assert!(v[0].1.running());
        assert_eq!(v[1].1.service, Service::Agent);
        assert_eq!(v[1].1.state, ContainerState::Created);
        let starting = parse_tasks("db_9_db.1\tn\tStarting 3 seconds ago\t\n", &[]);
        assert!(starting[0].1.running());
        assert_eq!(starting[0].1.health, Some(Health::Starting));
        assert_eq!(v[2].0, "db_3c");
        assert!(
            v[2].1.status.starts_with("node-down: n-w2"),
            "{}",
            v[2].1.status
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
