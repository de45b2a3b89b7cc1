//! Every user-supplied value is checked here before anything is changed. The
//! accepted alphabets are narrow on purpose: a validated value is safe in YAML,
//! in a shell word, in a file name and as a SQL identifier.

use crate::backups::{backup_policy, BackupPolicy};
use crate::error::{Error, Result};

pub const SUPPORTED_VERSIONS: &[u32] = &[13, 15, 17];
pub const DEFAULT_VERSION: u32 = 15;
pub const MAX_NAME_LEN: usize = 63;
pub const MIN_MEMORY: u64 = 64 * 1024 * 1024;

pub const DEFAULT_MEMORY: &str = "512m";
pub const DEFAULT_CPUS: &str = "1.0";
pub const DEFAULT_DATABASE: &str = "app";
pub const DEFAULT_USER: &str = "app";
/// Seconds between a new instance's monitoring samples.
pub const DEFAULT_METRICS_INTERVAL: u32 = 10;

/// What the host can give, that a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub memory: u64,
    pub cpus: usize,
}

/// What a user asks for; every field is validated by `validate_create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub version: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub port: Option<u32>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// Seconds between monitoring samples (default 10).
    pub metrics_interval: Option<String>,
    /// When full backups are taken: `24h`-style intervals or `daily@HH:MM`
    /// (UTC); default every 24 h.
    pub backup_schedule: Option<String>,
    /// How long backups are kept: `7d` (days of recovery) or a count of
    /// full backups; default 7d.
    pub backup_retention: Option<String>,
    /// No archiving, no backup sidecar.
    pub no_backups: bool,
    /// The second, S3-compatible repository.
    pub s3: crate::backups::s3::S3Choice,
    pub keep_on_failure: bool,
    /// The swarm node to run on (swarm homes only); dbaas chooses without.
    pub node: Option<String>,
    /// Accept TCP logins without TLS too.
    pub allow_plaintext: bool,
}

#[derive(Debug, Clone)]
pub struct ValidCreate {
    pub name: String,
    pub version: u32,
    pub memory: u64,
    pub cpus: f64,
    pub port: Option<u16>,
    pub database: String,
    pub user: String,
    pub metrics_interval: u32,
    pub backups: Option<BackupPolicy>,
    /// Set by the create from its S3 choice (validate reads no files).
    pub s3: Option<crate::backups::s3::S3Repo>,
    pub node: Option<String>,
    pub allow_plaintext: bool,
}

/// An instance id as dbaas makes them: `db_` and 8 hex digits.
pub fn instance_id(s: &str) -> Result<()> {
    let ok = s.len() == 11
        && s.starts_with("db_")
        && s[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "id",
            format!(
                "'{}' is not an instance id (db_ and 8 hex digits)",
                printable(s)
            ),
        ))
    }
}

/// Every field of a create request, with the defaults filled in.
pub fn create(req: &CreateRequest, host: Host) -> Result<ValidCreate> {
    instance_name(&req.name)?;
    let version = match &req.version {
        Some(v) => version(v)?,
        None => DEFAULT_VERSION,
    };
    let memory = memory(req.memory.as_deref().unwrap_or(DEFAULT_MEMORY), host.memory)?;
    let cpus = cpus(req.cpus.as_deref().unwrap_or(DEFAULT_CPUS), host.cpus)?;
    let port = req.port.map(port).transpose()?;
    let database = req
        .database
        .clone()
        .unwrap_or_else(|| DEFAULT_DATABASE.into());
    sql_name("database", &database)?;
    let user = req.user.clone().unwrap_or_else(|| DEFAULT_USER.into());
    sql_name("user", &user)?;
    let metrics_interval = match &req.metrics_interval {
        Some(s) => metrics_interval(s)?,
        None => DEFAULT_METRICS_INTERVAL,
    };
    let backups = backup_policy(
        req.backup_schedule.as_deref(),
        req.backup_retention.as_deref(),
        req.no_backups,
    )?;
    if let Some(n) = &req.node {
        node_name(n)?;
    }
    Ok(ValidCreate {
        node: req.node.clone(),
        allow_plaintext: req.allow_plaintext,
        metrics_interval,
        backups,
        s3: None,
        name: req.name.clone(),
        version,
        memory,
        cpus,
        port,
        database,
        user,
    })
}

/// A swarm node's name is its hostname: letters, digits, '-', '.' and '_'.
pub fn node_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "node",
            format!(
                "'{}' is not a node name; use a hostname from `dbaasctl nodes` (letters, digits, '-', '.', '_')",
                printable(name)
            ),
        ))
    }
}

/// Instance names: lowercase letters, digits and inner hyphens. No underscore,
/// so a name can never look like an id (`db_...`).
pub fn instance_name(name: &str) -> Result<()> {
    let fix =
        "use 1-63 characters: lowercase letters, digits and '-', starting with a letter or digit";
    if name.is_empty() {
        return Err(Error::invalid("name", format!("the name is empty; {fix}")));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::invalid(
            "name",
            format!(
                "'{}' is longer than {MAX_NAME_LEN} characters; {fix}",
                printable(name)
            ),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(Error::invalid(
            "name",
            format!(
                "{} is not allowed in '{}'; {fix}",
                describe_char(c),
                printable(name)
            ),
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(Error::invalid(
            "name",
            format!("'{name}' must not start or end with '-'; {fix}"),
        ));
    }
    Ok(())
}

/// Database and user names: SQL identifiers that need no quoting, and not
/// the roles the instance reserves for itself.
pub fn sql_name(field: &str, value: &str) -> Result<()> {
    let fix =
        "use 1-63 characters: lowercase letters, digits and '_', starting with a letter or '_'";
    if value.is_empty() || value.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            field,
            format!("must be 1-63 characters; {fix}"),
        ));
    }
    let mut chars = value.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_lowercase() || first == '_')
        || !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid(
            field,
            format!("'{}' is not allowed; {fix}", printable(value)),
        ));
    }
    // PostgreSQL's own databases and superuser, dbaas's monitoring role,
    // and names that mean something else where a role is expected.
    const RESERVED: &[&str] = &[
        "postgres",
        "template0",
        "template1",
        "public",
        "none",
        "all",
        "current_user",
        "current_role",
        "session_user",
        "user",
        "dbaas_monitor",
        "pg_monitor",
    ];
    if RESERVED.contains(&value) || value.starts_with("pg_") {
        return Err(Error::invalid(
            field,
            format!("'{value}' is reserved by PostgreSQL or dbaas; choose another name"),
        ));
    }
    Ok(())
}

pub fn version(v: &str) -> Result<u32> {
    let supported = SUPPORTED_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| SUPPORTED_VERSIONS.contains(n))
        .ok_or_else(|| {
            Error::invalid(
                "version",
                format!(
                    "PostgreSQL '{}' is not supported; use one of {supported}",
                    printable(v)
                ),
            )
        })
}

/// Parses a memory size like `512m`, `1g`, `1.5g`, `256MiB` into bytes and
/// checks it against PostgreSQL's practical minimum and the host's memory.
pub fn memory(s: &str, host_total: u64) -> Result<u64> {
    let fix = "use a size like 512m or 2g (units b, k, m, g, t)";
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" if unit.is_empty() || unit == "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => {
            return Err(Error::invalid(
                "memory",
                format!("'{}' has an unknown unit; {fix}", printable(s)),
            ))
        }
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && !num.is_empty())
        .ok_or_else(|| {
            Error::invalid("memory", format!("'{}' is not a size; {fix}", printable(s)))
        })?;
    let bytes = n * mult as f64;
    if bytes < MIN_MEMORY as f64 {
        return Err(Error::invalid(
            "memory",
            format!(
                "'{}' is below the minimum of 64m that PostgreSQL needs",
                printable(s)
            ),
        ));
    }
    if bytes > host_total as f64 {
        return Err(Error::invalid(
            "memory",
            format!(
                "'{}' is more than this host's {} of memory",
                printable(s),
                format_bytes(host_total)
            ),
        ));
    }
    Ok(bytes as u64)
}

pub fn cpus(s: &str, host_cpus: usize) -> Result<f64> {
    let n: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| {
            Error::invalid(
                "cpus",
                format!("'{}' is not a number; use e.g. 0.5 or 1.0", printable(s)),
            )
        })?;
    if n < 0.01 {
        return Err(Error::invalid(
            "cpus",
            format!("'{}' must be at least 0.01", printable(s)),
        ));
    }
    if n > host_cpus as f64 {
        return Err(Error::invalid(
            "cpus",
            format!(
                "'{}' is more than this host's {host_cpus} CPUs",
                printable(s)
            ),
        ));
    }
    // Docker takes CPUs in units of 1e-9; keep two decimals for readability.
    Ok((n * 100.0).round() / 100.0)
}

/// Seconds between monitoring samples: 1 to 3600.
pub fn metrics_interval(s: &str) -> Result<u32> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=3600).contains(n))
        .ok_or_else(|| {
            Error::invalid(
                "metrics_interval",
                format!(
                    "'{}' is not a whole number of seconds from 1 to 3600",
                    printable(s)
                ),
            )
        })
}

pub fn port(p: u32) -> Result<u16> {
    if p == 0 || p > 65535 {
        return Err(Error::invalid(
            "port",
            format!("{p} is out of range; use a port from 1024 to 65535"),
        ));
    }
    if p < 1024 {
        return Err(Error::invalid(
            "port",
            format!("{p} is a privileged port; use a port from 1024 to 65535"),
        ));
    }
    Ok(p as u16)
}

/// DBAAS_IMAGE must be a plain image reference with an optional `{version}`.
pub fn image_template(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.replace("{version}", "1")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "DBAAS_IMAGE",
            format!(
                "'{}' is not an image reference like dbaas/postgres:{{version}}",
                printable(s)
            ),
        ))
    }
}

/// Human form of a byte count in Docker's units: 512m, 2g, 1536m.
pub fn format_bytes(b: u64) -> String {
    const UNITS: &[(u64, &str)] = &[
        (1 << 40, "t"),
        (1 << 30, "g"),
        (1 << 20, "m"),
        (1 << 10, "k"),
    ];
    for (size, unit) in UNITS {
        if b >= *size && b.is_multiple_of(*size) {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}b")
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' | '\r' => "a newline".into(),
        '/' => "'/'".into(),
        c if c.is_ascii_uppercase() => format!("uppercase '{c}'"),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

pub use crate::error::printable;

#[cfg(test)]
#[path = "validate_tests.rs"]
pub(crate) mod tests;
