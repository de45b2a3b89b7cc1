//! The monitoring mirror of a swarm instance. Its agent writes
//! metrics.json into a volume on the instance's node, while the tailer (the
//! API, `top`, `metrics`) reads `instances/<id>/logs/` where dbaas runs;
//! each sync copies what is new through the node's daemon. The local file
//! is a byte copy of the node's, so its length is the offset to read from,
//! and a node file shorter than that was rotated since the last sync.

use crate::engine::docker;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// The most bytes one sync reads (about 2,000 samples); a longer backlog
/// (a first sync of an old instance) comes over the next syncs.
pub const CHUNK: u64 = 4 << 20;
/// The most of the node's current file the mirror copies: the agent
/// rotates at DBAAS_METRICS_MAX_BYTES (10 MiB), so only a container that
/// was taken over writes more, and this host's disk is not its to fill.
pub const MAX_MIRROR: u64 = 256 << 20;

/// Run in the agent container with `$1` the offset and `$2` CHUNK. The
/// first line is the size of the node's current file; then, from the
/// offset, at most CHUNK bytes of that file, or, when it is shorter than
/// the offset (rotated since), of the file it was rotated into.
pub const SCRIPT: &str = r#"f=/logs/metrics.json
s=$(stat -c %s "$f" 2>/dev/null || echo 0)
echo "$s"
if [ "$s" -ge "$1" ]; then g=$f; else g=$f.1; fi
if [ -e "$g" ]; then tail -c +$(($1 + 1)) "$g" | head -c "$2"; fi
exit 0"#;

const FILE: &str = crate::metrics::tail::FILE;

/// What one sync did to the local copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Synced {
    /// Appended this many bytes (whole lines) to the current file.
    Appended(u64),
    /// The node's file was rotated: the rest of the old one was appended
    /// and the local files rotated the same way; sync again for the new one.
    Rotated,
}

/// Brings the local copy in `dir` up to date from the agent container
/// `container` on the daemon at `ep`.
pub async fn sync(
    docker_cli: &str,
    ep: &str,
    container: &str,
    id: &str,
    dir: &Path,
    keep: u32,
) -> Result<()> {
    // A rotation takes two rounds (the old file's rest, then the new
    // one), a backlog a few.
    for _ in 0..4 {
        let from = offset(dir);
        let (off, chunk) = (from.to_string(), CHUNK.to_string());
        let args = [
            "-H", ep, "exec", container, "bash", "-c", SCRIPT, "mirror", &off, &chunk,
        ];
        let answer = docker::run(docker_cli, &args, None, docker::QUICK_TIMEOUT)
            .await?
            .stdout;
        let (d, i) = (dir.to_path_buf(), id.to_string());
        let synced = tokio::task::spawn_blocking(move || apply(&d, from, keep, &answer))
            .await
            .map_err(|e| Error::Failed(format!("internal task failed: {e}")))?
            .map_err(|e| Error::io(format!("mirroring the metrics of {i}"), e))?;
        match synced {
            Synced::Rotated => continue,
            Synced::Appended(n) if n >= CHUNK / 2 => continue,
            Synced::Appended(_) => break,
        }
    }
    Ok(())
}

/// The size of the local current file: the offset of the next sync.
pub fn offset(dir: &Path) -> u64 {
    std::fs::metadata(dir.join(FILE)).map_or(0, |m| m.len())
}

/// Applies one answer of SCRIPT (asked with `offset`) to the local copy in
/// `dir`, keeping `keep` rotated files as the agent does. Only whole lines
/// are written: the agent may be midway through one, and a cut chunk ends
/// in a piece of one; the rest comes with the next sync.
pub fn apply(dir: &Path, offset: u64, keep: u32, answer: &str) -> std::io::Result<Synced> {
    let (size, body) = answer.split_once('\n').unwrap_or((answer, ""));
    let size: u64 = size
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("unexpected answer from the node: {size:?}")))?;
    let whole = if offset < MAX_MIRROR {
        &body[..body.rfind('\n').map_or(0, |i| i + 1)]
    } else {
        ""
    };
    std::fs::create_dir_all(dir)?;
    if !whole.is_empty() {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(FILE))?;
        f.write_all(whole.as_bytes())?;
    }
    if size >= offset {
        return Ok(Synced::Appended(whole.len() as u64));
    }
    rotate(dir, keep)?;
    Ok(Synced::Rotated)
}

/// metrics.json to metrics.json.1, .1 to .2, ..., the oldest beyond `keep`
/// dropped: the agent's own rotation (agent/agent.sh).
fn rotate(dir: &Path, keep: u32) -> std::io::Result<()> {
    let current = dir.join(FILE);
    if keep == 0 {
        return std::fs::write(&current, b"");
    }
    for i in (1..keep).rev() {
        let from = dir.join(format!("{FILE}.{i}"));
        if from.exists() {
            std::fs::rename(&from, dir.join(format!("{FILE}.{}", i + 1)))?;
        }
    }
    if current.exists() {
        std::fs::rename(&current, dir.join(format!("{FILE}.1")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[test]
    fn new_whole_lines_are_appended_and_a_rotation_followed() {
        let t = crate::testing::TempDir::new("mirror");
        let dir = t.path().join("logs");
        assert_eq!(offset(&dir), 0);
        // Nothing yet on the node.
        assert_eq!(apply(&dir, 0, 2, "0\n").unwrap(), Synced::Appended(0));
        // Two lines and half of a third: the half waits.
        let got = apply(&dir, 0, 2, "20\n{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        assert_eq!(got, Synced::Appended(16));
        assert_eq!(offset(&dir), 16);
        let got = apply(&dir, 16, 2, "20\n{\"a\"").unwrap();
        assert_eq!(got, Synced::Appended(0), "a piece of a line is not a line");
        assert_eq!(
            apply(&dir, MAX_MIRROR, 2, &format!("{}\n{{}}\n", MAX_MIRROR + 3)).unwrap(),
            Synced::Appended(0),
            "past the cap nothing is copied"
        );
        let got = apply(&dir, 16, 2, "24\n{\"a\":3}\n").unwrap();
        assert_eq!(got, Synced::Appended(8));
        // Rotated on the node: the rest of the old file, then the local
        // files rotate, and the next sync starts the new file from 0.
        let got = apply(&dir, 24, 2, "8\n{\"a\":4}\n").unwrap();
        assert_eq!(got, Synced::Rotated);
        assert_eq!(read(&dir, "metrics.json.1").lines().count(), 4);
        assert_eq!(offset(&dir), 0);
        apply(&dir, 0, 2, "8\n{\"a\":5}\n").unwrap();
        apply(&dir, 8, 2, "0\n").unwrap();
        assert_eq!(read(&dir, "metrics.json.2").lines().count(), 4);
        assert_eq!(read(&dir, "metrics.json.1"), "{\"a\":5}\n");
        apply(&dir, 0, 2, "8\n{\"a\":6}\n").unwrap();
        apply(&dir, 8, 2, "0\n").unwrap();
        assert!(!dir.join("metrics.json.3").exists(), "keep is 2");
        assert!(apply(&dir, 0, 2, "garbage").is_err());
    }
}
