//! The recovery step of a restore: which repository, which point, and the
//! one-off container (agent/recover.sh in the target's db service) that
//! fills an empty data directory and replays WAL to that point. Used by a
//! create that restores (restore --to, clone) and by an in-place restore.

use crate::engine::{self, Mount, MountFrom, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use std::path::PathBuf;
use std::time::Duration;

/// Restoring and replaying WAL into a one-off container: bounded only to
/// catch a hang.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Which repository a restore reads: the local one (default) or the S3
/// one, for instance when the local disk is lost.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FromRepo {
    #[default]
    Local,
    S3,
}

impl FromRepo {
    pub fn parse(s: Option<&str>) -> Result<FromRepo> {
        match s.map(str::trim) {
            None | Some("local") => Ok(FromRepo::Local),
            Some("s3") => Ok(FromRepo::S3),
            Some(other) => Err(Error::invalid(
                "from",
                format!(
                    "'{}' is not a repository; use local or s3",
                    crate::validate::printable(other)
                ),
            )),
        }
    }
}

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
                crate::backups::backup_label(b)?;
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
    pub from: FromRepo,
}

/// instances/<id>/secrets/recover-source.conf: the source's S3 repository
/// with its keys, for the one-off container; removed after.
const SOURCE_CONF: &str = "recover-source.conf";

/// Runs the recovery of a new or emptied instance: agent/recover.sh in a
/// one-off db container, with the source's repository at /source.
pub async fn recover(home: &Home, id: &str, rec: &Recovery) -> Result<()> {
    let mut mounts = vec![Mount {
        from: MountFrom::Path(home.instance_dir(id).join("agent")),
        target: "/agent",
        read_only: true,
    }];
    if rec.from == FromRepo::Local {
        mounts.push(Mount {
            from: MountFrom::Repository {
                id: rec.source_id.clone(),
                dir: rec.source_repo.clone(),
            },
            target: "/source",
            read_only: true,
        });
    }
    let mut argv: Vec<String> = vec![
        "bash".into(),
        "/agent/recover.sh".into(),
        rec.source_id.clone(),
    ];
    argv.extend(rec.target.args());
    let conf = home.instance_dir(id).join("secrets").join(SOURCE_CONF);
    if rec.from == FromRepo::S3 {
        let (repo, src, c) = (rec.source_repo.clone(), rec.source_id.clone(), conf.clone());
        crate::ops::blocking(move || {
            let s3 = crate::provision::read_s3(&repo)?.ok_or_else(|| no_s3(&src))?;
            let text = crate::provision::render_s3_source(&src, &s3);
            crate::registry::write_atomic(&c, text.as_bytes(), 0o600)
        })
        .await?;
        mounts.push(Mount {
            from: MountFrom::Path(conf.clone()),
            target: "/recover-source.conf",
            read_only: true,
        });
        argv.extend(["--conf".into(), "/recover-source.conf".into()]);
    }
    let done = engine::of(home)
        .run_once(id, &Service::Db, &mounts, &argv, RECOVERY_TIMEOUT)
        .await
        .map(|_| ());
    if rec.from == FromRepo::S3 {
        let _ = std::fs::remove_file(&conf);
    }
    done
}

/// The refusal of an S3 restore from an instance without S3 backups.
pub fn no_s3(source: &str) -> Error {
    Error::Conflict(format!(
        "'{source}' has no S3 repository (its backups are local only); restore without --from s3"
    ))
}
