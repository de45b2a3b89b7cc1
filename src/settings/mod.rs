//! Every DBAAS_* variable, with its default and its validation, read once at
//! start-up into `Settings` and handed down (through `Home`). Nothing else
//! reads the environment. docs/settings.md lists the same.

use crate::error::{Error, Result};
use crate::subnet::Net;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

mod tunables;
mod values;
use tunables::{db_settings, server_settings};
pub use tunables::{DbSettings, ServerSettings};
use values::{number, size};
pub use values::{parse_port_range, parse_warm_pool};

pub const DEFAULT_PORT_RANGE: (u16, u16) = (5432, 5999);
pub const DEFAULT_IMAGE: &str = "dbaas/postgres:{version}";
/// How long `create`/`up` wait for the app user to connect.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Monitoring defaults of a new instance: seconds between samples, and
/// metrics.json's rotation (size, older files kept).
pub use crate::validate::DEFAULT_METRICS_INTERVAL;
pub const DEFAULT_METRICS_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_METRICS_KEEP: u32 = 5;
/// Bound on one API request; create and start wait for readiness within it.
/// An operation outlives the bound: it runs to its end, the request only
/// stops watching.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Connections the API server holds open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Where setup-host.sh puts ReDoc's bundle.
pub const DEFAULT_REDOC_JS: &str = "/usr/local/share/dbaas/redoc.standalone.js";
const DEFAULT_MIN_FREE_DISK: u64 = 1 << 30;
/// 4,096 networks of 16 addresses, outside Docker's own default pools
/// (172.17-31.0.0/16, 192.168.0.0/16) and the usual home and office LANs.
pub const DEFAULT_SUBNET_POOL: &str = "10.199.0.0/16";
pub const DEFAULT_SUBNET_PREFIX: u8 = 28;

/// The host-level settings. Cheap to share: `Home` holds it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// DBAAS_HOME (default: the current directory), made absolute.
    pub root: PathBuf,
    /// DBAAS_PORT_RANGE: host ports for new instances.
    pub port_range: (u16, u16),
    /// DBAAS_BIND_ADDRESS: where instances publish their port (127.0.0.1).
    pub bind_address: IpAddr,
    /// DBAAS_IMAGE: image reference with `{version}` as placeholder;
    /// `postgres:{version}` works where a registry is reachable.
    pub image_template: String,
    /// Which docker CLI and daemon to use, as the environment says; the
    /// engine resolves it (engine/discovery.rs).
    pub docker: DockerEnv,
    /// The home's engine (config/engine). A swarm home provisions with
    /// initdb on the node: the template is a directory on this host.
    pub engine: EngineKind,
    /// DBAAS_READY_TIMEOUT: seconds create/up wait for readiness.
    pub ready_timeout: Duration,
    /// DBAAS_METRICS_MAX_BYTES / DBAAS_METRICS_KEEP: rotation of new
    /// instances' metrics.json.
    pub metrics_max_bytes: u64,
    pub metrics_keep: u32,
    /// DBAAS_MAX_MEMORY: the sum of instances' memory limits (default: the
    /// host's memory). DBAAS_MIN_FREE_DISK: free space a create needs.
    pub max_memory: u64,
    pub min_free_disk: u64,
    /// DBAAS_PROVISION_SLOTS: instances initializing at once (default: CPUs).
    pub provision_slots: usize,
    /// DBAAS_S3: an S3 settings file (see s3.rs); new instances with
    /// backups also back up there unless they opt out. A relative path is
    /// taken from the current directory.
    pub s3_file: Option<PathBuf>,
    /// DBAAS_PROVISION: `template` (default: a copy of an initialised data
    /// directory, personalised at first start) or `initdb` (each instance
    /// runs initdb, the old path, kept for comparison).
    pub provision: Provision,
    /// DBAAS_TEMPLATE_DIR: where the templates live (default
    /// DBAAS_HOME/template-data); homes on one host may share it.
    pub template_dir: Option<PathBuf>,
    /// DBAAS_SUBNET_POOL / DBAAS_SUBNET_PREFIX: the addresses the
    /// instances' own networks are cut from (see subnet.rs).
    pub subnet_pool: Net,
    pub subnet_prefix: u8,
    /// DBAAS_WARM_POOL: spares kept started per PostgreSQL version
    /// (`15=2,17=1`; default none, see ops/pool.rs).
    pub warm_pool: Vec<(u32, u32)>,
    pub db: DbSettings,
    pub server: ServerSettings,
}

/// The variables that say which docker CLI and daemon to use, unresolved:
/// resolving them reads the CLI's files, which is the engine's business.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DockerEnv {
    /// DBAAS_DOCKER: the docker CLI to run instead of `docker` from PATH.
    pub cli: Option<String>,
    /// DOCKER_HOST, DOCKER_CONTEXT.
    pub host: Option<String>,
    pub context: Option<String>,
    /// DOCKER_CONFIG, or else $HOME/.docker.
    pub config_dir: Option<PathBuf>,
}

/// The engine a home is bound to, once, by `dbaasctl init --engine`
/// (config/engine); compose when the file is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Compose,
    Swarm,
}

impl EngineKind {
    pub fn parse(v: &str) -> Result<EngineKind> {
        match v.trim() {
            "compose" => Ok(EngineKind::Compose),
            "swarm" => Ok(EngineKind::Swarm),
            other => Err(Error::invalid(
                "engine",
                format!("'{other}' is not an engine; use compose or swarm"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Compose => "compose",
            EngineKind::Swarm => "swarm",
        }
    }
}

/// The file under config/ that binds a home to its engine.
pub const ENGINE_FILE: &str = "engine";

/// How a new instance's data directory is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    Template,
    Initdb,
}

impl Provision {
    fn parse(v: &str) -> Result<Provision> {
        match v {
            "template" => Ok(Provision::Template),
            "initdb" => Ok(Provision::Initdb),
            _ => Err(Error::invalid(
                "DBAAS_PROVISION",
                format!("'{v}' is not a provisioning path; use template or initdb"),
            )),
        }
    }
}

/// A value that must never reach a log: Debug prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

impl Settings {
    /// Defaults everywhere, with state under `root`: for unit tests.
    pub fn with_root(root: PathBuf) -> Settings {
        Settings {
            root,
            port_range: DEFAULT_PORT_RANGE,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            image_template: DEFAULT_IMAGE.to_string(),
            docker: DockerEnv::default(),
            engine: EngineKind::Compose,
            ready_timeout: DEFAULT_READY_TIMEOUT,
            metrics_max_bytes: DEFAULT_METRICS_MAX_BYTES,
            metrics_keep: DEFAULT_METRICS_KEEP,
            max_memory: host_memory(),
            min_free_disk: DEFAULT_MIN_FREE_DISK,
            provision_slots: host_cpus(),
            s3_file: None,
            provision: Provision::Template,
            template_dir: None,
            subnet_pool: Net::parse(DEFAULT_SUBNET_POOL).expect("the default pool parses"),
            subnet_prefix: DEFAULT_SUBNET_PREFIX,
            warm_pool: vec![],
            db: DbSettings::default(),
            server: ServerSettings::default(),
        }
    }

    /// Reads the process environment; bad values are errors that name the
    /// variable and what it accepts.
    pub fn from_env() -> Result<Settings> {
        let cwd = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
        Settings::from_vars(|name| std::env::var(name).ok(), cwd)
    }

    /// The same from any lookup (unit tests pass a table).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>, cwd: PathBuf) -> Result<Settings> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let root = match var("DBAAS_HOME").map(PathBuf::from) {
            Some(p) if p.is_absolute() => p,
            Some(p) => cwd.join(p),
            None => cwd.clone(),
        };
        let mut s = Settings::with_root(root);
        if let Some(v) = var("DBAAS_PORT_RANGE") {
            s.port_range = parse_port_range(&v)?;
        }
        if let Some(v) = var("DBAAS_BIND_ADDRESS") {
            s.bind_address = v.parse().map_err(|_| {
                Error::invalid(
                    "DBAAS_BIND_ADDRESS",
                    format!("'{v}' is not an IP address (e.g. 127.0.0.1)"),
                )
            })?;
        }
        if let Some(v) = var("DBAAS_IMAGE") {
            s.image_template = v;
        }
        crate::validate::image_template(&s.image_template)?;
        s.docker = docker_env(&var);
        if let Some(v) = var("DBAAS_PROVISION") {
            s.provision = Provision::parse(&v)?;
        }
        s.engine = read_engine(&s.root)?;
        if s.engine == EngineKind::Swarm {
            s.provision = Provision::Initdb;
        }
        if let Some(v) = var("DBAAS_TEMPLATE_DIR") {
            s.template_dir = Some(cwd.join(v));
        }
        if let Some(v) = var("DBAAS_S3") {
            s.s3_file = Some(cwd.join(v));
        }
        if let Some(v) = var("DBAAS_READY_TIMEOUT") {
            s.ready_timeout = Duration::from_secs(number(
                "DBAAS_READY_TIMEOUT",
                &v,
                1..=86_400,
                "a whole number of seconds",
            )?);
        }
        if let Some(v) = var("DBAAS_METRICS_MAX_BYTES") {
            s.metrics_max_bytes = number(
                "DBAAS_METRICS_MAX_BYTES",
                &v,
                1024..=u64::MAX,
                "a number of bytes, at least 1024",
            )?;
        }
        if let Some(v) = var("DBAAS_METRICS_KEEP") {
            s.metrics_keep = number(
                "DBAAS_METRICS_KEEP",
                &v,
                0..=100,
                "a whole number from 0 to 100",
            )?;
        }
        if let Some(v) = var("DBAAS_MAX_MEMORY") {
            s.max_memory = size("DBAAS_MAX_MEMORY", &v)?;
        }
        if let Some(v) = var("DBAAS_MIN_FREE_DISK") {
            s.min_free_disk = size("DBAAS_MIN_FREE_DISK", &v)?;
        }
        if let Some(v) = var("DBAAS_PROVISION_SLOTS") {
            s.provision_slots = number(
                "DBAAS_PROVISION_SLOTS",
                &v,
                1..=1000,
                "a number from 1 to 1000",
            )?;
        }
        network_and_pool(&var, &mut s)?;
        s.db = db_settings(&var)?;
        s.server = server_settings(&var)?;
        Ok(s)
    }

    pub fn image_for(&self, version: u32) -> String {
        self.image_template
            .replace("{version}", &version.to_string())
    }
}

/// DBAAS_SUBNET_POOL, DBAAS_SUBNET_PREFIX and DBAAS_WARM_POOL.
fn docker_env(var: &impl Fn(&str) -> Option<String>) -> DockerEnv {
    DockerEnv {
        cli: var("DBAAS_DOCKER"),
        host: var("DOCKER_HOST"),
        context: var("DOCKER_CONTEXT"),
        config_dir: var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker"))),
    }
}

fn network_and_pool(var: &impl Fn(&str) -> Option<String>, s: &mut Settings) -> Result<()> {
    if let Some(v) = var("DBAAS_SUBNET_POOL") {
        s.subnet_pool = Net::parse(v.trim()).map_err(|e| Error::invalid("DBAAS_SUBNET_POOL", e))?;
    }
    if let Some(v) = var("DBAAS_SUBNET_PREFIX") {
        s.subnet_prefix = number(
            "DBAAS_SUBNET_PREFIX",
            &v,
            16..=29,
            "a prefix length from 16 to 29 (28: 16 addresses per instance)",
        )?;
    }
    if s.subnet_prefix < s.subnet_pool.prefix {
        return Err(Error::invalid(
            "DBAAS_SUBNET_PREFIX",
            format!(
                "/{} is larger than the pool {} itself; give a longer prefix or a larger DBAAS_SUBNET_POOL",
                s.subnet_prefix, s.subnet_pool
            ),
        ));
    }
    if let Some(v) = var("DBAAS_WARM_POOL") {
        s.warm_pool = parse_warm_pool(&v)?;
    }
    Ok(())
}

/// The engine recorded in `<root>/config/engine`; compose without one.
pub fn read_engine(root: &std::path::Path) -> Result<EngineKind> {
    let path = root.join("config").join(ENGINE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => EngineKind::parse(&text).map_err(|_| {
            Error::invalid(
                "engine",
                format!(
                    "{} says '{}', which is not an engine; it should hold compose or swarm",
                    path.display(),
                    text.trim()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EngineKind::Compose),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests;
