//! The server's shared state: the token, the operations (ops::serial), and two caches
//! that keep requests off docker and off JSON parsing without ever serving a
//! stale registry: the registry is re-read whenever its file changes (any
//! process may write it), and container status is refreshed in the
//! background every STATUS_REFRESH.

use crate::error::{Error, IoContext, Result};
use crate::home::Home;
use crate::ops::serial::Serial;
use crate::ops::{self, PsMap};
use crate::registry::{self, Registry};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use warp::http::HeaderMap;

/// How old the container status may be.
pub const STATUS_REFRESH: Duration = Duration::from_millis(1000);
/// The background refresh runs only while someone reads the status: an idle
/// server (or one busy serving /database) does not run `docker ps` forever.
pub const STATUS_IDLE_AFTER: Duration = Duration::from_secs(10);

pub struct AppState {
    pub home: Home,
    token: String,
    /// Operations one at a time per instance, and the data plane.
    pub ops: Arc<Serial>,
    /// The status, when it was read, and the operations' generation then.
    status: Mutex<Option<(Instant, Arc<PsMap>, u64)>>,
    status_wanted: Notify,
    registry: Mutex<Option<(FileKey, Arc<Registry>)>>,
    /// The console's sign-ins.
    pub sessions: super::session::Sessions,
    /// Requests served, for /metrics.
    pub requests: crate::metrics::RequestStats,
    started: Instant,
    /// Milliseconds after `started` of the last status read; 0 = never.
    status_read_ms: std::sync::atomic::AtomicU64,
    /// When Docker was last asked (by a status read) and whether it answered.
    docker_health: Mutex<Option<(Instant, bool)>>,
}

/// Identity of one version of the registry file: the atomic rename gives
/// every write a new inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileKey {
    ino: u64,
    mtime_ns: i64,
    len: u64,
}

impl AppState {
    pub fn new(home: Home, token: String) -> AppState {
        AppState {
            ops: Arc::new(Serial::new(&home)),
            home,
            token,
            status: Mutex::new(None),
            status_wanted: Notify::new(),
            registry: Mutex::new(None),
            requests: Default::default(),
            sessions: Default::default(),
            started: Instant::now(),
            status_read_ms: std::sync::atomic::AtomicU64::new(0),
            docker_health: Mutex::new(None),
        }
    }

    /// How a request is authorised: the bearer token (compared in constant
    /// time), or a console session.
    pub fn access(
        &self,
        method: &warp::http::Method,
        headers: &HeaderMap,
    ) -> super::session::Access {
        super::session::access(&self.sessions, &self.token, method, headers)
    }

    /// The API token, for the console's sign-in.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The registry as on disk now: re-read when the file changed.
    pub fn registry(&self) -> Result<Arc<Registry>> {
        let path = self.home.registry_path();
        let key = match std::fs::metadata(&path) {
            Ok(m) => FileKey {
                ino: m.ino(),
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                len: m.len(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileKey {
                ino: 0,
                mtime_ns: 0,
                len: 0,
            },
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        if let Some((k, reg)) = &*self.registry.lock().expect("registry cache") {
            if *k == key {
                return Ok(reg.clone());
            }
        }
        let reg = Arc::new(registry::load(&self.home)?);
        *self.registry.lock().expect("registry cache") = Some((key, reg.clone()));
        Ok(reg)
    }

    /// Container status of every instance, at most STATUS_REFRESH old
    /// (waits for the first refresh only).
    pub async fn status(&self) -> Result<Arc<PsMap>> {
        self.mark_status_read();
        if let Some((at, map, generation)) = &*self.status.lock().expect("status cache") {
            if at.elapsed() <= STATUS_REFRESH * 3 && *generation == self.ops.generation() {
                return Ok(map.clone());
            }
        }
        // Stale or never filled (docker slow or down): fetch now.
        self.refresh_status().await
    }

    /// Someone wants the status: the refresher keeps it fresh for a while.
    fn mark_status_read(&self) {
        self.status_read_ms.store(
            self.started.elapsed().as_millis() as u64 + 1,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// One `docker ps` into the cache; its success is Docker's health.
    pub async fn refresh_status(&self) -> Result<Arc<PsMap>> {
        let generation = self.ops.generation();
        let res = ops::containers(&self.home).await;
        *self.docker_health.lock().expect("docker health") = Some((Instant::now(), res.is_ok()));
        let map = Arc::new(res?);
        *self.status.lock().expect("status cache") =
            Some((Instant::now(), map.clone(), generation));
        Ok(map)
    }

    /// Whether Docker answered the last status read, and how long ago
    /// (None before the first). Costs no subprocess: when the answer is
    /// getting old, the refresher is asked for a new one.
    pub fn docker_health(&self) -> Option<(bool, Duration)> {
        let last = *self.docker_health.lock().expect("docker health");
        let age = last.map(|(at, _)| at.elapsed());
        if age.is_none_or(|a| a > STATUS_REFRESH * 3) {
            self.mark_status_read();
            self.status_wanted.notify_one();
        }
        last.map(|(at, ok)| (ok, at.elapsed()))
    }

    /// Like `status`, but re-reads docker (at most every 100 ms) when an
    /// instance that should run is absent from the cache: the cache may
    /// predate its containers, and "missing" must not be a stale answer.
    pub async fn status_for(&self, should_run: &[&str]) -> Result<Arc<PsMap>> {
        let map = self.status().await?;
        if should_run.iter().all(|id| map.contains_key(*id)) {
            return Ok(map);
        }
        let fresh_enough = self
            .status
            .lock()
            .expect("status cache")
            .as_ref()
            .is_some_and(|(at, _, _)| at.elapsed() < Duration::from_millis(100));
        if fresh_enough {
            return Ok(map);
        }
        self.refresh_status().await
    }

    /// Asks the refresher for a new status now (after a change).
    pub fn status_changed(&self) {
        self.ops.changed();
    }

    pub fn start_status_refresher(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                let read_ms = self
                    .status_read_ms
                    .load(std::sync::atomic::Ordering::Relaxed);
                let in_use = read_ms > 0
                    && self
                        .started
                        .elapsed()
                        .saturating_sub(Duration::from_millis(read_ms))
                        < STATUS_IDLE_AFTER;
                if in_use {
                    if let Err(e) = self.refresh_status().await {
                        log::warn!("refreshing container status: {e}");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(STATUS_REFRESH) => {}
                    _ = self.status_wanted.notified() => {}
                    _ = self.ops.next_change() => {}
                }
            }
        });
    }
}

/// DBAAS_API_TOKEN, or config/api-token (0600), generated and printed once
/// on the first `serve`.
pub fn load_or_create_token(home: &Home) -> Result<String> {
    if let Some(t) = &home.settings.server.api_token {
        return Ok(t.0.clone());
    }
    let path = home.config_dir().join("api-token");
    check_token_file(&path)?;
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    }
    std::fs::create_dir_all(home.config_dir())
        .ctx(|| format!("creating {}", home.config_dir().display()))?;
    let token = crate::secrets::password();
    registry::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)?;
    eprintln!(
        "generated an API token, saved in {} (0600); it is printed only this once:\n  {token}\nuse it as: curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/instances",
        path.display()
    );
    Ok(token)
}

/// The token file must be this user's and readable by nobody else.
fn check_token_file(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o7777;
    if !meta.file_type().is_file() || meta.uid() != me || mode & 0o077 != 0 {
        return Err(Error::invalid(
            "config/api-token",
            format!(
                "{} must be a plain file owned by you (uid {me}) with mode 600 (it is uid {}, mode {mode:o}); run `chown {me} {p} && chmod 600 {p}`, or remove it to have a new token generated",
                path.display(),
                meta.uid(),
                p = path.display()
            ),
        ));
    }
    Ok(())
}
