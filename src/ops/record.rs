//! The registry's record of what is happening to an instance, and the rules
//! every face shares: an instance being created belongs to its creator, a
//! failed one is for reading and then destroying, and an operation records
//! its intent so that one cut short by a killed process can be finished.

use super::{blocking, process_alive};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog::now_rfc3339;
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

/// `set_state` to a state without an error, on a blocking thread.
pub(super) async fn record_state(home: &Home, id: &str, state: State) -> Result<Instance> {
    let (home, id) = (home.clone(), id.to_string());
    blocking(move || set_state(&home, &id, state, None)).await
}

/// After a restart (or a stop): nothing a resize changed is pending.
pub(super) async fn clear_pending_restart(home: &Home, id: &str) -> Result<Instance> {
    let (home, id) = (home.clone(), id.to_string());
    blocking(move || {
        registry::update(&home, |reg| {
            let i = reg.find_mut(&id).ok_or_else(|| registry::not_found(&id))?;
            i.pending_restart.clear();
            Ok(i.clone())
        })
    })
    .await
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
            Intent::Restore => "restore",
        }),
        _ => None,
    }
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
pub(super) fn refuse_if_unusable(inst: &Instance) -> Result<()> {
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
