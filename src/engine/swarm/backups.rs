//! The backup view of a swarm instance. Its sidecar writes the backup log
//! (backups.json) and the repository into a volume on the instance's node,
//! while `backups`, `show`, `doctor`, `/metrics` and the console read
//! backups/<id>/ where dbaas runs. Each sync brings over what they read:
//! the log's new lines (a byte copy, so its length is the offset), the
//! labels the repository holds (as empty directories where the report
//! looks for them), the newest archived WAL segment's time, and the labels
//! the S3 repository holds (s3-listing.json).

use crate::engine::docker;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The most bytes of the log one sync reads.
const CHUNK: u64 = 1 << 20;
/// The most of the node's log the mirror copies, and the most labels it
/// lists: the node's files are the sidecar's to write, so a container that
/// was taken over cannot fill this host's disk through them (a real log
/// holds a few hundred bytes per backup).
const MAX_LOG: u64 = 64 << 20;
const MAX_LABELS: usize = 10_000;

/// Run in the backup container as postgres with `$1` the offset and `$2`
/// CHUNK: the log's size, the labels, the newest segment's mtime (epoch
/// seconds, empty when none), the S3 repository's listing (one line of
/// JSON, empty when none), then at most CHUNK bytes of the log from the
/// offset.
pub const SCRIPT: &str = r#"d=/var/lib/pgbackrest; f=$d/backups.json; id=$DBAAS_INSTANCE
s=$(stat -c %s "$f" 2>/dev/null || echo 0)
echo "$s"
l=$(ls -1 "$d/repo/backup/$id" 2>/dev/null | grep -E '^[0-9]{8}-[0-9]{6}F' | tr '\n' ' ')
echo "$l"
t=$(find "$d/repo/archive/$id" -type f -name '????????????????????????-*' -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1)
echo "${t%%.*}"
j=$(head -n 1 "$d/s3-listing.json" 2>/dev/null)
echo "$j"
if [ "$s" -gt "$1" ]; then tail -c +$(($1 + 1)) "$f" | head -c "$2"; fi
exit 0"#;

/// Brings `dir` (backups/<id>/) up to date from the backup container
/// `container` on the daemon at `ep`.
pub async fn sync(docker_cli: &str, ep: &str, container: &str, dir: &Path) -> Result<()> {
    for _ in 0..4 {
        let from = offset(dir);
        let (off, chunk) = (from.to_string(), CHUNK.to_string());
        let args = [
            "-H", ep, "exec", "-u", "postgres", container, "bash", "-c", SCRIPT, "mirror", &off,
            &chunk,
        ];
        let answer = docker::run(docker_cli, &args, None, docker::QUICK_TIMEOUT)
            .await?
            .stdout;
        let d = dir.to_path_buf();
        let more = tokio::task::spawn_blocking(move || apply(&d, from, &answer))
            .await
            .map_err(|e| Error::Failed(format!("internal task failed: {e}")))?
            .map_err(|e| Error::io(format!("mirroring the backups into {}", dir.display()), e))?;
        if !more {
            break;
        }
    }
    Ok(())
}

fn offset(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(crate::backups::LOG)).map_or(0, |m| m.len())
}

/// Applies one answer of SCRIPT (asked with `offset`); true when there is
/// more of the log to read.
pub fn apply(dir: &Path, offset: u64, answer: &str) -> std::io::Result<bool> {
    let bad = |what: &str| std::io::Error::other(format!("the node's answer lacks {what}"));
    let mut parts = answer.splitn(5, '\n');
    let size: u64 = parts
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| bad("the log's size"))?;
    let labels: Vec<&str> = parts
        .next()
        .ok_or_else(|| bad("the labels"))?
        .split_whitespace()
        .filter(|l| crate::backups::backup_label(l).is_ok())
        .take(MAX_LABELS)
        .collect();
    let newest_wal = parts.next().ok_or_else(|| bad("the WAL time"))?.trim();
    let s3_listing = parts.next().ok_or_else(|| bad("the S3 listing"))?.trim();
    let body = parts.next().unwrap_or("");
    std::fs::create_dir_all(dir)?;
    let log = dir.join(crate::backups::LOG);
    // Two processes may sync one instance at once (`serve`'s mirror and a
    // CLI command): under an exclusive lock, the copy is changed only if
    // it is still as long as the offset this answer was asked with;
    // otherwise the other one got there first, and this sync asks again.
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    // SAFETY: flock on a descriptor we own; released when `f` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if f.metadata()?.len() != offset {
        return Ok(true);
    }
    if size < offset {
        // Not the log that was copied (a repository made again): start over.
        f.set_len(0)?;
        return Ok(true);
    }
    let whole = match body.rfind('\n') {
        Some(i) if offset < MAX_LOG => &body[..=i],
        _ => "",
    };
    if !whole.is_empty() {
        f.write_all(whole.as_bytes())?;
    }
    drop(f);
    held(dir, &labels)?;
    let wal = dir.join(crate::backups::MIRRORED_WAL);
    if newest_wal.chars().all(|c| c.is_ascii_digit()) && !newest_wal.is_empty() {
        crate::registry::write_atomic(&wal, format!("{newest_wal}\n").as_bytes(), 0o644)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    if serde_json::from_str::<serde_json::Value>(s3_listing).is_ok_and(|v| v.is_object()) {
        crate::registry::write_atomic(
            &dir.join(crate::backups::S3_LISTING),
            format!("{s3_listing}\n").as_bytes(),
            0o644,
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(offset + (whole.len() as u64) < size && !whole.is_empty())
}

/// repo/backup/<id>/<label>/ for each label the node's repository holds,
/// and none for a label it no longer holds (expired).
fn held(dir: &Path, labels: &[&str]) -> std::io::Result<()> {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let set = dir.join("repo").join("backup").join(id);
    std::fs::create_dir_all(&set)?;
    for l in labels {
        std::fs::create_dir_all(set.join(l))?;
    }
    for e in std::fs::read_dir(&set)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !labels.contains(&name.as_str()) && crate::backups::backup_label(&name).is_ok() {
            // Empty: only this mirror makes these directories.
            let _ = std::fs::remove_dir(e.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_labels_and_the_wal_time_are_mirrored() {
        let t = crate::testing::TempDir::new("swarm-backups");
        let dir = t.path().join("db_1");
        let a = "{\"a\":1}\n{\"b\":2}\n{\"c\"";
        let answer =
            format!("30\n20261204-030000F 20261204-030000F_20261204-031000D\n1796350000\n{{\"labels\":[\"20261204-030000F\"]}}\n{a}");
        assert!(apply(&dir, 0, &answer).unwrap());
        let log = std::fs::read_to_string(dir.join(crate::backups::LOG)).unwrap();
        assert_eq!(log, "{\"a\":1}\n{\"b\":2}\n");
        let set = dir.join("repo/backup/db_1");
        assert!(set.join("20261204-030000F").is_dir());
        assert!(set.join("20261204-030000F_20261204-031000D").is_dir());
        assert_eq!(
            std::fs::read_to_string(dir.join(crate::backups::MIRRORED_WAL)).unwrap(),
            "1796350000\n"
        );
        // Expired on the node: its directory goes; a shorter log starts over.
        assert_eq!(
            crate::backups::s3_labels(&dir),
            vec!["20261204-030000F".to_string()]
        );
        assert!(!apply(&dir, 16, "16\n20261204-030000F\n\n\n").unwrap());
        assert!(!set.join("20261204-030000F_20261204-031000D").exists());
        assert!(apply(&dir, 16, "5\n\n\n\n").unwrap());
        assert_eq!(
            std::fs::metadata(dir.join(crate::backups::LOG))
                .unwrap()
                .len(),
            0
        );
        assert!(apply(&dir, 0, "garbage").is_err());
        // Past the cap, nothing more of the log is copied.
        let log = dir.join(crate::backups::LOG);
        let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(MAX_LOG).unwrap();
        assert!(!apply(&dir, MAX_LOG, &format!("{}\n\n\n\nx\n", MAX_LOG + 2)).unwrap());
        assert_eq!(std::fs::metadata(&log).unwrap().len(), MAX_LOG);
        // An answer asked at an offset another writer has moved past since
        // changes nothing, and asks for another round.
        std::fs::write(&log, "a\n").unwrap();
        assert!(apply(&dir, 0, "2\n\n\n\na\n").unwrap());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a\n");
    }
}
