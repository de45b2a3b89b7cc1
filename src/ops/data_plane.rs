//! The data plane: how both faces reach an instance's database as its app
//! user. It owns the API's connection pools, the running rule (an instance
//! that is not running is a conflict that says how to start it; Docker is
//! asked only when PostgreSQL cannot be reached) and the password lookup.
//! The CLI's one-off connections (access.rs) follow the same rule.

use super::views::{live_status, Status};
use crate::db::pool::{self, Pools};
/// What a data route's work gets: a pooled connection and its pool.
pub use crate::db::pool::{InstancePool, PgConn};
use crate::db::Failure;
use crate::engine::PsMap;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::provision;
use crate::registry::{Instance, State};
use std::future::Future;

/// An instance that is not running, as both faces say it.
pub fn not_running(inst: &Instance, status: Status) -> Error {
    Error::Conflict(format!(
        "instance '{}' is {status}, not running; start it with `dbaasctl up {}` or POST /instances/{}/start",
        inst.name, inst.name, inst.name
    ))
}

pub struct DataPlane {
    home: Home,
    pools: Pools,
}

impl DataPlane {
    pub fn new(home: &Home) -> DataPlane {
        DataPlane {
            home: home.clone(),
            pools: Pools::new(home.settings.db.clone(), crate::db::connect::ca_file(home)),
        }
    }

    /// The pools' bounds (rows, statement time), which requests are checked
    /// against.
    pub fn settings(&self) -> &crate::db::Settings {
        &self.pools.settings
    }

    /// Forgets an instance's pool: it stopped, restarted or is gone.
    pub fn drop_pool(&self, id: &str) {
        self.pools.drop_pool(id);
    }

    /// Runs `f` on a connection of the instance's pool. One recorded as not
    /// running is refused at once; when PostgreSQL cannot be reached,
    /// `containers` (the face's view of the containers) decides whether
    /// that is an instance that is down (a conflict) or one that should
    /// serve (unavailable).
    pub async fn run<T, F, C>(&self, inst: &Instance, containers: C, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut PgConn, &InstancePool) -> Result<T, Failure> + Send + 'static,
        C: Future<Output = Result<std::sync::Arc<PsMap>>>,
    {
        if inst.state != State::Running {
            return Err(not_running(inst, live_status(inst, None).0));
        }
        let dir = self.home.instance_dir(&inst.id);
        let p = self.pools.get(inst, || provision::app_password(&dir))?;
        match pool::run(p, f).await {
            Err(Error::Unavailable(why)) => {
                let ps = containers.await?;
                let status = live_status(inst, ps.get(&inst.id)).0;
                if status.serves() {
                    Err(Error::Unavailable(why))
                } else {
                    Err(not_running(inst, status))
                }
            }
            other => other,
        }
    }
}
