//! The engine of a Docker Swarm cluster: each instance is the stack
//! `instances/<id>/stack.yml` (rendered by provision.rs), deployed with
//! `docker stack deploy` through a manager (DOCKER_HOST, or DBAAS_DOCKER's
//! CLI), every service pinned to the instance's node. Status comes from the
//! manager's tasks. What only a node's own daemon can do (exec, attach,
//! removing a volume) goes to the endpoint in the node's `dbaas.endpoint`
//! label, such as `ssh://root@db2` (the docker CLI's own ssh transport).

use super::docker::{self, QUICK_TIMEOUT};
use super::swarm_state::{mark_node_down, parse_nodes, parse_tasks, unavailable, TASK_FORMAT};
use super::{
    Attach, Container, ContainerState, Engine, HostCheck, Mount, NodeInfo, PsMap, Service,
};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::provision::STACK_FILE;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `stack deploy`: creates secrets, configs, networks and services; does
/// not wait for the tasks.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(180);
/// Scaling to zero waits for PostgreSQL's clean shutdown (30 s grace).
const SCALE_TIMEOUT: Duration = Duration::from_secs(120);
/// A node removes a stopped task's container a moment after the manager
/// forgets it; its volume can go only then.
const CONTAINERS_GONE: Duration = Duration::from_secs(60);
/// The node label that names how to reach a node's own daemon.
pub const ENDPOINT_LABEL: &str = "dbaas.endpoint";

pub struct Swarm {
    home: Home,
}

impl Swarm {
    pub fn new(home: &Home) -> Swarm {
        Swarm { home: home.clone() }
    }

    fn docker(&self) -> &str {
        &self.home.settings.docker
    }

    fn file(&self, id: &str) -> PathBuf {
        self.home.instance_dir(id).join(STACK_FILE)
    }

    async fn run(&self, args: &[&str], cwd: Option<&Path>, timeout: Duration) -> Result<String> {
        docker::run(self.docker(), args, cwd, timeout)
            .await
            .map(|o| o.stdout)
    }

    /// `LocalNodeState ControlAvailable`: `active true` on a manager.
    async fn manager_state(&self) -> Result<String> {
        let format = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}";
        self.run(&["info", "--format", format], None, QUICK_TIMEOUT)
            .await
    }

    /// A new task for the service (stop-first: the old one stops before),
    /// waited for.
    async fn force_update(&self, service: &str) -> Result<()> {
        let args = [
            "service",
            "update",
            "--force",
            "--detach=false",
            "-q",
            service,
        ];
        self.run(&args, None, SCALE_TIMEOUT).await.map(|_| ())
    }

    /// The node an instance is pinned to, read from its stack file.
    fn node_of(&self, id: &str) -> Result<String> {
        let file = self.file(id);
        let text = crate::safe_fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("constraints: [\"node.hostname == ")
                    .and_then(|r| r.strip_suffix("\"]"))
            })
            .map(str::to_string)
            .ok_or_else(|| Error::Failed(format!("{} names no node", self.file(id).display())))
    }

    /// `docker -H ENDPOINT` of the node `name`, from its label.
    async fn endpoint(&self, name: &str) -> Result<String> {
        let nodes = self.nodes().await?;
        let node = nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::NotFound {
                what: format!("the swarm node '{name}'"),
                hint: "`dbaasctl nodes` lists the nodes".into(),
            })?;
        node.labels.get(ENDPOINT_LABEL).cloned().ok_or_else(|| {
            Error::Docker(format!(
                "node '{name}' has no {ENDPOINT_LABEL} label, so dbaas cannot reach its daemon; add one, e.g. docker node update --label-add {ENDPOINT_LABEL}=ssh://root@{name} {name}"
            ))
        })
    }

    /// The running container of `service` on the instance's node, and the
    /// endpoint of that node's daemon.
    async fn container_of(&self, id: &str, service: &Service) -> Result<(String, String)> {
        let ep = self.endpoint(&self.node_of(id)?).await?;
        let filter = format!(
            "label=com.docker.swarm.service.name={id}_{}",
            service.name()
        );
        let out = self
            .run(
                &[
                    "-H",
                    &ep,
                    "ps",
                    "-q",
                    "--filter",
                    &filter,
                    "--filter",
                    "status=running",
                ],
                None,
                QUICK_TIMEOUT,
            )
            .await?;
        match out.lines().next() {
            Some(c) => Ok((ep, c.trim().to_string())),
            None => Err(Error::Conflict(format!(
                "instance {id} has no running {} container; start it first",
                service.name()
            ))),
        }
    }

    /// Scales every service of the instance to `n` and waits until the
    /// tasks converge (0: their containers have stopped).
    async fn scale(&self, id: &str, n: u32) -> Result<()> {
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

    async fn existing_services(&self, id: &str) -> Result<Vec<String>> {
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
    async fn remove(&self, id: &str, volumes: bool) -> Result<()> {
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
        super::swarm_move::remove_volumes(self.docker(), &ep, id).await
    }

    /// The tasks the manager wants running for this home's services.
    async fn tasks(&self, only: Option<&str>, service: Option<&Service>) -> Result<PsMap> {
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
        let nodes = self.nodes().await?;
        if nodes.iter().any(|n| unavailable(n).is_some()) {
            let pinned = map
                .keys()
                .filter_map(|id| Some((id.clone(), self.node_of(id).ok()?)))
                .collect();
            mark_node_down(&mut map, &pinned, &nodes);
        }
        Ok(map)
    }

    /// Refuses work on an instance whose node is down or drained: it would
    /// wait for a task that cannot start, and the data is on that node.
    async fn node_available(&self, id: &str) -> Result<()> {
        let Ok(name) = self.node_of(id) else {
            return Ok(());
        };
        let nodes = self.nodes().await?;
        let why = match nodes.iter().find(|n| n.name == name) {
            Some(n) => unavailable(n),
            None => Some("gone from the swarm"),
        };
        match why {
            None => Ok(()),
            Some(why) => Err(Error::Conflict(format!(
                "instance {id} lives on node {name}, which is {why}; its data stays on that node and it is never started elsewhere. Bring the node back (for a drained one: docker node update --availability active {name}), or restore it onto another node from its S3 repository"
            ))),
        }
    }
}

fn unsupported(what: &str) -> Error {
    Error::Invalid {
        field: "engine".into(),
        reason: format!(
            "{what} is not available on the swarm engine yet; use a compose home for it"
        ),
    }
}

#[async_trait::async_trait]
impl Engine for Swarm {
    fn kind(&self) -> &'static str {
        "swarm"
    }

    async fn preflight(&self, image: &str) -> Result<()> {
        let info = self.manager_state().await?;
        if info.trim() != "active true" {
            return Err(Error::Docker(format!(
                "this home's engine is swarm, but the daemon dbaas talks to is not a swarm manager (state: {}); point DOCKER_HOST at a manager, or run `docker swarm init` there",
                info.trim()
            )));
        }
        if self.image_id(image).await.is_err() {
            // The nodes pull it; the manager checks that the name resolves.
            self.run(&["pull", "-q", image], None, DEPLOY_TIMEOUT)
                .await
                .map_err(|e| {
                    Error::Docker(format!(
                        "the image {image} is not in a registry the swarm can pull from ({e}); push it there and set DBAAS_IMAGE to its name, e.g. registry.example:5000/dbaas/postgres:{{version}}"
                    ))
                })?;
        }
        Ok(())
    }

    fn provisioned(&self, id: &str) -> bool {
        self.file(id).is_file()
    }

    fn defines(&self, id: &str, service: &Service) -> bool {
        crate::safe_fs::read_to_string(&self.file(id))
            .is_ok_and(|f| f.contains(&format!("\n  {}:\n", service.name())))
    }

    async fn up(&self, id: &str) -> Result<()> {
        self.node_available(id).await?;
        // The file says one replica of each service: a deploy also starts a
        // stopped (scaled to zero) instance again.
        let dir = self.home.instance_dir(id);
        let file = self.file(id).to_string_lossy().into_owned();
        let args = ["stack", "deploy", "-c", &file, "--prune", id];
        match self.run(&args, Some(&dir), DEPLOY_TIMEOUT).await {
            // Swarm's optimistic concurrency: the service changed between
            // the deploy's read and its write; the next deploy reads anew.
            Err(Error::Compose(f)) if f.stderr_tail.contains("update out of sequence") => self
                .run(&args, Some(&dir), DEPLOY_TIMEOUT)
                .await
                .map(|_| ()),
            r => r.map(|_| ()),
        }
    }

    async fn create(&self, _id: &str) -> Result<()> {
        // A stack's services are made by its deploy.
        Ok(())
    }

    async fn up_service(&self, id: &str, _service: &Service) -> Result<()> {
        // One deploy starts every service; the sidecar waits for the db.
        self.up(id).await
    }

    async fn down(&self, id: &str) -> Result<()> {
        // Scaled to zero, not removed: removal returns before the node has
        // stopped the server, and a deploy then could start a second one
        // on the same volume.
        self.node_available(id).await?;
        self.scale(id, 0).await
    }

    async fn restart(&self, id: &str) -> Result<()> {
        self.node_available(id).await?;
        // The stack first, so that a restart applies what a resize wrote
        // (a deploy of an unchanged stack changes nothing); then a new task
        // of every service, waited for.
        self.up(id).await?;
        for s in self.existing_services(id).await? {
            self.force_update(&s).await?;
        }
        Ok(())
    }

    async fn apply_changes(&self, id: &str) -> Result<()> {
        // A deploy alone returns before the old task has stopped: readiness
        // would be read from it.
        self.restart(id).await
    }

    async fn restart_service(&self, id: &str, service: &Service) -> Result<()> {
        self.node_available(id).await?;
        self.force_update(&format!("{id}_{}", service.name())).await
    }

    async fn ps(&self, only: Option<&str>) -> Result<PsMap> {
        self.tasks(only, None).await
    }

    async fn ps_service(&self, service: &Service) -> Result<PsMap> {
        self.tasks(None, Some(service)).await
    }

    async fn logs(
        &self,
        id: &str,
        service: &Service,
        tail: u32,
        max_bytes: usize,
    ) -> Result<Vec<String>> {
        let s = format!("{id}_{}", service.name());
        let tail = tail.to_string();
        let out = docker::run(
            self.docker(),
            &[
                "service",
                "logs",
                "--raw",
                "--no-task-ids",
                "--tail",
                &tail,
                &s,
            ],
            None,
            QUICK_TIMEOUT,
        )
        .await?;
        let mut lines: Vec<String> = out
            .stdout
            .lines()
            .chain(out.stderr.lines())
            .map(str::to_string)
            .collect();
        let mut total = 0;
        let keep = lines
            .iter()
            .rev()
            .take_while(|l| {
                total += l.len() + 1;
                total <= max_bytes
            })
            .count();
        Ok(lines.split_off(lines.len() - keep))
    }

    async fn attach(&self, id: &str, what: Attach<'_>) -> Result<i32> {
        let args: Vec<String> = match what {
            Attach::Logs { tail, follow } => {
                let mut a: Vec<String> = ["service", "logs", "--raw", "--no-task-ids", "--tail"]
                    .map(String::from)
                    .into();
                a.push(tail.to_string());
                if follow {
                    a.push("--follow".into());
                }
                a.push(format!("{id}_db"));
                a
            }
            Attach::Psql {
                user,
                database,
                command,
                tty,
            } => {
                let (ep, c) = self.container_of(id, &Service::Db).await?;
                let mut a: Vec<String> = vec!["-H".into(), ep, "exec".into()];
                if tty {
                    a.push("-it".into());
                } else {
                    a.push("-i".into());
                }
                a.push(c);
                a.extend(["psql", "-U", user, "-d", database].map(String::from));
                if let Some(sql) = command {
                    a.extend(["-c".to_string(), sql.to_string()]);
                }
                a
            }
            Attach::Run { service, argv } => {
                let (ep, c) = self.container_of(id, &service).await?;
                let mut a: Vec<String> = vec!["-H".into(), ep, "exec".into(), "-i".into(), c];
                a.extend(argv);
                a
            }
        };
        let (docker, root) = (self.docker().to_string(), self.home.root.clone());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            docker::interactive(&docker, &args, &root)
        })
        .await
        .map_err(|e| Error::Failed(format!("internal task failed: {e}")))?
    }

    async fn exec_piped(
        &self,
        id: &str,
        service: &Service,
        argv: &[String],
    ) -> Result<tokio::process::Child> {
        let (ep, c) = self.container_of(id, service).await?;
        let mut args = vec!["-H", ep.as_str(), "exec", "-i", c.as_str()];
        args.extend(argv.iter().map(String::as_str));
        docker::spawn_piped(self.docker(), &args, &self.home.root)
    }

    async fn exec(
        &self,
        id: &str,
        service: &Service,
        argv: &[String],
        timeout: Duration,
    ) -> Result<String> {
        let (ep, c) = self.container_of(id, service).await?;
        let mut args = vec!["-H", ep.as_str(), "exec", c.as_str()];
        args.extend(argv.iter().map(String::as_str));
        self.run(&args, None, timeout).await
    }

    async fn run_once(
        &self,
        _id: &str,
        _service: &Service,
        _mounts: &[Mount],
        _argv: &[String],
        _timeout: Duration,
    ) -> Result<String> {
        Err(unsupported(
            "a one-off container (restoring into a new instance)",
        ))
    }

    async fn host_checks(&self) -> Vec<HostCheck> {
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

    async fn image_present(&self, image: &str) -> bool {
        self.image_id(image).await.is_ok()
    }

    async fn update_limits(
        &self,
        id: &str,
        service: &Service,
        memory: u64,
        cpus: f64,
    ) -> Result<()> {
        // On the task's own container, by its node's daemon: the service's
        // spec keeps the old limits until the next deploy (the stack file
        // has the new ones), since changing it would replace the task.
        let (ep, c) = self.container_of(id, service).await?;
        let (m, swap, cpus) = (
            memory.to_string(),
            (memory * 2).to_string(),
            format!("{cpus}"),
        );
        let args = [
            "-H",
            &ep,
            "update",
            "--memory",
            &m,
            "--memory-swap",
            &swap,
            "--cpus",
            &cpus,
            &c,
        ];
        self.run(&args, None, QUICK_TIMEOUT).await.map(|_| ())
    }

    async fn image_id(&self, image: &str) -> Result<String> {
        self.run(
            &["image", "inspect", "--format", "{{.Id}}", image],
            None,
            QUICK_TIMEOUT,
        )
        .await
        .map(|id| id.trim().to_string())
    }

    async fn make_template(&self, _image: &str, _dir: &Path, _timeout: Duration) -> Result<()> {
        Err(unsupported("a template data directory"))
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let ids = self.run(&["node", "ls", "-q"], None, QUICK_TIMEOUT).await?;
        let mut args = vec!["node", "inspect"];
        args.extend(ids.lines().map(str::trim).filter(|l| !l.is_empty()));
        if args.len() == 2 {
            return Ok(vec![]);
        }
        parse_nodes(&self.run(&args, None, QUICK_TIMEOUT).await?)
    }

    async fn move_data(&self, id: &str, image: &str, from: &str, to: &str) -> Result<()> {
        let (a, b) = (self.endpoint(from).await?, self.endpoint(to).await?);
        let tag = self.home.tag();
        super::swarm_move::copy_data(self.docker(), &a, &b, id, image, &tag).await
    }

    async fn clear_node(&self, id: &str, node: &str) -> Result<()> {
        let ep = self.endpoint(node).await?;
        super::swarm_move::remove_stopped(self.docker(), &ep, id).await?;
        super::swarm_move::remove_volumes(self.docker(), &ep, id).await
    }

    fn mirrors_metrics(&self) -> bool {
        true
    }

    async fn mirror_metrics(&self, id: &str, dir: &Path, keep: u32) -> Result<()> {
        use super::swarm_mirror::{apply, offset, Synced, CHUNK, SCRIPT};
        let (ep, c) = self.container_of(id, &Service::Agent).await?;
        // A rotation takes two rounds (the old file's rest, then the new
        // one), a backlog a few.
        for _ in 0..4 {
            let from = offset(dir);
            let (off, chunk) = (from.to_string(), CHUNK.to_string());
            let args = [
                "-H", &ep, "exec", &c, "bash", "-c", SCRIPT, "mirror", &off, &chunk,
            ];
            let answer = self.run(&args, None, QUICK_TIMEOUT).await?;
            let (dir, id) = (dir.to_path_buf(), id.to_string());
            let synced = tokio::task::spawn_blocking(move || apply(&dir, from, keep, &answer))
                .await
                .map_err(|e| Error::Failed(format!("internal task failed: {e}")))?
                .map_err(|e| Error::io(format!("mirroring the metrics of {id}"), e))?;
            match synced {
                Synced::Rotated => continue,
                Synced::Appended(n) if n >= CHUNK / 2 => continue,
                Synced::Appended(_) => break,
            }
        }
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<()> {
        self.node_available(id).await?;
        self.remove(id, true).await
    }
}
