//! The engine of a Docker Swarm cluster: each instance is the stack
//! `instances/<id>/stack.yml` (rendered from the spec by stack_file.rs), deployed with
//! `docker stack deploy` through a manager (DOCKER_HOST, or DBAAS_DOCKER's
//! CLI), every service pinned to the instance's node. Status comes from the
//! manager's tasks. What only a node's own daemon can do (exec, attach,
//! removing a volume) goes to the endpoint in the node's `dbaas.endpoint`
//! label, such as `ssh://root@db2` (the docker CLI's own ssh transport).

pub mod backups;
mod locate;
pub mod mirror;
mod nodes;
mod once;
pub mod relocate;
mod services;
pub mod stack_file;
pub mod state;

use super::docker::{self, QUICK_TIMEOUT};

use super::{Attach, Engine, HostCheck, Mount, PsMap, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use state::GONE_FROM_SWARM;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use stack_file::{stack_file, STACK_FILE};

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
    docker: std::sync::Arc<crate::engine::discovery::Docker>,
}

impl Swarm {
    pub fn new(home: &Home) -> Swarm {
        Swarm {
            home: home.clone(),
            docker: crate::engine::discovery::of(&home.settings.docker),
        }
    }

    fn docker(&self) -> &str {
        &self.docker.cli
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

    fn capabilities(&self) -> super::Capabilities {
        super::Capabilities {
            warm_pool: false,
            s3_network: false,
            in_place_restore: false,
        }
    }

    fn describe(&self) -> &'static str {
        "swarm: instances run on the nodes of the swarm DOCKER_HOST manages"
    }

    /// A swarm home has no S3 network (ops refuses one before).
    async fn preflight(&self, image: &str, _s3_network: Option<&str>) -> Result<()> {
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
        // The stack first (`up` refuses an unavailable node), so that a
        // restart applies what a resize wrote (a deploy of an unchanged
        // stack changes nothing); then a new task of every service, waited
        // for.
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
        id: &str,
        service: &Service,
        mounts: &[Mount],
        argv: &[String],
        timeout: Duration,
    ) -> Result<String> {
        if *service != Service::Db {
            return Err(unsupported(
                "a one-off container of a service other than db",
            ));
        }
        // On the instance's node, where its data volume is (or will be).
        self.node_available(id).await?;
        let ep = self.endpoint(&self.node_of(id)?).await?;
        let (image, memory) = self.image_and_memory(id)?;
        let (tag, dir) = (self.home.tag(), self.home.instance_dir(id));
        let once = once::OneOff {
            docker: self.docker(),
            endpoint: &ep,
            id,
            home_tag: &tag,
            image: &image,
            memory,
            dir: &dir,
        };
        once.run(mounts, argv, timeout).await
    }

    async fn host_checks(&self) -> Vec<HostCheck> {
        self.checks().await
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
        self.node_available(id).await?;
        let (ep, c) = self.container_of(id, service).await?;
        let mut args = vec!["-H".to_string(), ep];
        args.extend(docker::update_args(memory, cpus, &c));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
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

    fn multi_node(&self) -> Option<&dyn super::MultiNode> {
        Some(self)
    }

    async fn destroy(&self, id: &str, keep_backups: bool) -> Result<()> {
        match self.node_state(id).await? {
            // Removed from the swarm: nothing of it can be reached, and it
            // will not come back. The stack goes from the manager; what the
            // node held went with it.
            services::NodeState::Unavailable(node, GONE_FROM_SWARM) => {
                log::warn!("{id}: its node {node} is gone from the swarm; removing the stack only (its volumes were on that node)");
                self.run(&["stack", "rm", id], None, QUICK_TIMEOUT)
                    .await
                    .map(|_| ())
            }
            services::NodeState::Unavailable(node, why) => Err(services::refusal(id, &node, why)),
            services::NodeState::Available => self.remove(id, true, keep_backups).await,
        }
    }
}
