//! How much the host may hold: the memory and disk budget of creates, and
//! the provisioning slots that bound how many instances initialize at once.

use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry::Registry;
use std::path::Path;

/// The host's budget for instances: the sum of their memory limits may not
/// pass `max_memory` (DBAAS_MAX_MEMORY, default the host's memory), and a
/// create needs `min_free_disk` (DBAAS_MIN_FREE_DISK, default 1g) free
/// under DBAAS_HOME.
pub struct Budget {
    pub max_memory: u64,
    pub min_free_disk: u64,
}

impl Budget {
    pub fn of(home: &Home) -> Budget {
        Budget {
            max_memory: home.settings.max_memory,
            min_free_disk: home.settings.min_free_disk,
        }
    }

    /// Refuses an instance of `memory` bytes next to `reg`'s.
    pub fn check_memory(&self, reg: &Registry, memory: u64) -> Result<()> {
        let used: u64 = reg.instances.iter().map(|i| i.memory).sum();
        if used.saturating_add(memory) > self.max_memory {
            return Err(Error::Conflict(format!(
                "the host's memory budget (DBAAS_MAX_MEMORY, {}) would be exceeded: instances hold {} and this one asks for {}; destroy or shrink an instance, or raise DBAAS_MAX_MEMORY",
                crate::validate::format_bytes(self.max_memory),
                crate::validate::format_bytes(used),
                crate::validate::format_bytes(memory)
            )));
        }
        Ok(())
    }

    /// Refuses a create when the home's filesystem is nearly full.
    pub fn check_disk(&self, home: &Home) -> Result<()> {
        let free = free_disk(&home.root).unwrap_or(u64::MAX);
        if free < self.min_free_disk {
            return Err(Error::Conflict(format!(
                "only {} is free under DBAAS_HOME, less than DBAAS_MIN_FREE_DISK ({}); free some disk or lower DBAAS_MIN_FREE_DISK",
                crate::validate::format_bytes(free),
                crate::validate::format_bytes(self.min_free_disk)
            )));
        }
        Ok(())
    }
}

/// Bytes available to this user on the filesystem holding `path`.
fn free_disk(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = path.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// A host-wide limit on instances initializing at once (DBAAS_PROVISION_SLOTS,
/// default: the number of CPUs). initdb is CPU- and file-heavy; on a small
/// host, ten at once take several times longer in total than two at a time.
/// A slot is an flock on a file shared by every dbaasctl process of the host,
/// released by the kernel even if the holder is killed.
pub struct ProvisionSlot {
    _file: std::fs::File,
}

impl ProvisionSlot {
    pub async fn acquire(home: &Home) -> Result<ProvisionSlot> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let slots = home.settings.provision_slots;
        // Under the home, not a shared /tmp path another user could own.
        let dir = home.config_dir().join("provision-slots");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        loop {
            for i in 0..slots {
                let path = dir.join(format!("slot-{i}"));
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                    return Ok(ProvisionSlot { _file: file });
                }
            }
            tokio::time::sleep(SLOT_POLL).await;
        }
    }
}

/// Pause between tries for a free provisioning slot.
const SLOT_POLL: std::time::Duration = std::time::Duration::from_millis(50);
