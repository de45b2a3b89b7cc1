//! The one safe reader of files a container can write (`instances/<id>/`,
//! `backups/<id>/`): whoever controls a container controls those files, so
//! a read must never follow a link to another file of the host, block on a
//! FIFO or a device, or read without end (`/dev/zero`).
//!
//! Every open here is `O_NOFOLLOW | O_NONBLOCK`, then checked with `fstat`
//! to be a regular file; every read is capped.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most `read_to_string` reads: the files dbaas reads whole (compose
/// files, JSON metadata, passwords) are a few KiB.
pub const MAX_WHOLE: u64 = 4 << 20;

/// Opens `path` for reading: a symlink (at the last component), a FIFO, a
/// socket or a device is an error, and the open never blocks.
pub fn open(path: &Path) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(f)
}

/// The whole file as text, refused above `MAX_WHOLE` bytes.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    let f = open(path)?;
    let mut buf = Vec::new();
    // One byte more than the cap tells a file at the cap from a longer one.
    f.take(MAX_WHOLE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_WHOLE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {MAX_WHOLE} bytes", path.display()),
        ));
    }
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The last `max` bytes of the file (lossy text); a missing file is empty.
pub fn read_tail(path: &Path, max: u64) -> std::io::Result<String> {
    let mut f = match open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::new();
    // The file may grow while it is read: still no more than `max`.
    f.take(max).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// temp file in the same directory + fsync + rename + fsync of the directory,
/// so a crash leaves either the old or the new file, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        // A fresh file, never one a symlink at that name points to.
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("writing {}", path.display()), e)
    })
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
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
        assert!(read_tail(&dir.join("zero"), 100).is_err());
    }

    #[test]
    fn a_fifo_or_device_is_refused_without_blocking() {
        let dir = crate::testing::TempDir::new("safe-fs-fifo");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would hang here for ever.
        let e = read_tail(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(open(Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn reads_are_capped() {
        let dir = crate::testing::TempDir::new("safe-fs-cap");
        let f = dir.join("big");
        std::fs::write(&f, "a".repeat(100) + "tail").unwrap();
        assert_eq!(read_tail(&f, 4).unwrap(), "tail");
        assert_eq!(read_tail(&dir.join("missing"), 4).unwrap(), "");
        std::fs::write(&f, vec![b'a'; MAX_WHOLE as usize + 1]).unwrap();
        assert!(read_to_string(&f).is_err());
    }
}
