//! up / down / restart, the rules they share with every face ("still being
//! created", "failed"), and the intent record that lets a killed process's
//! operation be finished by the next one (`resume`).

use super::destroy::remove_instance;
use super::ready::wait_ready;
use super::views::{status_view, InstanceView};
use super::{blocking, find, process_alive};
use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog::{self, now_rfc3339};
use crate::provision;
use crate::registry::{self, Instance, Intent, State};

pub(super) fn set_state(
    home: &Home,
    id: &str,
    state: State,
    error: Option<String>,
) -> Result<Instance> {
    registry::update(home, |reg| {
        let inst = reg.find_mut(id).ok_or_else(|| registry::not_found(id))?;
        inst.state = state;
        inst.error = error;
        inst.creator_pid = None;
        inst.intent = None;
        inst.intent_pid = None;
        inst.updated_at = now_rfc3339();
        Ok(inst.clone())
    })
}

/// Records (or clears) the operation this process is about to run on an
/// instance; clearing an entry that is gone is not an error.
fn set_intent(home: &Home, id: &str, intent: Option<Intent>) -> Result<()> {
    registry::update(home, |reg| {
        match reg.find_mut(id) {
            Some(inst) => {
                inst.intent = intent;
                inst.intent_pid = intent.map(|_| std::process::id());
            }
            None if intent.is_none() => {}
            None => return Err(registry::not_found(id)),
        }
        Ok(())
    })
}

/// Runs `work` with its intent recorded, so that if this process dies
/// midway the next `serve` or `doctor --fix` finishes it; the record goes
/// when `work` ends, however it ends.
pub(super) async fn intending<T>(
    home: &Home,
    id: &str,
    intent: Intent,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    blocking({
        let (home, id) = (home.clone(), id.to_string());
        move || set_intent(&home, &id, Some(intent))
    })
    .await?;
    let res = work.await;
    let cleared = blocking({
        let (home, id) = (home.clone(), id.to_string());
        move || set_intent(&home, &id, None)
    })
    .await;
    if let Err(e) = cleared {
        log::warn!("clearing the intent of {id}: {e}");
    }
    res
}

/// What a killed process left unfinished on this instance: a create (rolled
/// back) or an operation (run again to its end), if any.
pub fn interrupted(inst: &Instance) -> Option<&'static str> {
    if inst.state == State::Creating && !creator_alive(inst) {
        return Some("create");
    }
    match inst.intent {
        Some(i) if !process_alive(inst.intent_pid) => Some(match i {
            Intent::Start => "start",
            Intent::Stop => "stop",
            Intent::Restart => "restart",
            Intent::Destroy | Intent::DestroyKeepData => "destroy",
        }),
        _ => None,
    }
}

/// Finishes what a killed process left on one instance: an interrupted
/// create is rolled back, any other operation runs again to its end.
/// Returns what was done, or None when nothing was left.
pub async fn resume(home: &Home, id: &str) -> Result<Option<String>> {
    let inst = match find(home, id) {
        Ok(i) => i,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(what) = interrupted(&inst) else {
        return Ok(None);
    };
    match (what, inst.intent) {
        ("create", _) => remove_instance(home, id, false).await?,
        (_, Some(Intent::Start)) => drop(up(home, id).await?),
        (_, Some(Intent::Stop)) => drop(down(home, id).await?),
        (_, Some(Intent::Restart)) => drop(restart(home, id).await?),
        (_, Some(Intent::Destroy)) => remove_instance(home, id, false).await?,
        (_, Some(Intent::DestroyKeepData)) => remove_instance(home, id, true).await?,
        _ => return Ok(None),
    }
    let done = if what == "create" {
        "rolled back the interrupted create".to_string()
    } else {
        format!("finished the interrupted {what}")
    };
    log::warn!("{}: {done}", inst.name);
    Ok(Some(done))
}

fn instance_dir_checked(home: &Home, inst: &Instance) -> Result<std::path::PathBuf> {
    let dir = home.instance_dir(&inst.id);
    if !engine::of(home).provisioned(&inst.id) {
        return Err(Error::Failed(format!(
            "{} is missing its compose file; `dbaasctl doctor` explains, `dbaasctl destroy {}` removes the entry",
            dir.display(),
            inst.name
        )));
    }
    Ok(dir)
}

/// Whether the process that is creating an instance still runs.
pub fn creator_alive(inst: &Instance) -> bool {
    process_alive(inst.creator_pid)
}

/// The rule every face shares: an instance being created belongs to its
/// creator until it is done.
pub fn refuse_if_creating(inst: &Instance) -> Result<()> {
    if inst.state == State::Creating && creator_alive(inst) {
        return Err(Error::Conflict(format!(
            "instance '{}' is still being created (by process {}); wait for it to finish",
            inst.name,
            inst.creator_pid.unwrap_or(0)
        )));
    }
    Ok(())
}

/// Start, stop and restart also refuse an instance whose create failed:
/// what is left of it is for reading, then for `destroy`.
fn refuse_if_unusable(inst: &Instance) -> Result<()> {
    refuse_if_creating(inst)?;
    if inst.state == State::Failed {
        return Err(Error::Conflict(format!(
            "instance '{}' failed to provision ({}); destroy it and create it again",
            inst.name,
            inst.error.as_deref().unwrap_or("unknown reason")
        )));
    }
    Ok(())
}

/// Starts the containers and waits for readiness. Idempotent.
pub async fn up(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    refuse_if_unusable(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, Intent::Start, up_inner(home, inst)).await
}

async fn up_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = instance_dir_checked(home, &inst)?;
    let password = provision::app_password(&dir)?;
    oplog::step(
        home,
        &inst.id,
        "up.compose_up",
        engine::of(home).up(&inst.id),
    )
    .await?;
    oplog::step(
        home,
        &inst.id,
        "up.wait_ready",
        wait_ready(home, &inst, &password),
    )
    .await?;
    let inst = blocking({
        let home = home.clone();
        let id = inst.id.clone();
        move || set_state(&home, &id, State::Running, None)
    })
    .await?;
    status_view(home, &inst).await
}

/// Stops and removes the containers; data stays. Idempotent: stopping a
/// stopped instance succeeds.
pub async fn down(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    refuse_if_unusable(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, Intent::Stop, down_inner(home, inst)).await
}

async fn down_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    oplog::step(home, &inst.id, "down", engine::of(home).down(&inst.id)).await?;
    let inst = blocking({
        let home = home.clone();
        let id = inst.id.clone();
        move || set_state(&home, &id, State::Stopped, None)
    })
    .await?;
    status_view(home, &inst).await
}

/// Restarts running containers in place, or brings the instance up.
pub async fn restart(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    refuse_if_unusable(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, Intent::Restart, restart_inner(home, inst)).await
}

async fn restart_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = instance_dir_checked(home, &inst)?;
    let engine = engine::of(home);
    let ps = engine.ps(Some(&inst.id)).await?;
    let running = engine::db_container(&ps, &inst.id).is_some_and(|c| c.running());
    if running {
        let password = provision::app_password(&dir)?;
        oplog::step(home, &inst.id, "restart", engine.restart(&inst.id)).await?;
        oplog::step(
            home,
            &inst.id,
            "restart.wait_ready",
            wait_ready(home, &inst, &password),
        )
        .await?;
        status_view(home, &inst).await
    } else {
        up_inner(home, inst).await
    }
}
