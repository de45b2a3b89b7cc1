//! Where the host keeps what it knows of an instance's backups, out of
//! every container's reach.

use std::path::Path;

/// config/kept/<id>/: what the host keeps about an instance's backups
/// (instance.json, s3.json). backups/<id>/ is mounted into the instance's
/// containers, so whatever a tenant who got into one wrote there would be
/// trusted by the next restore; no container mounts config/.
pub fn kept_dir(repo_dir: &Path) -> std::path::PathBuf {
    let id = repo_dir.file_name().unwrap_or_default();
    repo_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join("config")
        .join("kept")
        .join(id)
}

/// config/kept/<id>/s3.json: the S3 repository with its keys, kept beside
/// the local backups so that a destroyed instance's S3 backups restore.
pub const S3_SETTINGS: &str = "s3.json";

/// Whether the instance of `repo_dir` has an S3 repository (cheap: the
/// file's presence, for reports).
pub fn has_s3(repo_dir: &Path) -> bool {
    kept_dir(repo_dir).join(S3_SETTINGS).exists() || repo_dir.join(S3_SETTINGS).exists()
}
