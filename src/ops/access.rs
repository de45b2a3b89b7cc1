//! Reaching into an instance: its credentials, its logs, its monitoring
//! agent, its samples, and one SQL connection for the CLI. Each is one
//! function both faces call, with the same rules.

use super::views::status_view;
use super::{blocking, find, pg_config};
use crate::engine::{self, Attach, Container, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::metrics::{self, tail, Sample};
use crate::provision;
use crate::registry::{Instance, State};
use serde::Serialize;
use serde_json::Value;

/// Lines of a log returned at most, by `logs` and the API.
pub const MAX_LOG_LINES: u32 = 10_000;
/// Bytes of a log returned at most.
pub const MAX_LOG_BYTES: usize = 1 << 20;
/// Samples `samples` returns at most.
pub const MAX_SAMPLES: usize = 10_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub database: String,
    pub host: String,
    pub port: u16,
    pub url: String,
}

/// How to connect as the app user. Refused while the instance is being
/// created or after it failed: its password may not exist yet.
pub async fn credentials(home: &Home, key: &str) -> Result<Credentials> {
    let inst = find(home, key).await?;
    if matches!(inst.state, State::Creating | State::Failed) {
        return Err(Error::Conflict(format!(
            "instance '{}' is {}; credentials exist once it is created",
            inst.name,
            if inst.state == State::Creating {
                "still being created"
            } else {
                "failed"
            }
        )));
    }
    let dir = home.instance_dir(&inst.id);
    let password = blocking(move || provision::app_password(&dir)).await?;
    Ok(Credentials {
        url: super::connection_url(home, &inst, &password),
        user: inst.user.clone(),
        database: inst.database.clone(),
        host: super::connect_host(&inst),
        port: inst.port,
        password,
    })
}

fn check_tail(tail: u32) -> Result<u32> {
    if tail > MAX_LOG_LINES {
        return Err(Error::invalid(
            "tail",
            format!("use a whole number from 0 to {MAX_LOG_LINES}"),
        ));
    }
    Ok(tail)
}

/// The newest `tail` lines of a service's log (PostgreSQL's, the agent's),
/// at most 1 MiB.
pub async fn logs(home: &Home, key: &str, service: &Service, tail: u32) -> Result<Vec<String>> {
    let inst = find(home, key).await?;
    let tail = check_tail(tail)?;
    engine::of(home)
        .logs(&inst.id, service, tail, MAX_LOG_BYTES)
        .await
}

/// PostgreSQL's log on the user's terminal, followed with `follow`.
pub async fn attach_logs(home: &Home, key: &str, tail: u32, follow: bool) -> Result<i32> {
    let inst = find(home, key).await?;
    let tail = check_tail(tail)?;
    engine::of(home)
        .attach(&inst.id, Attach::Logs { tail, follow })
        .await
}

/// `psql` as the app user inside the instance, on the user's terminal.
pub async fn psql(home: &Home, key: &str, command: Option<&str>, tty: bool) -> Result<i32> {
    let inst = find(home, key).await?;
    let what = Attach::Psql {
        user: &inst.user,
        database: &inst.database,
        command,
        tty,
    };
    engine::of(home).attach(&inst.id, what).await
}

/// Restarts the monitoring agent (not PostgreSQL). The caller holds the
/// instance's lock, so that a stop does not remove the container under it.
pub async fn restart_agent(home: &Home, key: &str) -> Result<()> {
    let inst = find(home, key).await?;
    engine::of(home)
        .restart_service(&inst.id, &Service::Agent)
        .await
}

/// The bound on how many samples one read returns.
pub fn check_last(last: usize) -> Result<usize> {
    if last == 0 || last > MAX_SAMPLES {
        return Err(Error::invalid(
            "last",
            format!("use a whole number from 1 to {MAX_SAMPLES}"),
        ));
    }
    Ok(last)
}

/// The newest `last` monitoring samples, oldest first.
pub async fn samples(home: &Home, key: &str, last: usize) -> Result<Vec<Value>> {
    let inst = find(home, key).await?;
    let last = check_last(last)?;
    super::mirror::sync(home, Some(&inst.id)).await;
    let dir = metrics::dir_of(home, &inst.id);
    metrics::read_files(move || tail::last(&dir, last)).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentStatus {
    pub instance: String,
    /// The agent's container, when it exists.
    pub container: Option<String>,
    /// running, exited, restarting, ... or missing.
    pub state: String,
    pub interval_seconds: u32,
    pub last_sample: Option<String>,
    pub last_sample_age_seconds: Option<f64>,
    /// No sample for three intervals.
    pub stale: bool,
    /// The most recent sample with an error (among the last 100).
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

/// The agent of `inst`, given its containers (from the caller's status
/// read): its container's state and how fresh its samples are.
pub async fn agent_status(
    home: &Home,
    inst: &Instance,
    containers: Option<&Vec<Container>>,
) -> Result<AgentStatus> {
    let container = containers
        .and_then(|cs| engine::service_of(cs, &Service::Agent))
        .cloned();
    let dir = metrics::dir_of(home, &inst.id);
    let recent = metrics::read_files(move || tail::last_samples(&dir, 100)).await?;
    let latest = recent.last();
    let age = latest.and_then(Sample::age_seconds);
    let errored = recent.iter().rev().find(|s| s.error.is_some());
    let created_age = humantime::parse_rfc3339_weak(&inst.created_at)
        .ok()
        .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    Ok(AgentStatus {
        instance: inst.id.clone(),
        container: container.as_ref().map(|c| c.name.clone()),
        state: container.map_or("missing".into(), |c| c.state.to_string()),
        interval_seconds: inst.metrics_interval,
        last_sample: latest.map(|s| s.ts.clone()),
        last_sample_age_seconds: age,
        stale: metrics::stale(age.unwrap_or(created_age), inst.metrics_interval),
        last_error: errored.and_then(|s| s.error.clone()),
        last_error_at: errored.map(|s| s.ts.clone()),
    })
}

/// The instance, which must be serving (SQL, a dump or an import needs
/// its PostgreSQL): otherwise a conflict that says how to start it.
pub(super) async fn serving(home: &Home, key: &str) -> Result<Instance> {
    let inst = find(home, key).await?;
    let view = status_view(home, &inst).await?;
    if !view.status.serves() {
        return Err(super::data_plane::not_running(&inst, view.status));
    }
    Ok(inst)
}

/// How the CLI connects as the app user of `inst` (one connection, no
/// pool): its password, address, the connect timeout, and TLS verified
/// against the home's authority where the instance has it.
pub(super) async fn app_config(
    home: &Home,
    inst: &Instance,
) -> Result<(postgres::Config, crate::db::tls::Connector)> {
    let dir = home.instance_dir(&inst.id);
    let password = blocking(move || provision::app_password(&dir)).await?;
    let mut cfg = pg_config(inst, &password);
    cfg.application_name("dbaasctl")
        .connect_timeout(home.settings.db.connect_timeout);
    let tls = crate::db::tls::for_instance(&mut cfg, inst, &crate::db::connect::ca_file(home))?;
    Ok((cfg, tls))
}

/// For the CLI: one connection (no pool) as the app user of a running
/// instance, used by `f` on the blocking thread pool.
pub async fn with_client<T, F>(home: &Home, key: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut postgres::Client) -> Result<T, crate::db::Failure> + Send + 'static,
{
    let inst = serving(home, key).await?;
    let (mut cfg, tls) = app_config(home, &inst).await?;
    cfg.options(&format!(
        "-c statement_timeout={}",
        home.settings.db.statement_timeout.as_millis()
    ));
    tokio::task::spawn_blocking(move || {
        let mut client = cfg.connect(tls).map_err(|e| {
            Error::Unavailable(format!(
                "cannot connect to '{}' on port {}: {e}",
                inst.name, inst.port
            ))
        })?;
        f(&mut client).map_err(crate::db::Failure::into_error)
    })
    .await
    .map_err(|e| Error::Failed(format!("database task failed: {e}")))?
}

/// The home's certificate authority: its file and its certificate (PEM),
/// made on first use.
pub async fn ca(home: &Home) -> Result<(std::path::PathBuf, String)> {
    let (dir, tag) = (home.config_dir().join("ca"), home.tag());
    let path = crate::db::connect::ca_file(home);
    let pem =
        blocking(move || crate::certs::Authority::load_or_create(&dir, &tag)?.cert_pem()).await?;
    Ok((path, pem))
}
