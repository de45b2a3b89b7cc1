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
    use crate::validate::BackupPolicy;

    fn render_compose(i: &Instance, tag: &str) -> String {
        crate::engine::compose::compose_file(&spec::InstanceSpec::of(i, tag)).text
    }

    fn render_stack(i: &Instance, tag: &str) -> String {
        crate::engine::swarm::stack_file(&spec::InstanceSpec::of(i, tag)).text
    }

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

    /// `text` against the file `tests/snapshots/NAME` (UPDATE_SNAPSHOTS=1
    /// writes it).
    fn snapshot(text: &str, name: &str) {
        let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.trim_end(),
            expected.trim_end(),
            "template changed: update tests/snapshots/{name}"
        );
    }

    #[test]
    fn compose_file_snapshot() {
        snapshot(
            &render_compose(&inst(), "abc123abc123"),
            "docker-compose.yml",
        );
    }

    /// The stack of the same instance on a swarm node, with an S3
    /// repository: both engines render one spec.
    #[test]
    fn stack_file_snapshot() {
        let mut i = inst();
        i.node = Some("node-2".into());
        i.s3 = Some(
            crate::s3::parse(
                "endpoint=10.0.0.6\nbucket=b\nregion=r\naccess_key=AK\nsecret_key=SK\nuri_style=path\n",
            )
            .unwrap()
            .repo,
        );
        snapshot(&render_stack(&i, "abc123abc123"), "stack.yml");
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
