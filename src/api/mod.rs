//! `dbaasctl serve`: the REST API. One warp filter takes every request and a
//! small router dispatches on (method, path), so that an unknown path is a 404,
//! a known path with another method a 405, and every error, warp's own
//! included, has the same JSON shape. Handlers call the same `ops` functions
//! as the CLI.

pub mod backups;
pub mod console;
pub mod database;
pub mod docs;
pub mod dumps;
mod guards;
pub mod instances;
pub mod monitoring;
pub mod reply;
pub mod routes;
pub(crate) use routes as route_table;
mod routing;
pub mod server;
pub mod session;
pub mod sql;
pub mod state;

use crate::error::Result;
use crate::home::Home;
use crate::ops::serial::Pool;
use reply::Reply;
use state::AppState;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::http::{HeaderMap, Method};
use warp::Filter;

pub use guards::{BODY_TIMEOUT, MAX_BODY, MAX_DB_BODY};
pub use routing::{BodyStream, Request};

pub async fn serve(home: Home, listen: SocketAddr) -> Result<()> {
    let token = state::load_or_create_token(&home)?;
    reply::hide_paths_under(&home.root);
    let max_connections = home.settings.server.max_connections;
    let state = Arc::new(AppState::new(home, token));
    state.clone().start_status_refresher();
    resume_interrupted(state.clone());
    keep_warm_pool(state.clone());
    crate::ops::mirror::start(state.home.clone());
    // One Docker check before listening: /health reports it from then on
    // without a subprocess of its own.
    if let Err(e) = state.refresh_status().await {
        log::warn!("docker: {e}");
    }
    let routes = routes(state);
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    log::error!("cannot watch SIGTERM: {e}");
                    return std::future::pending().await;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        log::warn!("shutting down: finishing in-flight requests");
    };
    server::run(
        listen,
        routes,
        max_connections,
        |addr| {
            eprintln!(
                "dbaas API listening on http://{addr} (docs: http://{addr}/docs)\nconsole: http://{addr}/ (sign in with the API token)"
            )
        },
        shutdown,
    )
    .await
}

/// Finishes, in the background and each under its instance's lock, what a
/// killed server or CLI left unfinished: interrupted creates are rolled
/// back, other operations run again to their end.
fn resume_interrupted(state: Arc<AppState>) {
    tokio::spawn(async move {
        let reg = match state.registry() {
            Ok(r) => r,
            Err(e) => return log::error!("resuming interrupted operations: {e}"),
        };
        let ids: Vec<String> = reg
            .instances
            .iter()
            .filter(|i| crate::ops::interrupted(i).is_some())
            .map(|i| i.id.clone())
            .collect();
        for id in ids {
            let res = state
                .ops
                .run(&id, Pool::Drop, {
                    let id = id.clone();
                    move |home| async move { crate::ops::resume(&home, &id).await }
                })
                .await;
            if let Err(e) = res {
                log::error!("{id}: finishing an interrupted operation: {e}");
            }
        }
    });
}

/// How often `serve` tops up the warm pool (also right after a claim).
const POOL_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Keeps DBAAS_WARM_POOL's spares made, in the background: now, after
/// every claim, and every `POOL_CHECK`.
fn keep_warm_pool(state: Arc<AppState>) {
    if state.home.settings.warm_pool.is_empty() {
        return;
    }
    tokio::spawn(async move {
        loop {
            match crate::ops::pool::fill(&state.home, false).await {
                Ok(made) if !made.is_empty() => {
                    log::info!("warm pool: made {}", made.join(", "));
                    state.status_changed();
                }
                Ok(_) => {}
                Err(e) => log::warn!("warm pool: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(POOL_CHECK) => {}
                _ = state.ops.spare_claimed.notified() => {}
            }
        }
    });
}

/// Everything goes through `handle`; `recover` only shapes the few
/// rejections warp itself can still produce.
pub fn routes(state: Arc<AppState>) -> impl Filter<Extract = (Reply,), Error = Infallible> + Clone {
    let with_state = warp::any().map(move || state.clone());
    warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(with_state)
        .then(
            |method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body,
             state: Arc<AppState>| async move {
                let started = std::time::Instant::now();
                let method_name = crate::metrics::method_name(&method);
                let (route, params, label) = routing::resolve(path.as_str());
                let req = Request {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                    body: vec![],
                    stream: std::sync::Mutex::new(None),
                    route,
                    params,
                };
                let reply = guards::serve_request(&state, req, body).await;
                let elapsed = started.elapsed();
                state.requests.record(
                    label,
                    method_name,
                    reply.status().as_u16(),
                    elapsed.as_secs_f64(),
                );
                log::debug!(
                    "{} {} {}us",
                    reply.status(),
                    path.as_str(),
                    elapsed.as_micros()
                );
                reply
            },
        )
        .recover(guards::recover)
        .unify()
}
