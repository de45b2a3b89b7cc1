//! An instance's backups as the host sees them, from files alone (so also
//! for a destroyed instance): the sidecar's JSON lines
//! (backups/<id>/backups.json), joined with what pgBackRest's repository
//! still holds (backups/<id>/repo), and the recoverable window.

use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::SystemTime;

/// The sidecar's record of backups and verifications, one JSON line each.
pub const LOG: &str = "backups.json";
/// backups/<id>/wal-newest: on a swarm home, the newest archived segment's
/// time (epoch seconds) in the node's repository, which dbaas mirrors
/// rather than the archive itself.
pub const MIRRORED_WAL: &str = "wal-newest";
/// The log read from its end: enough for years of daily backups.
const LOG_MAX_BYTES: u64 = 1 << 20;

/// One backup still in the repository, with its latest verification.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Backup {
    pub label: String,
    /// full, diff or incr.
    #[serde(rename = "type")]
    pub kind: String,
    /// first, scheduled or on-demand.
    pub reason: String,
    pub start: String,
    pub stop: String,
    pub start_lsn: String,
    pub stop_lsn: String,
    /// The first and last WAL segment it needs.
    pub start_wal: String,
    pub stop_wal: String,
    /// The size of the database it holds.
    pub size_bytes: u64,
    /// What it added to the repository (compressed).
    pub repo_size_bytes: u64,
    pub duration_s: u64,
    /// None until its verification has run.
    pub verified: Option<bool>,
    pub verification: Option<Verification>,
}

/// A restore of a backup into a scratch directory, checked.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    pub ts: String,
    pub verified: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_s: u64,
    /// Until the restored server had replayed WAL and promoted.
    pub restore_s: Option<u64>,
    pub tables: u64,
    pub indexes_checked: u64,
}

/// A backup that failed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Failure {
    pub ts: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub error: String,
}

/// The times recovery can reach: from the end of the oldest backup to the
/// last WAL segment in the repository.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub earliest: String,
    pub latest: String,
}

/// Everything known about one instance's backups.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Oldest first.
    pub backups: Vec<Backup>,
    pub window: Option<Window>,
    /// The latest failed backup, when no backup succeeded after it.
    pub last_failure: Option<Failure>,
    /// The same for the S3 repository, when the instance has one (its
    /// window is not computed: dbaas does not list the bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub s3: Option<Box<Report>>,
}

impl Report {
    /// The newest backup whose verification passed.
    pub fn last_verified(&self) -> Option<&Backup> {
        self.backups.iter().rev().find(|b| b.verified == Some(true))
    }
    /// The newest verification, whatever its backup.
    pub fn latest_verification(&self) -> Option<&Verification> {
        self.backups
            .iter()
            .filter_map(|b| b.verification.as_ref())
            .max_by(|a, b| a.ts.cmp(&b.ts))
    }
}

/// A backup without a passed verification for this long is a concern (a
/// daily schedule, plus two hours of slack).
pub const STALE_AFTER_SECS: u64 = 26 * 3600;

/// Something wrong with an instance's backups, for doctor and top.
#[derive(Debug, Clone, PartialEq)]
pub enum Concern {
    /// The newest verification failed.
    VerificationFailed { label: String, reason: String },
    /// No backup passed its verification in STALE_AFTER_SECS (None: never).
    Stale { hours: Option<u64> },
    /// The latest backup failed and none succeeded since.
    BackupFailed { ts: String, error: String },
    /// The server's last attempt to archive a WAL segment failed.
    ArchiveFailing { wal: String, at: String },
    /// One of the above, about the S3 repository.
    S3(Box<Concern>),
}

impl std::fmt::Display for Concern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Concern::VerificationFailed { label, reason } => {
                write!(f, "the verification of backup {label} failed: {reason}")
            }
            Concern::Stale { hours: Some(h) } => {
                write!(f, "the last verified backup is {h} h old")
            }
            Concern::Stale { hours: None } => f.write_str("no backup has been verified yet"),
            Concern::BackupFailed { ts, error } => write!(f, "the backup at {ts} failed: {error}"),
            Concern::ArchiveFailing { wal, at } => write!(
                f,
                "WAL archiving fails (segment {wal} at {at}); WAL accumulates in pg_wal until the repository works again"
            ),
            Concern::S3(c) => write!(f, "S3 repository: {c}"),
        }
    }
}

impl Report {
    /// What doctor and top flag; `since` is when backups began (the
    /// instance's creation), so a new instance is not stale.
    pub fn concerns(&self, now: SystemTime, since: SystemTime) -> Vec<Concern> {
        let mut out = vec![];
        let newest = self
            .backups
            .iter()
            .filter(|b| b.verification.is_some())
            .max_by(|a, b| verified_at(a).cmp(verified_at(b)));
        if let Some(b) = newest.filter(|b| b.verified == Some(false)) {
            out.push(Concern::VerificationFailed {
                label: b.label.clone(),
                reason: b
                    .verification
                    .as_ref()
                    .and_then(|v| v.reason.clone())
                    .unwrap_or_default(),
            });
        }
        let age = |ts: &str| {
            humantime::parse_rfc3339_weak(ts.trim_end_matches('Z'))
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs())
        };
        let stale_after = std::time::Duration::from_secs(STALE_AFTER_SECS);
        match self.last_verified().and_then(|b| age(&b.stop)) {
            Some(secs) if secs > STALE_AFTER_SECS => out.push(Concern::Stale {
                hours: Some(secs / 3600),
            }),
            None if now.duration_since(since).is_ok_and(|d| d > stale_after) => {
                out.push(Concern::Stale { hours: None })
            }
            _ => {}
        }
        if let Some(f) = &self.last_failure {
            out.push(Concern::BackupFailed {
                ts: f.ts.clone(),
                error: f.error.clone(),
            });
        }
        if let Some(s3) = &self.s3 {
            out.extend(
                s3.concerns(now, since)
                    .into_iter()
                    .map(|c| Concern::S3(Box::new(c))),
            );
        }
        out
    }
}

fn verified_at(b: &Backup) -> &str {
    b.verification.as_ref().map_or("", |v| v.ts.as_str())
}

/// The state of an instance's backups in brief, for the summary, top and
/// Prometheus.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BackupHealth {
    /// When the newest backup finished.
    pub last_success: Option<String>,
    /// When the newest backup that passed its verification finished.
    pub last_verified: Option<String>,
    /// The database size the newest backup holds.
    pub size_bytes: Option<u64>,
    /// What doctor flags, in words.
    pub concerns: Vec<String>,
}

impl Report {
    pub fn health(&self, concerns: &[Concern]) -> BackupHealth {
        let newest = self.backups.last();
        BackupHealth {
            last_success: newest.map(|b| b.stop.clone()),
            last_verified: self.last_verified().map(|b| b.stop.clone()),
            size_bytes: newest.map(|b| b.size_bytes),
            concerns: concerns.iter().map(Concern::to_string).collect(),
        }
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    ts: String,
    event: String,
    /// 1 (local; lines written before S3 existed have none) or 2 (S3).
    #[serde(default = "local_repo")]
    repo: u8,
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    label: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    stop: Option<String>,
    #[serde(default)]
    start_lsn: Option<String>,
    #[serde(default)]
    stop_lsn: Option<String>,
    #[serde(default)]
    start_wal: Option<String>,
    #[serde(default)]
    stop_wal: Option<String>,
    #[serde(default)]
    size_bytes: Option<u64>,
    #[serde(default)]
    repo_size_bytes: Option<u64>,
    #[serde(default)]
    duration_s: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

/// Parses the log: backups and the latest verification of each, oldest
/// first, and the last failure if nothing succeeded after it. Lines that do
/// not parse (a torn last line) are skipped.
pub fn parse_log(text: &str, repo: u8) -> (Vec<Backup>, Option<Failure>) {
    let mut backups: Vec<Backup> = Vec::new();
    let mut failure = None;
    for raw in text.lines().filter(|l| l.starts_with('{')) {
        let Ok(l) = serde_json::from_str::<Line>(raw) else {
            continue;
        };
        if l.repo != repo {
            continue;
        }
        match (l.event.as_str(), l.ok) {
            ("backup", Some(true)) => {
                failure = None;
                let Some(label) = l.label else { continue };
                backups.retain(|b| b.label != label);
                backups.push(Backup {
                    label,
                    kind: l.kind.unwrap_or_default(),
                    reason: l.reason.unwrap_or_default(),
                    start: l.start.unwrap_or_default(),
                    stop: l.stop.unwrap_or_default(),
                    start_lsn: l.start_lsn.unwrap_or_default(),
                    stop_lsn: l.stop_lsn.unwrap_or_default(),
                    start_wal: l.start_wal.unwrap_or_default(),
                    stop_wal: l.stop_wal.unwrap_or_default(),
                    size_bytes: l.size_bytes.unwrap_or(0),
                    repo_size_bytes: l.repo_size_bytes.unwrap_or(0),
                    duration_s: l.duration_s.unwrap_or(0),
                    verified: None,
                    verification: None,
                });
            }
            ("backup", _) => {
                failure = Some(Failure {
                    ts: l.ts,
                    kind: l.kind.unwrap_or_default(),
                    error: l.error.unwrap_or_default(),
                })
            }
            ("verify", _) => {
                let Ok(v) = serde_json::from_str::<Verification>(raw) else {
                    continue;
                };
                if let Some(b) = backups
                    .iter_mut()
                    .find(|b| Some(&b.label) == l.label.as_ref())
                {
                    b.verified = Some(v.verified);
                    b.verification = Some(v);
                }
            }
            _ => {}
        }
    }
    (backups, failure)
}

/// The report of the repository in `dir` (backups/<id>) for stanza `id`.
pub fn report(dir: &Path, id: &str) -> Result<Report> {
    let mut r = report_brief(dir, id)?;
    let newest_wal = mirrored_wal_time(dir)
        .or_else(|| newest_segment_time(&dir.join("repo").join("archive").join(id)));
    r.window = window(&r.backups, newest_wal);
    Ok(r)
}

/// The report without the recoverable window (which lists the archive):
/// for doctor, top and /metrics.
pub fn report_brief(dir: &Path, id: &str) -> Result<Report> {
    let text = read_tail(&dir.join(LOG))?;
    let (mut backups, last_failure) = parse_log(&text, 1);
    // Expired backups are in the log but no longer in the repository.
    let in_repo = dir.join("repo").join("backup").join(id);
    backups.retain(|b| in_repo.join(&b.label).is_dir());
    let s3 = super::kept::has_s3(dir).then(|| {
        let (mut backups, last_failure) = parse_log(&text, 2);
        let held = s3_labels(dir);
        backups.retain(|b| held.contains(&b.label));
        Box::new(Report {
            backups,
            window: None,
            last_failure,
            s3: None,
        })
    });
    Ok(Report {
        backups,
        window: None,
        last_failure,
        s3,
    })
}

fn local_repo() -> u8 {
    1
}

/// backups/<id>/s3-listing.json: the labels the S3 repository held when the
/// sidecar last looked (after each S3 backup and each expire).
pub const S3_LISTING: &str = "s3-listing.json";

/// The labels of the backups the S3 repository holds (empty when unknown).
pub fn s3_labels(dir: &Path) -> Vec<String> {
    #[derive(Deserialize)]
    struct Listing {
        labels: Vec<String>,
    }
    crate::safe_fs::read_to_string(&dir.join(S3_LISTING))
        .ok()
        .and_then(|t| serde_json::from_str::<Listing>(&t).ok())
        .map(|l| l.labels)
        .unwrap_or_default()
}

fn window(backups: &[Backup], newest_wal: Option<SystemTime>) -> Option<Window> {
    let earliest = backups.iter().map(|b| b.stop.as_str()).min()?.to_string();
    let from_wal = newest_wal.map(|t| {
        // A segment's commits all precede its archiving; a second of margin
        // for the time between the switch and the push.
        let t = t - std::time::Duration::from_secs(1);
        humantime::format_rfc3339_seconds(t).to_string()
    });
    let newest_stop = backups.iter().map(|b| b.stop.as_str()).max()?;
    let latest = match from_wal {
        Some(w) if w.as_str() > newest_stop => w,
        _ => newest_stop.to_string(),
    };
    Some(Window { earliest, latest })
}

fn mirrored_wal_time(dir: &Path) -> Option<SystemTime> {
    let secs: u64 = crate::safe_fs::read_to_string(&dir.join(MIRRORED_WAL))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The newest archive time of a WAL segment (24 hex digits, then pgBackRest's
/// checksum and extension) under archive/<stanza>/<version>/<timeline+hi>/.
fn newest_segment_time(archive: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for version in std::fs::read_dir(archive).ok()?.flatten() {
        let Ok(dirs) = std::fs::read_dir(version.path()) else {
            continue;
        };
        for d in dirs.flatten().filter(|d| d.path().is_dir()) {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                let segment = name.len() > 24
                    && name.as_bytes()[..24].iter().all(u8::is_ascii_hexdigit)
                    && name.as_bytes()[24] == b'-';
                if !segment {
                    continue;
                }
                if let Ok(t) = f.metadata().and_then(|m| m.modified()) {
                    newest = newest.max(Some(t));
                }
            }
        }
    }
    newest
}

/// The end of a file (at most LOG_MAX_BYTES), empty when it does not exist;
/// the sidecar writes it, so it goes through the safe reader.
fn read_tail(path: &Path) -> Result<String> {
    crate::safe_fs::read_tail(path, LOG_MAX_BYTES)
        .map_err(|e| crate::error::Error::io(format!("reading {}", path.display()), e))
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
