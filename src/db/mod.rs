//! The database service over each instance: tables, rows, SQL and
//! transactions, through one r2d2 pool per instance (pool.rs), with the
//! PostgREST-style grammar (query.rs), catalog lookups (catalog.rs), the
//! statements themselves (exec.rs) and JSON <-> PostgreSQL values
//! (values.rs).

pub mod catalog;
pub mod connect;
pub mod exec;
pub mod import;
pub mod lanes;
pub mod pool;
pub mod privileged;
pub mod query;
pub mod rows;
pub mod script;
pub mod session;
pub mod tls;
pub mod values;

use crate::error::{Error, SqlFailure};

pub use crate::settings::DbSettings as Settings;

/// The options of a free SQL request under these settings.
pub fn sql_options(s: &Settings, read_only: bool, array_mode: bool) -> exec::SqlOptions {
    exec::SqlOptions {
        read_only,
        array_mode,
        max_rows: s.max_rows,
        max_bytes: s.max_result_bytes,
    }
}

/// What a database closure can fail with: PostgreSQL's error (with the
/// index of the statement in a transaction) or one of ours.
#[derive(Debug)]
pub enum Failure {
    Pg(postgres::Error, Option<usize>),
    Other(Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e, None)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

impl Failure {
    /// Ours, with PostgreSQL's error kept as `pg_error` maps it.
    pub fn into_error(self) -> Error {
        match self {
            Failure::Pg(e, statement) => pg_error(&e, statement),
            Failure::Other(e) => e,
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
