//! What an instance is, described once from its registry entry for every
//! engine to render: the compose file (engine/compose/render.rs) and the
//! swarm stack (engine/swarm/stack_file.rs) read the same fields, so a
//! new component, port, setting or file is added here once.

use super::pg_config::{tuning, Tuning};
use super::repository::render_pgbackrest;
use super::{AGENT_FILES, AGENT_UID, INIT_SCRIPTS, MONITOR_USER};
use crate::registry::Instance;

/// One instance, as its containers are to be made.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub id: String,
    pub name: String,
    /// This home's tag, on every container, volume and network.
    pub home_tag: String,
    pub version: u32,
    pub image: String,
    /// A swarm node it is pinned to (none: this host).
    pub node: Option<String>,
    /// The host address its port is published on, as a port mapping
    /// writes it (an IPv6 address bracketed).
    pub bind_address: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub monitor_user: &'static str,
    /// The db container's limits, and what PostgreSQL derives from them.
    pub memory_bytes: String,
    pub cpus: String,
    pub tuning: Tuning,
    /// The monitoring agent.
    pub agent: AgentSpec,
    /// The backup sidecar and WAL archiving.
    pub backups: bool,
    pub backup_schedule: String,
    /// A second, S3-compatible repository (only with backups).
    pub s3: bool,
    /// A Docker network through which the S3 repository is reached.
    pub s3_network: Option<String>,
    /// The instance's own network (a block of DBAAS_SUBNET_POOL).
    pub subnet: Option<String>,
    /// Its server certificate and key, secrets of the db service.
    pub tls: bool,
    /// TCP logins: `ssl` (only over TLS) or `any`.
    pub tcp: &'static str,
    /// Hashes of the files shipped into the containers.
    pub shipped: ShippedHashes,
}

/// The agent's container: its user and its sampling.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub uid: u32,
    pub interval: u32,
    pub max_bytes: u64,
    pub keep: u32,
}

/// Short hashes of the files the containers get: a swarm config cannot
/// change in place, so a new content is a new name.
#[derive(Debug, Clone)]
pub struct ShippedHashes {
    pub init_superuser: String,
    pub init_users: String,
    pub init_monitoring: String,
    pub agent_sh: String,
    pub agent_sample: String,
    pub backup_sh: String,
    /// Of the rendered pgbackrest.conf (empty without backups).
    pub pgbackrest_conf: String,
}

/// An engine's project file: its name in the instance directory and text.
pub struct ProjectFile {
    pub file: &'static str,
    pub text: String,
}

impl InstanceSpec {
    pub fn of(inst: &Instance, home_tag: &str) -> InstanceSpec {
        let s3 = inst.s3.as_ref().filter(|_| inst.backups.is_some());
        InstanceSpec {
            id: inst.id.clone(),
            name: inst.name.clone(),
            home_tag: home_tag.to_string(),
            version: inst.version,
            image: inst.image.clone(),
            node: inst.node.clone(),
            bind_address: if inst.bind_address.contains(':') {
                format!("[{}]", inst.bind_address)
            } else {
                inst.bind_address.clone()
            },
            port: inst.port,
            database: inst.database.clone(),
            user: inst.user.clone(),
            monitor_user: MONITOR_USER,
            memory_bytes: crate::validate::format_bytes(inst.memory),
            cpus: format!("{}", inst.cpus),
            tuning: tuning(inst.memory),
            agent: AgentSpec {
                uid: AGENT_UID,
                interval: inst.metrics_interval,
                max_bytes: inst.metrics_max_bytes,
                keep: inst.metrics_keep,
            },
            backups: inst.backups.is_some(),
            backup_schedule: inst
                .backups
                .as_ref()
                .map_or(String::new(), |b| b.schedule.clone()),
            s3: s3.is_some(),
            s3_network: s3.and_then(|r| r.network.clone()),
            subnet: inst.subnet.clone(),
            tls: inst.tls,
            tcp: if inst.tls && !inst.allow_plaintext {
                "ssl"
            } else {
                "any"
            },
            shipped: shipped_hashes(inst),
        }
    }
}

fn shipped_hashes(inst: &Instance) -> ShippedHashes {
    let agent: Vec<(&str, &str)> = AGENT_FILES.iter().map(|(n, b, _)| (*n, *b)).collect();
    ShippedHashes {
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
    }
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

/// The spec as each engine renders it: the compose file and the stack of
/// the same instance, their snapshots, and what they must never carry.
#[cfg(test)]
mod tests {
    use super::super::{render_env, render_pgbackrest, render_s3_source};
    use crate::backups::BackupPolicy;
    use crate::registry::{Instance, State};

    fn render_compose(i: &Instance, tag: &str) -> String {
        crate::engine::compose::compose_file(&super::InstanceSpec::of(i, tag)).text
    }

    fn render_stack(i: &Instance, tag: &str) -> String {
        crate::engine::swarm::stack_file(&super::InstanceSpec::of(i, tag)).text
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
    fn a_swarm_stack_with_s3_carries_its_keys_as_a_secret() {
        let mut i = inst();
        i.node = Some("n2".into());
        let s3 = crate::backups::s3::parse(
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
        let s3 = crate::backups::s3::parse(
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
            crate::backups::s3::parse(
                "endpoint=10.0.0.6\nbucket=b\nregion=r\naccess_key=AK\nsecret_key=SK\nuri_style=path\n",
            )
            .unwrap()
            .repo,
        );
        snapshot(&render_stack(&i, "abc123abc123"), "stack.yml");
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
