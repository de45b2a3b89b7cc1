//! Every DBAAS_* variable, with its default and its validation, read once at
//! start-up into `Settings` and handed down (through `Home`). Nothing else
//! reads the environment. docs/settings.md lists the same.

use crate::error::{Error, Result};
use crate::subnet::Net;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// DBAAS_DOCKER: the docker CLI to run, default `docker` from PATH.
    pub docker: String,
    /// The daemon's socket, when the CLI would talk to a local one (no
    /// DBAAS_DOCKER, DOCKER_HOST unset or unix://, no CLI context): the
    /// container list is read from it directly (engine/docker_api.rs).
    pub docker_socket: Option<PathBuf>,
    /// The Compose plugin's own binary, run directly where the docker CLI
    /// would run it (the daemon is local, as for `docker_socket`): the CLI
    /// spends ~35 ms of every `docker compose` call finding its plugins.
    pub compose_plugin: Option<PathBuf>,
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

/// The data API's tunables.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// DBAAS_POOL_SIZE: connections per instance (default 8).
    pub pool_size: u32,
    /// DBAAS_STATEMENT_TIMEOUT: server-side statement_timeout (default 30s).
    pub statement_timeout: Duration,
    /// DBAAS_CONNECT_TIMEOUT: waiting for a connection (default 5s).
    pub connect_timeout: Duration,
    /// DBAAS_MAX_ROWS: the largest `limit`, and the most rows a statement
    /// of /sql or /transaction may return (default 10000).
    pub max_rows: u64,
    /// DBAAS_MAX_RESULT_BYTES: the most a /sql or /transaction result may
    /// hold, as PostgreSQL sends it (default 64 MiB).
    pub max_result_bytes: u64,
    /// DBAAS_DB_CONCURRENCY: statements running at once per instance
    /// (default: twice the CPUs, at least 2, at most the pool size).
    pub concurrency: u32,
}

/// `dbaasctl serve`'s own settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// DBAAS_MAX_CONNECTIONS: open client connections (default 512).
    pub max_connections: usize,
    /// DBAAS_REQUEST_TIMEOUT: the bound on one request (default 300s).
    pub request_timeout: Duration,
    /// DBAAS_TEST_FAULTS=1: the fault-injection routes the tests use.
    pub test_faults: bool,
    /// DBAAS_API_TOKEN: the bearer token (default: config/api-token).
    pub api_token: Option<Secret>,
    /// DBAAS_REDOC_JS: ReDoc's bundle.
    pub redoc_js: PathBuf,
    /// DBAAS_WORKER_THREADS: async worker threads (default: the CPUs).
    pub worker_threads: usize,
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

/// Statements the API lets run at once per instance by default (see
/// db/lanes.rs for why there is a cap). Two per core keeps the cores busy
/// while a statement waits on the network.
fn default_concurrency(pool_size: u32) -> u32 {
    (2 * host_cpus() as u32).max(2).min(pool_size)
}

impl Default for DbSettings {
    fn default() -> Self {
        DbSettings {
            pool_size: 8,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_rows: 10_000,
            max_result_bytes: 64 << 20,
            concurrency: default_concurrency(8),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            test_faults: false,
            api_token: None,
            redoc_js: PathBuf::from(DEFAULT_REDOC_JS),
            worker_threads: host_cpus().max(2),
        }
    }
}

impl Settings {
    /// Defaults everywhere, with state under `root`: for unit tests.
    pub fn with_root(root: PathBuf) -> Settings {
        Settings {
            root,
            port_range: DEFAULT_PORT_RANGE,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            image_template: DEFAULT_IMAGE.to_string(),
            docker: "docker".to_string(),
            docker_socket: None,
            compose_plugin: None,
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
        s.docker_from(&var);
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

fn db_settings(var: &impl Fn(&str) -> Option<String>) -> Result<DbSettings> {
    let mut s = DbSettings::default();
    if let Some(v) = var("DBAAS_POOL_SIZE") {
        s.pool_size = number("DBAAS_POOL_SIZE", &v, 1..=1000, "a number from 1 to 1000")?;
    }
    s.concurrency = match var("DBAAS_DB_CONCURRENCY") {
        None => default_concurrency(s.pool_size),
        Some(v) => number(
            "DBAAS_DB_CONCURRENCY",
            &v,
            1..=s.pool_size,
            &format!(
                "a number from 1 to the pool size ({}); raise DBAAS_POOL_SIZE first",
                s.pool_size
            ),
        )?,
    };
    if let Some(v) = var("DBAAS_MAX_ROWS") {
        s.max_rows = number("DBAAS_MAX_ROWS", &v, 1..=u64::MAX, "a positive number")?;
    }
    if let Some(v) = var("DBAAS_MAX_RESULT_BYTES") {
        s.max_result_bytes = number(
            "DBAAS_MAX_RESULT_BYTES",
            &v,
            1024..=u64::MAX,
            "a number of bytes, at least 1024",
        )?;
    }
    if let Some(v) = var("DBAAS_STATEMENT_TIMEOUT") {
        s.statement_timeout = duration("DBAAS_STATEMENT_TIMEOUT", &v, "30s or 500ms")?;
    }
    if let Some(v) = var("DBAAS_CONNECT_TIMEOUT") {
        s.connect_timeout = duration("DBAAS_CONNECT_TIMEOUT", &v, "30s or 500ms")?;
    }
    Ok(s)
}

fn server_settings(var: &impl Fn(&str) -> Option<String>) -> Result<ServerSettings> {
    let mut s = ServerSettings::default();
    if let Some(v) = var("DBAAS_MAX_CONNECTIONS") {
        s.max_connections = number(
            "DBAAS_MAX_CONNECTIONS",
            &v,
            1..=100_000,
            "a number from 1 to 100000",
        )?;
    }
    if let Some(v) = var("DBAAS_REQUEST_TIMEOUT") {
        s.request_timeout = duration("DBAAS_REQUEST_TIMEOUT", &v, "300s or 5m")?;
    }
    s.test_faults = var("DBAAS_TEST_FAULTS").as_deref() == Some("1");
    if let Some(t) = var("DBAAS_API_TOKEN") {
        if t.len() < 16 {
            return Err(Error::invalid(
                "DBAAS_API_TOKEN",
                "the token must be at least 16 characters",
            ));
        }
        s.api_token = Some(Secret(t));
    }
    if let Some(v) = var("DBAAS_REDOC_JS") {
        s.redoc_js = PathBuf::from(v);
    }
    if let Some(v) = var("DBAAS_WORKER_THREADS") {
        s.worker_threads = number(
            "DBAAS_WORKER_THREADS",
            &v,
            1..=1024,
            "a number from 1 to 1024",
        )?;
    }
    Ok(s)
}

fn number<T>(name: &str, v: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T>
where
    T: std::str::FromStr + PartialOrd,
{
    v.trim()
        .parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| Error::invalid(name, format!("'{v}' is not {what}")))
}

fn duration(name: &str, v: &str, example: &str) -> Result<Duration> {
    humantime::parse_duration(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::invalid(name, format!("'{v}' is not a duration such as {example}")))
}

/// A size such as 8g or 512m; "0" turns the check off.
fn size(name: &str, v: &str) -> Result<u64> {
    if v.trim() == "0" {
        return Ok(0);
    }
    crate::validate::memory(v, u64::MAX)
        .map_err(|_| Error::invalid(name, format!("'{v}' is not a size such as 8g or 512m")))
}

/// `15=2,17=1` (spares per version), or `0`/`off` for none.
pub fn parse_warm_pool(v: &str) -> Result<Vec<(u32, u32)>> {
    let v = v.trim();
    if v == "0" || v == "off" {
        return Ok(vec![]);
    }
    let bad = |why: String| Error::invalid("DBAAS_WARM_POOL", why);
    let mut out: Vec<(u32, u32)> = vec![];
    for part in v.split(',') {
        let (ver, n) = part.split_once('=').ok_or_else(|| {
            bad(format!(
                "'{part}' is not VERSION=SPARES; write e.g. DBAAS_WARM_POOL=15=2,17=1"
            ))
        })?;
        let ver: u32 = ver
            .trim()
            .parse()
            .ok()
            .filter(|x| crate::validate::SUPPORTED_VERSIONS.contains(x))
            .ok_or_else(|| {
                bad(format!(
                    "'{}' is not a supported PostgreSQL version ({:?})",
                    ver.trim(),
                    crate::validate::SUPPORTED_VERSIONS
                ))
            })?;
        let n = number(
            "DBAAS_WARM_POOL",
            n,
            0..=50,
            "a number of spares from 0 to 50",
        )?;
        if out.iter().any(|(x, _)| *x == ver) {
            return Err(bad(format!("version {ver} is named twice")));
        }
        if n > 0 {
            out.push((ver, n));
        }
    }
    Ok(out)
}

pub fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || {
        Error::invalid(
            "DBAAS_PORT_RANGE",
            format!("'{s}' is not a range like 5432-5999 (ports 1024-65535, low <= high)"),
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = a.trim().parse().map_err(|_| bad())?;
    let hi: u16 = b.trim().parse().map_err(|_| bad())?;
    if lo < 1024 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl Settings {
    /// DBAAS_DOCKER, or else the local daemon's socket and the Compose
    /// plugin that the docker CLI would use (DOCKER_HOST, DOCKER_CONTEXT,
    /// DOCKER_CONFIG and the CLI's config file decide).
    fn docker_from(&mut self, var: &impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("DBAAS_DOCKER") {
            self.docker = v;
            return;
        }
        let config_dir = var("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".docker")));
        let config = config_dir
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("config.json")).ok());
        self.docker_socket = local_socket(
            var("DOCKER_HOST").as_deref(),
            var("DOCKER_CONTEXT").as_deref(),
            config.as_deref().and_then(config_context).as_deref(),
        );
        if self.docker_socket.is_some() {
            self.compose_plugin = compose_plugin(config_dir.map(|d| d.join("cli-plugins")));
        }
    }
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

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(
            |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            PathBuf::from("/srv"),
        )
    }

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
    fn port_range_parses_and_rejects() {
        assert_eq!(parse_port_range("5432-5999").unwrap(), (5432, 5999));
        assert_eq!(parse_port_range("40000-40000").unwrap(), (40000, 40000));
        for bad in ["", "5432", "6000-5000", "80-90", "a-b", "1-70000"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn concurrency_defaults_within_the_pool_and_is_checked() {
        let cpus = host_cpus() as u32;
        let s = settings(&[]).unwrap();
        assert_eq!(s.db.concurrency, (2 * cpus).clamp(2, 8));
        assert_eq!(
            settings(&[("DBAAS_POOL_SIZE", "1")])
                .unwrap()
                .db
                .concurrency,
            1
        );
        let s = settings(&[("DBAAS_POOL_SIZE", "20"), ("DBAAS_DB_CONCURRENCY", "20")]).unwrap();
        assert_eq!((s.db.pool_size, s.db.concurrency), (20, 20));
        for bad in ["0", "9", "x", "-1"] {
            let e = settings(&[("DBAAS_DB_CONCURRENCY", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("DBAAS_DB_CONCURRENCY") && e.contains("DBAAS_POOL_SIZE"),
                "{e}"
            );
        }
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, bad) in [
            ("DBAAS_PORT_RANGE", "1-2"),
            ("DBAAS_BIND_ADDRESS", "localhost"),
            ("DBAAS_IMAGE", "x y"),
            ("DBAAS_READY_TIMEOUT", "2m"),
            ("DBAAS_METRICS_MAX_BYTES", "10"),
            ("DBAAS_METRICS_KEEP", "101"),
            ("DBAAS_MAX_MEMORY", "lots"),
            ("DBAAS_MIN_FREE_DISK", "-1"),
            ("DBAAS_PROVISION_SLOTS", "0"),
            ("DBAAS_POOL_SIZE", "0"),
            ("DBAAS_MAX_ROWS", "0"),
            ("DBAAS_MAX_RESULT_BYTES", "10"),
            ("DBAAS_STATEMENT_TIMEOUT", "0s"),
            ("DBAAS_CONNECT_TIMEOUT", "soon"),
            ("DBAAS_MAX_CONNECTIONS", "0"),
            ("DBAAS_REQUEST_TIMEOUT", "x"),
            ("DBAAS_API_TOKEN", "short"),
            ("DBAAS_WORKER_THREADS", "0"),
            ("DBAAS_PROVISION", "fast"),
            ("DBAAS_SUBNET_POOL", "10.0.0.1/16"),
            ("DBAAS_SUBNET_POOL", "10.0.0.0"),
            ("DBAAS_SUBNET_PREFIX", "30"),
            ("DBAAS_WARM_POOL", "15"),
            ("DBAAS_WARM_POOL", "16=1"),
            ("DBAAS_WARM_POOL", "15=x"),
            ("DBAAS_WARM_POOL", "15=1,15=2"),
        ] {
            let e = settings(&[(name, bad)]).unwrap_err().to_string();
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
    }

    #[test]
    fn subnet_pool_and_warm_pool() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.subnet_pool.to_string(), s.subnet_prefix),
            ("10.199.0.0/16".into(), 28)
        );
        assert!(s.warm_pool.is_empty());
        let e = settings(&[
            ("DBAAS_SUBNET_POOL", "10.0.0.0/26"),
            ("DBAAS_SUBNET_PREFIX", "24"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("DBAAS_SUBNET_PREFIX"), "{e}");
        let s = settings(&[("DBAAS_WARM_POOL", "15=2, 17=1,13=0")]).unwrap();
        assert_eq!(s.warm_pool, [(15, 2), (17, 1)]);
        assert!(settings(&[("DBAAS_WARM_POOL", "off")])
            .unwrap()
            .warm_pool
            .is_empty());
    }

    #[test]
    fn provisioning_path_and_template_dir() {
        let s = settings(&[]).unwrap();
        assert_eq!((s.provision, s.template_dir), (Provision::Template, None));
        let s = settings(&[("DBAAS_PROVISION", "initdb"), ("DBAAS_TEMPLATE_DIR", "t")]).unwrap();
        assert_eq!(s.provision, Provision::Initdb);
        assert_eq!(s.template_dir, Some(PathBuf::from("/srv/t")));
    }

    #[test]
    fn home_is_made_absolute_and_the_token_is_never_printed() {
        assert_eq!(settings(&[]).unwrap().root, PathBuf::from("/srv"));
        assert_eq!(
            settings(&[("DBAAS_HOME", "h")]).unwrap().root,
            PathBuf::from("/srv/h")
        );
        let s = settings(&[("DBAAS_API_TOKEN", "0123456789abcdef-secret")]).unwrap();
        assert!(!format!("{s:?}").contains("secret"));
        assert_eq!(s.image_for(15), "dbaas/postgres:15");
    }
}
