//! The swarm engine's work on a stack's services and the manager's view
//! of them: scaling, removal, the tasks as containers (an instance on an
//! unavailable node marked so), and the host checks.

use super::super::docker::QUICK_TIMEOUT;
use super::super::{Container, ContainerState, HostCheck, NodeInfo, PsMap, Service};
use super::state::{mark_node_down, parse_tasks, why_unavailable, TASK_FORMAT};
use super::{Swarm, CONTAINERS_GONE, SCALE_TIMEOUT};
use crate::engine::MultiNode;
use crate::error::{Error, Result};
use std::time::Duration;

pub(super) enum NodeState {
    Available,
    /// The node's name, and `down`, `drained` or GONE_FROM_SWARM.
    Unavailable(String, &'static str),
}

/// The refusal of work on instance `id` because its node `name` is `why`.
pub(super) fn refusal(id: &str, name: &str, why: &str) -> Error {
    Error::Conflict(format!(
        "instance {id} lives on node {name}, which is {why}; its data stays on that node and it is never started elsewhere. Bring the node back (for a drained one: docker node update --availability active {name}); if it is gone for good, remove it from the swarm (docker node rm --force {name}) and destroy the instance"
    ))
}

impl Swarm {
    /// Scales every service of the instance to `n` and waits until the
    /// tasks converge (0: their containers have stopped).
    pub(super) async fn scale(&self, id: &str, n: u32) -> Result<()> {
        let existing = self.existing_services(id).await?;
        if existing.is_empty() {
            return Ok(());
        }
        let mut args = vec![
            "service".to_string(),
            "scale".into(),
            "--detach=false".into(),
        ];
        args.extend(existing.iter().map(|s| format!("{s}={n}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, None, SCALE_TIMEOUT).await.map(|_| ())
    }

    pub(super) async fn existing_services(&self, id: &str) -> Result<Vec<String>> {
        let filter = format!("label=com.docker.stack.namespace={id}");
        let out = self
            .run(
                &[
                    "service",
                    "ls",
                    "--filter",
                    &filter,
                    "--format",
                    "{{.Name}}",
                ],
                None,
                QUICK_TIMEOUT,
            )
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Removes the stack, then (on its node) its containers' leftovers and
    /// its volumes.
    /// The stack, and with `volumes` the instance's volumes on its node
    /// (all but its backup repository with `keep_repo`).
    pub(super) async fn remove(&self, id: &str, volumes: bool, keep_repo: bool) -> Result<()> {
        self.scale(id, 0).await?;
        self.run(&["stack", "rm", id], None, QUICK_TIMEOUT).await?;
        if !volumes {
            return Ok(());
        }
        let node = match self.node_of(id) {
            Ok(n) => n,
            Err(_) => return Ok(()),
        };
        let ep = self.endpoint(&node).await?;
        let filter = format!("label=com.docker.stack.namespace={id}");
        let deadline = tokio::time::Instant::now() + CONTAINERS_GONE;
        loop {
            let left = self
                .run(
                    &["-H", &ep, "ps", "-aq", "--filter", &filter],
                    None,
                    QUICK_TIMEOUT,
                )
                .await?;
            if left.trim().is_empty() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Timeout {
                    what: format!("the containers of {id} to go from node {node}"),
                    secs: CONTAINERS_GONE.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        super::relocate::remove_volumes(self.docker(), &ep, id, keep_repo).await
    }

    /// The tasks the manager wants running for this home's services.
    pub(super) async fn tasks(
        &self,
        only: Option<&str>,
        service: Option<&Service>,
    ) -> Result<PsMap> {
        let mut args = vec![
            "service".to_string(),
            "ls".into(),
            "--filter".into(),
            format!("label=dbaas.home={}", self.home.tag()),
            "--format".into(),
            "{{.Name}} {{.Replicas}}".into(),
        ];
        if let Some(id) = only {
            args.extend(["--filter".into(), format!("label=dbaas.instance={id}")]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let listed = self.run(&a, None, QUICK_TIMEOUT).await?;
        // (name, wanted: not scaled to zero), from `NAME RUNNING/WANTED`.
        let mut services: Vec<(&str, bool)> = listed
            .lines()
            .filter_map(|l| {
                let (name, replicas) = l.trim().split_once(' ')?;
                let wanted = replicas.split('/').nth(1).is_some_and(|w| w.trim() != "0");
                Some((name, wanted))
            })
            .collect();
        if let Some(s) = service {
            let suffix = format!("_{}", s.name());
            services.retain(|(n, _)| n.ends_with(&suffix));
        }
        let mut map = PsMap::new();
        if services.is_empty() {
            return Ok(map);
        }
        let mut args = vec![
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            TASK_FORMAT,
        ];
        args.extend(services.iter().map(|(n, _)| *n));
        let out = self.run(&args, None, QUICK_TIMEOUT).await?;
        for (id, c) in parse_tasks(&out) {
            map.entry(id).or_default().push(c);
        }
        // A service that wants a task but has none yet (just deployed) is
        // starting; one scaled to zero has no container, as a stopped
        // compose instance.
        for (s, wanted) in services {
            let Some((id, svc)) = s.rsplit_once('_').filter(|_| wanted) else {
                continue;
            };
            let cs = map.entry(id.to_string()).or_default();
            let svc = Service::parse(svc);
            if !cs.iter().any(|c| c.service == svc) {
                cs.push(Container {
                    name: s.to_string(),
                    service: svc,
                    state: ContainerState::Created,
                    health: None,
                    status: "no task yet".into(),
                });
            }
        }
        self.mark_unavailable(&mut map).await;
        Ok(map)
    }

    /// Marks the instances whose node is down, drained or gone. Without
    /// the nodes the tasks' own states stand (a failed node listing must
    /// not fail every status read).
    async fn mark_unavailable(&self, map: &mut PsMap) {
        let nodes = self.nodes().await.unwrap_or_else(|e| {
            log::warn!("listing the swarm's nodes: {e}");
            vec![]
        });
        // A node may also be missing from the list (removed from the
        // swarm): every instance's pin is checked.
        if nodes.is_empty() {
            return;
        }
        let pinned = map
            .keys()
            .filter_map(|id| Some((id.clone(), self.node_of(id).ok()?)))
            .collect();
        mark_node_down(map, &pinned, &nodes);
    }

    /// Refuses work on an instance whose node is down or drained: it would
    /// wait for a task that cannot start, and the data is on that node.
    pub(super) async fn node_available(&self, id: &str) -> Result<()> {
        match self.node_state(id).await? {
            NodeState::Available => Ok(()),
            NodeState::Unavailable(name, why) => Err(refusal(id, &name, why)),
        }
    }

    /// Whether the instance's node can run it; the name and why not.
    pub(super) async fn node_state(&self, id: &str) -> Result<NodeState> {
        let Ok(name) = self.node_of(id) else {
            return Ok(NodeState::Available);
        };
        let nodes = self.nodes().await?;
        Ok(match why_unavailable(&nodes, &name) {
            None => NodeState::Available,
            Some(why) => NodeState::Unavailable(name, why),
        })
    }

    /// The manager, then the nodes: what `doctor` shows of a swarm.
    pub(super) async fn checks(&self) -> Vec<HostCheck> {
        let info = self.manager_state().await;
        let manager = match info {
            Ok(s) if s.trim() == "active true" => Ok("a swarm manager answers".to_string()),
            Ok(s) => Err(format!(
                "the daemon is not a swarm manager (state: {})",
                s.trim()
            )),
            Err(e) => Err(e.to_string()),
        };
        let fatal = manager.is_err();
        let mut checks = vec![HostCheck {
            check: "swarm",
            outcome: manager,
            fix: "point DOCKER_HOST at a manager of the swarm (docker swarm init makes one)",
            fatal: true,
        }];
        if fatal {
            return checks;
        }
        let nodes = self.nodes().await;
        let outcome = match &nodes {
            Ok(ns) => {
                let usable: Vec<&NodeInfo> = ns.iter().filter(|n| n.usable()).collect();
                let drained: Vec<&str> = ns
                    .iter()
                    .filter(|n| n.availability != "active")
                    .map(|n| n.name.as_str())
                    .collect();
                let down: Vec<&str> = ns
                    .iter()
                    .filter(|n| n.state != "ready")
                    .map(|n| n.name.as_str())
                    .collect();
                let mut text = format!("{} of {} nodes take new instances", usable.len(), ns.len());
                if !drained.is_empty() {
                    text.push_str(&format!("; drained or paused: {}", drained.join(", ")));
                }
                if !down.is_empty() {
                    text.push_str(&format!("; down: {}", down.join(", ")));
                }
                if usable.is_empty() {
                    Err(text)
                } else {
                    Ok(text)
                }
            }
            Err(e) => Err(e.to_string()),
        };
        checks.push(HostCheck {
            check: "nodes",
            outcome,
            fix: "label the nodes dbaas may use: docker node update --label-add dbaas=true NODE",
            fatal: false,
        });
        checks
    }
}
