//! The data directories of in-place restores and their undo, on disk:
//! which directory is live, which are kept aside, and a journal that says
//! which rename ran, so that a process killed at any step is finished (by
//! `doctor --fix` or the next `serve`) with either the original or the
//! restored data live and the other still on disk.
//!
//! - Every directory an operation replaces is kept as
//!   `data.before-restore-<time>` or `data.before-undo-<time>`, and is never
//!   deleted implicitly: `dbaasctl restore NAME --prune` deletes them and
//!   says which.
//! - `--undo` brings back the newest kept directory (the one the last
//!   restore or undo replaced), so a second undo swaps back again.
//! - The journal (`instances/<id>/restore-journal.json`, a host-only path)
//!   is written before each rename.

use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The name every kept directory starts with.
pub const KEPT_PREFIX: &str = "data.before-";
/// What an older dbaas called the one directory it kept.
const LEGACY_ASIDE: &str = "data.before-restore";
/// A data directory whose recovery was cut short (its process killed).
const INCOMPLETE_PREFIX: &str = "data.incomplete-restore-";
const JOURNAL: &str = "restore-journal.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Op {
    Restore,
    Undo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Restore: data/ is about to move aside.
    SetAside,
    /// Restore: data/ is new and being recovered into.
    Recovering,
    /// Restore: recovered; only the start is left.
    Recovered,
    /// Undo: data/ is about to move out to `out`.
    Out,
    /// Undo: data/ moved out; `aside` is about to come in.
    In,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Journal {
    op: Op,
    /// Restore: where data/ goes. Undo: the kept directory that comes back.
    aside: String,
    /// Undo: where data/ goes.
    out: Option<String>,
    step: Step,
}

/// Fault injection for the kill tests: DBAAS_CRASH_AT=<step> aborts the
/// process (as kill -9 would) right after the journal says <step>.
fn crash_point(step: Step) {
    if let Ok(at) = std::env::var("DBAAS_CRASH_AT") {
        let name = serde_json::to_value(step).ok();
        if name.as_ref().and_then(|v| v.as_str()) == Some(at.as_str()) {
            std::process::abort();
        }
    }
}

fn write_journal(dir: &Path, j: &Journal) -> Result<()> {
    let text = serde_json::to_vec(j).expect("journal serializes");
    crate::registry::write_atomic(&dir.join(JOURNAL), &text, 0o600)?;
    crash_point(j.step);
    Ok(())
}

fn read_journal(dir: &Path) -> Result<Option<Journal>> {
    let path = dir.join(JOURNAL);
    match crate::safe_fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| Error::Failed(format!("{} is damaged: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
    }
}

fn clear_journal(dir: &Path) -> Result<()> {
    match std::fs::remove_file(dir.join(JOURNAL)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).ctx(|| format!("removing {}", dir.join(JOURNAL).display()))
        }
        _ => Ok(()),
    }
}

/// A name not taken yet: PREFIX + the UTC time (+ a counter).
fn fresh(dir: &Path, prefix: &str) -> String {
    // 2026-12-05T22:50:00Z -> 20261205T225000Z: sortable, no colons.
    let now: String = crate::oplog::now_rfc3339()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    // After every kept directory's time, across prefixes: the newest is the
    // one made last, even within one second (a counter, zero-padded so that
    // it sorts) or after the clock went back.
    let newest = kept(dir)
        .iter()
        .map(|n| time_of(n))
        .max()
        .unwrap_or_default();
    let newest_base = newest.split('-').next().unwrap_or_default().to_string();
    let base = now.max(newest_base);
    let mut time = base.clone();
    let mut n = 1;
    while time <= newest || std::fs::symlink_metadata(dir.join(format!("{prefix}{time}"))).is_ok() {
        n += 1;
        time = format!("{base}-{n:03}");
    }
    format!("{prefix}{time}")
}

/// The time in a kept directory's name (the legacy one's is empty: oldest).
fn time_of(n: &str) -> String {
    if n == LEGACY_ASIDE {
        return String::new();
    }
    n.rsplit_once("-restore-")
        .or_else(|| n.rsplit_once("-undo-"))
        .map(|(_, t)| t.to_string())
        .unwrap_or_default()
}

fn rename(dir: &Path, from: &str, to: &str) -> Result<()> {
    std::fs::rename(dir.join(from), dir.join(to))
        .ctx(|| format!("moving {} to {to}", dir.join(from).display()))
}

fn make_data_dir(data: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(data)
        .ctx(|| format!("creating {}", data.display()))
}

/// The kept directories, oldest first (the legacy one counts as oldest).
pub fn kept(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(KEPT_PREFIX) || n.starts_with(INCOMPLETE_PREFIX))
                .collect()
        })
        .unwrap_or_default();
    // By the time in the name, whatever the prefix.
    names.sort_by_key(|n| (time_of(n), n.clone()));
    names
}

/// The directory `--undo` brings back: the newest kept one (not an
/// incomplete recovery).
pub fn newest_kept(dir: &Path) -> Option<String> {
    kept(dir).into_iter().rfind(|n| n.starts_with(KEPT_PREFIX))
}

/// Restore, step 1: data/ aside (under a new name), an empty data/.
/// Returns the kept directory's name.
pub fn set_aside(dir: &Path) -> Result<String> {
    let aside = fresh(dir, "data.before-restore-");
    write_journal(
        dir,
        &Journal {
            op: Op::Restore,
            aside: aside.clone(),
            out: None,
            step: Step::SetAside,
        },
    )?;
    if dir.join("data").exists() {
        rename(dir, "data", &aside)?;
    }
    make_data_dir(&dir.join("data"))?;
    recovering(dir, &aside, Step::Recovering)?;
    Ok(aside)
}

/// Restore: the journal's next step.
pub fn recovering(dir: &Path, aside: &str, step: Step) -> Result<()> {
    write_journal(
        dir,
        &Journal {
            op: Op::Restore,
            aside: aside.to_string(),
            out: None,
            step,
        },
    )
}

/// Restore, the end: nothing left to redo.
pub fn done(dir: &Path) -> Result<()> {
    clear_journal(dir)
}

/// A recovery that failed (not killed): its half-made data/ goes, the
/// kept one comes back.
pub fn put_back(dir: &Path, aside: &str) -> Result<()> {
    if dir.join(aside).exists() {
        if dir.join("data").exists() {
            crate::ops::destroy::remove_dir(&dir.join("data"))?;
        }
        rename(dir, aside, "data")?;
    }
    clear_journal(dir)
}

/// Undo: data/ out to a new kept directory, the newest kept one in.
/// Returns the name data/ now has.
pub fn swap(dir: &Path) -> Result<String> {
    let aside = newest_kept(dir).ok_or_else(|| {
        Error::Conflict(format!(
            "no data directory kept by an in-place restore in {}; nothing to undo",
            dir.display()
        ))
    })?;
    let out = fresh(dir, "data.before-undo-");
    let mut j = Journal {
        op: Op::Undo,
        aside: aside.clone(),
        out: Some(out.clone()),
        step: Step::Out,
    };
    write_journal(dir, &j)?;
    if dir.join("data").exists() {
        rename(dir, "data", &out)?;
    }
    j.step = Step::In;
    write_journal(dir, &j)?;
    rename(dir, &aside, "data")?;
    clear_journal(dir)?;
    Ok(out)
}

/// After a process was killed mid-way: the journal says what ran, and
/// this finishes it so that either the original or the restored data is
/// live, the other kept. Returns what it did, for the log.
pub fn resume(dir: &Path) -> Result<Option<String>> {
    let Some(j) = read_journal(dir)? else {
        return Ok(None);
    };
    let data = dir.join("data");
    let has = |n: &str| dir.join(n).exists();
    let did = match (j.op, j.step) {
        (Op::Restore, Step::SetAside) => {
            if has(&j.aside) {
                // Moved aside; the new data/ is empty or missing.
                if data.exists() {
                    std::fs::remove_dir(&data).ctx(|| format!("removing {}", data.display()))?;
                }
                rename(dir, &j.aside, "data")?;
            }
            "the restore stopped before its recovery began: the data directory is back".to_string()
        }
        (Op::Restore, Step::Recovering) => {
            let incomplete = fresh(dir, INCOMPLETE_PREFIX);
            if data.exists() {
                rename(dir, "data", &incomplete)?;
            }
            if has(&j.aside) {
                rename(dir, &j.aside, "data")?;
            }
            format!("the restore stopped during its recovery: the data directory is back, the incomplete one kept as {incomplete}")
        }
        (Op::Restore, _) => "the restore had recovered; it starts now".to_string(),
        (Op::Undo, step) => {
            let moved_out = j.out.as_deref().is_some_and(has);
            if (step == Step::In || moved_out) && !data.exists() && has(&j.aside) {
                rename(dir, &j.aside, "data")?;
                "the undo stopped between its moves: it is finished".to_string()
            } else {
                "the undo stopped before it moved anything".to_string()
            }
        }
    };
    clear_journal(dir)?;
    Ok(Some(did))
}

/// Deletes every kept directory (refused while an operation is
/// unfinished); returns their names.
pub fn prune(dir: &Path) -> Result<Vec<String>> {
    if read_journal(dir)?.is_some() {
        return Err(Error::Conflict(
            "an in-place restore or undo is unfinished; run `dbaasctl doctor --fix` first".into(),
        ));
    }
    let names = kept(dir);
    for n in &names {
        crate::ops::destroy::remove_dir(&dir.join(n))?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_with(dir: &Path, file: &str) {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data").join(file), b"x").unwrap();
    }

    fn live(dir: &Path, file: &str) -> bool {
        dir.join("data").join(file).exists()
    }

    #[test]
    fn restore_undo_undo_keeps_every_directory() {
        let t = crate::testing::TempDir::new("in-place");
        let dir = t.path();
        data_with(dir, "old");
        let aside = set_aside(dir).unwrap();
        std::fs::write(dir.join("data/new"), b"2").unwrap();
        recovering(dir, &aside, Step::Recovered).unwrap();
        done(dir).unwrap();
        assert!(dir.join(&aside).join("old").exists());
        swap(dir).unwrap();
        assert!(live(dir, "old"));
        swap(dir).unwrap();
        assert!(live(dir, "new"));
        // A second restore keeps the first one's directory too.
        set_aside(dir).unwrap();
        done(dir).unwrap();
        // Each undo keeps what it replaced and brings one back: two kept.
        let kept = kept(dir);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(dir.join(kept.last().unwrap()).join("new").exists());
        let pruned = prune(dir).unwrap();
        assert_eq!(pruned, kept);
        assert!(super::kept(dir).is_empty());
    }

    /// Names made within one second, or after a clock that went back,
    /// sort in the order they were made (CI once saw an undo's directory
    /// sort after the restore that followed it).
    #[test]
    fn kept_names_sort_in_the_order_they_were_made() {
        let t = crate::testing::TempDir::new("in-place-order");
        let dir = t.path();
        std::fs::create_dir(dir.join("data.before-undo-20990101T000000Z-002")).unwrap();
        let mut made = vec!["data.before-undo-20990101T000000Z-002".to_string()];
        for i in 0..12 {
            let prefix = if i % 2 == 0 {
                "data.before-restore-"
            } else {
                "data.before-undo-"
            };
            let n = fresh(dir, prefix);
            std::fs::create_dir(dir.join(&n)).unwrap();
            made.push(n);
        }
        assert_eq!(kept(dir), made);
    }

    #[test]
    fn a_resumed_restore_or_undo_leaves_one_live_and_the_other_kept() {
        let t = crate::testing::TempDir::new("in-place-resume");
        let dir = t.path();
        // Killed during the recovery: the original comes back.
        data_with(dir, "old");
        let aside = set_aside(dir).unwrap();
        std::fs::write(dir.join("data/half"), b"").unwrap();
        assert!(resume(dir).unwrap().is_some());
        assert!(live(dir, "old"));
        assert!(kept(dir).iter().any(|n| n.starts_with(INCOMPLETE_PREFIX)));
        assert!(!dir.join(&aside).exists());
        // Killed between an undo's two moves.
        std::fs::create_dir(dir.join("data.before-restore-20990101T000000Z")).unwrap();
        std::fs::write(
            dir.join("data.before-restore-20990101T000000Z/restored"),
            b"",
        )
        .unwrap();
        let j = Journal {
            op: Op::Undo,
            aside: "data.before-restore-20990101T000000Z".into(),
            out: Some("data.before-undo-x".into()),
            step: Step::In,
        };
        std::fs::write(dir.join(JOURNAL), serde_json::to_vec(&j).unwrap()).unwrap();
        rename(dir, "data", "data.before-undo-x").unwrap();
        resume(dir).unwrap();
        assert!(live(dir, "restored"));
        assert!(dir.join("data.before-undo-x/old").exists());
        assert!(resume(dir).unwrap().is_none());
    }
}
