//! Finishing what a killed process (CLI or server) left unfinished: run by
//! `serve` at start-up and by `doctor --fix`.

use super::destroy::remove_instance;
use super::find;
use super::lifecycle::{down, restart, up};
use super::record::interrupted;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry::Intent;

/// Finishes what a killed process left on one instance: an interrupted
/// create is rolled back, any other operation runs again to its end.
/// Returns what was done, or None when nothing was left.
pub async fn resume(home: &Home, id: &str) -> Result<Option<String>> {
    let inst = match find(home, id).await {
        Ok(i) => i,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(what) = interrupted(&inst) else {
        return Ok(None);
    };
    match (what, inst.intent) {
        ("create", _) => super::destroy::remove_unfinished(home, id).await?,
        (_, Some(Intent::Start)) => drop(up(home, id).await?),
        (_, Some(Intent::Stop)) => drop(down(home, id).await?),
        (_, Some(Intent::Restart)) => drop(restart(home, id).await?),
        // Whether the interrupted destroy was to delete the backups is not
        // recorded: they are kept (`destroy --delete-backups` again removes them).
        (_, Some(Intent::Destroy)) => remove_instance(home, id, false, true).await?,
        (_, Some(Intent::DestroyKeepData)) => remove_instance(home, id, true, true).await?,
        (_, Some(Intent::Restore)) => super::backup::restore::resume_restore(home, id).await?,
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
