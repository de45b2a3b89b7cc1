//! What every request passes before its handler: the token (before the
//! body is read), the body's size and time bounds, the request's deadline,
//! and a panic answered as a 500.

use super::reply::{self, Reply};
use super::routing::{handle, Request};
use super::session;
use super::state::AppState;
use bytes::{Buf, BytesMut};
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// Largest body under /database/ (bulk inserts, long SQL).
pub const MAX_DB_BODY: usize = 32 * 1024 * 1024;

/// How long a client may take to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The token is checked before the body is read: without it, a request
/// costs no more than its headers. Then the body is read (bounded in size
/// and time), or handed on as a stream to a route that streams it.
pub(super) async fn serve_request<S, B>(state: &Arc<AppState>, mut req: Request, body: S) -> Reply
where
    S: futures_util::Stream<Item = std::result::Result<B, warp::Error>> + Unpin + Send + 'static,
    B: Buf + Send + 'static,
{
    let route = req.route;
    if !route.is_some_and(|r| r.public) {
        match state.access(&req.method, &req.headers) {
            session::Access::Token | session::Access::Session(_) => {}
            session::Access::Forged => return forged(),
            session::Access::WrongToken => {
                session::wrong_token_backoff().await;
                return unauthorized();
            }
            session::Access::None => return unauthorized(),
        }
    }
    if route.is_some_and(|r| r.streams_body) {
        let stream = body.map(|r| r.map(|mut b| b.copy_to_bytes(b.remaining())));
        req.stream = std::sync::Mutex::new(Some(Box::pin(stream)));
        return guarded(state, &req).await;
    }
    let limit = if req.path.starts_with("/database/") {
        MAX_DB_BODY
    } else {
        MAX_BODY
    };
    match tokio::time::timeout(BODY_TIMEOUT, read_body(body, limit)).await {
        Err(_) => body_too_slow(),
        Ok(Err(r)) => r,
        Ok(Ok(bytes)) => {
            req.body = bytes;
            guarded(state, &req).await
        }
    }
}

/// `handle` within the request's time bound, and a panic in it answered as
/// a 500 in the JSON error shape (the server keeps serving; the panic and
/// its place are in the server log).
pub(super) async fn guarded(state: &Arc<AppState>, req: &Request) -> Reply {
    use futures_util::FutureExt;
    let work = std::panic::AssertUnwindSafe(handle(state, req)).catch_unwind();
    match tokio::time::timeout(state.home.settings.server.request_timeout, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            log::error!("{} {}: the handler panicked", req.method, req.path);
            reply::error(
                500,
                "internal",
                "the server failed on this request (see the server log); nothing else was affected",
                serde_json::Value::Null,
            )
        }
        Err(_) => reply::error(
            504,
            "timeout",
            "the request took too long",
            serde_json::Value::Null,
        ),
    }
}

pub(super) fn body_too_slow() -> Reply {
    reply::error(
        408,
        "request_timeout",
        format!(
            "the body did not arrive within {} s",
            BODY_TIMEOUT.as_secs()
        ),
        serde_json::Value::Null,
    )
}

/// A console session's change without its CSRF token, or from another
/// site.
pub(super) fn forged() -> Reply {
    reply::error(
        403,
        "csrf",
        "refused: a change made with the console's session must come from the console's own page, with its X-CSRF-Token header; reload the page, or use the bearer token",
        serde_json::Value::Null,
    )
}

pub(super) fn unauthorized() -> Reply {
    reply::with_header(
        reply::error(
            401,
            "unauthorized",
            "missing or wrong token: send `Authorization: Bearer <token>` (the token is in config/api-token or DBAAS_API_TOKEN)",
            serde_json::Value::Null,
        ),
        "www-authenticate",
        "Bearer",
    )
}

/// Reads the body up to `limit` bytes; larger is a 413.
pub(super) async fn read_body<S, B>(
    mut body: S,
    limit: usize,
) -> std::result::Result<Vec<u8>, Reply>
where
    S: futures_util::Stream<Item = std::result::Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| {
            reply::error(
                400,
                "bad_request",
                format!("reading the body: {e}"),
                serde_json::Value::Null,
            )
        })?;
        if buf.len() + chunk.remaining() > limit {
            return Err(reply::error(
                413,
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
                serde_json::Value::Null,
            ));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            buf.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(buf.to_vec())
}

pub(super) async fn recover(r: warp::Rejection) -> std::result::Result<Reply, Infallible> {
    let reply = if r.is_not_found() {
        reply::error(404, "not_found", "no such route", serde_json::Value::Null)
    } else {
        reply::error(
            400,
            "bad_request",
            format!("{r:?}"),
            serde_json::Value::Null,
        )
    };
    Ok(reply)
}
