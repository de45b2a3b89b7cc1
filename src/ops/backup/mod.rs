//! Backups: listing them (also those of destroyed instances), taking one on
//! demand through the instance's backup sidecar, and turning backups on or
//! reconfiguring them. Restores are in restore.rs.

pub mod in_place;
pub mod policy;
pub mod protection;
pub mod recovery;
pub mod restore;

use crate::backups::BackupPolicy;
use crate::backups::{self, Backup, Report};
use crate::engine::{self, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::ops::access::serving;
use crate::ops::{blocking, find};
use crate::provision;
use crate::registry::{self, Instance};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A backup and its verification, however big the database: the bound only
/// catches a hung sidecar.
pub const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// `pgbackrest check`: a WAL switch and its archiving.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(180);

/// The backups of one instance (live or destroyed).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BackupList {
    pub instance: String,
    pub name: String,
    /// The instance is gone; its backups stay until deleted.
    pub destroyed: bool,
    /// Backups and archiving are on (false for a destroyed instance).
    pub enabled: bool,
    pub schedule: Option<String>,
    pub retention: Option<String>,
    #[serde(flatten)]
    pub report: Report,
}

/// What a repository says about the instance it belongs to
/// (backups/<id>/instance.json), enough to restore it once it is gone.
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub image: String,
    pub database: String,
    pub user: String,
    pub memory: u64,
    pub cpus: f64,
    /// The swarm node its data and local repository are on.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(skip)]
    pub live: Option<Instance>,
}

impl Source {
    pub fn of(inst: &Instance) -> Source {
        Source {
            id: inst.id.clone(),
            name: inst.name.clone(),
            version: inst.version,
            image: inst.image.clone(),
            database: inst.database.clone(),
            user: inst.user.clone(),
            memory: inst.memory,
            cpus: inst.cpus,
            node: inst.node.clone(),
            live: Some(inst.clone()),
        }
    }
}

/// The instance NAME-or-id, or a destroyed one whose backups are kept (by
/// id, or by name when one destroyed instance alone had it).
pub async fn source(home: &Home, key: &str) -> Result<Source> {
    match find(home, key).await {
        Ok(inst) => return Ok(Source::of(&inst)),
        Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let (h, k) = (home.clone(), key.to_string());
    let mut found = blocking(move || {
        Ok(destroyed(&h)?
            .into_iter()
            .filter(|s| s.id == k || s.name == k)
            .collect::<Vec<_>>())
    })
    .await?;
    // Ids are random: when several destroyed instances had this name, the
    // largest id is not the newest, so the caller picks one by its id.
    if found.len() > 1 {
        let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
        return Err(Error::Conflict(format!(
            "{} destroyed instances named '{key}' have kept backups ({}); name one by its id (`dbaasctl backups --all` lists them with their dates)",
            ids.len(),
            ids.join(", ")
        )));
    }
    found.pop().ok_or_else(|| Error::NotFound {
        what: format!("instance '{key}'"),
        hint: "no instance and no kept backups have this name or id; `dbaasctl list` and `dbaasctl backups --all` list them".into(),
    })
}

/// Repositories under backups/ whose instance is no longer in the registry.
fn destroyed(home: &Home) -> Result<Vec<Source>> {
    let reg = registry::load(home)?;
    let mut out = vec![];
    let Ok(dirs) = std::fs::read_dir(home.backups_dir()) else {
        return Ok(out);
    };
    for d in dirs.flatten() {
        let id = d.file_name().to_string_lossy().into_owned();
        if reg.find(&id).is_some() || crate::validate::instance_id(&id).is_err() {
            continue;
        }
        match kept_source(home, &d.path(), &id) {
            Some(s) => out.push(s),
            None => log::warn!(
                "the backups in {} have no valid instance.json; skipped",
                d.path().display()
            ),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The destroyed instance whose repository is `repo`: from
/// config/kept/<id>/instance.json, or from where an older dbaas kept it
/// (backups/<id>/, which its containers could write), then checked as a
/// request would be and with the image its version gets on this host: the
/// file cannot choose what a restore runs.
fn kept_source(home: &Home, repo: &std::path::Path, id: &str) -> Option<Source> {
    let kept = provision::kept_dir(repo).join(provision::BACKUP_ABOUT);
    let read = |p: &std::path::Path| {
        crate::safe_fs::read_to_string(p)
            .ok()
            .and_then(|t| serde_json::from_str::<Source>(&t).ok())
    };
    if let Some(s) = read(&kept).filter(|s| s.id == id) {
        return Some(s);
    }
    let mut s = read(&repo.join(provision::BACKUP_ABOUT)).filter(|s| s.id == id)?;
    let valid = crate::validate::instance_name(&s.name).is_ok()
        && crate::validate::sql_name("database", &s.database).is_ok()
        && crate::validate::sql_name("user", &s.user).is_ok()
        && crate::validate::version(&s.version.to_string()).is_ok()
        && s.node
            .as_deref()
            .is_none_or(|n| crate::validate::node_name(n).is_ok());
    if !valid {
        return None;
    }
    s.image = home.settings.image_for(s.version);
    Some(s)
}

fn list_of(home: &Home, src: &Source) -> Result<BackupList> {
    let report = backups::report(&home.backup_dir(&src.id), &src.id)?;
    let policy = src.live.as_ref().and_then(|i| i.backups.clone());
    Ok(BackupList {
        instance: src.id.clone(),
        name: src.name.clone(),
        destroyed: src.live.is_none(),
        enabled: policy.is_some(),
        schedule: policy.as_ref().map(|p| p.schedule.clone()),
        retention: policy.map(|p| p.retention),
        report,
    })
}

/// The backups of an instance (or of a destroyed one), oldest first, and
/// the recoverable window.
pub async fn list(home: &Home, key: &str) -> Result<BackupList> {
    let src = source(home, key).await?;
    if let Some(inst) = &src.live {
        crate::ops::mirror::sync_backups(home, inst).await;
    }
    let home = home.clone();
    blocking(move || list_of(&home, &src)).await
}

/// The backups of every instance and of every destroyed one.
pub async fn list_all(home: &Home) -> Result<Vec<BackupList>> {
    let home = home.clone();
    blocking(move || {
        let mut all: Vec<Source> = registry::load(&home)?.owned().map(Source::of).collect();
        all.extend(destroyed(&home)?);
        all.iter().map(|s| list_of(&home, s)).collect()
    })
    .await
}

/// One backup, by label.
pub async fn get(home: &Home, key: &str, label: &str) -> Result<Backup> {
    crate::backups::backup_label(label)?;
    let list = list(home, key).await?;
    list.report
        .backups
        .into_iter()
        .find(|b| b.label == label)
        .ok_or_else(|| Error::NotFound {
            what: format!("backup {label} of '{}'", list.name),
            hint: format!("`dbaasctl backups {}` lists them", list.name),
        })
}

/// The backup policy of an instance, or the error that says how to turn
/// backups on.
pub(super) fn policy_of(inst: &Instance) -> Result<BackupPolicy> {
    inst.backups.clone().ok_or_else(|| {
        Error::Conflict(format!(
            "instance '{}' has no backups; turn them on with `dbaasctl backup enable {}`",
            inst.name, inst.name
        ))
    })
}

/// Takes a backup now (full, diff or incr) and verifies it; returns it
/// with its verification. The instance must be running.
pub async fn take(home: &Home, key: &str, kind: &str) -> Result<Backup> {
    let (inst, claim) = claim(home, key, kind).await?;
    run_backup(home, inst, kind, claim).await
}

/// The refusals of an on-demand backup (bad type, not running, backups
/// off, one already under way), and the instance's place in `PENDING`.
async fn claim(home: &Home, key: &str, kind: &str) -> Result<(Instance, Claim)> {
    check_kind(kind)?;
    let inst = serving(home, key).await?;
    policy_of(&inst)?;
    let claim = Claim::new(&inst)?;
    Ok((inst, claim))
}

/// `take` for a caller that does not wait: the refusals (bad type, not
/// running, backups off, one already pending) come back at once, the
/// backup runs on to its end in the background.
pub async fn take_in_background(home: &Home, key: &str, kind: &str) -> Result<()> {
    let (inst, claim) = claim(home, key, kind).await?;
    let (home, kind) = (home.clone(), kind.to_string());
    tokio::spawn(async move {
        let name = inst.name.clone();
        if let Err(e) = run_backup(&home, inst, &kind, claim).await {
            log::warn!("backup of {name} failed: {e}");
        }
    });
    Ok(())
}

/// The instances with an on-demand backup under way in this process: one
/// at a time each, so that requests cannot queue backups without end.
static PENDING: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// An instance's place in `PENDING`, given back when dropped.
struct Claim(String);

impl Claim {
    fn new(inst: &Instance) -> Result<Claim> {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        if !p.insert(inst.id.clone()) {
            return Err(Error::Conflict(format!(
                "a backup of '{}' is already under way; wait for it (`dbaasctl backups {}` lists it when done)",
                inst.name, inst.name
            )));
        }
        Ok(Claim(inst.id.clone()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        PENDING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

fn check_kind(kind: &str) -> Result<()> {
    if !matches!(kind, "full" | "diff" | "incr") {
        return Err(Error::invalid(
            "type",
            format!(
                "'{}' is not a backup type; use full, diff or incr",
                crate::validate::printable(kind)
            ),
        ));
    }
    Ok(())
}

async fn run_backup(home: &Home, inst: Instance, kind: &str, _claim: Claim) -> Result<Backup> {
    let argv: Vec<String> = ["bash", "/agent/backup.sh", "backup", kind]
        .map(String::from)
        .into();
    let out = engine::of(home)
        .exec(&inst.id, &Service::Backup, &argv, BACKUP_TIMEOUT)
        .await?;
    let line = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "backup")
        .ok_or_else(|| {
            Error::Failed(format!(
                "the backup sidecar said nothing usable: {}",
                out.trim()
            ))
        })?;
    if line["ok"] != true {
        return Err(Error::Failed(format!(
            "the backup of '{}' failed: {}",
            inst.name,
            line["error"].as_str().unwrap_or("no reason given")
        )));
    }
    let label = line["label"].as_str().unwrap_or_default().to_string();
    // Where the repository is on another machine (a swarm node), the copy
    // that lists it can miss a sync under load: a few more (each `get`
    // syncs; a no-op on one host) before "not found".
    let mut attempt = 0;
    loop {
        attempt += 1;
        match get(home, &inst.id, &label).await {
            Err(Error::NotFound { .. }) if attempt <= MIRROR_RETRIES => {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            found => return found,
        }
    }
}

/// How many more syncs `take` tries before a backup it took is not found.
const MIRROR_RETRIES: u32 = 3;

/// Verifies a backup again (the newest when no label is given): restored
/// into the sidecar's scratch directory and checked, as after every backup.
/// Returns the backup with the new verification, passed or not.
pub async fn verify(home: &Home, key: &str, label: Option<&str>) -> Result<Backup> {
    let inst = serving(home, key).await?;
    policy_of(&inst)?;
    let label = match label {
        Some(l) => get(home, &inst.id, l).await?.label,
        None => list(home, &inst.id)
            .await?
            .report
            .backups
            .last()
            .map(|b| b.label.clone())
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "'{}' has no backup to verify; take one with `dbaasctl backup {}`",
                    inst.name, inst.name
                ))
            })?,
    };
    let argv: Vec<String> = ["bash", "/agent/backup.sh", "verify", &label]
        .map(String::from)
        .into();
    // A failed verification exits non-zero but is recorded: the record is
    // the answer, the exit status is not.
    if let Err(e) = engine::of(home)
        .exec(&inst.id, &Service::Backup, &argv, BACKUP_TIMEOUT)
        .await
    {
        log::info!("verification of {label} ended with: {e}");
    }
    let b = get(home, &inst.id, &label).await?;
    if b.verification.is_none() {
        return Err(Error::Failed(format!(
            "the verification of {label} recorded nothing; see `docker compose logs backup` in {}",
            home.instance_dir(&inst.id).display()
        )));
    }
    Ok(b)
}

/// Forces a WAL switch on a running instance and waits until the segment
/// is archived, so that everything committed so far is restorable. A
/// failure is logged, not fatal: what is archived is still restorable.
/// With `s3`, only the S3 repository is waited for (the local one may be
/// what was lost).
pub(super) async fn archive_now(home: &Home, inst: &Instance, s3: bool) -> bool {
    let mut argv: Vec<String> = ["bash", "/agent/backup.sh", "check"]
        .map(String::from)
        .into();
    if s3 {
        argv.push("2".into());
    }
    match engine::of(home)
        .exec(&inst.id, &Service::Backup, &argv, CHECK_TIMEOUT)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            log::warn!(
                "{}: could not force the current WAL segment out (is it running?); restoring what is archived ({first})",
                inst.name
            );
            false
        }
    }
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
