//! create: validate, allocate under the registry lock (name, port, id),
//! provision the directory, start, wait for readiness, record `running`.
//! Any failure after the registry entry exists follows an `OnFailure`.

use super::allocate::allocate;
pub use super::allocate::{pick_port, pick_subnet, port_is_free};
use super::backup::recovery::Recovery;
use super::capacity::{Budget, ProvisionSlot};
use super::destroy::{remove_backups, remove_dir, remove_unfinished};
use super::ready::wait_ready;
use super::record::{record_state, set_state};
use super::views::{view, InstanceView};
use super::{blocking, connection_url};
use crate::backups::s3::{S3Choice, S3Settings};
use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog;
use crate::provision::{self, Credentials};
use crate::registry::{self, Instance, State};
use crate::settings::Provision;
pub use crate::validate::{CreateRequest, ValidCreate};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub instance: InstanceView,
    pub password: String,
    pub url: String,
    /// Served by a spare of the warm pool (DBAAS_WARM_POOL).
    pub from_pool: bool,
}

/// What to do when provisioning fails after the registry entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Remove containers, directory and registry entry.
    RollBack,
    /// Keep everything for debugging, recorded as `failed`.
    Keep,
    /// Remove containers and directory, keep the entry as `failed` with the
    /// reason, so that an API client polling the instance learns why.
    RollBackRecord,
}

/// An instance allocated and recorded as `creating`, not yet provisioned.
pub struct Pending {
    pub instance: Instance,
    creds: Credentials,
    started: Instant,
    /// A restore into this new instance, run before its first start.
    pub recovery: Option<Recovery>,
    /// The addresses of the swarm's nodes, which its certificate names
    /// too (a move keeps it valid); none on one host.
    node_addresses: Vec<String>,
}

impl Pending {
    pub fn password(&self) -> &str {
        &self.creds.app_password
    }
}

/// A new instance (the warm pool aside, see pool::create): validate,
/// allocate under the lock, provision, `compose up`, wait until the app user
/// can connect, record `running`. Any failure after the registry entry
/// exists rolls everything back, unless `keep_on_failure`.
pub async fn create_new(home: &Home, req: CreateRequest) -> Result<Created> {
    let on_failure = if req.keep_on_failure {
        OnFailure::Keep
    } else {
        OnFailure::RollBack
    };
    let pending = create_begin(home, &req).await?;
    create_finish(home, pending, on_failure).await
}

/// What the engine cannot do, refused before anything changes: a node
/// where instances have none, and on a multi-node engine warm-pool spares
/// and an S3 endpoint reached through a Docker network of one host.
fn refuse_unsupported(
    caps: engine::Capabilities,
    nodes: bool,
    s3: Option<&S3Settings>,
    spare: bool,
    node: bool,
) -> Result<()> {
    if node && !nodes {
        return Err(Error::invalid(
            "node",
            "--node chooses a swarm node, and this home's engine is compose (one host); omit it",
        ));
    }
    if !caps.s3_network && s3.is_some_and(|s| s.repo.network.is_some()) {
        return Err(Error::invalid(
            "s3",
            "the S3 settings name a Docker network, which a swarm's stacks cannot join; drop `network` and give an endpoint the nodes reach (their containers go out through each node's gateway)",
        ));
    }
    if spare && !caps.warm_pool {
        return Err(Error::invalid(
            "DBAAS_WARM_POOL",
            "the warm pool is not available on the swarm engine; unset DBAAS_WARM_POOL",
        ));
    }
    Ok(())
}

/// This host's memory and CPUs, that a create is checked against.
pub(super) fn host() -> crate::validate::Host {
    crate::validate::Host {
        memory: crate::settings::host_memory(),
        cpus: crate::settings::host_cpus(),
    }
}

/// The quick, synchronous part of create: validation, the Docker preflight
/// and the allocation under the registry lock. Errors here change nothing.
pub async fn create_begin(home: &Home, req: &CreateRequest) -> Result<Pending> {
    create_begin_as(home, req, false).await
}

/// `create_begin`, for an instance or (`spare`) a spare of the warm pool.
pub(super) async fn create_begin_as(
    home: &Home,
    req: &CreateRequest,
    spare: bool,
) -> Result<Pending> {
    let mut v = crate::validate::create(req, host())?;
    if spare {
        v.name = registry::SPARE_NAME.to_string();
    }
    let engine = engine::of(home);
    let caps = engine.capabilities();
    let s3 = s3_for(home, req, v.backups.is_some())?;
    refuse_unsupported(
        caps,
        engine.multi_node().is_some(),
        s3.as_ref(),
        spare,
        v.node.is_some(),
    )?;
    v.s3 = s3.as_ref().map(|s| s.repo.clone());
    let budget = Budget::of(home);
    budget.check_disk(home)?;
    let image = home.settings.image_for(v.version);
    let s3_network = s3.as_ref().and_then(|s| s.repo.network.as_deref());
    engine.preflight(&image, s3_network).await?;
    let nodes = match engine.multi_node() {
        Some(m) => Some(m.nodes().await?),
        None => None,
    };
    let started = Instant::now();
    let node_addresses = nodes.iter().flatten().map(|n| n.address.clone()).collect();
    let inst = blocking({
        let home = home.clone();
        move || allocate(&home, &v, &image, &budget, spare, nodes.as_deref())
    })
    .await?;
    oplog::record_async(home, &inst.id, "create.allocate", started.elapsed(), "ok").await;
    let mut creds = Credentials::generate();
    creds.s3 = s3;
    Ok(Pending {
        instance: inst,
        creds,
        started,
        recovery: None,
        node_addresses,
    })
}

/// The S3 repository a new instance gets, read and checked before anything
/// changes: the host's (DBAAS_S3) unless the request names a file or opts
/// out; a restored instance's is its source's.
pub(super) fn s3_for(
    home: &Home,
    req: &CreateRequest,
    backups: bool,
) -> Result<Option<S3Settings>> {
    if !backups {
        return match req.s3 {
            S3Choice::File(_) => Err(Error::invalid(
                "s3",
                "an S3 repository was given together with no backups; drop one of them",
            )),
            _ => Ok(None),
        };
    }
    Ok(match &req.s3 {
        S3Choice::HostDefault => match &home.settings.s3_file {
            Some(f) => Some(host_s3(f, &req.name)?),
            None => None,
        },
        S3Choice::File(f) => Some(crate::backups::s3::read(f)?),
        S3Choice::Off => None,
        S3Choice::Given(s) => Some(s.for_new_instance()),
    })
}

/// The host-wide S3 file (DBAAS_S3), which every new instance shares: a
/// passphrase there would be one key to every instance's backups, so it is
/// refused (each instance gets its own; a file given with `--s3` may name
/// one for that instance alone).
fn host_s3(f: &std::path::Path, name: &str) -> Result<S3Settings> {
    let s = crate::backups::s3::read_for_instance(f, name).map_err(|e| match e {
        Error::Invalid { reason, .. } => Error::invalid("DBAAS_S3", reason),
        e => e,
    })?;
    if s.secrets.cipher_pass_given {
        return Err(Error::invalid(
            "DBAAS_S3",
            format!(
                "{} names a cipher_pass, which every instance would share (one tenant's way in would open every instance's backups); remove the line: each instance gets its own random passphrase (or give one per instance with --s3 FILE)",
                f.display()
            ),
        ));
    }
    Ok(s)
}

/// Provision, start, wait for readiness; on failure apply `on_failure`.
pub async fn create_finish(
    home: &Home,
    pending: Pending,
    on_failure: OnFailure,
) -> Result<Created> {
    let Pending {
        instance: inst,
        creds,
        started,
        recovery,
        node_addresses,
    } = pending;
    let id = inst.id.clone();
    let start = provision_and_start(home, &inst, &creds, &node_addresses, recovery.as_ref());
    if let Err(e) = start.await {
        oplog::record_async(home, &id, "create", started.elapsed(), "failed").await;
        let context = match on_failure {
            OnFailure::Keep => keep(home, &inst, &e).await,
            OnFailure::RollBack => roll_back(home, &inst).await,
            OnFailure::RollBackRecord => roll_back_and_record(home, &inst, &e).await,
        };
        return Err(Error::CreateFailed {
            context,
            cause: Box::new(e),
        });
    }
    let inst = record_state(home, &id, State::Running).await?;
    oplog::record_async(home, &inst.id, "create", started.elapsed(), "ok").await;
    // Running: its app user just connected (no docker call to say so; a
    // view without containers would say `missing`).
    let mut instance = view(&inst, None);
    instance.status = super::views::Status::Running;
    Ok(Created {
        instance,
        url: connection_url(home, &inst, &creds.app_password),
        password: creds.app_password,
        from_pool: false,
    })
}

/// Records the instance as failed, with the reason; best effort (the
/// create's own error is what the caller hears).
async fn record_failed(home: &Home, id: &str, e: &Error) {
    let (home, id, msg) = (home.clone(), id.to_string(), e.to_string());
    if let Err(r) = blocking(move || set_state(&home, &id, State::Failed, Some(msg))).await {
        log::warn!("recording the failed create: {r}");
    }
}

/// `Keep`: everything stays for debugging, recorded as failed.
async fn keep(home: &Home, inst: &Instance, e: &Error) -> String {
    record_failed(home, &inst.id, e).await;
    format!(
        "creating '{}' ({}) failed; kept for debugging in {} (`dbaasctl destroy {}` removes it)",
        inst.name,
        inst.id,
        home.instance_dir(&inst.id).display(),
        inst.id
    )
}

/// `RollBack`: containers, directory and registry entry go.
async fn roll_back(home: &Home, inst: &Instance) -> String {
    let note = match remove_unfinished(home, &inst.id).await {
        Ok(()) => "rolled back: no containers, directory or registry entry left".to_string(),
        Err(r) => format!("rollback also failed ({r}); `dbaasctl doctor --fix` cleans up"),
    };
    format!("creating '{}' failed ({note})", inst.name)
}

/// `RollBackRecord`: containers and directory go; the entry stays as
/// failed, with the reason, for the client polling it.
async fn roll_back_and_record(home: &Home, inst: &Instance, e: &Error) -> String {
    let dir = home.instance_dir(&inst.id);
    let removed = match engine::of(home).down(&inst.id).await {
        Ok(()) => match blocking(move || remove_dir(&dir)).await {
            Ok(()) => remove_backups(home, &inst.id).await,
            Err(e) => Err(e),
        },
        Err(r) => Err(r),
    };
    record_failed(home, &inst.id, e).await;
    let note = match removed {
        Ok(()) => {
            "rolled back: containers and directory removed; the entry stays as failed until deleted"
                .to_string()
        }
        Err(r) => format!("rollback also failed ({r}); `dbaasctl doctor --fix` cleans up"),
    };
    format!("creating '{}' failed ({note})", inst.name)
}

async fn provision_and_start(
    home: &Home,
    inst: &Instance,
    creds: &Credentials,
    node_addresses: &[String],
    recovery: Option<&Recovery>,
) -> Result<()> {
    let dir = home.instance_dir(&inst.id);
    let tag = home.tag();
    let work = {
        let (dir, inst, mut creds) = (dir.clone(), inst.clone(), creds.clone());
        let (home, others) = (home.clone(), node_addresses.to_vec());
        blocking(move || {
            if inst.tls {
                creds.tls = Some(provision::server_certificate(&home, &inst, &others)?);
            }
            let project = crate::engine::project_file(&inst, &tag);
            provision::provision(&dir, &inst, &creds, &project)
        })
    };
    oplog::step(home, &inst.id, "create.provision", work).await?;
    let engine = engine::of(home);
    let from_template = recovery.is_none() && home.settings.provision == Provision::Template;
    if from_template {
        // Every container is made and started while the data directory
        // fills (the db's entrypoint waits for the copy's marker to go):
        // one `compose up` for the project, not one for the db and one for
        // its sidecars (each costs the daemon a project load and the host
        // a compose process).
        let data = dir.join("data");
        let (filled, started) = tokio::join!(
            oplog::step(
                home,
                &inst.id,
                "create.template",
                super::template::fill(home, inst.version, &inst.image, &data),
            ),
            start(home, inst, None, Start::All)
        );
        let _slot = filled.and(started)?;
        return oplog::step(
            home,
            &inst.id,
            "create.wait_ready",
            wait_ready(home, inst, &creds.app_password),
        )
        .await;
    }
    let _slot = start(home, inst, recovery, Start::Db).await?;
    // The sidecars start while PostgreSQL comes up; the first failure ends
    // both, so that the engine's error (the cause) is what is reported,
    // at once, not a readiness timeout after it.
    tokio::try_join!(
        oplog::step(home, &inst.id, "create.compose_up", engine.up(&inst.id)),
        oplog::step(
            home,
            &inst.id,
            "create.wait_ready",
            wait_ready(home, inst, &creds.app_password),
        )
    )
    .map(|_| ())
}

/// Which services a create starts first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Every service, from one `compose up` (the template's path).
    All,
    /// The db alone: PostgreSQL first, its sidecars start while it comes up.
    Db,
}

/// The recovery (a restore's), then the services `what` names. Holds a
/// provisioning slot from then on.
async fn start(
    home: &Home,
    inst: &Instance,
    recovery: Option<&Recovery>,
    what: Start,
) -> Result<ProvisionSlot> {
    if let Some(rec) = recovery {
        oplog::step(
            home,
            &inst.id,
            "create.recover",
            super::backup::recovery::recover(home, &inst.id, rec),
        )
        .await?;
    }
    let slot = oplog::step(
        home,
        &inst.id,
        "create.wait_slot",
        ProvisionSlot::acquire(home),
    )
    .await?;
    let engine = engine::of(home);
    let (step, started) = match what {
        Start::All => ("create.compose_up", engine.up(&inst.id)),
        Start::Db => (
            "create.compose_up_db",
            engine.up_service(&inst.id, &engine::Service::Db),
        ),
    };
    oplog::step(home, &inst.id, step, started).await?;
    Ok(slot)
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
