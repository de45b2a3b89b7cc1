//! An image's build lock, `/run/dbaas/image-<name>.lock`, which
//! `scripts/setup-host.sh` holds while it builds the image: `make demo`
//! builds the other versions' images in the background, and a create that
//! needs one of them waits for its build rather than failing.

use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where build locks live (a directory of root's; others may open them to
/// read). Not /run/lock, which anyone may write to.
const LOCK_DIR: &str = "/run/dbaas";
/// A build takes one to three minutes; past this, something is stuck.
pub const BUILD_WAIT: Duration = Duration::from_secs(20 * 60);

/// The reference with every character but letters, digits, '.' and '-'
/// as '_' (scripts/lib.sh's image_lock_name does the same).
pub fn lock_name(image: &str) -> String {
    // Byte by byte, as tr counts them.
    image
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

pub fn lock_path(image: &str) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(format!("image-{}.lock", lock_name(image)))
}

/// Whether a build of `image` holds its lock now. No lock file, or one
/// nobody holds, is no build.
pub fn building(image: &str) -> bool {
    let Ok(file) = std::fs::File::open(lock_path(image)) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns; closing it (on
    // drop) releases a lock taken here.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// Waits, polling once a second, until no build of `image` holds its
/// lock or `limit` has passed; whether a build was waited for.
pub async fn wait_for_build(image: &str, limit: Duration) -> bool {
    if !building(image) {
        return false;
    }
    log::warn!(
        "the image {image} is being built (scripts/setup-host.sh holds {}); waiting for it (at most {} min)",
        lock_path(image).display(),
        limit.as_secs() / 60
    );
    let deadline = Instant::now() + limit;
    while building(image) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_names_are_the_setup_scripts() {
        assert_eq!(super::lock_name("dbaas/postgres:15"), "dbaas_postgres_15");
        assert_eq!(
            super::lock_name("reg.example:5000/a b/ü"),
            "reg.example_5000_a_b___"
        );
        let lib = include_str!("../../scripts/lib.sh");
        assert!(lib.contains("image_lock_name() { printf '%s' \"$1\" | tr -c 'A-Za-z0-9.-' '_'; }"));
        assert!(lib.contains(&format!(
            "DBAAS_DEFAULT_VERSION={}",
            crate::validate::DEFAULT_VERSION
        )));
    }

    #[test]
    fn no_lock_file_is_no_build() {
        assert!(!super::building("dbaas/no-such-image-ever:1"));
    }
}
