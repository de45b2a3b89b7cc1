//! The database service over each instance: tables, rows, SQL and
//! transactions, through one r2d2 pool per instance (pool.rs), with the
//! PostgREST-style grammar (query.rs), catalog lookups (catalog.rs), the
//! statements themselves (exec.rs) and JSON <-> PostgreSQL values
//! (values.rs).

pub mod catalog;
pub mod connect;
pub mod exec;
pub mod lanes;
pub mod pool;
pub mod query;
pub mod session;
pub mod values;

use crate::error::{Error, Result, SqlFailure};
use std::time::Duration;

/// Tunables, from the environment (documented in the README).
#[derive(Debug, Clone)]
pub struct Settings {
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

/// Statements the API lets run at once per instance by default (see
/// lanes.rs for why there is a cap). Two per core keeps the cores busy while
/// a statement waits on the network.
fn default_concurrency(pool_size: u32) -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    (2 * cpus).max(2).min(pool_size)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pool_size: 8,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_rows: 10_000,
            max_result_bytes: 64 << 20,
            concurrency: default_concurrency(8),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let mut s = Settings::default();
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let duration = |name: &str, v: String| {
            humantime::parse_duration(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Error::invalid(
                        name,
                        format!("'{v}' is not a duration such as 30s or 500ms"),
                    )
                })
        };
        if let Some(v) = var("DBAAS_POOL_SIZE") {
            s.pool_size = v
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| {
                    Error::invalid(
                        "DBAAS_POOL_SIZE",
                        format!("'{v}' is not a number from 1 to 1000"),
                    )
                })?;
        }
        s.concurrency = match var("DBAAS_DB_CONCURRENCY") {
            None => default_concurrency(s.pool_size),
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=s.pool_size).contains(n))
                .ok_or_else(|| {
                    Error::invalid(
                        "DBAAS_DB_CONCURRENCY",
                        format!(
                            "'{v}' is not a number from 1 to the pool size ({}); raise DBAAS_POOL_SIZE first",
                            s.pool_size
                        ),
                    )
                })?,
        };
        if let Some(v) = var("DBAAS_MAX_ROWS") {
            s.max_rows = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                Error::invalid("DBAAS_MAX_ROWS", format!("'{v}' is not a positive number"))
            })?;
        }
        if let Some(v) = var("DBAAS_MAX_RESULT_BYTES") {
            s.max_result_bytes = v.parse().ok().filter(|n| *n >= 1024).ok_or_else(|| {
                Error::invalid(
                    "DBAAS_MAX_RESULT_BYTES",
                    format!("'{v}' is not a number of bytes, at least 1024"),
                )
            })?;
        }
        if let Some(v) = var("DBAAS_STATEMENT_TIMEOUT") {
            s.statement_timeout = duration("DBAAS_STATEMENT_TIMEOUT", v)?;
        }
        if let Some(v) = var("DBAAS_CONNECT_TIMEOUT") {
            s.connect_timeout = duration("DBAAS_CONNECT_TIMEOUT", v)?;
        }
        Ok(s)
    }
}

impl Settings {
    /// The options of a free SQL request under these settings.
    pub fn sql_options(&self, read_only: bool, array_mode: bool) -> exec::SqlOptions {
        exec::SqlOptions {
            read_only,
            array_mode,
            max_rows: self.max_rows,
            max_bytes: self.max_result_bytes,
        }
    }
}

/// A postgres crate error as ours: PostgreSQL's own errors keep their
/// SQLSTATE, message, detail and hint; anything else means the connection
/// failed.
pub fn pg_error(e: &postgres::Error, statement: Option<usize>) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Sql(Box::new(SqlFailure {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
            position: match db.position() {
                Some(postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            },
            statement,
        })),
        None => Error::Unavailable(format!("PostgreSQL connection failed: {e}")),
    }
}

/// Whether an error means the connection died rather than the statement
/// failing. Callers decide what that means: before COMMIT was sent nothing
/// was written and the work may run again; during COMMIT the outcome is
/// unknown (`session::commit_outcome`).
pub fn connection_lost(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        // The server ended the session (shutdown, restart, an idle
        // transaction or session timed out): it was rolled back.
        Some(db) => matches!(
            db.code().code(),
            "57P01" | "57P02" | "57P03" | "25P03" | "57P05"
        ),
        // The socket was already closed or broke when we wrote to it.
        None => {
            e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn concurrency_defaults_within_the_pool_and_is_checked() {
        let cpus = std::thread::available_parallelism().unwrap().get() as u32;
        let s = settings(&[]).unwrap();
        assert_eq!(s.concurrency, (2 * cpus).clamp(2, 8));
        assert_eq!(
            settings(&[("DBAAS_POOL_SIZE", "1")]).unwrap().concurrency,
            1
        );
        let s = settings(&[("DBAAS_POOL_SIZE", "20"), ("DBAAS_DB_CONCURRENCY", "20")]).unwrap();
        assert_eq!((s.pool_size, s.concurrency), (20, 20));
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
}
