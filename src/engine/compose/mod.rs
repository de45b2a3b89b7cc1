//! The engine of one Docker host: each instance is the Compose project
//! `instances/<id>/docker-compose.yml` (rendered from the spec by render.rs), driven by
//! `docker compose -p <id>`; status comes from one `docker ps` for the home.

mod checks;
pub mod ps;
pub mod render;

use super::docker::{self, QUICK_TIMEOUT};
use super::docker_api;
use super::image_lock;
use super::{Attach, Engine, HostCheck, Mount, MountFrom, PsMap, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ps::{containers_map, parse_ps, PS_FORMAT};
pub use render::{compose_file, COMPOSE_FILE};

/// `compose up -d`: creates the network and containers, no waiting on health.
pub const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// `compose down`/`restart`: PostgreSQL gets `STOP_GRACE_SECS` to shut down
/// cleanly.
pub const DOWN_TIMEOUT: Duration = Duration::from_secs(120);
pub const STOP_GRACE_SECS: u32 = 30;
/// A service restarted alone (the agent) holds no data: a short grace.
const SERVICE_STOP_GRACE_SECS: &str = "5";

pub struct Compose {
    home: Home,
    docker: std::sync::Arc<crate::engine::discovery::Docker>,
}

impl Compose {
    pub fn new(home: &Home) -> Compose {
        Compose {
            home: home.clone(),
            docker: crate::engine::discovery::of(&home.settings.docker),
        }
    }

    fn docker(&self) -> &str {
        &self.docker.cli
    }

    fn file(&self, id: &str) -> PathBuf {
        self.home.instance_dir(id).join(COMPOSE_FILE)
    }

    async fn run(&self, args: &[&str], cwd: Option<&Path>, timeout: Duration) -> Result<String> {
        let out = match (&self.docker.compose_plugin, args.split_first()) {
            (Some(plugin), Some((&"compose", rest))) => {
                docker::run(&plugin.to_string_lossy(), rest, cwd, timeout).await
            }
            _ => docker::run(self.docker(), args, cwd, timeout).await,
        };
        out.map(|o| o.stdout)
    }

    /// `docker compose -p ID -f DIR/docker-compose.yml ARGS...`, run in DIR.
    async fn in_project(&self, id: &str, args: &[&str], timeout: Duration) -> Result<()> {
        let dir = self.home.instance_dir(id);
        let file = self.file(id).to_string_lossy().into_owned();
        let mut all = vec!["compose", "-p", id, "-f", file.as_str()];
        all.extend_from_slice(args);
        self.run(&all, Some(&dir), timeout).await.map(|_| ())
    }

    /// `docker compose -p ID -f FILE ARGS...` with its standard output.
    async fn project_output(&self, id: &str, args: &[&str], timeout: Duration) -> Result<String> {
        let dir = self.home.instance_dir(id);
        let file = self.file(id).to_string_lossy().into_owned();
        let mut all = vec!["compose", "-p", id, "-f", file.as_str()];
        all.extend_from_slice(args);
        self.run(&all, Some(&dir), timeout).await
    }

    async fn compose_version(&self) -> Result<String> {
        let out = self
            .run(&["compose", "version", "--short"], None, QUICK_TIMEOUT)
            .await?;
        Ok(out.trim().to_string())
    }

    async fn container_of(&self, id: &str, service: &Service) -> Result<String> {
        let ps = self.ps(Some(id)).await?;
        ps.get(id)
            .and_then(|cs| super::service_of(cs, service))
            .map(|c| c.name.clone())
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "instance {id} has no {} container; start it first",
                    service.name()
                ))
            })
    }

    /// The containers carrying all of `labels`: from the daemon's socket
    /// where it is local, else (or when that fails) from `docker ps`.
    async fn list(&self, labels: Vec<String>) -> Result<PsMap> {
        if let Some(socket) = &self.docker.socket {
            match docker_api::containers(socket, &labels).await {
                Ok(list) => {
                    return Ok(containers_map(list.into_iter().map(|c| {
                        let name = c.names.first().map(|n| n.trim_start_matches('/'));
                        (
                            name.unwrap_or("").to_string(),
                            c.state,
                            c.status,
                            c.labels.unwrap_or_default(),
                        )
                    })))
                }
                Err(e) => log::debug!("container list from the socket: {e}; asking docker ps"),
            }
        }
        let filters: Vec<String> = labels.iter().map(|l| format!("label={l}")).collect();
        let mut args: Vec<&str> = vec!["ps", "-a", "--no-trunc"];
        for f in &filters {
            args.extend(["--filter", f.as_str()]);
        }
        // Only the fields needed: `{{json .}}` would make docker compute every
        // container's disk usage, which takes seconds on fuse-overlayfs.
        args.extend(["--format", PS_FORMAT]);
        Ok(parse_ps(&self.run(&args, None, QUICK_TIMEOUT).await?))
    }
}

/// Compose v2 or later: `2.26.1`, `v2.20.0`.
pub fn is_v2(version: &str) -> bool {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m >= 2)
}

#[async_trait::async_trait]
impl Engine for Compose {
    /// Checks, concurrently, that the daemon answers, the image exists,
    /// Compose v2 is installed and the S3 network keeps containers apart.
    async fn check_s3_network(&self, network: &str) -> Result<()> {
        self.s3_network_isolates(network).await
    }

    async fn preflight(&self, image: &str, s3_network: Option<&str>) -> Result<()> {
        // The plugin's own binary is Compose v2 (v1 was never a plugin):
        // a create need not start it to ask (~30 ms); the image's id comes
        // from the socket where it can.
        let known_v2 = self.docker.compose_plugin.is_some();
        let (img, comp, net) = tokio::join!(
            self.image_id(image),
            async {
                if known_v2 {
                    Ok(None)
                } else {
                    self.compose_version().await.map(Some)
                }
            },
            async {
                match s3_network {
                    Some(n) => self.s3_network_isolates(n).await,
                    None => Ok(()),
                }
            }
        );
        net?;
        let img = match img {
            // Being built (make demo's background builds): wait, then ask again.
            Err(Error::Compose(f))
                if f.stderr_tail.contains("No such image")
                    && image_lock::wait_for_build(image, image_lock::BUILD_WAIT).await =>
            {
                self.image_id(image).await
            }
            other => other,
        };
        match img {
            Ok(_) => {}
            Err(Error::Compose(f)) if f.stderr_tail.contains("No such image") => {
                let hint = match image.strip_prefix("dbaas/postgres:") {
                    Some(v) => format!("build it with: scripts/build-image.sh {v}"),
                    None => format!("pull or build it (docker pull {image})"),
                };
                return Err(Error::Docker(format!(
                    "the image {image} is missing: {hint}"
                )));
            }
            Err(e) => return Err(e),
        }
        if let Some(version) = comp?.filter(|v| !is_v2(v)) {
            return Err(Error::Docker(format!(
                "`docker compose` is version {version} but dbaas needs Compose v2: run scripts/setup-host.sh"
            )));
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
        self.in_project(id, &["up", "-d", "--remove-orphans"], UP_TIMEOUT)
            .await
    }

    async fn up_service(&self, id: &str, service: &Service) -> Result<()> {
        self.in_project(id, &["up", "-d", "--no-deps", service.name()], UP_TIMEOUT)
            .await
    }

    async fn down(&self, id: &str) -> Result<()> {
        let grace = STOP_GRACE_SECS.to_string();
        let dir = self.home.instance_dir(id);
        let file = self.file(id).to_string_lossy().into_owned();
        let mut args = vec!["compose", "-p", id];
        if self.provisioned(id) {
            args.extend(["-f", file.as_str()]);
        }
        args.extend(["down", "--remove-orphans", "--timeout", grace.as_str()]);
        // Run from the home's root: with no -f, compose must not pick up some
        // unrelated docker-compose.yml from the caller's directory.
        let cwd = if dir.is_dir() {
            dir
        } else {
            self.home.root.clone()
        };
        self.run(&args, Some(&cwd), DOWN_TIMEOUT).await.map(|_| ())
    }

    async fn restart(&self, id: &str) -> Result<()> {
        let grace = STOP_GRACE_SECS.to_string();
        self.in_project(id, &["restart", "--timeout", &grace], DOWN_TIMEOUT)
            .await
    }

    async fn restart_service(&self, id: &str, service: &Service) -> Result<()> {
        let container = self.container_of(id, service).await?;
        self.run(
            &["restart", "--time", SERVICE_STOP_GRACE_SECS, &container],
            None,
            QUICK_TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    async fn exec(
        &self,
        id: &str,
        service: &Service,
        argv: &[String],
        timeout: Duration,
    ) -> Result<String> {
        let mut args = vec!["exec", "-T", service.name()];
        args.extend(argv.iter().map(String::as_str));
        self.project_output(id, &args, timeout).await
    }

    async fn run_once(
        &self,
        id: &str,
        service: &Service,
        mounts: &[Mount],
        argv: &[String],
        timeout: Duration,
    ) -> Result<String> {
        let volumes: Vec<String> = mounts
            .iter()
            .map(|m| {
                let ro = if m.read_only { ":ro" } else { "" };
                let host = match &m.from {
                    MountFrom::Path(p) | MountFrom::Repository { dir: p, .. } => p,
                };
                format!("{}:{}{ro}", host.display(), m.target)
            })
            .collect();
        let mut args = vec!["run", "--rm", "--no-deps", "-T"];
        for v in &volumes {
            args.extend(["-v", v.as_str()]);
        }
        args.push(service.name());
        args.extend(argv.iter().map(String::as_str));
        self.project_output(id, &args, timeout).await
    }

    /// Every container of this home, from one `docker ps` call: the status
    /// of all instances costs one subprocess, whatever their number.
    async fn ps(&self, only: Option<&str>) -> Result<PsMap> {
        let mut labels = vec![format!("dbaas.home={}", self.home.tag())];
        if let Some(id) = only {
            labels.push(format!("dbaas.instance={id}"));
        }
        self.list(labels).await
    }

    async fn ps_service(&self, service: &Service) -> Result<PsMap> {
        self.list(vec![
            format!("dbaas.home={}", self.home.tag()),
            format!("com.docker.compose.service={}", service.name()),
        ])
        .await
    }

    async fn logs(
        &self,
        id: &str,
        service: &Service,
        tail: u32,
        max_bytes: usize,
    ) -> Result<Vec<String>> {
        let container = self.container_of(id, service).await?;
        docker::logs_tail(self.docker(), &container, tail, max_bytes).await
    }

    async fn attach(&self, id: &str, what: Attach<'_>) -> Result<i32> {
        let dir = self.home.instance_dir(id);
        let (docker, root) = (self.docker().to_string(), self.home.root.clone());
        let args: Vec<String> = match what {
            Attach::Logs { tail, follow } => {
                let container = self.container_of(id, &Service::Db).await?;
                docker::logs_args(&container, tail, follow)
            }
            Attach::Psql {
                user,
                database,
                command,
                tty,
            } => {
                let file = self.file(id).to_string_lossy().into_owned();
                let mut a: Vec<String> = ["compose", "-p", id, "-f", &file, "exec"]
                    .map(String::from)
                    .into();
                if !tty {
                    a.push("-T".into());
                }
                a.extend(["db", "psql", "-U", user, "-d", database].map(String::from));
                if let Some(sql) = command {
                    a.extend(["-c".to_string(), sql.to_string()]);
                }
                a
            }
            Attach::Run { service, argv } => {
                let file = self.file(id).to_string_lossy().into_owned();
                let mut a: Vec<String> = ["compose", "-p", id, "-f", &file, "exec", "-T"]
                    .map(String::from)
                    .into();
                a.push(service.name().to_string());
                a.extend(argv);
                a
            }
        };
        let cwd = if dir.is_dir() { dir } else { root };
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            docker::interactive(&docker, &args, &cwd)
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
        let file = self.file(id).to_string_lossy().into_owned();
        let mut args = vec![
            "compose",
            "-p",
            id,
            "-f",
            &file,
            "exec",
            "-T",
            service.name(),
        ];
        args.extend(argv.iter().map(String::as_str));
        docker::spawn_piped(self.docker(), &args, &self.home.instance_dir(id))
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
        let cid = self
            .project_output(id, &["ps", "-q", service.name()], QUICK_TIMEOUT)
            .await?;
        let cid = cid.trim();
        if cid.is_empty() {
            return Err(Error::Failed(format!(
                "{id} has no running {} container to resize; start it with `dbaasctl up`",
                service.name()
            )));
        }
        let args = docker::update_args(memory, cpus, cid);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args, None, QUICK_TIMEOUT).await.map(|_| ())
    }

    async fn image_id(&self, image: &str) -> Result<String> {
        if let Some(socket) = &self.docker.socket {
            match docker_api::image_id(socket, image).await {
                Ok(Some(id)) => return Ok(id),
                // The CLI says what is missing, in the words callers match.
                Ok(None) => {}
                Err(e) => log::debug!("image id from the socket: {e}; asking docker"),
            }
        }
        self.run(
            &["image", "inspect", "--format", "{{.Id}}", image],
            None,
            QUICK_TIMEOUT,
        )
        .await
        .map(|id| id.trim().to_string())
    }

    async fn make_template(&self, image: &str, dir: &Path, timeout: Duration) -> Result<()> {
        // A throw-away superuser password: every instance sets its own at
        // its first start.
        let pw = format!("POSTGRES_PASSWORD={}", crate::secrets::password());
        let mount = format!("{}:/var/lib/postgresql/data", dir.display());
        let label = format!("dbaas.home={}", self.home.tag());
        self.run(
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--label",
                &label,
                "-e",
                &pw,
                "-v",
                &mount,
                image,
                "dbaas-template",
            ],
            None,
            timeout,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_v2_or_later() {
        for v in ["2.26.1", "v2.20.0", "3.0.0"] {
            assert!(is_v2(v), "{v}");
        }
        for v in ["1.29.2", "", "x"] {
            assert!(!is_v2(v), "{v}");
        }
    }
}
