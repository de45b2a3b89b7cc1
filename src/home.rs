//! Where state lives (DBAAS_HOME): the paths under it, and the settings
//! read once at start-up. Every test gets its own home and port range.

use crate::error::{Error, Result};
use crate::settings::Settings;
use std::path::PathBuf;
use std::sync::Arc;

/// The home (DBAAS_HOME) and the settings read at start-up: the one value
/// every layer is handed.
#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
    pub settings: Arc<Settings>,
    tag: String,
}

impl Home {
    /// Reads every DBAAS_* setting once; bad values are errors that name
    /// the variable.
    pub fn from_env() -> Result<Home> {
        Ok(Home::new(Settings::from_env()?))
    }

    pub fn new(settings: Settings) -> Home {
        let root = settings.root.clone();
        // Canonical, so that two spellings of one home share a tag; the
        // parent stands in while the home itself does not exist yet.
        let canonical = std::fs::canonicalize(&root)
            .or_else(|e| match (root.parent(), root.file_name()) {
                (Some(p), Some(n)) => std::fs::canonicalize(p).map(|p| p.join(n)),
                _ => Err(e),
            })
            .unwrap_or_else(|_| root.clone());
        Home {
            tag: fnv1a_hex(canonical.to_string_lossy().as_bytes()),
            root,
            settings: Arc::new(settings),
        }
    }

    /// Refuses a home that other users can write to: whoever can write it
    /// controls the registry, the compose files and so what runs as root.
    pub fn check_private(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(&self.root) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("reading {}", self.root.display()), e)),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Error::invalid(
                "DBAAS_HOME",
                format!(
                    "{} is writable by {} (mode {mode:o}), so other users could change its registry and instances; run `chmod go-w {}`, or set DBAAS_HOME to a directory of your own",
                    self.root.display(),
                    if mode & 0o002 != 0 { "every user" } else { "its group" },
                    self.root.display()
                ),
            ));
        }
        Ok(())
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }
    pub fn registry_path(&self) -> PathBuf {
        self.config_dir().join("instances.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.config_dir().join("instances.lock")
    }
    pub fn instances_dir(&self) -> PathBuf {
        self.root.join("instances")
    }
    /// Backups live outside instances/, so that destroying an instance
    /// keeps them unless asked.
    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }
    pub fn backup_dir(&self, id: &str) -> PathBuf {
        self.backups_dir().join(id)
    }
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.instances_dir().join(id)
    }
    /// template-data/<version>/: the initialised data directory new
    /// instances of that version copy (the fast provisioning path).
    pub fn template_dir(&self, version: u32) -> PathBuf {
        match &self.settings.template_dir {
            Some(d) => d.clone(),
            None => self.root.join("template-data"),
        }
        .join(version.to_string())
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// A short stable tag for this home, put on every container as the label
    /// `dbaas.home`, so that two homes on one host never see each other's
    /// containers as orphans.
    pub fn tag(&self) -> String {
        self.tag.clone()
    }
}

/// A short, stable hash (FNV-1a, 48 bits) for names, not for security.
pub fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_tag_is_stable_and_distinct() {
        assert_eq!(fnv1a_hex(b"/a"), fnv1a_hex(b"/a"));
        assert_ne!(fnv1a_hex(b"/a"), fnv1a_hex(b"/b"));
        assert_eq!(fnv1a_hex(b"/a").len(), 12);
    }
}
