//! A one-off container of a swarm instance's db service on its node (a
//! restore's recovery): made by the node's own daemon with the instance's
//! image, data volume, environment and limits, the files it needs copied
//! in (Swarm secrets and configs reach services only, and the instance's
//! files are on the manager's host, not on the node), run to its end,
//! removed whatever happened.

use crate::engine::docker;
use crate::engine::{Mount, MountFrom};
use crate::error::Result;
use std::path::Path;
use std::time::Duration;

/// Where the db service keeps its data (the image's PGDATA).
const PGDATA: &str = "/var/lib/postgresql/data";

/// What the one-off container is made of.
pub struct OneOff<'a> {
    /// The docker CLI and the endpoint of the node's daemon.
    pub docker: &'a str,
    pub endpoint: &'a str,
    pub id: &'a str,
    pub home_tag: &'a str,
    pub image: &'a str,
    /// Its limit as the stack file writes it (`256m`).
    pub memory: Option<String>,
    /// instances/<id>/ on this host: its .env and secrets/.
    pub dir: &'a Path,
}

impl OneOff<'_> {
    fn name(&self) -> String {
        format!("{}-db-once", self.id)
    }

    /// `docker -H NODE ARGS...`
    async fn node(&self, args: &[&str], timeout: Duration) -> Result<docker::Output> {
        let mut all = vec!["-H", self.endpoint];
        all.extend(args);
        docker::run(self.docker, &all, None, timeout).await
    }

    /// The instance's data volume on the node, made when it is not there
    /// yet (the stack's deploy then adopts it).
    async fn data_volume(&self) -> Result<String> {
        let vol = super::relocate::data_volume(self.id);
        super::relocate::create_volume(self.docker, self.endpoint, self.id, &vol, self.home_tag)
            .await?;
        Ok(vol)
    }

    /// Runs `argv` to its end and returns its standard output.
    pub async fn run(
        &self,
        mounts: &[Mount],
        argv: &[String],
        timeout: Duration,
    ) -> Result<String> {
        let name = self.name();
        // A leftover of an interrupted run would hold the name.
        let _ = self
            .node(&["rm", "-f", "-v", &name], docker::QUICK_TIMEOUT)
            .await;
        let vol = self.data_volume().await?;
        let result = self
            .create_and_start(&name, &vol, mounts, argv, timeout)
            .await;
        if let Err(e) = self
            .node(&["rm", "-f", "-v", &name], docker::QUICK_TIMEOUT)
            .await
        {
            log::warn!("{}: removing the one-off container {name}: {e}", self.id);
        }
        result
    }

    async fn create_and_start(
        &self,
        name: &str,
        vol: &str,
        mounts: &[Mount],
        argv: &[String],
        timeout: Duration,
    ) -> Result<String> {
        let env_file = self.dir.join(".env").to_string_lossy().into_owned();
        let (label_i, label_h) = (
            format!("dbaas.instance={}", self.id),
            format!("dbaas.home={}", self.home_tag),
        );
        let data = format!("{vol}:{PGDATA}");
        let pgdata = format!("PGDATA={PGDATA}");
        // The capabilities of the db service: the entrypoint's and
        // recover.sh's root half needs no more.
        let mut args: Vec<String> = [
            "create",
            "--name",
            name,
            "--label",
            &label_i,
            "--label",
            &label_h,
            "--env-file",
            &env_file,
            "-e",
            &pgdata,
            "-v",
            &data,
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CHOWN",
            "--cap-add",
            "DAC_OVERRIDE",
            "--cap-add",
            "FOWNER",
            "--cap-add",
            "SETGID",
            "--cap-add",
            "SETUID",
            "--security-opt",
            "no-new-privileges:true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(m) = &self.memory {
            args.extend(["--memory".into(), m.clone()]);
        }
        let mut copies = vec![];
        for m in mounts {
            match &m.from {
                MountFrom::Repository { id, .. } => {
                    let ro = if m.read_only { ":ro" } else { "" };
                    let repo = super::relocate::repo_volume(id);
                    args.extend(["-v".into(), format!("{repo}:{}{ro}", m.target)]);
                }
                MountFrom::Path(p) => copies.push((p.clone(), m.target)),
            }
        }
        args.push(self.image.to_string());
        args.extend(argv.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.node(&args, docker::QUICK_TIMEOUT).await?;
        // The instance's passwords, where recover.sh reads them.
        copies.push((self.dir.join("secrets"), "/run/secrets"));
        for (path, target) in &copies {
            // A directory's contents into TARGET (made), a file as TARGET.
            let from = if path.is_dir() {
                format!("{}/.", path.display())
            } else {
                path.display().to_string()
            };
            let to = format!("{name}:{target}");
            self.node(&["cp", &from, &to], docker::QUICK_TIMEOUT)
                .await?;
        }
        // `start -a` ends with the container and exits with its status.
        self.node(&["start", "-a", name], timeout)
            .await
            .map(|o| o.stdout)
    }
}
