//! The agents' metrics brought to where the tailer reads them
//! (`instances/<id>/logs/`), on an engine whose agents write elsewhere (a
//! swarm node's volume): before `top` and `metrics` read, and about once
//! per sample interval while `serve` runs. A copy that cannot be brought up to date
//! stays as it is and is reported stale by its age, as a silent agent is.

use super::blocking;
use crate::engine;
use crate::home::Home;
use crate::metrics;
use crate::registry::{self, Instance, Registry, State};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Instances synced at once (each is a few docker calls to its node).
const AT_ONCE: usize = 8;
/// The shortest time between two syncs of one instance in `serve` (an
/// agent may sample every second; `top` and `metrics` sync before they
/// read, whatever the pace).
pub const EVERY: Duration = Duration::from_secs(2);

/// Syncs the running instances (or the one `only` names).
pub async fn sync(home: &Home, only: Option<&str>) {
    if engine::of(home).multi_node().is_none() {
        return;
    }
    let h = home.clone();
    let reg = match blocking(move || registry::load(&h)).await {
        Ok(r) => r,
        Err(e) => {
            log::warn!("mirroring metrics: {e}");
            return;
        }
    };
    let wanted: Vec<String> = reg
        .owned()
        .filter(|i| i.state == State::Running && only.is_none_or(|o| o == i.id))
        .map(|i| i.id.clone())
        .collect();
    sync_some(home, &reg, &wanted).await;
}

/// Brings backups/<id>/ of a running instance with backups up to date
/// before it is read (the engine does nothing where its sidecar writes there).
pub async fn sync_backups(home: &Home, inst: &Instance) {
    if inst.backups.is_none() || inst.state != State::Running {
        return;
    }
    let engine = engine::of(home);
    let Some(nodes) = engine.multi_node() else {
        return;
    };
    if let Err(e) = nodes
        .mirror_backups(&inst.id, &home.backup_dir(&inst.id))
        .await
    {
        log::warn!("mirroring the backups of {}: {e}", inst.name);
    }
}

/// Syncs the instances `ids` of `reg`, AT_ONCE at a time; a failure is
/// logged and skipped.
async fn sync_some(home: &Home, reg: &Registry, ids: &[String]) {
    let engine = engine::of(home);
    let wanted: Vec<Instance> = ids.iter().filter_map(|id| reg.find(id)).cloned().collect();
    futures_util::stream::iter(wanted)
        .map(|inst| {
            let engine = engine.clone();
            let dir = metrics::dir_of(home, &inst.id);
            let backups_dir = home.backup_dir(&inst.id);
            async move {
                let Some(engine) = engine.multi_node() else {
                    return;
                };
                if let Err(e) = engine
                    .mirror_metrics(&inst.id, &dir, inst.metrics_keep)
                    .await
                {
                    log::debug!("mirroring the metrics of {}: {e}", inst.id);
                }
                if inst.backups.is_some() {
                    if let Err(e) = engine.mirror_backups(&inst.id, &backups_dir).await {
                        log::debug!("mirroring the backups of {}: {e}", inst.id);
                    }
                }
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}

/// Syncs each running instance about once per sample interval (at most
/// every EVERY) for as long as the server runs; nothing on an engine that
/// needs no mirror. Each sync is a few docker calls to the node, so it
/// follows the agent's pace rather than a fixed one.
pub fn start(home: Home) {
    if engine::of(&home).multi_node().is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut last: HashMap<String, Instant> = HashMap::new();
        loop {
            let h = home.clone();
            if let Ok(reg) = blocking(move || registry::load(&h)).await {
                let due: Vec<String> = reg
                    .owned()
                    .filter(|i| i.state == State::Running)
                    .filter(|i| {
                        let every = Duration::from_secs(u64::from(i.metrics_interval)).max(EVERY);
                        last.get(&i.id).is_none_or(|t| t.elapsed() >= every)
                    })
                    .map(|i| i.id.clone())
                    .collect();
                for id in &due {
                    last.insert(id.clone(), Instant::now());
                }
                sync_some(&home, &reg, &due).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
