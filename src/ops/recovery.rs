//! The recovery step of a restore: which repository, which point, and the
//! one-off container (agent/recover.sh in the target's db service) that
//! fills an empty data directory and replays WAL to that point. Used by a
//! create that restores (restore --to, clone) and by an in-place restore.

use crate::engine::{self, Mount, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use std::path::PathBuf;
use std::time::Duration;

/// Restoring and replaying WAL into a one-off container: bounded only to
/// catch a hang.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// The point a restore recovers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Everything archived (after forcing the current WAL segment out, when
    /// the source runs).
    Latest,
    /// A time, as PostgreSQL reads it (UTC).
    Time(String),
    Lsn(String),
    /// The end of one backup.
    Backup(String),
}

impl Target {
    /// At most one of `time`, `lsn` and `backup`; none is the latest.
    pub fn parse(time: Option<&str>, lsn: Option<&str>, backup: Option<&str>) -> Result<Target> {
        match (time, lsn, backup) {
            (None, None, None) => Ok(Target::Latest),
            (Some(t), None, None) => Ok(Target::Time(parse_time(t)?)),
            (None, Some(l), None) => {
                let ok = l.split_once('/').is_some_and(|(a, b)| {
                    (1..=8).contains(&a.len())
                        && (1..=8).contains(&b.len())
                        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_hexdigit())
                });
                if ok {
                    Ok(Target::Lsn(l.to_ascii_uppercase()))
                } else {
                    Err(Error::invalid(
                        "lsn",
                        format!(
                            "'{}' is not an LSN such as 0/3000060",
                            crate::validate::printable(l)
                        ),
                    ))
                }
            }
            (None, None, Some(b)) => {
                crate::validate::backup_label(b)?;
                Ok(Target::Backup(b.to_string()))
            }
            _ => Err(Error::invalid(
                "time",
                "give at most one of a time, an LSN and a backup label",
            )),
        }
    }

    /// The arguments of agent/recover.sh after the stanza.
    fn args(&self) -> Vec<String> {
        match self {
            Target::Latest => vec![],
            Target::Time(t) => vec!["--time".into(), t.clone()],
            Target::Lsn(l) => vec!["--lsn".into(), l.clone()],
            Target::Backup(b) => vec!["--set".into(), b.clone()],
        }
    }
}

/// An RFC 3339 time in UTC (`2026-11-29T01:02:03Z`, fractions allowed, or
/// with a space for the T), as PostgreSQL reads it.
pub fn parse_time(s: &str) -> Result<String> {
    let t = humantime::parse_rfc3339_weak(s.trim().trim_end_matches('Z')).map_err(|_| {
        Error::invalid(
            "time",
            format!(
                "'{}' is not a time; use RFC 3339 in UTC such as 2026-11-29T01:02:03Z",
                crate::validate::printable(s)
            ),
        )
    })?;
    let micros = humantime::format_rfc3339_micros(t).to_string();
    Ok(micros.replacen('T', " ", 1).replace('Z', "+00"))
}

/// RFC 3339 form of a time as `parse_time` returns it.
pub(super) fn rfc3339(pg: &str) -> String {
    pg.replacen(' ', "T", 1).replace("+00", "Z")
}

/// What a restore into a new instance recovers, set on its `Pending`
/// create: done between provisioning and the first start.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub source_id: String,
    pub source_repo: PathBuf,
    pub target: Target,
}

/// Runs the recovery of a new or emptied instance: agent/recover.sh in a
/// one-off db container, with the source's repository at /source.
pub async fn recover(home: &Home, id: &str, rec: &Recovery) -> Result<()> {
    let mounts = [
        Mount {
            host: rec.source_repo.clone(),
            target: "/source",
            read_only: true,
        },
        Mount {
            host: home.instance_dir(id).join("agent"),
            target: "/agent",
            read_only: true,
        },
    ];
    let mut argv: Vec<String> = vec![
        "bash".into(),
        "/agent/recover.sh".into(),
        rec.source_id.clone(),
    ];
    argv.extend(rec.target.args());
    engine::of(home)
        .run_once(id, &Service::Db, &mounts, &argv, RECOVERY_TIMEOUT)
        .await
        .map(|_| ())
}
