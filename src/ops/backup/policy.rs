//! `backup enable` and `backup config`: an instance's backup policy set in
//! the registry and rendered into its generated files; PostgreSQL restarts
//! only when archiving is turned on.

use crate::backups::BackupPolicy;
use crate::error::Result;
use crate::home::Home;
use crate::ops::lifecycle::{operate, up_inner};
use crate::ops::views::InstanceView;
use crate::ops::{blocking, find};
use crate::provision;
use crate::registry::{self, Instance, Intent, State};
use serde::Serialize;

/// What `backup enable` and `backup config` did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Configured {
    pub instance: InstanceView,
    pub schedule: String,
    pub retention: String,
    /// PostgreSQL was restarted (once, to turn archiving on).
    pub restarted: bool,
}

/// Turns backups on for an instance made without them (or before they
/// existed): rewrites its generated files and restarts it once. With
/// backups on already, it changes the schedule or retention only (no
/// restart of PostgreSQL).
pub async fn configure(
    home: &Home,
    key: &str,
    schedule: Option<&str>,
    retention: Option<&str>,
) -> Result<Configured> {
    let inst = find(home, key).await?;
    let old = inst.backups.clone();
    let base = old.clone().unwrap_or_default();
    let policy = crate::backups::backup_policy(
        Some(schedule.unwrap_or(&base.schedule)),
        Some(retention.unwrap_or(&base.retention)),
        false,
    )?
    .unwrap_or_default();
    let restarted = old.is_none() && inst.state == State::Running;
    let view = operate(home, &inst.id, Intent::Start, move |inst| async move {
        apply_policy(home, inst, policy).await
    })
    .await?;
    let policy = find(home, key).await?.backups.unwrap_or_default();
    Ok(Configured {
        instance: view,
        schedule: policy.schedule,
        retention: policy.retention,
        restarted,
    })
}

async fn apply_policy(home: &Home, inst: Instance, policy: BackupPolicy) -> Result<InstanceView> {
    let id = inst.id.clone();
    let updated = blocking({
        let (home, policy) = (home.clone(), policy.clone());
        move || {
            registry::update(&home, |reg| {
                let i = reg.find_mut(&id).ok_or_else(|| registry::not_found(&id))?;
                i.backups = Some(policy);
                Ok(i.clone())
            })
        }
    })
    .await?;
    let (dir, tag) = (home.instance_dir(&updated.id), home.tag());
    let inst2 = updated.clone();
    blocking(move || provision::rewrite(&dir, &inst2, &crate::engine::project_file(&inst2, &tag)))
        .await?;
    if inst.state == State::Running {
        // Compose recreates what changed: db once when archiving is turned
        // on, the sidecar alone when only its schedule changed.
        up_inner(home, updated).await
    } else {
        crate::ops::views::status_view(home, &updated).await
    }
}
