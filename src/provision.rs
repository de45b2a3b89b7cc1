//! The instance directory: instances/<id>/{docker-compose.yml, .env, data/,
//! logs/, scripts/}. Everything in it is rendered from validated values, so
//! the directory is self-contained and runnable by hand.

use crate::error::{IoContext, Result};
use crate::registry::{write_atomic, Instance};
use crate::validate::{BackupPolicy, Retention};
use askama::Template;
use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The init SQL shipped inside the binary (from init-scripts/), so the one
/// binary can provision anywhere.
pub const INIT_SCRIPTS: &[(&str, &str)] = &[
    (
        "00-superuser-local-only.sh",
        include_str!("../init-scripts/00-superuser-local-only.sh"),
    ),
    (
        "01-init-users.sql",
        include_str!("../init-scripts/01-init-users.sql"),
    ),
    (
        "02-monitoring-setup.sql",
        include_str!("../init-scripts/02-monitoring-setup.sql"),
    ),
];

/// The generated project file in each instance directory.
pub const COMPOSE_FILE: &str = "docker-compose.yml";
pub const MONITOR_USER: &str = "dbaas_monitor";
pub const SUPERUSER: &str = "postgres";
/// The agent's user in its container (`nobody` in Debian's images): it
/// owns logs/ and the monitoring password's file, nothing else.
pub const AGENT_UID: u32 = 65534;

#[derive(Template)]
#[template(path = "docker-compose.yml", escape = "none")]
pub struct ComposeFile<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub version: u32,
    pub image: &'a str,
    pub home_tag: &'a str,
    pub bind_address: &'a str,
    pub port: u16,
    pub memory_bytes: String,
    pub cpus: String,
    pub database: &'a str,
    pub user: &'a str,
    pub shared_buffers: String,
    pub effective_cache_size: String,
    pub metrics_interval: u32,
    pub metrics_max_bytes: u64,
    pub metrics_keep: u32,
    pub temp_file_limit: String,
    pub agent_uid: u32,
    pub backups: bool,
    pub backup_schedule: &'a str,
    /// A second repository in S3 (only with backups).
    pub s3: bool,
    pub s3_network: Option<&'a str>,
    /// The instance's own network (a block of DBAAS_SUBNET_POOL).
    pub subnet: Option<&'a str>,
}

/// The stack file of an instance on a swarm node (templates/stack.yml).
pub const STACK_FILE: &str = "stack.yml";

#[derive(Template)]
#[template(path = "stack.yml", escape = "none")]
pub struct StackFile<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub version: u32,
    pub image: &'a str,
    pub home_tag: &'a str,
    pub node: &'a str,
    pub port: u16,
    pub memory_bytes: String,
    pub cpus: String,
    pub database: &'a str,
    pub user: &'a str,
    pub monitor_user: &'a str,
    pub shared_buffers: String,
    pub effective_cache_size: String,
    pub temp_file_limit: String,
    pub metrics_interval: u32,
    pub metrics_max_bytes: u64,
    pub metrics_keep: u32,
    pub agent_uid: u32,
    pub backups: bool,
    pub backup_schedule: &'a str,
    /// A second, S3-compatible repository (its keys a Swarm secret).
    pub s3: bool,
    pub hashes: StackHashes,
}

/// Short hashes of the files a stack makes configs of: a config cannot
/// change in place, so a new content is a new name.
pub struct StackHashes {
    pub init_superuser: String,
    pub init_users: String,
    pub init_monitoring: String,
    pub agent_sh: String,
    pub agent_sample: String,
    pub backup_sh: String,
    /// Of the rendered pgbackrest.conf (empty without backups).
    pub pgbackrest_conf: String,
}

fn content_hash(body: &str) -> String {
    crate::home::fnv1a_hex(body.as_bytes())
}

fn shipped(files: &[(&'static str, &'static str)], name: &str) -> String {
    content_hash(
        files
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, b)| b),
    )
}

pub fn render_stack(inst: &Instance, home_tag: &str) -> String {
    let tuning = tuning(inst.memory);
    let agent: Vec<(&str, &str)> = AGENT_FILES.iter().map(|(n, b, _)| (*n, *b)).collect();
    StackFile {
        id: &inst.id,
        name: &inst.name,
        version: inst.version,
        image: &inst.image,
        home_tag,
        node: inst.node.as_deref().unwrap_or(""),
        port: inst.port,
        memory_bytes: crate::validate::format_bytes(inst.memory),
        cpus: format!("{}", inst.cpus),
        database: &inst.database,
        user: &inst.user,
        monitor_user: MONITOR_USER,
        shared_buffers: tuning.shared_buffers,
        effective_cache_size: tuning.effective_cache_size,
        temp_file_limit: tuning.temp_file_limit,
        metrics_interval: inst.metrics_interval,
        metrics_max_bytes: inst.metrics_max_bytes,
        metrics_keep: inst.metrics_keep,
        agent_uid: AGENT_UID,
        backups: inst.backups.is_some(),
        backup_schedule: inst.backups.as_ref().map_or("", |b| b.schedule.as_str()),
        s3: inst.backups.is_some() && inst.s3.is_some(),
        hashes: StackHashes {
            init_superuser: shipped(INIT_SCRIPTS, "00-superuser-local-only.sh"),
            init_users: shipped(INIT_SCRIPTS, "01-init-users.sql"),
            init_monitoring: shipped(INIT_SCRIPTS, "02-monitoring-setup.sql"),
            agent_sh: shipped(&agent, "agent.sh"),
            agent_sample: shipped(&agent, "sample.sql"),
            backup_sh: shipped(&agent, "backup.sh"),
            pgbackrest_conf: inst
                .backups
                .as_ref()
                .map_or(String::new(), |p| content_hash(&render_pgbackrest(inst, p))),
        },
    }
    .render()
    .expect("stack template renders")
}

/// The pgBackRest configuration of an instance with backups.
#[derive(Template)]
#[template(path = "pgbackrest.conf", escape = "none")]
pub struct PgBackRestConf<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub retention_type: &'a str,
    pub retention_full: u32,
    pub retention_comment: String,
    pub s3: Option<&'a crate::s3::S3Repo>,
}

pub const PGBACKREST_CONF: &str = "pgbackrest.conf";

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

/// The monitoring agent, copied into instances/<id>/agent/ so the directory
/// runs by hand on its own.
pub const AGENT_FILES: &[(&str, &str, u32)] = &[
    ("agent.sh", include_str!("../agent/agent.sh"), 0o755),
    ("sample.sql", include_str!("../agent/sample.sql"), 0o644),
    ("backup.sh", include_str!("../agent/backup.sh"), 0o755),
    ("recover.sh", include_str!("../agent/recover.sh"), 0o755),
];

/// The secrets of one instance, kept only in instances/<id>/secrets/
/// (0600/0400). Debug never shows them.
#[derive(Clone)]
pub struct Credentials {
    pub superuser_password: String,
    pub app_password: String,
    pub monitor_password: String,
    /// The S3 repository (with its keys), when the instance has one.
    pub s3: Option<crate::s3::S3Settings>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { <redacted> }")
    }
}

impl Credentials {
    pub fn generate() -> Credentials {
        Credentials {
            superuser_password: crate::secrets::password(),
            app_password: crate::secrets::password(),
            monitor_password: crate::secrets::password(),
            s3: None,
        }
    }
}

pub fn render_compose(inst: &Instance, home_tag: &str) -> String {
    // An IPv6 address is bracketed in a port mapping.
    let bind = if inst.bind_address.contains(':') {
        format!("[{}]", inst.bind_address)
    } else {
        inst.bind_address.clone()
    };
    let tuning = tuning(inst.memory);
    ComposeFile {
        id: &inst.id,
        name: &inst.name,
        version: inst.version,
        image: &inst.image,
        home_tag,
        bind_address: &bind,
        port: inst.port,
        memory_bytes: crate::validate::format_bytes(inst.memory),
        cpus: format!("{}", inst.cpus),
        database: &inst.database,
        user: &inst.user,
        // A quarter of the limit for shared buffers (PostgreSQL's usual
        // advice), at least 16MB; the planner may assume three quarters cached.
        shared_buffers: tuning.shared_buffers,
        effective_cache_size: tuning.effective_cache_size,
        metrics_interval: inst.metrics_interval,
        metrics_max_bytes: inst.metrics_max_bytes,
        metrics_keep: inst.metrics_keep,
        temp_file_limit: tuning.temp_file_limit,
        agent_uid: AGENT_UID,
        backups: inst.backups.is_some(),
        backup_schedule: inst.backups.as_ref().map_or("", |b| b.schedule.as_str()),
        s3: inst.backups.is_some() && inst.s3.is_some(),
        s3_network: inst
            .s3
            .as_ref()
            .filter(|_| inst.backups.is_some())
            .and_then(|r| r.network.as_deref()),
        subnet: inst.subnet.as_deref(),
    }
    .render()
    .expect("compose template renders")
}

/// PostgreSQL settings derived from an instance's memory limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    pub shared_buffers: String,
    pub effective_cache_size: String,
    pub temp_file_limit: String,
}

/// A quarter of the limit for shared buffers (PostgreSQL's usual advice),
/// at least 16MB; the planner may assume three quarters cached; a runaway
/// sort or hash may spill four times the limit to disk per session (at
/// least 1 GB), not fill the host's disk.
pub fn tuning(memory: u64) -> Tuning {
    Tuning {
        shared_buffers: format!("{}MB", ((memory / 4) >> 20).max(16)),
        effective_cache_size: format!("{}MB", ((memory * 3 / 4) >> 20).max(16)),
        temp_file_limit: format!("{}MB", ((memory * 4) >> 20).max(1024)),
    }
}

/// data/dbaas-tuning.conf, which postgresql.conf includes: written by the
/// entrypoint at each start, and by `resize` on a running instance.
pub const TUNING_FILE: &str = "dbaas-tuning.conf";

pub fn render_tuning(t: &Tuning) -> String {
    format!(
        "# Sized to the container's memory by dbaas (the compose file's environment at\n\
         # each start; `dbaasctl resize` while it runs). ALTER SYSTEM overrides it.\n\
         shared_buffers = '{}'\neffective_cache_size = '{}'\ntemp_file_limit = '{}'\n",
        t.shared_buffers, t.effective_cache_size, t.temp_file_limit
    )
}

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

/// secrets/<file>: (file, password, owner uid, mode). The agent's is its
/// own (read-only, owned by its user); the others are root's.
fn secret_files(creds: &Credentials) -> [(&'static str, &str, u32, u32); 3] {
    [
        ("postgres_password", &creds.superuser_password, 0, 0o600),
        ("app_password", &creds.app_password, 0, 0o600),
        (
            "monitor_password",
            &creds.monitor_password,
            AGENT_UID,
            0o400,
        ),
    ]
}

/// Creates the instance directory with everything compose needs.
pub fn provision(dir: &Path, inst: &Instance, creds: &Credentials, home_tag: &str) -> Result<()> {
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
    write_project(dir, inst, home_tag)?;
    write_atomic(&dir.join(".env"), render_env(inst).as_bytes(), 0o600)?;
    let running_as_root = nix_is_root();
    for (file, password, uid, mode) in secret_files(creds) {
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
    if inst.backups.is_some() {
        provision_backups(dir, inst)?;
        if let Some(s3) = &creds.s3 {
            save_s3(dir, &inst.id, s3)?;
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

/// `mkdir -p -m MODE` (the mode for what it makes; umask applies).
fn make_dir(p: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .ctx(|| format!("creating {}", p.display()))
}

/// The project file: a swarm instance's is its stack (its containers are
/// on its node), any other's its compose file.
fn write_project(dir: &Path, inst: &Instance, home_tag: &str) -> Result<()> {
    match inst.node {
        Some(_) => write_atomic(
            &dir.join(STACK_FILE),
            render_stack(inst, home_tag).as_bytes(),
            0o644,
        ),
        None => write_atomic(
            &dir.join(COMPOSE_FILE),
            render_compose(inst, home_tag).as_bytes(),
            0o644,
        ),
    }
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

/// A spare of the warm pool becomes `inst` (ops/pool.rs): the generated
/// files that carry the instance's name are written again. The name is only
/// in comments of what the containers read, so none of them changes.
pub fn rename(dir: &Path, inst: &Instance, home_tag: &str) -> Result<()> {
    rewrite(dir, inst, home_tag)?;
    write_atomic(&dir.join(".env"), render_env(inst).as_bytes(), 0o600)
}

/// secrets/pgbackrest_s3.conf: the S3 repository's keys, a compose secret.
pub const S3_SECRET_FILE: &str = "pgbackrest_s3.conf";
/// config/kept/<id>/s3.json: the S3 repository with its keys, kept beside
/// the local backups so that a destroyed instance's S3 backups restore.
pub const S3_SETTINGS: &str = "s3.json";

/// Writes both files of an instance's S3 repository (root's, 0600).
fn save_s3(dir: &Path, id: &str, s3: &crate::s3::S3Settings) -> Result<()> {
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

fn write_kept_s3(kept: &Path, s3: &crate::s3::S3Settings) -> Result<()> {
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

fn s3_keys(s: &crate::s3::S3Secrets, n: u8) -> String {
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
pub fn read_s3(repo_dir: &Path) -> Result<Option<crate::s3::S3Settings>> {
    let kept = kept_dir(repo_dir);
    let read = |path: &Path| -> Result<Option<crate::s3::S3Settings>> {
        match crate::safe_fs::read_to_string(path) {
            Ok(text) => serde_json::from_str::<crate::s3::S3Settings>(&text)
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

/// Whether the instance of `repo_dir` has an S3 repository (cheap: the
/// file's presence, for reports).
pub fn has_s3(repo_dir: &Path) -> bool {
    kept_dir(repo_dir).join(S3_SETTINGS).exists() || repo_dir.join(S3_SETTINGS).exists()
}

/// A pgBackRest configuration of stanza `id` in an S3 repository alone (as
/// repo1): what a restore from that repository runs with.
pub fn render_s3_source(id: &str, s3: &crate::s3::S3Settings) -> String {
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

/// Rewrites the generated files of an existing instance (its compose
/// file, the agent's scripts, the backup files) from its registry entry;
/// data and secrets are untouched.
pub fn rewrite(dir: &Path, inst: &Instance, home_tag: &str) -> Result<()> {
    // The socket directory the agent shares (made only with backups before).
    make_dir(&dir.join("run"), 0o755)?;
    write_project(dir, inst, home_tag)?;
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

/// The app user's password: secrets/app_password, or `.env` for instances
/// made before the passwords moved to files.
pub fn app_password(dir: &Path) -> Result<String> {
    let file = dir.join("secrets").join("app_password");
    match crate::safe_fs::read_to_string(&file) {
        Ok(p) if !p.trim().is_empty() => return Ok(p.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(crate::error::Error::io(
                format!("reading {}", file.display()),
                e,
            ))
        }
    }
    read_env(dir)?.remove("DBAAS_APP_PASSWORD").ok_or_else(|| {
        crate::error::Error::Failed(format!(
            "{} is missing; the instance directory is damaged",
            file.display()
        ))
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn s3_settings_move_out_of_the_containers_reach_and_are_checked() {
        let t = crate::testing::TempDir::new("kept-s3");
        let repo = t.path().join("backups").join("db_0000000a");
        std::fs::create_dir_all(&repo).unwrap();
        let good = crate::s3::parse(
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

    use super::*;
    use crate::registry::State;

    fn inst() -> Instance {
        let mut i = Instance::fixture("db_0a1b2c3d", "demo", 5433);
        i.cpus = 1.5;
        i.state = State::Creating;
        i.backups = Some(BackupPolicy::default());
        i.subnet = Some("10.199.0.16/28".into());
        i
    }

    #[test]
    fn compose_file_parses_back_with_the_expected_structure() {
        let text = render_compose(&inst(), "abc123abc123");
        let y: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
        assert_eq!(y["name"].as_str(), Some("db_0a1b2c3d"));
        assert_eq!(
            y["networks"]["default"]["ipam"]["config"][0]["subnet"].as_str(),
            Some("10.199.0.16/28")
        );
        let db = &y["services"]["db"];
        assert_eq!(db["image"].as_str(), Some("dbaas/postgres:15"));
        assert_eq!(db["restart"].as_str(), Some("unless-stopped"));
        assert_eq!(db["labels"]["dbaas.instance"].as_str(), Some("db_0a1b2c3d"));
        assert_eq!(db["labels"]["dbaas.home"].as_str(), Some("abc123abc123"));
        assert_eq!(db["ports"][0].as_str(), Some("127.0.0.1:5433:5432"));
        assert_eq!(db["mem_limit"].as_str(), Some("512m"));
        assert_eq!(db["cpus"].as_f64(), Some(1.5));
        assert_eq!(db["env_file"].as_str(), Some(".env"));
        assert_eq!(db["cap_drop"][0].as_str(), Some("ALL"));
        assert_eq!(
            db["security_opt"][0].as_str(),
            Some("no-new-privileges:true")
        );
        let agent = &y["services"]["agent"];
        assert_eq!(agent["read_only"].as_bool(), Some(true));
        assert_eq!(agent["user"].as_str(), Some("65534:65534"));
        assert_eq!(agent["cap_drop"][0].as_str(), Some("ALL"));
        assert_eq!(agent["secrets"][0].as_str(), Some("monitor_password"));
        assert!(agent.get("env_file").is_none());
        // No network: the server's socket, shared read-only.
        assert_eq!(agent["network_mode"].as_str(), Some("disabled"));
        assert_eq!(
            agent["environment"]["PGHOST"].as_str(),
            Some("/var/run/postgresql")
        );
        let mounts = |svc: &serde_yaml::Value| -> Vec<String> {
            svc["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert!(mounts(agent).contains(&"./run:/var/run/postgresql:ro".to_string()));
        assert!(mounts(db).contains(&"./run:/var/run/postgresql".to_string()));
        assert_eq!(
            y["secrets"]["app_password"]["file"].as_str(),
            Some("./secrets/app_password")
        );
        assert_eq!(db["healthcheck"]["test"][1].as_str(), Some("pg_isready"));
        let command: Vec<&str> = db["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let env = &db["environment"];
        assert_eq!(env["DBAAS_SHARED_BUFFERS"].as_str(), Some("128MB"));
        assert_eq!(env["DBAAS_EFFECTIVE_CACHE_SIZE"].as_str(), Some("384MB"));
        assert_eq!(env["DBAAS_TEMP_FILE_LIMIT"].as_str(), Some("2048MB"));
        assert!(
            db["healthcheck"].get("start_interval").is_none(),
            "needs Engine 25"
        );
        // Relative paths only, so the directory runs by hand; the backup
        // repository is next to instances/, outside the instance directory.
        for v in db["volumes"].as_sequence().unwrap() {
            let v = v.as_str().unwrap();
            assert!(
                v.starts_with("./") || v.starts_with("../../backups/db_0a1b2c3d:"),
                "{v:?}"
            );
        }
        assert!(command.contains(&"archive_mode=on"), "{command:?}");
        assert!(command.contains(&"archive_timeout=60"), "{command:?}");
        assert!(
            command.contains(&"archive_command=pgbackrest --stanza=db_0a1b2c3d archive-push %p")
        );
        let backup = &y["services"]["backup"];
        assert_eq!(backup["network_mode"].as_str(), Some("disabled"));
        assert_eq!(backup["cap_drop"][0].as_str(), Some("ALL"));
        assert_eq!(backup["mem_limit"].as_str(), Some("256m"));
        assert!(
            backup.get("secrets").is_none(),
            "the sidecar holds no password"
        );
        assert_eq!(
            backup["environment"]["DBAAS_BACKUP_SCHEDULE"].as_str(),
            Some("24h")
        );
        let volumes: Vec<&str> = backup["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            volumes.contains(&"./data:/var/lib/postgresql/data:ro"),
            "{volumes:?}"
        );
        // Without backups: no archiving, no sidecar, no repository.
        let mut plain = inst();
        plain.backups = None;
        let text = render_compose(&plain, "abc123abc123");
        let y: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
        assert!(y["services"].get("backup").is_none());
        assert!(
            !text.contains("archive") && !text.contains("backups/"),
            "{text}"
        );
        // The agent's socket directory is there all the same.
        assert!(
            text.contains("      - ./run:/var/run/postgresql\n")
                && text.contains("      - ./run:/var/run/postgresql:ro\n"),
            "{text}"
        );
    }

    #[test]
    fn pgbackrest_conf_names_the_stanza_and_the_retention() {
        let mut i = inst();
        let conf = render_pgbackrest(&i, i.backups.as_ref().unwrap());
        assert!(
            conf.contains("\n[db_0a1b2c3d]\npg1-path=/var/lib/postgresql/data\n"),
            "{conf}"
        );
        assert!(
            conf.contains("repo1-retention-full-type=time\nrepo1-retention-full=7\n"),
            "{conf}"
        );
        i.backups = Some(BackupPolicy {
            schedule: "6h".into(),
            retention: "3".into(),
        });
        let conf = render_pgbackrest(&i, i.backups.as_ref().unwrap());
        assert!(
            conf.contains("repo1-retention-full-type=count\nrepo1-retention-full=3\n"),
            "{conf}"
        );
    }

    #[test]
    fn a_swarm_stack_with_s3_carries_its_keys_as_a_secret() {
        let mut i = inst();
        i.node = Some("n2".into());
        let s3 = crate::s3::parse(
            "endpoint=10.0.0.6\nbucket=b\nregion=r\naccess_key=AK\nsecret_key=TopSecretKey1\nuri_style=path\n",
        )
        .unwrap();
        let plain: serde_yaml::Value =
            serde_yaml::from_str(&render_stack(&i, "abc123abc123")).unwrap();
        assert!(plain["secrets"].get("pgbackrest_s3").is_none());
        assert_eq!(
            plain["services"]["backup"]["environment"]["DBAAS_REPOS"].as_str(),
            Some("1")
        );
        i.s3 = Some(s3.repo.clone());
        let text = render_stack(&i, "abc123abc123");
        assert!(!text.contains("TopSecretKey1"), "{text}");
        let y: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
        assert_eq!(
            y["secrets"]["pgbackrest_s3"]["name"].as_str(),
            Some("db_0a1b2c3d_pgbackrest_s3")
        );
        assert_eq!(
            y["services"]["db"]["secrets"][3].as_str(),
            Some("pgbackrest_s3")
        );
        let backup = &y["services"]["backup"];
        assert_eq!(backup["secrets"][0].as_str(), Some("pgbackrest_s3"));
        assert_eq!(backup["environment"]["DBAAS_REPOS"].as_str(), Some("1 2"));
    }

    #[test]
    fn an_s3_repository_is_rendered_without_its_keys() {
        let mut i = inst();
        let s3 = crate::s3::parse(
            "endpoint=s3.test\nbucket=b\nregion=r\naccess_key=AK\nsecret_key=SK\nnetwork=net1\nuri_style=path\n",
        )
        .unwrap();
        i.s3 = Some(s3.repo.clone());
        let compose = render_compose(&i, "abc123abc123");
        for want in [
            "networks: [default, s3]",
            "networks: [s3]",
            "secrets: [pgbackrest_s3]",
            "file: ./secrets/pgbackrest_s3.conf",
            "name: \"net1\"\n    external: true",
            "DBAAS_REPOS: \"1 2\"",
        ] {
            assert!(compose.contains(want), "{want} missing:\n{compose}");
        }
        let y: serde_yaml::Value = serde_yaml::from_str(&compose).unwrap();
        assert!(
            y["services"]["backup"].get("network_mode").is_none(),
            "{compose}"
        );
        let conf = render_pgbackrest(&i, i.backups.as_ref().unwrap());
        for want in [
            "repo2-type=s3\n",
            "repo2-path=/dbaas/db_0a1b2c3d\n",
            "repo2-s3-uri-style=path\n",
            "repo2-cipher-type=aes-256-cbc\n",
            "archive-async=y\n",
        ] {
            assert!(conf.contains(want), "{want} missing:\n{conf}");
        }
        assert!(!conf.contains("SK") && !compose.contains("SK"));
        let source = render_s3_source("db_1", &s3);
        assert!(
            source.contains("repo1-path=/dbaas/db_1\n")
                && source.contains("repo1-s3-key-secret=SK\n")
        );
        // Without backups there is no S3 repository either.
        i.backups = None;
        assert!(!render_compose(&i, "abc123abc123").contains("pgbackrest_s3"));
    }

    #[test]
    fn a_spare_renamed_keeps_what_its_containers_read() {
        // Only comments carry the name: a claimed spare's containers match
        // the rewritten files, so the next `up` recreates nothing.
        let strip = |t: String| -> Vec<String> {
            t.lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .map(String::from)
                .collect()
        };
        let mut i = inst();
        let spare = (render_compose(&i, "t"), render_env(&i));
        i.name = "shop".into();
        let named = (render_compose(&i, "t"), render_env(&i));
        assert_ne!(spare.0, named.0);
        assert_eq!(strip(spare.0), strip(named.0));
        assert_eq!(strip(spare.1), strip(named.1));
    }

    #[test]
    fn compose_file_snapshot() {
        let text = render_compose(&inst(), "abc123abc123");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/snapshots/docker-compose.yml"
        );
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let expected = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            text.trim_end(),
            expected.trim_end(),
            "template changed: update tests/snapshots/docker-compose.yml"
        );
    }

    #[test]
    fn env_holds_names_only_and_nothing_to_quote() {
        let env = render_env(&inst());
        assert!(!env.contains("PASSWORD"), "{env}");
        assert!(env.contains("POSTGRES_DB=app"));
        // Values need no quoting in .env: no quotes, `$` or spaces.
        for line in env.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.split_once('=').unwrap();
            assert!(
                v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
        }
    }
}
