//! create / up / down / restart / destroy / list / show: the only code that
//! sequences steps. The CLI and the API both call these functions.

use crate::compose::{self, Container};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog::{self, now_rfc3339};
use crate::provision::{self, Credentials};
use crate::registry::{self, Instance, Intent, Registry, State};
use crate::validate;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

pub const DEFAULT_MEMORY: &str = "512m";
pub const DEFAULT_CPUS: &str = "1.0";
pub const DEFAULT_DATABASE: &str = "app";
pub const DEFAULT_USER: &str = "app";
/// Pause between readiness probes: short, since a probe is one TCP connect.
pub const READY_POLL: Duration = Duration::from_millis(50);
/// How often the readiness loop asks docker whether the container died.
const READY_CONTAINER_CHECK: Duration = Duration::from_secs(2);
const READY_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
pub const READY_FIRST_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub use crate::compose::PsMap;

/// What a user asks for; every field is validated by `validate_create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub version: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub port: Option<u32>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// Seconds between monitoring samples (default 10).
    pub metrics_interval: Option<String>,
    pub keep_on_failure: bool,
}

#[derive(Debug, Clone)]
pub struct ValidCreate {
    pub name: String,
    pub version: u32,
    pub memory: u64,
    pub cpus: f64,
    pub port: Option<u16>,
    pub database: String,
    pub user: String,
    pub metrics_interval: u32,
}

pub fn validate_create(req: &CreateRequest) -> Result<ValidCreate> {
    validate::instance_name(&req.name)?;
    let version = match &req.version {
        Some(v) => validate::version(v)?,
        None => validate::DEFAULT_VERSION,
    };
    let memory = validate::memory(
        req.memory.as_deref().unwrap_or(DEFAULT_MEMORY),
        host_memory(),
    )?;
    let cpus = validate::cpus(req.cpus.as_deref().unwrap_or(DEFAULT_CPUS), host_cpus())?;
    let port = req.port.map(validate::port).transpose()?;
    let database = req
        .database
        .clone()
        .unwrap_or_else(|| DEFAULT_DATABASE.into());
    validate::sql_name("database", &database)?;
    let user = req.user.clone().unwrap_or_else(|| DEFAULT_USER.into());
    validate::sql_name("user", &user)?;
    let metrics_interval = match &req.metrics_interval {
        Some(s) => validate::metrics_interval(s)?,
        None => crate::registry::DEFAULT_METRICS_INTERVAL,
    };
    Ok(ValidCreate {
        metrics_interval,
        name: req.name.clone(),
        version,
        memory,
        cpus,
        port,
        database,
        user,
    })
}

pub use crate::settings::{host_cpus, host_memory};

/// The host's budget for instances: the sum of their memory limits may not
/// pass `max_memory` (DBAAS_MAX_MEMORY, default the host's memory), and a
/// create needs `min_free_disk` (DBAAS_MIN_FREE_DISK, default 1g) free
/// under DBAAS_HOME.
pub struct Budget {
    pub max_memory: u64,
    pub min_free_disk: u64,
}

impl Budget {
    pub fn of(home: &Home) -> Budget {
        Budget {
            max_memory: home.settings.max_memory,
            min_free_disk: home.settings.min_free_disk,
        }
    }

    /// Refuses an instance of `memory` bytes next to `reg`'s.
    pub fn check_memory(&self, reg: &Registry, memory: u64) -> Result<()> {
        let used: u64 = reg.instances.iter().map(|i| i.memory).sum();
        if used.saturating_add(memory) > self.max_memory {
            return Err(Error::Conflict(format!(
                "the host's memory budget (DBAAS_MAX_MEMORY, {}) would be exceeded: instances hold {} and this one asks for {}; destroy or shrink an instance, or raise DBAAS_MAX_MEMORY",
                crate::validate::format_bytes(self.max_memory),
                crate::validate::format_bytes(used),
                crate::validate::format_bytes(memory)
            )));
        }
        Ok(())
    }

    /// Refuses a create when the home's filesystem is nearly full.
    pub fn check_disk(&self, home: &Home) -> Result<()> {
        let free = free_disk(&home.root).unwrap_or(u64::MAX);
        if free < self.min_free_disk {
            return Err(Error::Conflict(format!(
                "only {} is free under DBAAS_HOME, less than DBAAS_MIN_FREE_DISK ({}); free some disk or lower DBAAS_MIN_FREE_DISK",
                crate::validate::format_bytes(free),
                crate::validate::format_bytes(self.min_free_disk)
            )));
        }
        Ok(())
    }
}

/// Bytes available to this user on the filesystem holding `path`.
fn free_disk(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = path.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Created {
    pub instance: InstanceView,
    pub password: String,
    pub url: String,
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
}

impl Pending {
    pub fn password(&self) -> &str {
        &self.creds.app_password
    }
}

/// Validate, allocate under the lock, provision, `compose up`, wait until the
/// app user can connect, record `running`. Any failure after the registry
/// entry exists rolls everything back, unless `keep_on_failure`.
pub async fn create(home: &Home, req: CreateRequest) -> Result<Created> {
    let on_failure = if req.keep_on_failure {
        OnFailure::Keep
    } else {
        OnFailure::RollBack
    };
    let pending = create_begin(home, &req).await?;
    create_finish(home, pending, on_failure).await
}

/// The quick, synchronous part of create: validation, the Docker preflight
/// and the allocation under the registry lock. Errors here change nothing.
pub async fn create_begin(home: &Home, req: &CreateRequest) -> Result<Pending> {
    let v = validate_create(req)?;
    let budget = Budget::of(home);
    budget.check_disk(home)?;
    let image = home.settings.image_for(v.version);
    compose::preflight(home, &image).await?;
    let started = Instant::now();
    let inst = blocking({
        let home = home.clone();
        move || allocate(&home, &v, &image, &budget)
    })
    .await?;
    oplog::record(home, &inst.id, "create.allocate", started.elapsed(), "ok");
    Ok(Pending {
        instance: inst,
        creds: Credentials::generate(),
        started,
    })
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
    } = pending;
    let id = inst.id.clone();
    let result = provision_and_start(home, &inst, &creds).await;
    match result {
        Ok(()) => {
            let inst = blocking({
                let home = home.clone();
                let id = id.clone();
                move || set_state(&home, &id, State::Running, None)
            })
            .await?;
            oplog::record(home, &id, "create", started.elapsed(), "ok");
            let url = connection_url(&inst, &creds.app_password);
            Ok(Created {
                instance: view(&inst, None),
                password: creds.app_password,
                url,
            })
        }
        Err(e) => {
            oplog::record(home, &id, "create", started.elapsed(), "failed");
            let record_failed = |msg: String| {
                let home = home.clone();
                let id = id.clone();
                blocking(move || set_state(&home, &id, State::Failed, Some(msg)))
            };
            match on_failure {
                OnFailure::Keep => {
                    let _ = record_failed(e.to_string()).await;
                    Err(Error::CreateFailed {
                        context: format!(
                            "creating '{}' ({id}) failed; kept for debugging in {} (`dbaasctl destroy {id}` removes it)",
                            inst.name,
                            home.instance_dir(&id).display()
                        ),
                        cause: Box::new(e),
                    })
                }
                OnFailure::RollBack | OnFailure::RollBackRecord => {
                    let rollback = if on_failure == OnFailure::RollBack {
                        remove_instance(home, &id, false).await
                    } else {
                        let dir = home.instance_dir(&id);
                        match compose::down(home, &id, &dir).await {
                            Ok(()) => remove_dir(&dir),
                            Err(r) => Err(r),
                        }
                    };
                    let note = match rollback {
                        Ok(()) if on_failure == OnFailure::RollBack => {
                            "rolled back: no containers, directory or registry entry left".to_string()
                        }
                        Ok(()) => "rolled back: containers and directory removed; the entry stays as failed until deleted"
                            .to_string(),
                        Err(r) => {
                            format!("rollback also failed ({r}); `dbaasctl doctor --fix` cleans up")
                        }
                    };
                    if on_failure == OnFailure::RollBackRecord {
                        let _ = record_failed(e.to_string()).await;
                    }
                    Err(Error::CreateFailed {
                        context: format!("creating '{}' failed ({note})", inst.name),
                        cause: Box::new(e),
                    })
                }
            }
        }
    }
}

async fn provision_and_start(home: &Home, inst: &Instance, creds: &Credentials) -> Result<()> {
    let dir = home.instance_dir(&inst.id);
    let tag = home.tag();
    oplog::step(home, &inst.id, "create.provision", async {
        provision::provision(&dir, inst, creds, &tag)
    })
    .await?;
    let _slot = oplog::step(
        home,
        &inst.id,
        "create.wait_slot",
        ProvisionSlot::acquire(home),
    )
    .await?;
    oplog::step(
        home,
        &inst.id,
        "create.compose_up",
        compose::up(home, &inst.id, &dir),
    )
    .await?;
    oplog::step(
        home,
        &inst.id,
        "create.wait_ready",
        wait_ready(home, inst, &creds.app_password),
    )
    .await
}

/// A host-wide limit on instances initializing at once (DBAAS_PROVISION_SLOTS,
/// default: the number of CPUs). initdb is CPU- and file-heavy; on a small
/// host, ten at once take several times longer in total than two at a time.
/// A slot is an flock on a file shared by every dbaasctl process of the host,
/// released by the kernel even if the holder is killed.
pub struct ProvisionSlot {
    _file: std::fs::File,
}

impl ProvisionSlot {
    pub async fn acquire(home: &Home) -> Result<ProvisionSlot> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let slots = home.settings.provision_slots;
        // Under the home, not a shared /tmp path another user could own.
        let dir = home.config_dir().join("provision-slots");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        loop {
            for i in 0..slots {
                let path = dir.join(format!("slot-{i}"));
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
                if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                    return Ok(ProvisionSlot { _file: file });
                }
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

/// Under the registry lock: the name is free, the port is free (registry and
/// a real bind), a fresh id; records the instance as `creating`.
fn allocate(home: &Home, v: &ValidCreate, image: &str, budget: &Budget) -> Result<Instance> {
    registry::update(home, |reg| {
        budget.check_memory(reg, v.memory)?;
        if reg.instances.iter().any(|i| i.name == v.name) {
            return Err(Error::Conflict(format!(
                "an instance named '{}' already exists; choose another name or `dbaasctl destroy {}` first",
                v.name, v.name
            )));
        }
        let port = match v.port {
            Some(p) => {
                if let Some(other) = reg.instances.iter().find(|i| i.port == p) {
                    return Err(Error::Conflict(format!(
                        "port {p} is already used by instance '{}'; choose another --port or omit it",
                        other.name
                    )));
                }
                if !port_is_free(home.settings.bind_address, p) {
                    return Err(Error::Conflict(format!(
                        "port {p} is already in use on {}; choose another --port or omit it",
                        home.settings.bind_address
                    )));
                }
                p
            }
            None => pick_port(reg, home.settings.port_range, |p| {
                port_is_free(home.settings.bind_address, p)
            })
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "no free port in {}-{}; destroy unused instances or widen DBAAS_PORT_RANGE",
                    home.settings.port_range.0, home.settings.port_range.1
                ))
            })?,
        };
        let id = loop {
            let id = crate::secrets::instance_id();
            if reg.find(&id).is_none() && !home.instance_dir(&id).exists() {
                break id;
            }
        };
        let now = now_rfc3339();
        let inst = Instance {
            id,
            name: v.name.clone(),
            version: v.version,
            image: image.to_string(),
            memory: v.memory,
            cpus: v.cpus,
            port,
            bind_address: home.settings.bind_address.to_string(),
            database: v.database.clone(),
            user: v.user.clone(),
            state: State::Creating,
            created_at: now.clone(),
            updated_at: now,
            creator_pid: Some(std::process::id()),
            intent: None,
            intent_pid: None,
            error: None,
            metrics_interval: v.metrics_interval,
            metrics_max_bytes: home.settings.metrics_max_bytes,
            metrics_keep: home.settings.metrics_keep,
        };
        reg.instances.push(inst.clone());
        Ok(inst)
    })
}

/// The lowest port of the range that no instance holds and `is_free` accepts.
pub fn pick_port(reg: &Registry, range: (u16, u16), is_free: impl Fn(u16) -> bool) -> Option<u16> {
    let taken: std::collections::HashSet<u16> = reg.instances.iter().map(|i| i.port).collect();
    (range.0..=range.1).find(|p| !taken.contains(p) && is_free(*p))
}

pub fn port_is_free(addr: IpAddr, port: u16) -> bool {
    TcpListener::bind((addr, port)).is_ok()
}

fn set_state(home: &Home, id: &str, state: State, error: Option<String>) -> Result<Instance> {
    registry::update(home, |reg| {
        let inst = reg.find_mut(id).ok_or_else(|| registry::not_found(id))?;
        inst.state = state;
        inst.error = error;
        inst.creator_pid = None;
        inst.intent = None;
        inst.intent_pid = None;
        inst.updated_at = now_rfc3339();
        Ok(inst.clone())
    })
}

/// Records (or clears) the operation this process is about to run on an
/// instance; clearing an entry that is gone is not an error.
fn set_intent(home: &Home, id: &str, intent: Option<Intent>) -> Result<()> {
    registry::update(home, |reg| {
        match reg.find_mut(id) {
            Some(inst) => {
                inst.intent = intent;
                inst.intent_pid = intent.map(|_| std::process::id());
            }
            None if intent.is_none() => {}
            None => return Err(registry::not_found(id)),
        }
        Ok(())
    })
}

/// Runs `work` with its intent recorded, so that if this process dies
/// midway the next `serve` or `doctor --fix` finishes it; the record goes
/// when `work` ends, however it ends.
async fn intending<T>(
    home: &Home,
    id: &str,
    intent: Intent,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    blocking({
        let (home, id) = (home.clone(), id.to_string());
        move || set_intent(&home, &id, Some(intent))
    })
    .await?;
    let res = work.await;
    let cleared = blocking({
        let (home, id) = (home.clone(), id.to_string());
        move || set_intent(&home, &id, None)
    })
    .await;
    if let Err(e) = cleared {
        log::warn!("clearing the intent of {id}: {e}");
    }
    res
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

/// What a killed process left unfinished on this instance: a create (rolled
/// back) or an operation (run again to its end), if any.
pub fn interrupted(inst: &Instance) -> Option<&'static str> {
    if inst.state == State::Creating && !creator_alive(inst) {
        return Some("create");
    }
    match inst.intent {
        Some(i) if !process_alive(inst.intent_pid) => Some(match i {
            Intent::Start => "start",
            Intent::Stop => "stop",
            Intent::Restart => "restart",
            Intent::Destroy | Intent::DestroyKeepData => "destroy",
        }),
        _ => None,
    }
}

/// Finishes what a killed process left on one instance: an interrupted
/// create is rolled back, any other operation runs again to its end.
/// Returns what was done, or None when nothing was left.
pub async fn resume(home: &Home, id: &str) -> Result<Option<String>> {
    let inst = match find(home, id) {
        Ok(i) => i,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(what) = interrupted(&inst) else {
        return Ok(None);
    };
    match (what, inst.intent) {
        ("create", _) => remove_instance(home, id, false).await?,
        (_, Some(Intent::Start)) => drop(up(home, id).await?),
        (_, Some(Intent::Stop)) => drop(down(home, id).await?),
        (_, Some(Intent::Restart)) => drop(restart(home, id).await?),
        (_, Some(Intent::Destroy)) => remove_instance(home, id, false).await?,
        (_, Some(Intent::DestroyKeepData)) => remove_instance(home, id, true).await?,
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

/// Polls until the app user can connect and run a query. Every few seconds
/// it also asks docker whether the container died, to fail fast with its logs.
pub async fn wait_ready(home: &Home, inst: &Instance, password: &str) -> Result<()> {
    let deadline = Instant::now() + home.settings.ready_timeout;
    let mut next_check = Instant::now() + READY_CONTAINER_CHECK;
    let mut probe_timeout = READY_FIRST_PROBE_TIMEOUT;
    let mut check: Option<tokio::task::JoinHandle<Result<PsMap>>> = None;
    loop {
        // The async client, so that a probe stuck in the docker proxy can be
        // abandoned: later probes get more time in case the host is busy.
        let mut cfg = pg_config(inst, password);
        cfg.connect_timeout(READY_CONNECT_TIMEOUT);
        let res = match tokio::time::timeout(probe_timeout, probe(cfg)).await {
            Ok(r) => r,
            Err(_) => {
                probe_timeout = (probe_timeout * 2).min(READY_CONNECT_TIMEOUT);
                Err(format!(
                    "no answer within {} ms",
                    probe_timeout.as_millis() / 2
                ))
            }
        };
        let last_err = match res {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        log::debug!("{}: not ready: {last_err}", inst.id);
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "waiting for PostgreSQL of '{}' to accept the app user (last error: {last_err}); see `dbaasctl logs {}`",
                    inst.name, inst.name
                ),
                secs: home.settings.ready_timeout.as_secs(),
            });
        }
        // `docker ps` can stall for seconds while the daemon starts the
        // container, so it runs beside the probes, never in their way.
        if check.as_ref().is_some_and(|h| h.is_finished()) {
            let ps = check
                .take()
                .expect("checked")
                .await
                .map_err(|e| Error::Failed(e.to_string()))??;
            let db = compose::db_container(&ps, &inst.id);
            match db {
                Some(c) if c.state == "exited" || c.state == "dead" => {
                    let logs = container_logs_tail(home, &c.name, 30).await;
                    return Err(Error::Failed(format!(
                        "the PostgreSQL container {} stopped ({}) before it was ready. Its last log lines:\n{logs}",
                        c.name, c.status
                    )));
                }
                None => {
                    return Err(Error::Failed(format!(
                        "the PostgreSQL container of {} disappeared while starting",
                        inst.id
                    )))
                }
                _ => {}
            }
        }
        if check.is_none() && now >= next_check {
            next_check = now + READY_CONTAINER_CHECK;
            let (home, id) = (home.clone(), inst.id.clone());
            check = Some(tokio::spawn(
                async move { compose::ps(&home, Some(&id)).await },
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// One connection as the app user and `SELECT 1`.
pub async fn probe(cfg: postgres::Config) -> std::result::Result<(), String> {
    let mut tcfg = tokio_postgres::Config::new();
    tcfg.host(match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h,
        _ => "127.0.0.1",
    });
    tcfg.port(cfg.get_ports().first().copied().unwrap_or(5432))
        .user(cfg.get_user().unwrap_or_default())
        .password(cfg.get_password().unwrap_or_default())
        .dbname(cfg.get_dbname().unwrap_or_default())
        .application_name("dbaasctl");
    let (client, conn) = tcfg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| pg_error_text(&e))?;
    let driver = tokio::spawn(conn);
    let res = client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| pg_error_text(&e));
    drop(client);
    let _ = driver.await;
    res
}

/// The postgres crate's Display says only "db error"; the server's message
/// is in the source.
pub fn pg_error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

pub async fn container_logs_tail(home: &Home, container: &str, n: usize) -> String {
    let n = n.to_string();
    match compose::docker(
        home,
        &["logs", "--tail", &n, container],
        None,
        compose::QUICK_TIMEOUT,
    )
    .await
    {
        Ok(out) => format!("{}{}", out.stdout, out.stderr),
        Err(e) => format!("(could not read logs: {e})"),
    }
}

pub use crate::db::connect::{connect_host, connection_url, pg_config};

/// Resolves NAME-or-id to a registry entry.
pub fn find(home: &Home, key: &str) -> Result<Instance> {
    registry::load(home)?.get(key).cloned()
}

fn instance_dir_checked(home: &Home, inst: &Instance) -> Result<std::path::PathBuf> {
    let dir = home.instance_dir(&inst.id);
    if !dir.join("docker-compose.yml").is_file() {
        return Err(Error::Failed(format!(
            "{} is missing its compose file; `dbaasctl doctor` explains, `dbaasctl destroy {}` removes the entry",
            dir.display(),
            inst.name
        )));
    }
    Ok(dir)
}

fn refuse_if_creating(inst: &Instance) -> Result<()> {
    if inst.state == State::Creating && creator_alive(inst) {
        return Err(Error::Conflict(format!(
            "instance '{}' is still being created (by process {}); wait for it to finish",
            inst.name,
            inst.creator_pid.unwrap_or(0)
        )));
    }
    Ok(())
}

/// `compose up` and wait for readiness. Idempotent.
pub async fn up(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    refuse_if_creating(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, Intent::Start, up_inner(home, inst)).await
}

async fn up_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = instance_dir_checked(home, &inst)?;
    let password = provision::app_password(&dir)?;
    oplog::step(
        home,
        &inst.id,
        "up.compose_up",
        compose::up(home, &inst.id, &dir),
    )
    .await?;
    oplog::step(
        home,
        &inst.id,
        "up.wait_ready",
        wait_ready(home, &inst, &password),
    )
    .await?;
    let inst = blocking({
        let home = home.clone();
        let id = inst.id.clone();
        move || set_state(&home, &id, State::Running, None)
    })
    .await?;
    status_view(home, &inst).await
}

/// `compose down`: containers and network go, data stays. Idempotent.
pub async fn down(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    refuse_if_creating(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, Intent::Stop, down_inner(home, inst)).await
}

async fn down_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = home.instance_dir(&inst.id);
    oplog::step(home, &inst.id, "down", compose::down(home, &inst.id, &dir)).await?;
    let inst = blocking({
        let home = home.clone();
        let id = inst.id.clone();
        move || set_state(&home, &id, State::Stopped, None)
    })
    .await?;
    status_view(home, &inst).await
}

/// Restarts running containers in place, or brings the instance up.
pub async fn restart(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    refuse_if_creating(&inst)?;
    let id = inst.id.clone();
    intending(home, &id, Intent::Restart, restart_inner(home, inst)).await
}

async fn restart_inner(home: &Home, inst: Instance) -> Result<InstanceView> {
    let dir = instance_dir_checked(home, &inst)?;
    let ps = compose::ps(home, Some(&inst.id)).await?;
    let running = compose::db_container(&ps, &inst.id).is_some_and(|c| c.state == "running");
    if running {
        let password = provision::app_password(&dir)?;
        oplog::step(
            home,
            &inst.id,
            "restart",
            compose::restart(home, &inst.id, &dir),
        )
        .await?;
        oplog::step(
            home,
            &inst.id,
            "restart.wait_ready",
            wait_ready(home, &inst, &password),
        )
        .await?;
        status_view(home, &inst).await
    } else {
        up_inner(home, inst).await
    }
}

/// Removes containers, network, directory (unless `keep_data`) and the
/// registry entry, in that order, so an interrupted destroy can be re-run.
pub async fn destroy(home: &Home, key: &str, keep_data: bool) -> Result<Instance> {
    let inst = find(home, key)?;
    refuse_if_creating(&inst)?;
    let intent = if keep_data {
        Intent::DestroyKeepData
    } else {
        Intent::Destroy
    };
    intending(
        home,
        &inst.id,
        intent,
        remove_instance(home, &inst.id, keep_data),
    )
    .await?;
    Ok(inst)
}

pub async fn remove_instance(home: &Home, id: &str, keep_data: bool) -> Result<()> {
    let started = Instant::now();
    let dir = home.instance_dir(id);
    oplog::step(
        home,
        id,
        "destroy.compose_down",
        compose::down(home, id, &dir),
    )
    .await?;
    if !keep_data {
        remove_dir(&dir)?;
    }
    blocking({
        let home = home.clone();
        let id = id.to_string();
        move || {
            registry::update(&home, |reg| {
                reg.remove(&id);
                Ok(())
            })
        }
    })
    .await?;
    oplog::record(
        home,
        id,
        "destroy",
        started.elapsed(),
        if keep_data { "ok (data kept)" } else { "ok" },
    );
    Ok(())
}

pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!(
                "removing {} (files written by the container may need root: sudo rm -rf {})",
                dir.display(),
                dir.display()
            ),
            e,
        )),
    }
}

/// Rolls back the creates this process started and did not finish: called
/// when the user interrupts `create` (Ctrl-C), so nothing half-made is left.
pub async fn abandon_own_creates(home: &Home) -> Result<Vec<String>> {
    let me = std::process::id();
    let reg = registry::load(home)?;
    let mine: Vec<String> = reg
        .instances
        .iter()
        .filter(|i| i.state == State::Creating && i.creator_pid == Some(me))
        .map(|i| i.id.clone())
        .collect();
    for id in &mine {
        remove_instance(home, id, false).await?;
    }
    Ok(mine)
}

/// Whether the process that is creating an instance still runs.
pub fn creator_alive(inst: &Instance) -> bool {
    process_alive(inst.creator_pid)
}

/// An instance as users see it: the registry entry plus its live status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub image: String,
    /// creating, running, starting, unhealthy, restarting, exited, stopped,
    /// missing, failed, interrupted
    pub status: String,
    pub health: Option<String>,
    pub port: u16,
    pub bind_address: String,
    pub memory: String,
    pub memory_bytes: u64,
    pub cpus: f64,
    pub database: String,
    pub user: String,
    pub created_at: String,
    pub age_seconds: u64,
    pub containers: Vec<String>,
    pub error: Option<String>,
    /// Seconds between the monitoring agent's samples.
    pub metrics_interval: u32,
}

pub fn view(inst: &Instance, containers: Option<&Vec<Container>>) -> InstanceView {
    let (status, health) = live_status(inst, containers);
    let age = humantime::parse_rfc3339(&inst.created_at)
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0, |d| d.as_secs());
    InstanceView {
        id: inst.id.clone(),
        name: inst.name.clone(),
        version: inst.version,
        image: inst.image.clone(),
        status,
        health,
        port: inst.port,
        bind_address: inst.bind_address.clone(),
        memory: validate::format_bytes(inst.memory),
        memory_bytes: inst.memory,
        cpus: inst.cpus,
        database: inst.database.clone(),
        user: inst.user.clone(),
        created_at: inst.created_at.clone(),
        age_seconds: age,
        containers: containers
            .map(|cs| cs.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
        error: inst.error.clone(),
        metrics_interval: inst.metrics_interval,
    }
}

pub fn live_status(
    inst: &Instance,
    containers: Option<&Vec<Container>>,
) -> (String, Option<String>) {
    match inst.state {
        State::Creating if creator_alive(inst) => return ("creating".into(), None),
        State::Creating => return ("interrupted".into(), None),
        State::Failed => return ("failed".into(), None),
        _ => {}
    }
    let db = containers.and_then(|cs| compose::db_of(cs));
    match db {
        None if inst.state == State::Stopped => ("stopped".into(), None),
        None => ("missing".into(), None),
        Some(c) => {
            let health = c.health().map(str::to_string);
            let status = match (c.state.as_str(), c.health()) {
                // Readiness was checked by dbaas itself; the first health
                // check comes one interval later.
                ("running", Some("starting")) if inst.state == State::Running => "running",
                ("running", Some("starting")) => "starting",
                ("running", Some("unhealthy")) => "unhealthy",
                ("running", _) => "running",
                ("restarting", _) => "restarting",
                ("exited", _) | ("dead", _) => "exited",
                ("created", _) => "created",
                ("paused", _) => "paused",
                _ => "unknown",
            };
            (status.into(), health)
        }
    }
}

pub async fn status_view(home: &Home, inst: &Instance) -> Result<InstanceView> {
    let ps = compose::ps(home, Some(&inst.id)).await?;
    Ok(view(inst, ps.get(&inst.id)))
}

/// All instances with their live status: one registry read, one docker call.
pub async fn list(home: &Home) -> Result<Vec<InstanceView>> {
    let reg = blocking({
        let home = home.clone();
        move || registry::load(&home)
    })
    .await?;
    let ps: PsMap = if reg.instances.is_empty() {
        HashMap::new()
    } else {
        compose::ps(home, None).await?
    };
    Ok(views(&reg, &ps))
}

pub fn views(reg: &Registry, ps: &PsMap) -> Vec<InstanceView> {
    reg.instances
        .iter()
        .map(|i| view(i, ps.get(&i.id)))
        .collect()
}

pub async fn show(home: &Home, key: &str) -> Result<InstanceView> {
    let inst = find(home, key)?;
    status_view(home, &inst).await
}

/// Runs blocking work (flock, file I/O) off the async worker threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Failed(format!("internal task failed: {e}")))?
}

/// For the CLI: one connection (no pool) as the app user of a running
/// instance, used by `f` on the blocking thread pool.
pub async fn with_client<T, F>(home: &Home, key: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut postgres::Client) -> Result<T, crate::db::pool::Failure> + Send + 'static,
{
    let inst = find(home, key)?;
    let view = status_view(home, &inst).await?;
    if !matches!(view.status.as_str(), "running" | "unhealthy") {
        return Err(Error::Conflict(format!(
            "instance '{}' is {}, not running; start it with `dbaasctl up {}`",
            inst.name, view.status, inst.name
        )));
    }
    let password = provision::app_password(&home.instance_dir(&inst.id))?;
    let settings = &home.settings.db;
    let mut cfg = pg_config(&inst, &password);
    cfg.application_name("dbaasctl")
        .connect_timeout(settings.connect_timeout)
        .options(&format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis()
        ));
    tokio::task::spawn_blocking(move || {
        let mut client = cfg.connect(postgres::NoTls).map_err(|e| {
            Error::Unavailable(format!(
                "cannot connect to '{}' on port {}: {e}",
                inst.name, inst.port
            ))
        })?;
        f(&mut client).map_err(|e| match e {
            crate::db::pool::Failure::Pg(e, i) => crate::db::pg_error(&e, i),
            crate::db::pool::Failure::Other(e) => e,
        })
    })
    .await
    .map_err(|e| Error::Failed(format!("database task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg_with_ports(ports: &[u16]) -> Registry {
        let mut r = Registry::default();
        for (n, p) in ports.iter().enumerate() {
            let mut i = Instance {
                id: format!("db_{n:08x}"),
                name: format!("n{n}"),
                version: 15,
                image: "x".into(),
                memory: 1,
                cpus: 1.0,
                port: *p,
                bind_address: "127.0.0.1".into(),
                database: "app".into(),
                user: "app".into(),
                state: State::Running,
                created_at: String::new(),
                updated_at: String::new(),
                creator_pid: None,
                intent: None,
                intent_pid: None,
                error: None,
                metrics_interval: crate::registry::DEFAULT_METRICS_INTERVAL,
                metrics_max_bytes: crate::registry::DEFAULT_METRICS_MAX_BYTES,
                metrics_keep: crate::registry::DEFAULT_METRICS_KEEP,
            };
            i.port = *p;
            r.instances.push(i);
        }
        r
    }

    #[test]
    fn picks_lowest_free_port() {
        let r = reg_with_ports(&[5432, 5433, 5435]);
        assert_eq!(pick_port(&r, (5432, 5440), |_| true), Some(5434));
        assert_eq!(pick_port(&r, (5432, 5440), |p| p != 5434), Some(5436));
        assert_eq!(pick_port(&r, (5432, 5433), |_| true), None);
    }

    #[test]
    fn validate_create_defaults_and_errors() {
        let v = validate_create(&CreateRequest {
            name: "demo".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((v.version, v.memory, v.cpus), (15, 512 << 20, 1.0));
        assert_eq!((v.database.as_str(), v.user.as_str()), ("app", "app"));
        let bad = CreateRequest {
            name: "demo".into(),
            port: Some(80),
            ..Default::default()
        };
        assert!(
            matches!(validate_create(&bad), Err(Error::Invalid { ref field, .. }) if field == "port")
        );
    }

    #[test]
    fn url_uses_loopback_for_wildcard_bind() {
        let mut i = reg_with_ports(&[6000]).instances.remove(0);
        i.bind_address = "0.0.0.0".into();
        assert_eq!(
            connection_url(&i, "pw"),
            "postgresql://app:pw@127.0.0.1:6000/app"
        );
    }
}
