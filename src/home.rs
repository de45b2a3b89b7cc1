//! Where state lives (DBAAS_HOME) and the host-level settings read from the
//! environment. Every test gets its own home and port range through these.

use crate::error::{Error, Result};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT_RANGE: (u16, u16) = (5432, 5999);
pub const DEFAULT_IMAGE: &str = "dbaas/postgres:{version}";
/// How long `create`/`up` wait for the app user to connect.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Monitoring defaults of a new instance: seconds between samples, and
/// metrics.json's rotation (size, older files kept).
pub const DEFAULT_METRICS_INTERVAL: u32 = 10;
pub const DEFAULT_METRICS_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const DEFAULT_METRICS_KEEP: u32 = 5;

#[derive(Debug, Clone)]
pub struct Home {
    pub root: PathBuf,
    pub port_range: (u16, u16),
    pub bind_address: IpAddr,
    /// Image reference with `{version}` as placeholder; `postgres:{version}`
    /// (Docker Hub's images) works as a drop-in where a registry is reachable.
    pub image_template: String,
    /// The docker CLI to run (DBAAS_DOCKER), default `docker` from PATH.
    pub docker: String,
    pub ready_timeout: Duration,
    /// DBAAS_METRICS_MAX_BYTES / DBAAS_METRICS_KEEP: rotation of new
    /// instances' metrics.json.
    pub metrics_max_bytes: u64,
    pub metrics_keep: u32,
}

impl Home {
    /// Reads DBAAS_HOME and the DBAAS_* settings; bad values are errors that
    /// name the variable.
    pub fn from_env() -> Result<Home> {
        let root = match std::env::var_os("DBAAS_HOME") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => std::env::current_dir().map_err(|e| Error::io("current directory", e))?,
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .map_err(|e| Error::io("current directory", e))?
                .join(root)
        };
        let port_range = match std::env::var("DBAAS_PORT_RANGE") {
            Ok(s) if !s.is_empty() => parse_port_range(&s)?,
            _ => DEFAULT_PORT_RANGE,
        };
        let bind_address = match std::env::var("DBAAS_BIND_ADDRESS") {
            Ok(s) if !s.is_empty() => s.parse().map_err(|_| {
                Error::invalid(
                    "DBAAS_BIND_ADDRESS",
                    format!("'{s}' is not an IP address (e.g. 127.0.0.1)"),
                )
            })?,
            _ => IpAddr::from([127, 0, 0, 1]),
        };
        let image_template = std::env::var("DBAAS_IMAGE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        crate::validate::image_template(&image_template)?;
        let docker = std::env::var("DBAAS_DOCKER")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "docker".to_string());
        let ready_timeout = match std::env::var("DBAAS_READY_TIMEOUT") {
            Ok(s) if !s.is_empty() => Duration::from_secs(s.parse().map_err(|_| {
                Error::invalid("DBAAS_READY_TIMEOUT", "expected a whole number of seconds")
            })?),
            _ => DEFAULT_READY_TIMEOUT,
        };
        let metrics_max_bytes = match std::env::var("DBAAS_METRICS_MAX_BYTES") {
            Ok(s) if !s.is_empty() => {
                s.parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1024)
                    .ok_or_else(|| {
                        Error::invalid(
                            "DBAAS_METRICS_MAX_BYTES",
                            "expected a number of bytes, at least 1024",
                        )
                    })?
            }
            _ => DEFAULT_METRICS_MAX_BYTES,
        };
        let metrics_keep = match std::env::var("DBAAS_METRICS_KEEP") {
            Ok(s) if !s.is_empty() => {
                s.parse::<u32>().ok().filter(|n| *n <= 100).ok_or_else(|| {
                    Error::invalid(
                        "DBAAS_METRICS_KEEP",
                        "expected a whole number from 0 to 100",
                    )
                })?
            }
            _ => DEFAULT_METRICS_KEEP,
        };
        Ok(Home {
            metrics_max_bytes,
            metrics_keep,
            root,
            port_range,
            bind_address,
            image_template,
            docker,
            ready_timeout,
        })
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
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.instances_dir().join(id)
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn image_for(&self, version: u32) -> String {
        self.image_template
            .replace("{version}", &version.to_string())
    }

    /// A short stable tag for this home, put on every container as the label
    /// `dbaas.home`, so that two homes on one host never see each other's
    /// containers as orphans.
    pub fn tag(&self) -> String {
        let canonical = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        fnv1a_hex(canonical.to_string_lossy().as_bytes())
    }
}

fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

pub fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || {
        Error::invalid(
            "DBAAS_PORT_RANGE",
            format!("'{s}' is not a range like 5432-5999 (ports 1024-65535, low <= high)"),
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = a.trim().parse().map_err(|_| bad())?;
    let hi: u16 = b.trim().parse().map_err(|_| bad())?;
    if lo < 1024 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_and_rejects() {
        assert_eq!(parse_port_range("5432-5999").unwrap(), (5432, 5999));
        assert_eq!(parse_port_range("40000-40000").unwrap(), (40000, 40000));
        for bad in ["", "5432", "6000-5000", "80-90", "a-b", "1-70000"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn home_tag_is_stable_and_distinct() {
        assert_eq!(fnv1a_hex(b"/a"), fnv1a_hex(b"/a"));
        assert_ne!(fnv1a_hex(b"/a"), fnv1a_hex(b"/b"));
        assert_eq!(fnv1a_hex(b"/a").len(), 12);
    }
}
