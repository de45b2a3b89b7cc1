//! The operations: the only code that sequences steps and owns the rules the
//! CLI and the API share. Each face parses, calls one function here, and
//! renders; nothing here knows about HTTP or terminals.

pub mod access;
mod allocate;
pub mod backup;
pub mod capacity;
pub mod create;
pub mod data_plane;
pub mod destroy;
pub mod doctor;
pub mod dump;
#[cfg(test)]
pub(crate) mod fake_engine_tests;
pub mod lifecycle;
pub mod mirror;
pub mod nodes;
pub mod placement;
pub mod pool;
pub mod ready;
pub mod record;
pub mod relocate;
pub mod resize;
pub mod resume;
pub mod serial;
pub mod template;
pub mod tls;
pub mod views;

pub use crate::db::connect::{connect_host, connection_url, pg_config};
pub use crate::engine::{PsMap, Service};
pub use access::{
    agent_status, attach_logs, check_last, credentials, logs, psql, restart_agent, samples,
    with_client, AgentStatus, Credentials,
};
pub use capacity::{Budget, ProvisionSlot};
pub use create::{
    create_begin, create_finish, create_new, pick_port, port_is_free, CreateRequest, Created,
    OnFailure, Pending,
};
pub use destroy::{abandon_own_creates, destroy, remove_instance};
pub use lifecycle::{down, restart, up};
pub use pool::create;
pub use record::{creator_alive, interrupted, refuse_if_creating};
pub use resume::resume;
pub use views::{
    containers, instance_containers, list, live_status, show, status_view, top, view, views,
    InstanceView, Status, TopRow,
};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry::{self, Instance};

/// Resolves NAME-or-id to a registry entry (read on a blocking thread:
/// the registry is a locked file).
pub async fn find(home: &Home, key: &str) -> Result<Instance> {
    let (home, key) = (home.clone(), key.to_string());
    blocking(move || registry::load(&home)?.get(&key).cloned()).await
}

/// Whether a dbaasctl process (CLI or server) with this pid still runs.
pub fn process_alive(pid: Option<u32>) -> bool {
    let Some(pid) = pid else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim() == "dbaasctl")
        .unwrap_or(false)
}

/// Runs blocking work (flock, file I/O) off the async worker threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Failed(format!("internal task failed: {e}")))?
}
