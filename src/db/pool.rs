//! One r2d2 pool per instance, built lazily, connecting as the instance's app
//! user to its published port. A pool is dropped when the API stops,
//! restarts or destroys its instance; connections that died under it anyway
//! (the instance restarted from the CLI) are discarded at checkout, and a
//! statement that met a dying connection is retried once on a fresh one.

use super::catalog::TableInfo;
use super::lanes::Lanes;
use super::{connection_lost, pg_error, Failure, Settings};
use crate::error::{Error, Result};
use crate::registry::Instance;
use r2d2_postgres::PostgresConnectionManager;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// r2d2_postgres's manager, with a prepared-statement cache on each
/// connection: the row routes' statements repeat, and a prepared one skips
/// PostgreSQL's parse and plan on every request.
pub struct Manager(PostgresConnectionManager<super::tls::Connector>);

/// A pooled connection and the statements prepared on it.
pub struct PgConn {
    pub client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    /// Set when the session may not be clean (a reset or rollback failed):
    /// r2d2 then closes it instead of handing it out again.
    pub broken: bool,
    /// The current request's "answered already" flag (see `run`).
    gone: Option<Arc<AtomicBool>>,
}

/// A backstop, should a transaction ever be left open on a pooled session:
/// PostgreSQL ends the session (and rolls it back) after this long idle. The
/// API's own transactions never wait between statements.
const IDLE_IN_TRANSACTION: std::time::Duration = std::time::Duration::from_secs(60);

/// Statements kept per connection; the cache starts over past this.
const STATEMENT_CACHE: usize = 256;

impl PgConn {
    /// The statement for `sql` with `n` text parameters, prepared once per
    /// connection.
    pub fn prepared(
        &mut self,
        sql: &str,
        n: usize,
    ) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self
            .client
            .prepare_typed(sql, &vec![postgres::types::Type::TEXT; n])?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    /// Forgets the prepared statements (the catalog changed under them).
    pub fn forget_statements(&mut self) {
        self.statements.clear();
    }

    /// Whether the request this connection works for was already answered
    /// (timed out, or its client went away): then nothing may commit.
    pub fn abandoned(&self) -> bool {
        self.gone.as_ref().is_some_and(|g| g.load(Ordering::SeqCst))
    }

    /// `abandoned`, as a check that does not borrow the connection.
    pub fn abandon_check(&self) -> impl Fn() -> bool {
        let gone = self.gone.clone();
        move || gone.as_ref().is_some_and(|g| g.load(Ordering::SeqCst))
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            statements: HashMap::new(),
            broken: false,
            gone: None,
        })
    }
    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }
    fn has_broken(&self, conn: &mut PgConn) -> bool {
        // r2d2 asks this as the connection goes back to the pool: the
        // request it served is over, so is its "answered" flag.
        conn.gone = None;
        conn.broken || self.0.has_broken(&mut conn.client)
    }
}

pub type Conn = r2d2::PooledConnection<Manager>;

pub struct InstancePool {
    pub id: String,
    pool: r2d2::Pool<Manager>,
    port: u16,
    /// Column lists by (schema, table); cleared after any DDL through the
    /// API, refreshed when a statement finds the catalog changed under it.
    pub tables: Mutex<HashMap<(String, String), Arc<TableInfo>>>,
    /// The threads its statements run on, `Settings::concurrency` at most;
    /// the rest wait in their queue without holding a thread.
    lanes: Arc<Lanes>,
    /// How long a statement may wait in that queue.
    queue_deadline: std::time::Duration,
}

impl InstancePool {
    pub fn forget_tables(&self) {
        self.tables.lock().expect("table cache").clear();
    }

    /// A live connection: closed ones (the server went away since they were
    /// last used) are dropped, and r2d2 discards them as broken.
    fn checkout(&self) -> Result<Conn> {
        for _ in 0..=self.pool.max_size() {
            let conn = self.pool.get().map_err(|e| {
                Error::Unavailable(format!(
                    "cannot connect to the instance's PostgreSQL: {e}; is it running? (`dbaasctl show`)"
                ))
            })?;
            if !conn.client.is_closed() {
                return Ok(conn);
            }
        }
        Err(Error::Unavailable(
            "every pooled connection was closed by the server; retry".into(),
        ))
    }
}

pub struct Pools {
    pub settings: Settings,
    /// The home's certificate authority, which instances with TLS are
    /// verified against.
    ca: std::path::PathBuf,
    map: Mutex<HashMap<String, Arc<InstancePool>>>,
}

impl Pools {
    pub fn new(settings: Settings, ca: std::path::PathBuf) -> Pools {
        Pools {
            settings,
            ca,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The instance's pool, built on first use (no connection is made until
    /// a request needs one).
    pub fn get(
        &self,
        inst: &Instance,
        password: impl FnOnce() -> Result<String>,
    ) -> Result<Arc<InstancePool>> {
        // Held while building: requests racing to the first use must share
        // one pool and its lanes. Building connects nothing, so this is brief.
        let mut map = self.map.lock().expect("pools");
        if let Some(p) = map.get(&inst.id) {
            if p.port == inst.port {
                return Ok(p.clone());
            }
        }
        let mut cfg = super::connect::pg_config(inst, &password()?);
        cfg.application_name("dbaas-api")
            .connect_timeout(self.settings.connect_timeout)
            .options(&format!(
                "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
                self.settings.statement_timeout.as_millis(),
                IDLE_IN_TRANSACTION.as_millis()
            ));
        let tls = super::tls::for_instance(&mut cfg, inst, &self.ca)?;
        let pool = r2d2::Pool::builder()
            .max_size(self.settings.pool_size)
            .min_idle(Some(0))
            .connection_timeout(self.settings.connect_timeout)
            .idle_timeout(Some(std::time::Duration::from_secs(300)))
            // Checkout tests cost a round trip each; closed connections are
            // caught by `checkout` and by the retry in `run` instead.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager(PostgresConnectionManager::new(cfg, tls)));
        let p = Arc::new(InstancePool {
            id: inst.id.clone(),
            pool,
            port: inst.port,
            tables: Mutex::new(HashMap::new()),
            lanes: Lanes::new(self.settings.concurrency as usize),
            queue_deadline: self.settings.connect_timeout,
        });
        let old = map.insert(inst.id.clone(), p.clone());
        drop(map);
        drop_off_runtime(old);
        Ok(p)
    }

    /// Forgets an instance's pool (it stopped, restarted or went away); its
    /// connections close as their requests finish.
    pub fn drop_pool(&self, id: &str) {
        let old = self.map.lock().expect("pools").remove(id);
        drop_off_runtime(old);
    }
}

impl Drop for Pools {
    fn drop(&mut self) {
        let map = std::mem::take(&mut *self.map.lock().expect("pools"));
        if !map.is_empty() {
            let _ = std::thread::spawn(move || drop(map)).join();
        }
    }
}

/// Closing a synchronous client blocks on its own runtime, which panics on
/// a tokio worker: pools are let go on a plain thread.
fn drop_off_runtime<T: Send + 'static>(v: Option<T>) {
    if let Some(v) = v {
        std::thread::spawn(move || drop(v));
    }
}

/// Runs `f` with a pooled connection on one of the instance's lanes
/// (blocking threads: the synchronous client must not run on a tokio
/// worker). When the connection turns out to be dead (the server restarted:
/// every idle connection of the pool may be), `f` runs again on the next
/// one, up to the pool's size + 1 times, which reaches a fresh connection.
pub async fn run<T, F>(pool: Arc<InstancePool>, mut f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnMut(&mut PgConn, &InstancePool) -> Result<T, Failure> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let lanes = pool.lanes.clone();
    let gone = Arc::new(AtomicBool::new(false));
    let mut watch = Abandon(Some(gone.clone()));
    // A statement whose request was answered (timed out, client gone)
    // before a lane took it is not started; one that runs, runs to its end,
    // but does not commit (`session::in_transaction` asks `abandoned`).
    // A statement waits in the queue for at most the connect timeout (it is
    // waiting for a connection, in effect); a full queue refuses at once.
    let queued = std::time::Instant::now();
    let deadline = pool.queue_deadline;
    let accepted = lanes.submit(move || {
        if gone.load(Ordering::SeqCst) {
            return;
        }
        if queued.elapsed() > deadline {
            let _ = tx.send(Err(Error::Busy(format!(
                "the statement waited {} s for one of the instance's {} lanes (DBAAS_DB_CONCURRENCY) and was not run; retry shortly",
                deadline.as_secs(),
                pool.lanes.max()
            ))));
            return;
        }
        let _ = tx.send(execute(&pool, &gone, &mut f));
    });
    if !accepted {
        watch.0 = None;
        return Err(Error::Busy(
            "too many statements are waiting for this instance; retry shortly".into(),
        ));
    }
    let res = rx
        .await
        .map_err(|_| Error::Failed("database task failed (see the server log)".into()));
    watch.0 = None;
    res?
}

/// Marks a request as answered when its future is dropped before the
/// statement's result came back.
struct Abandon(Option<Arc<AtomicBool>>);

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(gone) = &self.0 {
            gone.store(true, Ordering::SeqCst);
        }
    }
}

/// `f` on a live connection, again on the next one while the connection
/// turns out to have died under it.
fn execute<T, F>(pool: &InstancePool, gone: &Arc<AtomicBool>, f: &mut F) -> Result<T>
where
    F: FnMut(&mut PgConn, &InstancePool) -> Result<T, Failure>,
{
    let mut attempt = 0;
    loop {
        let mut conn = pool.checkout()?;
        conn.gone = Some(gone.clone());
        match f(&mut conn, pool) {
            Ok(v) => return Ok(v),
            Err(Failure::Pg(e, _)) if attempt < pool.pool.max_size() && connection_lost(&e) => {
                log::info!("instance {}: connection lost ({e}); retrying", pool.id);
                attempt += 1;
            }
            Err(Failure::Pg(e, statement)) => return Err(pg_error(&e, statement)),
            Err(Failure::Other(e)) => return Err(e),
        }
    }
}
