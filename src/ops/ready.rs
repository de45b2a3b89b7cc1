//! Readiness: an instance is ready when its app user can connect and run a
//! query. While waiting, the engine is asked now and then whether the
//! container died, to fail fast with its last log lines.

use super::pg_config;
use crate::engine::{self, PsMap, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry::Instance;
use std::time::{Duration, Instant};

/// Pause between readiness probes: short, since a probe is one TCP connect.
pub const READY_POLL: Duration = Duration::from_millis(50);
/// How often the readiness loop asks the engine whether the container died.
const READY_CONTAINER_CHECK: Duration = Duration::from_secs(2);
const READY_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
pub const READY_FIRST_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Polls until the app user can connect and run a query. Every few seconds
/// it also asks docker whether the container died, to fail fast with its logs.
pub async fn wait_ready(home: &Home, inst: &Instance, password: &str) -> Result<()> {
    let deadline = Instant::now() + home.settings.ready_timeout;
    let mut next_check = Instant::now() + READY_CONTAINER_CHECK;
    let mut probe_timeout = READY_FIRST_PROBE_TIMEOUT;
    let mut check: Option<tokio::task::JoinHandle<Result<PsMap>>> = None;
    let tls = probe_tls(home, inst)?;
    loop {
        // The async client, so that a probe stuck in the docker proxy can be
        // abandoned: later probes get more time in case the host is busy.
        let mut cfg = pg_config(inst, password);
        // The owner's ALTER DATABASE ... SET (a 1 ms statement_timeout)
        // must not make a running instance look down.
        cfg.connect_timeout(READY_CONNECT_TIMEOUT)
            .options("-c statement_timeout=0 -c default_transaction_read_only=off");
        let res = match tokio::time::timeout(probe_timeout, probe(cfg, tls.clone())).await {
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
            let db = engine::db_container(&ps, &inst.id);
            match db {
                Some(c) if c.state.ended() => {
                    let logs = last_log_lines(home, &inst.id, 30).await;
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
            check = Some(tokio::spawn(async move {
                engine::of(&home).ps(Some(&id)).await
            }));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// The connector a probe of `inst` uses: TLS verified against the home's
/// authority where it has TLS (its TCP logins may be TLS only).
pub fn probe_tls(home: &Home, inst: &Instance) -> Result<Option<crate::db::tls::Connector>> {
    match inst.tls {
        true => crate::db::tls::connector(&crate::db::connect::ca_file(home)).map(Some),
        false => Ok(None),
    }
}

/// One connection as the app user and `SELECT 1`: over `tls` where given
/// (required then), else in plain text.
pub async fn probe(
    cfg: postgres::Config,
    tls: Option<crate::db::tls::Connector>,
) -> std::result::Result<(), String> {
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
    match tls {
        Some(tls) => {
            tcfg.ssl_mode(tokio_postgres::config::SslMode::Require);
            select_one(&tcfg, tls).await
        }
        None => select_one(&tcfg, tokio_postgres::NoTls).await,
    }
}

async fn select_one<T>(tcfg: &tokio_postgres::Config, tls: T) -> std::result::Result<(), String>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, conn) = tcfg.connect(tls).await.map_err(|e| pg_error_text(&e))?;
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

/// The db container's last lines, for an error message.
async fn last_log_lines(home: &Home, id: &str, n: u32) -> String {
    match engine::of(home).logs(id, &Service::Db, n, 64 * 1024).await {
        Ok(lines) => lines.join("\n"),
        Err(e) => format!("(could not read logs: {e})"),
    }
}
