//! The agents' metrics brought to where the tailer reads them
//! (`instances/<id>/logs/`), on an engine whose agents write elsewhere (a
//! swarm node's volume): before `top` and `metrics` read, and every few
//! seconds while `serve` runs. A copy that cannot be brought up to date
//! stays as it is and is reported stale by its age, as a silent agent is.

use super::blocking;
use crate::engine;
use crate::home::Home;
use crate::metrics;
use crate::registry::{self, Instance, State};
use futures_util::StreamExt;
use std::time::Duration;

/// Instances synced at once (each is a few docker calls to its node).
const AT_ONCE: usize = 8;
/// How often `serve` syncs: well inside the shortest sample interval that
/// `stale` (three intervals) allows.
pub const EVERY: Duration = Duration::from_secs(3);

/// Syncs the running instances (or the one `only` names).
pub async fn sync(home: &Home, only: Option<&str>) {
    let engine = engine::of(home);
    if !engine.mirrors_metrics() {
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
    let wanted: Vec<Instance> = reg
        .owned()
        .filter(|i| i.state == State::Running && only.is_none_or(|o| o == i.id))
        .cloned()
        .collect();
    futures_util::stream::iter(wanted)
        .map(|inst| {
            let engine = engine.clone();
            let dir = metrics::dir_of(home, &inst.id);
            async move {
                if let Err(e) = engine
                    .mirror_metrics(&inst.id, &dir, inst.metrics_keep)
                    .await
                {
                    log::debug!("mirroring the metrics of {}: {e}", inst.id);
                }
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}

/// `sync` every EVERY for as long as the server runs (nothing on an
/// engine that needs no mirror).
pub fn start(home: Home) {
    if !engine::of(&home).mirrors_metrics() {
        return;
    }
    tokio::spawn(async move {
        loop {
            sync(&home, None).await;
            tokio::time::sleep(EVERY).await;
        }
    });
}
