//! The typed errors below the binary, and the one mapping from error kind to
//! CLI exit code (and, for the API, HTTP status).

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A subprocess that failed: the command line, its exit status and the tail of
/// its stderr, so the user sees what ran and why it failed.
#[derive(Debug, Clone)]
pub struct ProcessFailure {
    pub cmd: String,
    pub status: String,
    pub stderr_tail: String,
}

impl fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed ({})", self.cmd, self.status)?;
        if !self.stderr_tail.trim().is_empty() {
            write!(
                f,
                "\n--- stderr (tail) ---\n{}",
                self.stderr_tail.trim_end()
            )?;
        }
        Ok(())
    }
}

/// A statement PostgreSQL refused, with what it said about it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SqlFailure {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character position in the statement, when PostgreSQL gives one.
    pub position: Option<u32>,
    /// Index of the failing statement in a transaction request.
    pub statement: Option<usize>,
}

impl fmt::Display for SqlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.statement {
            write!(f, "statement {i}: ")?;
        }
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)?;
        if let Some(d) = &self.detail {
            write!(f, "\nDETAIL: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nHINT: {h}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied value is wrong; `reason` says how to fix it.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },

    #[error("{what} not found: {hint}")]
    NotFound { what: String, hint: String },

    /// Taken name or port, wrong state.
    #[error("{0}")]
    Conflict(String),

    /// Docker or Compose is missing or unreachable; the message names the fix.
    #[error("{0}")]
    Docker(String),

    #[error("{0}")]
    Compose(ProcessFailure),

    #[error("timed out after {secs} s {what}")]
    Timeout { what: String, secs: u64 },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Something failed; the message says what and how to fix it.
    #[error("{0}")]
    Failed(String),

    /// PostgreSQL refused a statement: its SQLSTATE decides the HTTP status.
    #[error("{0}")]
    Sql(Box<SqlFailure>),

    /// The instance's PostgreSQL cannot be reached (down, restarting, pool
    /// exhausted).
    #[error("{0}")]
    Unavailable(String),

    /// Too much work queued already: try again shortly (503, Retry-After).
    #[error("{0}")]
    Busy(String),

    /// A request body not declared as JSON.
    #[error("{0}")]
    NotJson(String),

    /// A request body that does not parse as what the route takes.
    #[error("{message}")]
    InvalidJson {
        message: String,
        line: usize,
        column: usize,
    },

    /// A create that failed after its registry entry existed: what was done
    /// about it (rolled back, kept) and the underlying error, whose kind
    /// decides the HTTP status and detail.
    #[error("{context}:\n{cause}")]
    CreateFailed { context: String, cause: Box<Error> },
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Process exit code for the CLI. Documented in docs/commands.md.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid { .. } | Error::NotJson(_) | Error::InvalidJson { .. } => 2,
            Error::NotFound { .. } => 3,
            Error::Conflict(_) => 4,
            Error::Docker(_) => 5,
            Error::Compose(_) => 6,
            Error::Timeout { .. } => 7,
            Error::Sql(_) => 8,
            Error::Unavailable(_) | Error::Busy(_) => 9,
            // A create that failed because Docker went away says so (5).
            Error::CreateFailed { cause, .. } if matches!(**cause, Error::Docker(_)) => 5,
            Error::Io { .. } | Error::Failed(_) | Error::CreateFailed { .. } => 1,
        }
    }
}

impl Error {
    /// Short machine-readable code, used in the API's error shape.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid",
            Error::NotJson(_) => "unsupported_media_type",
            Error::InvalidJson { .. } => "invalid_json",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::Docker(_) => "docker_unavailable",
            Error::Compose(_) => "docker_failed",
            Error::Timeout { .. } => "timeout",
            Error::Io { .. } => "io",
            Error::Failed(_) => "failed",
            Error::Sql(_) => "sql",
            Error::Unavailable(_) => "database_unavailable",
            Error::Busy(_) => "busy",
            Error::CreateFailed { cause, .. } => cause.code(),
        }
    }

    /// HTTP status for the API: the same kinds as the exit codes.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid { .. } | Error::InvalidJson { .. } => 400,
            Error::NotJson(_) => 415,
            Error::NotFound { .. } => 404,
            Error::Conflict(_) => 409,
            Error::Docker(_) => 503,
            Error::Compose(_) | Error::Io { .. } | Error::Failed(_) => 500,
            Error::Timeout { .. } => 504,
            Error::Sql(f) => http_status_for_sqlstate(&f.sqlstate),
            Error::Unavailable(_) | Error::Busy(_) => 503,
            Error::CreateFailed { cause, .. } => cause.http_status(),
        }
    }
}

/// The HTTP status for a PostgreSQL error code (SQLSTATE).
pub fn http_status_for_sqlstate(code: &str) -> u16 {
    match code {
        "23505" | "23503" => 409,
        // Dependent objects (DROP TABLE without cascade), exclusion
        // constraints, and names already taken (tables, types, ...).
        "2BP01" | "23P01" | "42P07" | "42710" => 409,
        "23502" | "22P02" => 400,
        "42P01" => 404,
        "42501" => 403,
        "57014" => 504,
        "40001" | "40P01" => 409,
        c if c.starts_with("22") || c.starts_with("23") => 400,
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57P") => 503,
        // Read-only transaction, and other rules the request broke.
        "25006" => 400,
        // Other syntax and access-rule errors are the request's fault.
        c if c.starts_with("42") => 400,
        _ => 500,
    }
}

/// Adds context to io errors in one call.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

/// Echoes user input back without control characters (in error messages).
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(40)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_statuses() {
        for (code, status) in [
            ("23505", 409),
            ("23503", 409),
            ("23502", 400),
            ("22P02", 400),
            ("22012", 400),
            ("42P01", 404),
            ("42501", 403),
            ("57014", 504),
            ("40001", 409),
            ("40P01", 409),
            ("08006", 503),
            ("53300", 503),
            ("42601", 400),
            ("XX000", 500),
        ] {
            assert_eq!(http_status_for_sqlstate(code), status, "{code}");
        }
    }

    #[test]
    fn exit_codes_are_distinct_per_kind() {
        let errs = [
            Error::invalid("name", "x"),
            Error::NotFound {
                what: "x".into(),
                hint: "y".into(),
            },
            Error::Conflict("c".into()),
            Error::Docker("d".into()),
            Error::Compose(ProcessFailure {
                cmd: "docker compose up".into(),
                status: "exit status: 1".into(),
                stderr_tail: "boom".into(),
            }),
            Error::Timeout {
                what: "w".into(),
                secs: 1,
            },
        ];
        let mut codes: Vec<i32> = errs.iter().map(|e| e.exit_code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), errs.len());
        assert!(errs[4].to_string().contains("docker compose up"));
        assert!(errs[4].to_string().contains("boom"));
    }
}
