//! config/instances.json, the record of every instance. Every change happens
//! under an exclusive flock shared by all dbaasctl processes (CLI and server):
//! lock, re-read, edit, write a temp file, fsync, rename, fsync the directory.
//! Nobody keeps an in-memory copy that could overwrite a newer file.

use crate::error::{Error, IoContext, Result};
use crate::home::Home;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

pub const REGISTRY_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being provisioned; `creator_pid` is the process doing it.
    Creating,
    /// Should be running (created or `up`).
    Running,
    /// Taken down on purpose (`down`).
    Stopped,
    /// Provisioning failed and was kept (`--keep-on-failure`).
    Failed,
}

/// A lifecycle operation in progress. Each is idempotent, so finishing one
/// means running it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Start,
    Stop,
    Restart,
    Destroy,
    DestroyKeepData,
    /// An in-place restore (or its undo).
    Restore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub image: String,
    /// Memory limit in bytes.
    pub memory: u64,
    pub cpus: f64,
    pub port: u16,
    pub bind_address: String,
    pub database: String,
    pub user: String,
    pub state: State,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An operation under way, and the process running it: one whose
    /// process died is finished by the next `serve` or `doctor --fix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_pid: Option<u32>,
    /// Seconds between the monitoring agent's samples.
    #[serde(default = "default_metrics_interval")]
    pub metrics_interval: u32,
    /// metrics.json is rotated at this size...
    #[serde(default = "default_metrics_max_bytes")]
    pub metrics_max_bytes: u64,
    /// ...keeping this many older files.
    #[serde(default = "default_metrics_keep")]
    pub metrics_keep: u32,
    /// Continuous archiving and scheduled, verified backups; none for an
    /// instance made with `--no-backups` or before backups existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<crate::backups::BackupPolicy>,
    /// The second, S3-compatible repository (its keys are in secrets/ and
    /// backups/<id>/s3.json, never here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<crate::backups::s3::S3Repo>,
    /// Settings a resize changed that take effect at the next restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
    /// The instance's own network, a block of DBAAS_SUBNET_POOL; none for
    /// one made before dbaas managed subnets (Docker chose its network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// A spare of the warm pool (ops/pool.rs): started ahead of time, not
    /// yet anybody's; hidden from the views, named by its id only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spare: bool,
    /// The swarm node the instance is pinned to (its data is a volume
    /// there); none on the compose engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Serves TLS with a certificate of the home's authority (instances/
    /// <id>/tls/); false for one made before dbaas had TLS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// Accepts TCP logins without TLS too (`create --allow-plaintext`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plaintext: bool,
}

pub use crate::settings::{
    DEFAULT_METRICS_INTERVAL, DEFAULT_METRICS_KEEP, DEFAULT_METRICS_MAX_BYTES,
};

fn default_metrics_interval() -> u32 {
    DEFAULT_METRICS_INTERVAL
}
fn default_metrics_max_bytes() -> u64 {
    DEFAULT_METRICS_MAX_BYTES
}
fn default_metrics_keep() -> u32 {
    DEFAULT_METRICS_KEEP
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Registry {
    pub format: u32,
    pub instances: Vec<Instance>,
}

impl Registry {
    /// Finds by id first, then by name.
    /// Index of the instance with id `key`, else with name `key`.
    fn position(&self, key: &str) -> Option<usize> {
        let by = |f: fn(&Instance) -> &str| self.instances.iter().position(|i| f(i) == key);
        // A spare's name is not its own yet: it answers to its id only.
        by(|i| &i.id).or_else(|| {
            self.instances
                .iter()
                .position(|i| !i.spare && i.name == key)
        })
    }

    /// The instances that are somebody's: every entry but the warm pool's
    /// spares.
    pub fn owned(&self) -> impl Iterator<Item = &Instance> {
        self.instances.iter().filter(|i| !i.spare)
    }

    pub fn find(&self, key: &str) -> Option<&Instance> {
        self.position(key).map(|i| &self.instances[i])
    }

    pub fn find_mut(&mut self, key: &str) -> Option<&mut Instance> {
        let idx = self.position(key)?;
        self.instances.get_mut(idx)
    }

    pub fn get(&self, key: &str) -> Result<&Instance> {
        self.find(key).ok_or_else(|| not_found(key))
    }

    pub fn remove(&mut self, id: &str) -> Option<Instance> {
        let idx = self.instances.iter().position(|i| i.id == id)?;
        Some(self.instances.remove(idx))
    }
}

/// The registry name of every spare of the warm pool (ops/pool.rs); no
/// instance can be named so.
pub const SPARE_NAME: &str = "(spare)";

pub fn not_found(key: &str) -> Error {
    Error::NotFound {
        what: format!("instance '{key}'"),
        hint: "`dbaasctl list` shows the instances".into(),
    }
}

/// An exclusive lock on config/instances.lock, released on drop.
pub struct Lock {
    file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the fd releases the flock too; unlock explicitly for clarity.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

pub fn lock(home: &Home) -> Result<Lock> {
    lock_file(&home.lock_path(), libc::LOCK_EX)
}

/// A flock (`libc::LOCK_EX` or `LOCK_SH`) on `path`, made with its parent
/// directory if missing; released on drop.
pub fn lock_file(path: &Path, how: libc::c_int) -> Result<Lock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    loop {
        let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
        if rc == 0 {
            return Ok(Lock { file });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(Error::io(format!("locking {}", path.display()), err));
        }
    }
}

/// Reads the registry; a missing file is an empty registry. Readers take no
/// lock: writers replace the file atomically, so a read sees old or new.
pub fn load(home: &Home) -> Result<Registry> {
    let path = home.registry_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Registry {
                format: REGISTRY_FORMAT,
                instances: vec![],
            })
        }
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::Failed(format!(
            "the registry {} is not valid: {e}; restore it from a backup or fix it by hand",
            path.display()
        ))
    })
}

/// Runs `edit` on the freshly read registry under the lock and saves the
/// result atomically. The edit's error aborts without writing.
pub fn update<T>(home: &Home, edit: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
    let _lock = lock(home)?;
    let mut reg = load(home)?;
    let out = edit(&mut reg)?;
    reg.format = REGISTRY_FORMAT;
    save(&home.registry_path(), &reg)?;
    Ok(out)
}

fn save(path: &Path, reg: &Registry) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(reg).expect("registry serializes");
    json.push(b'\n');
    write_atomic(path, &json, 0o600)
}

pub use crate::safe_fs::write_atomic;

#[cfg(test)]
impl Instance {
    /// The one instance of the unit tests: running, PostgreSQL 15, 512m,
    /// app/app on loopback; tests change the fields they care about.
    pub fn fixture(id: &str, name: &str, port: u16) -> Instance {
        Instance {
            id: id.into(),
            name: name.into(),
            version: 15,
            image: "dbaas/postgres:15".into(),
            memory: 512 << 20,
            cpus: 1.0,
            port,
            bind_address: "127.0.0.1".into(),
            database: "app".into(),
            user: "app".into(),
            state: State::Running,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            creator_pid: None,
            intent: None,
            intent_pid: None,
            error: None,
            metrics_interval: crate::registry::DEFAULT_METRICS_INTERVAL,
            metrics_max_bytes: crate::registry::DEFAULT_METRICS_MAX_BYTES,
            metrics_keep: crate::registry::DEFAULT_METRICS_KEEP,
            backups: None,
            s3: None,
            pending_restart: vec![],
            subnet: None,
            spare: false,
            node: None,
            tls: true,
            allow_plaintext: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn home() -> (TempDir, Home) {
        let d = TempDir::new("registry");
        let h = Home::new(crate::settings::Settings::with_root(d.to_path_buf()));
        (d, h)
    }

    #[test]
    fn missing_file_is_empty() {
        let (_d, h) = home();
        assert!(load(&h).unwrap().instances.is_empty());
    }

    #[test]
    fn update_round_trips_and_finds_by_id_or_name() {
        let (_d, h) = home();
        update(&h, |r| {
            r.instances
                .push(Instance::fixture("db_00000001", "one", 6000));
            Ok(())
        })
        .unwrap();
        let r = load(&h).unwrap();
        assert_eq!(r.get("one").unwrap().id, "db_00000001");
        assert_eq!(r.get("db_00000001").unwrap().name, "one");
        assert!(matches!(r.get("two"), Err(Error::NotFound { .. })));
        let mode = std::fs::metadata(h.registry_path()).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }

    #[test]
    fn failed_edit_writes_nothing() {
        let (_d, h) = home();
        update(&h, |r| {
            r.instances
                .push(Instance::fixture("db_00000001", "one", 6000));
            Ok(())
        })
        .unwrap();
        let before = std::fs::read(h.registry_path()).unwrap();
        let res: Result<()> = update(&h, |r| {
            r.instances.clear();
            Err(Error::Conflict("no".into()))
        });
        assert!(res.is_err());
        assert_eq!(std::fs::read(h.registry_path()).unwrap(), before);
    }

    #[test]
    fn concurrent_updates_do_not_lose_writes() {
        let (_d, h) = home();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        update(&h, |r| {
                            r.instances.push(Instance::fixture(
                                &format!("db_{t}{i}"),
                                &format!("n{t}-{i}"),
                                6000,
                            ));
                            Ok(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(load(&h).unwrap().instances.len(), 80);
    }

    #[test]
    fn corrupt_registry_is_a_clear_error() {
        let (_d, h) = home();
        std::fs::create_dir_all(h.config_dir()).unwrap();
        std::fs::write(h.registry_path(), "{not json").unwrap();
        let e = load(&h).unwrap_err().to_string();
        assert!(e.contains("not valid"), "{e}");
    }
}
