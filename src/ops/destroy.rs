//! destroy: containers, network, directory (unless kept) and registry entry
//! go, in that order, so that an interrupted destroy can be run again.

use super::record::{intending, refuse_if_creating};
use super::{blocking, find};
use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog;
use crate::registry::{self, Instance, Intent, State};
use std::path::Path;
use std::time::Instant;

/// Removes containers, network, directory (unless `keep_data`) and the
/// registry entry, in that order, so an interrupted destroy can be re-run.
/// Its backups (backups/<id>/) stay unless `delete_backups`.
pub async fn destroy(
    home: &Home,
    key: &str,
    keep_data: bool,
    delete_backups: bool,
) -> Result<Instance> {
    let inst = find(home, key).await?;
    refuse_if_creating(&inst)?;
    if delete_backups && inst.s3.is_some() {
        forget_s3(home, &inst).await?;
    }
    let intent = if keep_data {
        Intent::DestroyKeepData
    } else {
        Intent::Destroy
    };
    intending(
        home,
        &inst.id,
        intent,
        remove_instance(home, &inst.id, keep_data, !delete_backups),
    )
    .await?;
    // A create killed a moment ago may still see the daemon make one of
    // its containers after the `down` (CI saw it): look again, as the
    // create's own rollback does.
    if inst.state == State::Creating {
        sweep_late_containers(home, &inst.id).await?;
    }
    if delete_backups {
        remove_backups(home, &inst.id).await?;
    }
    Ok(inst)
}

/// The containers and instances/<id>/ (unless `keep_data`) and the
/// registry entry; a swarm node's backup repository only when not
/// `keep_backups` (backups/<id>/ on one host is `remove_backups`').
pub async fn remove_instance(
    home: &Home,
    id: &str,
    keep_data: bool,
    keep_backups: bool,
) -> Result<()> {
    let started = Instant::now();
    let engine = engine::of(home);
    // Containers still starting or stopping (a create killed a moment ago)
    // make `down` answer "going away": it converges on a second try.
    let mut tries = 0;
    loop {
        let down = async {
            if keep_data {
                engine.down(id).await
            } else {
                engine.destroy(id, keep_backups).await
            }
        };
        match oplog::step(home, id, "destroy.compose_down", down).await {
            Err(Error::Conflict(why)) if tries < 3 => {
                tries += 1;
                log::warn!("{id}: {why}; taking the containers down again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            other => break other?,
        }
    }
    if !keep_data {
        let dir = home.instance_dir(id);
        blocking(move || remove_dir(&dir)).await?;
    }
    blocking({
        let home = home.clone();
        let id = id.to_string();
        move || {
            registry::update(&home, |reg| {
                reg.remove(&id);
                Ok(())
            })
        }
    })
    .await?;
    oplog::record_async(
        home,
        id,
        "destroy",
        started.elapsed(),
        if keep_data { "ok (data kept)" } else { "ok" },
    )
    .await;
    Ok(())
}

/// Rolls back a create that did not finish (or a restore into a new
/// instance): everything `remove_instance` removes, and its repository
/// (an instance that never ran has nothing worth keeping).
pub async fn remove_unfinished(home: &Home, id: &str) -> Result<()> {
    remove_instance(home, id, false, false).await?;
    sweep_late_containers(home, id).await?;
    remove_backups(home, id).await
}

/// A create stopped in the middle of `compose up` (Ctrl-C, a lost client)
/// may have had the daemon make a container after the rollback's `down`
/// listed the project's (the daemon finishes a request whose client was
/// killed): look again for a moment, and take down what appeared. Best
/// effort: what it cannot remove, `doctor --fix` reports as an orphan.
async fn sweep_late_containers(home: &Home, id: &str) -> Result<()> {
    use crate::engine::ContainerState;
    let engine = engine::of(home);
    // CI saw the agent's and the backup's containers made after Ctrl-C's
    // rollback had listed the project; two seconds covers a loaded daemon.
    for _ in 0..8 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let late = match engine.ps(Some(id)).await {
            Ok(ps) => ps.get(id).is_some_and(|cs| {
                cs.iter()
                    .any(|c| !matches!(c.state, ContainerState::Removing | ContainerState::Dead))
            }),
            Err(e) => {
                log::warn!("{id}: looking for containers after the rollback: {e}");
                false
            }
        };
        if late {
            log::warn!("{id}: a container appeared after the rollback's down; removing it");
            if let Err(e) = engine.down(id).await {
                log::warn!("{id}: removing it: {e}");
            }
        }
    }
    Ok(())
}

/// Deletes the instance's stanza from its S3 repository, through its
/// backup sidecar (which has the keys and the network); the instance must
/// run for that, and nothing is removed when it fails.
async fn forget_s3(home: &Home, inst: &Instance) -> Result<()> {
    let argv: Vec<String> = ["bash", "/agent/backup.sh", "forget-s3"]
        .map(String::from)
        .into();
    engine::of(home)
        .exec(
            &inst.id,
            &engine::Service::Backup,
            &argv,
            std::time::Duration::from_secs(600),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::Failed(format!(
                "could not delete the S3 backups of '{}', so nothing was destroyed (start it with `dbaasctl up {}` first, or destroy without --delete-backups to keep the backups): {e}",
                inst.name, inst.name
            ))
        })
}

/// backups/<id>/ and config/kept/<id>/: on `--delete-backups`, and when a
/// create is rolled back.
pub async fn remove_backups(home: &Home, id: &str) -> Result<()> {
    let repo = home.backup_dir(id);
    blocking(move || {
        remove_dir(&repo)?;
        remove_dir(&crate::provision::kept_dir(&repo))
    })
    .await
}

pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    let mut tries = 0;
    match loop {
        match std::fs::remove_dir_all(dir) {
            // A writer killed a moment ago (an abandoned create's template
            // copy) may still add an entry while the tree goes.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => break r,
        }
    } {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!(
                "removing {} (files written by the container may need root: sudo rm -rf {})",
                dir.display(),
                dir.display()
            ),
            e,
        )),
    }
}

/// Rolls back the creates this process started and did not finish: called
/// when the user interrupts `create` (Ctrl-C), so nothing half-made is left.
pub async fn abandon_own_creates(home: &Home) -> Result<Vec<String>> {
    let me = std::process::id();
    let reg = blocking({
        let home = home.clone();
        move || registry::load(&home)
    })
    .await?;
    let mine: Vec<String> = reg
        .instances
        .iter()
        .filter(|i| i.state == State::Creating && i.creator_pid == Some(me))
        .map(|i| i.id.clone())
        .collect();
    for id in &mine {
        remove_unfinished(home, id).await?;
    }
    Ok(mine)
}

/// What `destroy` says about the backups it kept, if any.
pub fn kept_backups_note(home: &Home, inst: &Instance) -> Option<String> {
    let kept = home.backup_dir(&inst.id);
    if !kept.is_dir() {
        return None;
    }
    Some(match engine::repository_elsewhere(inst) {
        Some(place) => format!(
            "its backups are kept in {place} (their log in {}; `docker volume rm` on that node removes them, as --delete-backups would have)",
            kept.display()
        ),
        None => format!(
            "its backups are kept in {} (`dbaasctl restore {} --to NEW` restores them; `dbaasctl destroy` with --delete-backups would have removed them)",
            kept.display(),
            inst.id
        ),
    })
}
