//! The docker CLI and daemon a home uses, resolved once per process from
//! the variables in `settings::DockerEnv`: where the daemon is local, its
//! socket (the container list and image ids are read from it) and the
//! Compose plugin's own binary (run directly: the CLI spends ~35 ms of
//! every `docker compose` call finding its plugins).

use crate::settings::DockerEnv;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Docker {
    /// The docker CLI to run.
    pub cli: String,
    /// The daemon's socket, when the CLI would talk to a local one (no
    /// DBAAS_DOCKER, DOCKER_HOST unset or unix://, no CLI context).
    pub socket: Option<PathBuf>,
    /// `docker-compose`, where the CLI would run it (the daemon is local).
    pub compose_plugin: Option<PathBuf>,
}

/// Each environment a process has asked about, with its resolution.
type Seen = Mutex<Vec<(DockerEnv, Arc<Docker>)>>;

/// The resolution of `env`, made the first time a process asks.
pub fn of(env: &DockerEnv) -> Arc<Docker> {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some((_, d)) = seen.iter().find(|(e, _)| e == env) {
        return d.clone();
    }
    let d = Arc::new(resolve(env));
    seen.push((env.clone(), d.clone()));
    d
}

/// DBAAS_DOCKER as it is, or else the local daemon's socket and the
/// Compose plugin that the docker CLI would use (DOCKER_HOST,
/// DOCKER_CONTEXT, DOCKER_CONFIG and the CLI's config file decide).
pub fn resolve(env: &DockerEnv) -> Docker {
    if let Some(cli) = &env.cli {
        return Docker {
            cli: cli.clone(),
            socket: None,
            compose_plugin: None,
        };
    }
    let config = env
        .config_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("config.json")).ok());
    let socket = local_socket(
        env.host.as_deref(),
        env.context.as_deref(),
        config.as_deref().and_then(config_context).as_deref(),
    );
    let compose_plugin = socket
        .is_some()
        .then(|| compose_plugin(env.config_dir.as_ref().map(|d| d.join("cli-plugins"))))
        .flatten();
    Docker {
        cli: "docker".into(),
        socket,
        compose_plugin,
    }
}

/// `docker-compose` in the directories the docker CLI searches for
/// plugins, in its order (the user's own first).
fn compose_plugin(user_dir: Option<PathBuf>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let system = [
        "/usr/local/lib/docker/cli-plugins",
        "/usr/local/libexec/docker/cli-plugins",
        "/usr/lib/docker/cli-plugins",
        "/usr/libexec/docker/cli-plugins",
    ];
    user_dir
        .into_iter()
        .chain(system.iter().map(PathBuf::from))
        .map(|d| d.join("docker-compose"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Where the daemon that the `docker` CLI would talk to listens, when that
/// is a local socket: DOCKER_HOST's unix:// path or the default one. None
/// for a remote daemon (tcp://, ssh://) or a CLI context, which only the
/// CLI resolves.
pub fn local_socket(
    docker_host: Option<&str>,
    docker_context: Option<&str>,
    config_context: Option<&str>,
) -> Option<std::path::PathBuf> {
    let context = docker_context.or(config_context);
    if context.is_some_and(|c| c != "default") {
        return None;
    }
    match docker_host {
        None => Some("/var/run/docker.sock".into()),
        Some(h) => h.strip_prefix("unix://").map(Into::into),
    }
}

/// The `currentContext` of the docker CLI's config file, if any.
pub fn config_context(config_json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    v.get("currentContext")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_local_socket_only() {
        assert_eq!(
            local_socket(None, None, None),
            Some("/var/run/docker.sock".into())
        );
        assert_eq!(
            local_socket(Some("unix:///run/d.sock"), None, None),
            Some("/run/d.sock".into())
        );
        assert_eq!(local_socket(Some("tcp://10.0.0.2:2375"), None, None), None);
        assert_eq!(local_socket(Some("ssh://me@box"), None, None), None);
        assert_eq!(local_socket(None, Some("swarm"), None), None);
        assert_eq!(local_socket(None, None, Some("remote")), None);
        assert_eq!(
            local_socket(None, Some("default"), None),
            Some("/var/run/docker.sock".into())
        );
        assert_eq!(
            config_context(r#"{"auths":{},"currentContext":"x"}"#),
            Some("x".into())
        );
        assert_eq!(config_context("{}"), None);
        assert_eq!(config_context("not json"), None);
    }

    #[test]
    fn dbaas_docker_is_run_as_it_is_and_never_bypassed() {
        let env = DockerEnv {
            cli: Some("/opt/faulty-docker".into()),
            ..Default::default()
        };
        let d = resolve(&env);
        assert_eq!(d.cli, "/opt/faulty-docker");
        assert_eq!((d.socket, d.compose_plugin), (None, None));
        assert!(Arc::ptr_eq(&of(&env), &of(&env)));
    }
}
