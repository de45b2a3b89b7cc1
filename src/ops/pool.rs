//! The warm pool (DBAAS_WARM_POOL=15=2,17=1): per PostgreSQL version, spare
//! instances made ahead of time from the template, started, personalised
//! and ready, so that a create only claims one. A spare is a registry entry
//! like any other (`spare: true`, hidden from the views): its id, port,
//! subnet, passwords and backup stanza are its own from the start and
//! become the instance's; a claim gives it its name. Nothing about the
//! containers changes on a claim, so the next `up` recreates nothing.
//!
//! A spare is made with the defaults of `create` (memory, CPUs, database
//! and user names, metrics interval, backups, no S3): a create that asks
//! for anything else, or for a port, takes the template path.

use super::allocate::name_is_free;
use super::create::{create_begin_as, create_finish, host, s3_for, OnFailure};
use super::destroy::{remove_instance, remove_unfinished};
use super::record::{creator_alive, record_state};
use super::views::view;
use super::{blocking, connection_url, pg_config, Created};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog::{self, now_rfc3339};
use crate::registry::{self, Instance, Registry, State};
use crate::settings::Provision;
use crate::validate::{CreateRequest, ValidCreate};
use serde::Serialize;
use std::time::{Duration, Instant};

pub use crate::registry::SPARE_NAME;
/// A spare that does not answer this fast is not used (and is replaced).
const CLAIM_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One spare, for `dbaasctl pool`.
#[derive(Debug, Clone, Serialize)]
pub struct Spare {
    pub id: String,
    pub version: u32,
    pub port: u16,
    pub state: State,
    pub created_at: String,
}

/// The pool: what DBAAS_WARM_POOL asks for and the spares there are.
#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    /// (version, spares wanted).
    pub wanted: Vec<(u32, u32)>,
    pub spares: Vec<Spare>,
}

pub async fn status(home: &Home) -> Result<PoolStatus> {
    let reg = load(home).await?;
    Ok(PoolStatus {
        wanted: home.settings.warm_pool.clone(),
        spares: reg
            .instances
            .iter()
            .filter(|i| i.spare)
            .map(|i| Spare {
                id: i.id.clone(),
                version: i.version,
                port: i.port,
                state: i.state,
                created_at: i.created_at.clone(),
            })
            .collect(),
    })
}

async fn load(home: &Home) -> Result<Registry> {
    let h = home.clone();
    blocking(move || registry::load(&h)).await
}

/// What a spare of `version` is made from: `create`'s defaults.
fn spare_request(version: u32) -> CreateRequest {
    CreateRequest {
        name: "spare".into(),
        version: Some(version.to_string()),
        s3: crate::backups::s3::S3Choice::Off,
        ..Default::default()
    }
}

/// Whether a spare can become the instance `v` asks for: everything but
/// the name is what the spare was made with.
pub fn serves(spare: &Instance, v: &ValidCreate) -> bool {
    spare.spare
        && spare.state == State::Running
        && v.port.is_none()
        && v.s3.is_none()
        && spare.s3.is_none()
        && spare.version == v.version
        && spare.memory == v.memory
        && spare.cpus == v.cpus
        && spare.database == v.database
        && spare.user == v.user
        && spare.metrics_interval == v.metrics_interval
        && spare.backups == v.backups
        && spare.allow_plaintext == v.allow_plaintext
}

/// `dbaasctl create` and `POST /instances` (waiting): a spare of the pool
/// when one serves the request, else a new instance.
pub async fn create(home: &Home, req: CreateRequest) -> Result<Created> {
    match claim(home, &req).await? {
        Some(c) => Ok(c),
        None => super::create::create_new(home, req).await,
    }
}

/// Serves a create from the pool when it can: `None` when the pool has no
/// spare for it (the caller takes the template path). A spare that turns
/// out dead is destroyed and the next one tried.
pub async fn claim(home: &Home, req: &CreateRequest) -> Result<Option<Created>> {
    if home.settings.provision != Provision::Template || home.settings.warm_pool.is_empty() {
        return Ok(None);
    }
    let v = crate::validate::create(req, host())?;
    if !home
        .settings
        .warm_pool
        .iter()
        .any(|(ver, _)| *ver == v.version)
        || v.port.is_some()
        || s3_for(home, req, v.backups.is_some())?.is_some()
    {
        return Ok(None);
    }
    loop {
        let started = Instant::now();
        let (h, want) = (home.clone(), v.clone());
        let Some(inst) = blocking(move || take(&h, &want)).await? else {
            return Ok(None);
        };
        match hand_over(home, &inst).await {
            Ok(password) => {
                let inst = record_state(home, &inst.id, State::Running).await?;
                oplog::record_async(home, &inst.id, "create.pool", started.elapsed(), "ok").await;
                return Ok(Some(Created {
                    // Running: the app user's probe just connected.
                    instance: {
                        let mut v = view(&inst, None);
                        v.status = super::views::Status::Running;
                        v
                    },
                    url: connection_url(home, &inst, &password),
                    password,
                    from_pool: true,
                }));
            }
            Err(e) => {
                log::warn!("spare {} could not be claimed ({e}); removing it", inst.id);
                oplog::record_async(home, &inst.id, "create.pool", started.elapsed(), "failed")
                    .await;
                remove_unfinished(home, &inst.id).await?;
            }
        }
    }
}

/// Under the registry lock: the name is free, and the oldest spare that
/// serves `v` becomes the instance, recorded as `creating` by this process
/// (so that no other claim takes it, and a crash leaves an interrupted
/// create for `doctor --fix`).
fn take(home: &Home, v: &ValidCreate) -> Result<Option<Instance>> {
    registry::update(home, |reg| {
        name_is_free(reg, &v.name)?;
        let Some(i) = reg.instances.iter_mut().find(|i| serves(i, v)) else {
            return Ok(None);
        };
        let now = now_rfc3339();
        i.spare = false;
        i.name = v.name.clone();
        i.state = State::Creating;
        i.creator_pid = Some(std::process::id());
        i.created_at = now.clone();
        i.updated_at = now;
        Ok(Some(i.clone()))
    })
}

/// The claimed spare answers as its app user, and its files carry its
/// name; returns the app user's password.
async fn hand_over(home: &Home, inst: &Instance) -> Result<String> {
    let dir = home.instance_dir(&inst.id);
    let password = blocking({
        let dir = dir.clone();
        move || crate::provision::app_password(&dir)
    })
    .await?;
    let cfg = pg_config(inst, &password);
    let tls = super::ready::probe_tls(home, inst)?;
    match tokio::time::timeout(CLAIM_PROBE_TIMEOUT, super::ready::probe(cfg, tls)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Error::Failed(format!(
                "the spare refused the app user: {e}"
            )))
        }
        Err(_) => return Err(Error::Failed("the spare did not answer".into())),
    }
    let (inst, tag) = (inst.clone(), home.tag());
    blocking(move || {
        crate::provision::rename(&dir, &inst, &crate::engine::project_file(&inst, &tag))
    })
    .await?;
    Ok(password)
}

/// Makes spares until every version has what DBAAS_WARM_POOL asks for;
/// one filler per home at a time: with `wait`, after the one running now
/// (then this one finds what that one made), else none. Returns the ids
/// of the spares made.
pub async fn fill(home: &Home, wait: bool) -> Result<Vec<String>> {
    if home.settings.provision != Provision::Template || home.settings.warm_pool.is_empty() {
        return Ok(vec![]);
    }
    let lock_path = home.root.join("config").join("pool.lock");
    let Some(_lock) = blocking(move || try_lock(&lock_path, wait)).await? else {
        return Ok(vec![]);
    };
    let mut made = vec![];
    for (version, wanted) in home.settings.warm_pool.clone() {
        loop {
            let reg = load(home).await?;
            let have = reg
                .instances
                .iter()
                .filter(|i| i.spare && i.version == version && i.state != State::Failed)
                .count() as u32;
            if have >= wanted {
                break;
            }
            let pending = create_begin_as(home, &spare_request(version), true).await?;
            let id = pending.instance.id.clone();
            create_finish(home, pending, OnFailure::RollBack).await?;
            made.push(id);
        }
    }
    Ok(made)
}

/// Destroys every spare (and its backups) that no running process is
/// making; returns their ids.
pub async fn drain(home: &Home) -> Result<Vec<String>> {
    let reg = load(home).await?;
    let mut gone = vec![];
    for i in reg.instances.iter().filter(|i| i.spare) {
        if i.state == State::Creating && creator_alive(i) {
            continue;
        }
        remove_instance(home, &i.id, false, false).await?;
        super::destroy::remove_backups(home, &i.id).await?;
        gone.push(i.id.clone());
    }
    Ok(gone)
}

/// An exclusive flock; without `wait`, `None` when another process holds it.
fn try_lock(path: &std::path::Path, wait: bool) -> Result<Option<registry::Lock>> {
    let how = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    match registry::lock_file(path, how) {
        Ok(l) => Ok(Some(l)),
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EWOULDBLOCK) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(req: CreateRequest) -> ValidCreate {
        crate::validate::create(&req, host()).unwrap()
    }

    fn spare() -> Instance {
        let v = valid(spare_request(15));
        let mut i = Instance::fixture("db_0000abcd", SPARE_NAME, 5432);
        i.spare = true;
        i.memory = v.memory;
        i.cpus = v.cpus;
        i.metrics_interval = v.metrics_interval;
        i.backups = v.backups;
        i
    }

    #[test]
    fn a_spare_serves_a_create_of_its_defaults_only() {
        let s = spare();
        let named = |name: &str| CreateRequest {
            name: name.into(),
            ..Default::default()
        };
        assert!(serves(&s, &valid(named("shop"))));
        for other in [
            CreateRequest {
                port: Some(6000),
                ..named("a")
            },
            CreateRequest {
                memory: Some("256m".into()),
                ..named("a")
            },
            CreateRequest {
                version: Some("17".into()),
                ..named("a")
            },
            CreateRequest {
                database: Some("shop".into()),
                ..named("a")
            },
            CreateRequest {
                no_backups: true,
                ..named("a")
            },
            CreateRequest {
                metrics_interval: Some("5".into()),
                ..named("a")
            },
        ] {
            assert!(!serves(&s, &valid(other.clone())), "{other:?}");
        }
        let mut starting = spare();
        starting.state = State::Creating;
        assert!(!serves(&starting, &valid(named("shop"))));
        let mut owned = spare();
        owned.spare = false;
        assert!(!serves(&owned, &valid(named("shop"))));
    }
}
