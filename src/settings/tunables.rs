//! The data API's and `dbaasctl serve`'s own settings: their defaults and
//! the DBAAS_* variables that change them.

use super::values::{duration, number};
use super::{
    host_cpus, Secret, DEFAULT_MAX_CONNECTIONS, DEFAULT_REDOC_JS, DEFAULT_REQUEST_TIMEOUT,
};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

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

pub(super) fn db_settings(var: &impl Fn(&str) -> Option<String>) -> Result<DbSettings> {
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

pub(super) fn server_settings(var: &impl Fn(&str) -> Option<String>) -> Result<ServerSettings> {
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
