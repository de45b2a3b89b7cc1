//! up / down / restart: each records its intent, follows the shared rules
//! (record.rs) and leaves the registry saying what it did.

use super::ready::wait_ready;
use super::record::{clear_pending_restart, intending, record_state, refuse_if_unusable};
use super::views::{status_view, InstanceView};
use super::{blocking, find};
use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog;
use crate::provision;
use crate::registry::{Instance, Intent, State};

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

/// Starts the containers and waits for readiness. Idempotent.
pub async fn up(home: &Home, key: &str) -> Result<InstanceView> {
    operate(home, key, Intent::Start, |inst| up_inner(home, inst)).await
}

/// One lifecycle operation: the shared rules first, then `work` with its
/// intent recorded.
pub(super) async fn operate<F, Fut>(
    home: &Home,
    key: &str,
    intent: Intent,
    work: F,
) -> Result<InstanceView>
where
    F: FnOnce(Instance) -> Fut,
    Fut: std::future::Future<Output = Result<InstanceView>>,
{
    let inst = find(home, key).await?;
    refuse_if_unusable(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, intent, work(inst)).await
}

pub(super) async fn up_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = instance_dir_checked(home, &inst)?;
    let password = blocking(move || provision::app_password(&dir)).await?;
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
    let inst = record_state(home, &inst.id, State::Running).await?;
    status_view(home, &inst).await
}

/// Stops and removes the containers; data stays. Idempotent: stopping a
/// stopped instance succeeds.
pub async fn down(home: &Home, key: &str) -> Result<InstanceView> {
    operate(home, key, Intent::Stop, |inst| down_inner(home, inst)).await
}

async fn down_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    oplog::step(home, &inst.id, "down", engine::of(home).down(&inst.id)).await?;
    record_state(home, &inst.id, State::Stopped).await?;
    let inst = clear_pending_restart(home, &inst.id).await?;
    status_view(home, &inst).await
}

/// Whether a restart gives the instance a (new) server certificate: it
/// has none (made before TLS), its file is gone, or it expires within 30
/// days. A swarm secret cannot change in place, so a swarm instance's is
/// not renewed yet (doctor says so).
fn needs_certificate(home: &Home, engine: &dyn engine::Engine, inst: &Instance) -> bool {
    if !inst.tls {
        return true;
    }
    let expiring = super::tls::expiry(home, inst)
        .is_none_or(|at| at - super::tls::now() < super::tls::WARN_BEFORE_SECS);
    expiring && engine.multi_node().is_none()
}

/// A new server certificate of the home's authority (for an instance made
/// before dbaas had TLS, its first) and the project file that hands it to
/// the db. The caller recreates the containers, and records `tls` once the
/// instance answers over it (`record_tls`): a restart that fails before
/// that is tried again by the next one.
async fn add_tls(home: &Home, inst: Instance) -> Result<Instance> {
    let (h, id) = (home.clone(), inst.id.clone());
    let others = super::tls::node_addresses(home, &inst).await?;
    blocking(move || {
        let mut updated = inst.clone();
        updated.tls = true;
        let cert = provision::server_certificate(&h, &updated, &others)?;
        let dir = h.instance_dir(&id);
        provision::write_tls(&dir, &cert)?;
        provision::rewrite(&dir, &updated, &engine::project_file(&updated, &h.tag()))?;
        log::info!("{id}: a server certificate written; the containers are recreated with it");
        Ok(updated)
    })
    .await
}

/// The registry says the instance serves TLS (its connection string then
/// asks for verify-full).
async fn record_tls(home: &Home, id: &str) -> Result<Instance> {
    let (h, id) = (home.clone(), id.to_string());
    blocking(move || {
        crate::registry::update(&h, |reg| {
            let i = reg
                .instances
                .iter_mut()
                .find(|i| i.id == id)
                .ok_or_else(|| {
                    Error::Failed(format!("{id} left the registry during its restart"))
                })?;
            i.tls = true;
            Ok(i.clone())
        })
    })
    .await
}

/// Restarts running containers in place, or brings the instance up.
pub async fn restart(home: &Home, key: &str) -> Result<InstanceView> {
    operate(home, key, Intent::Restart, |inst| restart_inner(home, inst)).await
}

async fn restart_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = instance_dir_checked(home, &inst)?;
    let engine = engine::of(home);
    let ps = engine.ps(Some(&inst.id)).await?;
    let running = engine::db_container(&ps, &inst.id).is_some_and(|c| c.running());
    let (inst, tls_added) = match needs_certificate(home, engine.as_ref(), &inst) {
        false => (inst, false),
        true => (add_tls(home, inst).await?, true),
    };
    if running {
        let password = blocking(move || provision::app_password(&dir)).await?;
        if inst.pending_restart.is_empty() && !tls_added {
            oplog::step(home, &inst.id, "restart", engine.restart(&inst.id)).await?;
        } else {
            // After a live resize the containers still carry the old
            // environment: recreate what the compose file changed.
            oplog::step(
                home,
                &inst.id,
                "restart.recreate",
                engine.apply_changes(&inst.id),
            )
            .await?;
        }
        oplog::step(
            home,
            &inst.id,
            "restart.wait_ready",
            wait_ready(home, &inst, &password),
        )
        .await?;
        if tls_added {
            record_tls(home, &inst.id).await?;
        }
        let inst = clear_pending_restart(home, &inst.id).await?;
        status_view(home, &inst).await
    } else {
        let id = inst.id.clone();
        let view = up_inner(home, inst).await?;
        match tls_added {
            true => status_view(home, &record_tls(home, &id).await?).await,
            false => Ok(view),
        }
    }
}
