//! The instance directory: instances/<id>/{docker-compose.yml, .env, data/,
//! logs/, scripts/}. Everything in it is rendered from validated values, so
//! the directory is self-contained and runnable by hand.

pub mod pg_config;
pub mod repository;
pub mod secrets;
pub mod spec;

pub use pg_config::{render_tuning, tuning, Tuning, TUNING_FILE};
pub use repository::{
    backup_repo_dir, has_s3, kept_dir, kept_legacy, provision_backups, read_s3, render_pgbackrest,
    render_s3_source, BACKUP_ABOUT, PGBACKREST_CONF, S3_SECRET_FILE, S3_SETTINGS,
};
pub use secrets::{app_password, Credentials};
pub use spec::ProjectFile;

use crate::error::{IoContext, Result};
use crate::registry::{write_atomic, Instance};
use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The init SQL shipped inside the binary (from init-scripts/), so the one
/// binary can provision anywhere.
pub const INIT_SCRIPTS: &[(&str, &str)] = &[
    (
        "00-superuser-local-only.sh",
        include_str!("../../init-scripts/00-superuser-local-only.sh"),
    ),
    (
        "01-init-users.sql",
        include_str!("../../init-scripts/01-init-users.sql"),
    ),
    (
        "02-monitoring-setup.sql",
        include_str!("../../init-scripts/02-monitoring-setup.sql"),
    ),
];

pub const MONITOR_USER: &str = "dbaas_monitor";
pub const SUPERUSER: &str = "postgres";
/// The agent's user in its container (`nobody` in Debian's images): it
/// owns logs/ and the monitoring password's file, nothing else.
pub const AGENT_UID: u32 = 65534;

/// The monitoring agent, copied into instances/<id>/agent/ so the directory
/// runs by hand on its own.
pub const AGENT_FILES: &[(&str, &str, u32)] = &[
    ("agent.sh", include_str!("../../agent/agent.sh"), 0o755),
    ("sample.sql", include_str!("../../agent/sample.sql"), 0o644),
    ("backup.sh", include_str!("../../agent/backup.sh"), 0o755),
    ("recover.sh", include_str!("../../agent/recover.sh"), 0o755),
];

/// The role and database names of an instance, for the containers; the
/// passwords are files of their own (`secrets/`).
pub fn render_env(inst: &Instance) -> String {
    format!(
        "# Names of dbaas instance \"{name}\" ({id}); its passwords are in secrets/.\n\
         POSTGRES_USER={su}\n\
         POSTGRES_DB={db}\n\
         DBAAS_APP_USER={user}\n\
         DBAAS_MONITOR_USER={mu}\n",
        name = inst.name,
        id = inst.id,
        su = SUPERUSER,
        db = inst.database,
        user = inst.user,
        mu = MONITOR_USER,
    )
}

/// Creates the instance directory with everything compose needs.
/// `project` is the engine's rendering of the instance (engine::project_file).
pub fn provision(
    dir: &Path,
    inst: &Instance,
    creds: &Credentials,
    project: &ProjectFile,
) -> Result<()> {
    // A fresh directory: never one that exists already, nor a symlink.
    if dir.symlink_metadata().is_ok() {
        return Err(crate::error::Error::Conflict(format!(
            "{} exists already; remove it or let dbaas pick another id",
            dir.display()
        )));
    }
    if let Some(parent) = dir.parent() {
        make_dir(parent, 0o750)?;
        // Before the instance's directory exists: it gets a block group
        // of its own (see top_dir).
        crate::top_dir::mark(parent);
    }
    // data/ is chowned by the container's entrypoint; scripts/ and logs/ must
    // be readable by the container's unprivileged postgres user.
    for (sub, mode) in [
        ("", 0o750),
        ("data", 0o700),
        ("logs", 0o755),
        ("scripts", 0o755),
        ("agent", 0o755),
        ("secrets", 0o700),
        ("run", 0o755),
    ] {
        let p = dir.join(sub);
        make_dir(&p, mode)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .ctx(|| format!("setting the mode of {}", p.display()))?;
    }
    write_project(dir, project)?;
    write_atomic(&dir.join(".env"), render_env(inst).as_bytes(), 0o600)?;
    let running_as_root = nix_is_root();
    for (file, password, uid, mode) in secrets::secret_files(creds) {
        let path = dir.join("secrets").join(file);
        write_atomic(&path, password.as_bytes(), mode)?;
        if running_as_root {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid))
                .ctx(|| format!("handing {} to its container's user", path.display()))?;
        }
    }
    // The agent writes its samples as its own user.
    if running_as_root {
        let logs = dir.join("logs");
        std::os::unix::fs::chown(&logs, Some(AGENT_UID), Some(AGENT_UID))
            .ctx(|| format!("handing {} to the agent's user", logs.display()))?;
    }
    if let Some(tls) = &creds.tls {
        write_tls(dir, tls)?;
    }
    if inst.backups.is_some() {
        provision_backups(dir, inst)?;
        if let Some(s3) = &creds.s3 {
            repository::save_s3(dir, &inst.id, s3)?;
        }
    }
    for (name, body) in INIT_SCRIPTS {
        write_atomic(&dir.join("scripts").join(name), body.as_bytes(), 0o644)?;
    }
    for (name, body, mode) in AGENT_FILES {
        write_atomic(&dir.join("agent").join(name), body.as_bytes(), *mode)?;
    }
    Ok(())
}

/// tls/: the server's certificate and key, root's (the db's entrypoint
/// hands a copy to postgres), mounted as secrets of the db service.
pub const TLS_DIR: &str = "tls";

pub fn write_tls(dir: &Path, tls: &crate::certs::Issued) -> Result<()> {
    let d = dir.join(TLS_DIR);
    make_dir(&d, 0o700)?;
    write_atomic(&d.join("server.crt"), tls.cert.as_bytes(), 0o644)?;
    write_atomic(&d.join("server.key"), tls.key.as_bytes(), 0o600)
}

/// A server certificate of the home's authority for `inst`, valid for the
/// address clients reach it at and the `others` it may move to (a swarm's
/// nodes); the authority is made on first use.
pub fn server_certificate(
    home: &crate::home::Home,
    inst: &Instance,
    others: &[String],
) -> Result<crate::certs::Issued> {
    let ca = crate::certs::Authority::load_or_create(&home.config_dir().join("ca"), &home.tag())?;
    let mut names = crate::certs::server_names(&inst.bind_address);
    for a in others {
        if !names.contains(a) {
            names.push(a.clone());
        }
    }
    ca.issue(&inst.id, &names)
}

/// The engine's project file (compose file or stack).
fn write_project(dir: &Path, project: &ProjectFile) -> Result<()> {
    write_atomic(&dir.join(project.file), project.text.as_bytes(), 0o644)
}

/// `mkdir -p -m MODE` (the mode for what it makes; umask applies).
pub(crate) fn make_dir(p: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .ctx(|| format!("creating {}", p.display()))
}

/// A spare of the warm pool becomes `inst` (ops/pool.rs): the generated
/// files that carry the instance's name are written again. The name is only
/// in comments of what the containers read, so none of them changes.
pub fn rename(dir: &Path, inst: &Instance, project: &ProjectFile) -> Result<()> {
    rewrite(dir, inst, project)?;
    write_atomic(&dir.join(".env"), render_env(inst).as_bytes(), 0o600)
}

/// Rewrites the generated files of an existing instance (its compose
/// file, the agent's scripts, the backup files) from its registry entry;
/// data and secrets are untouched.
pub fn rewrite(dir: &Path, inst: &Instance, project: &ProjectFile) -> Result<()> {
    // The socket directory the agent shares (made only with backups before).
    make_dir(&dir.join("run"), 0o755)?;
    write_project(dir, project)?;
    for (name, body, mode) in AGENT_FILES {
        write_atomic(&dir.join("agent").join(name), body.as_bytes(), *mode)?;
    }
    provision_backups(dir, inst)
}

/// Reads KEY=VALUE lines of instances/<id>/.env.
pub fn read_env(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(".env");
    let text =
        crate::safe_fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// Whether this process runs as root (it then hands files to the
/// containers' users; as another user, Docker's rootless mapping applies).
fn nix_is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_settings_move_out_of_the_containers_reach_and_are_checked() {
        let t = crate::testing::TempDir::new("kept-s3");
        let repo = t.path().join("backups").join("db_0000000a");
        std::fs::create_dir_all(&repo).unwrap();
        let good = crate::backups::s3::parse(
            "endpoint=s3.example.net\nbucket=b\nregion=r\naccess_key=AKIA1\nsecret_key=abcdef\n",
        )
        .unwrap();
        // As an older dbaas left it, beside the repository.
        let legacy = repo.join(S3_SETTINGS);
        std::fs::write(&legacy, serde_json::to_string(&good).unwrap()).unwrap();
        assert_eq!(read_s3(&repo).unwrap().unwrap(), good);
        assert!(!legacy.exists(), "moved");
        let kept = t.path().join("config/kept/db_0000000a").join(S3_SETTINGS);
        assert!(kept.exists());
        assert_eq!(read_s3(&repo).unwrap().unwrap(), good);
        // A container's rewrite: a newline that would add a pgBackRest
        // option, a network that would reach the compose file.
        std::fs::remove_file(&kept).unwrap();
        for bad in [
            {
                let mut b = good.clone();
                b.secrets.secret_key.push_str("\nrepo2-path=/elsewhere");
                b
            },
            {
                let mut b = good.clone();
                b.repo.network = Some("x\n    privileged: true".into());
                b
            },
        ] {
            std::fs::write(&legacy, serde_json::to_string(&bad).unwrap()).unwrap();
            let e = read_s3(&repo).unwrap_err().to_string();
            assert!(e.contains("not valid"), "{e}");
            assert!(!kept.exists());
        }
    }
}
