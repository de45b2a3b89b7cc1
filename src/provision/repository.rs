//! The files of an instance's backups: pgbackrest.conf, the repository
//! directory backups/<id>/, and what the host keeps about it in
//! config/kept/<id>/ (instance.json, s3.json) where no container reaches.

use super::make_dir;
pub use crate::backups::kept::{has_s3, kept_dir, S3_SETTINGS};
use crate::backups::{BackupPolicy, Retention};
use crate::error::{IoContext, Result};
use crate::registry::{write_atomic, Instance};
use askama::Template;
use std::path::Path;

/// The pgBackRest configuration of an instance with backups.
#[derive(Template)]
#[template(path = "pgbackrest.conf", escape = "none")]
pub struct PgBackRestConf<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub retention_type: &'a str,
    pub retention_full: u32,
    pub retention_comment: String,
    pub s3: Option<&'a crate::backups::s3::S3Repo>,
}

pub const PGBACKREST_CONF: &str = "pgbackrest.conf";

/// secrets/pgbackrest_s3.conf: the S3 repository's keys, a compose secret.
pub const S3_SECRET_FILE: &str = "pgbackrest_s3.conf";

pub fn render_pgbackrest(inst: &Instance, policy: &BackupPolicy) -> String {
    let (retention_type, retention_full, retention_comment) = match policy.retention() {
        Retention::Days(d) => (
            "time",
            d,
            format!("Keep the full backups (and their WAL) that recovery to any time of the\n# last {d} days needs."),
        ),
        Retention::Count(n) => (
            "count",
            n,
            format!("Keep the last {n} full backups and the WAL they need."),
        ),
    };
    PgBackRestConf {
        id: &inst.id,
        name: &inst.name,
        retention_type,
        retention_full,
        retention_comment,
        s3: inst.s3.as_ref(),
    }
    .render()
    .expect("pgbackrest template renders")
}

/// What an instance with backups has besides: verify/ (the sidecar's scratch restores),
/// pgbackrest.conf, and the repository directory backups/<id>/ next to
/// instances/ (which may exist: restoring from a destroyed instance's
/// backups reuses nothing of it, but a re-created id is never reused).
pub fn provision_backups(dir: &Path, inst: &Instance) -> Result<()> {
    let Some(policy) = &inst.backups else {
        return Ok(());
    };
    make_dir(&dir.join("verify"), 0o700)?;
    let repo = backup_repo_dir(dir, &inst.id);
    if let Some(parent) = repo.parent() {
        make_dir(parent, 0o700)?;
        crate::top_dir::mark(parent);
    }
    make_dir(&repo, 0o700)?;
    write_atomic(
        &dir.join(PGBACKREST_CONF),
        render_pgbackrest(inst, policy).as_bytes(),
        0o644,
    )?;
    write_backup_about(&kept_dir(&repo), inst)
}

/// config/kept/<id>/instance.json: what restoring these backups needs once
/// the instance is gone (its name among it).
fn write_backup_about(kept: &Path, inst: &Instance) -> Result<()> {
    make_dir(kept, 0o700)?;
    // The copy an older dbaas wrote where the containers can reach it.
    let _ = std::fs::remove_file(kept_legacy(kept, BACKUP_ABOUT));
    let about = serde_json::json!({
        "id": inst.id, "name": inst.name, "version": inst.version, "image": inst.image,
        "database": inst.database, "user": inst.user, "memory": inst.memory, "cpus": inst.cpus,
        "created_at": inst.created_at, "node": inst.node,
    });
    write_atomic(
        &kept.join(BACKUP_ABOUT),
        format!("{about:#}\n").as_bytes(),
        0o600,
    )
}

/// Where an older dbaas kept `file` of config/kept/<id>: backups/<id>/.
pub fn kept_legacy(kept: &Path, file: &str) -> std::path::PathBuf {
    let id = kept.file_name().unwrap_or_default();
    kept.parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("backups")
        .join(id)
        .join(file)
}

/// Writes both files of an instance's S3 repository (root's, 0600).
pub(super) fn save_s3(dir: &Path, id: &str, s3: &crate::backups::s3::S3Settings) -> Result<()> {
    let keys = format!(
        "# The keys of the S3 repository of dbaas instance {id} (repo2 in\n\
         # ../pgbackrest.conf). Mounted as a compose secret; never logged.\n\
         [global]\n{}",
        s3_keys(&s3.secrets, 2)
    );
    write_atomic(
        &dir.join("secrets").join(S3_SECRET_FILE),
        keys.as_bytes(),
        0o600,
    )?;
    write_kept_s3(&kept_dir(&backup_repo_dir(dir, id)), s3)
}

fn write_kept_s3(kept: &Path, s3: &crate::backups::s3::S3Settings) -> Result<()> {
    make_dir(kept, 0o700)?;
    let json = serde_json::to_string_pretty(s3).expect("S3 settings serialize");
    write_atomic(
        &kept.join(S3_SETTINGS),
        format!("{json}\n").as_bytes(),
        0o600,
    )?;
    let _ = std::fs::remove_file(kept_legacy(kept, S3_SETTINGS));
    Ok(())
}

fn s3_keys(s: &crate::backups::s3::S3Secrets, n: u8) -> String {
    format!(
        "repo{n}-s3-key={}\nrepo{n}-s3-key-secret={}\nrepo{n}-cipher-pass={}\n",
        s.access_key, s.secret_key, s.cipher_pass
    )
}

/// The S3 repository of the instance whose repository directory is
/// `repo_dir` (backups/<id>), if any: from config/kept/<id>/, or from where
/// an older dbaas kept it (backups/<id>/s3.json, which a container could
/// rewrite), checked by the rules of a settings file and moved to
/// config/kept/. Either way the values are checked again before use.
pub fn read_s3(repo_dir: &Path) -> Result<Option<crate::backups::s3::S3Settings>> {
    let kept = kept_dir(repo_dir);
    let read = |path: &Path| -> Result<Option<crate::backups::s3::S3Settings>> {
        match crate::safe_fs::read_to_string(path) {
            Ok(text) => serde_json::from_str::<crate::backups::s3::S3Settings>(&text)
                .map_err(|e| {
                    crate::error::Error::Failed(format!("{} is not readable: {e}", path.display()))
                })?
                .checked()
                .map(Some)
                .map_err(|e| {
                    crate::error::Error::Failed(format!(
                        "{} holds S3 settings that are not valid ({e}); it was not used",
                        path.display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
        }
    };
    if let Some(s) = read(&kept.join(S3_SETTINGS))? {
        return Ok(Some(s));
    }
    let legacy = repo_dir.join(S3_SETTINGS);
    match read(&legacy)? {
        Some(s) => {
            write_kept_s3(&kept, &s)?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

/// A pgBackRest configuration of stanza `id` in an S3 repository alone (as
/// repo1): what a restore from that repository runs with.
pub fn render_s3_source(id: &str, s3: &crate::backups::s3::S3Settings) -> String {
    let r = &s3.repo;
    format!(
        "[global]\nrepo1-type=s3\nrepo1-path={}/{id}\nrepo1-s3-endpoint={}\nrepo1-storage-port={}\n\
         repo1-s3-bucket={}\nrepo1-s3-region={}\nrepo1-s3-uri-style={}\nrepo1-storage-verify-tls={}\n\
         repo1-cipher-type=aes-256-cbc\n{}lock-path=/tmp/pgbackrest\nlog-level-file=off\nlog-level-console=warn\n",
        r.path,
        r.endpoint,
        r.port,
        r.bucket,
        r.region,
        r.uri_style,
        if r.verify_tls { "y" } else { "n" },
        s3_keys(&s3.secrets, 1)
    )
}

/// config/kept/<id>/instance.json: the instance a repository belongs to.
pub const BACKUP_ABOUT: &str = "instance.json";

/// instances/<id>/ -> backups/<id>/ (the compose file names it relatively).
pub fn backup_repo_dir(instance_dir: &Path, id: &str) -> std::path::PathBuf {
    instance_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("backups")
        .join(id)
}
