//! Opening files under `instances/` without following a symlink: those
//! directories are written by containers (the agent writes logs/), and a
//! link planted there must never make dbaas read another file of the host.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading; a symlink (at the last component) is an error.
pub fn open(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// `std::fs::read_to_string` without following a symlink.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    let mut s = String::new();
    open(path)?.read_to_string(&mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_refused() {
        let dir = crate::testing::TempDir::new("safe-fs");
        std::fs::write(dir.join("real"), "x").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        assert_eq!(read_to_string(&dir.join("real")).unwrap(), "x");
        assert!(read_to_string(&dir.join("link")).is_err());
    }
}
