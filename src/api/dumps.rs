//! GET /instances/{id}/dump and POST /instances/{id}/import: `dbaasctl dump`
//! and `import` over HTTP, streamed both ways through `ops::dump`.

use super::reply::{self, ErrorBody, Reply};
use super::state::AppState;
use super::{Request, BODY_TIMEOUT};
use crate::error::Error;
use crate::ops::dump::{self, DumpFormat};
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Bytes read from pg_dump at a time.
const CHUNK: usize = 64 * 1024;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// custom or plain, as the dump's first bytes said.
    pub format: String,
    pub bytes: u64,
}

#[utoipa::path(get, path = "/instances/{id}/dump", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name"),
        ("format" = Option<String>, Query, description = "custom (pg_restore's, compressed; the default) or plain (SQL)")),
    responses((status = 200, description = "pg_dump of the app database, streamed (no owners, no grants)", content_type = "application/octet-stream"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Instance not running", body = ErrorBody), (status = 500, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn dump(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let format = DumpFormat::parse(req.query_param("format").as_deref().unwrap_or("custom"))?;
    let mut piped = dump::dump_piped(&state.home, key, format).await?;
    let mut out = piped
        .child
        .stdout
        .take()
        .ok_or_else(|| Error::Failed("pg_dump has no output pipe".into()))?;
    // The first chunk decides the status: pg_dump failing at once (it
    // cannot connect, say) is an error reply, not an empty 200.
    let mut first = vec![0u8; CHUNK];
    let n = out
        .read(&mut first)
        .await
        .map_err(|e| Error::io("reading pg_dump's output", e))?;
    if n == 0 {
        piped.finish().await?;
        let empty = reply::bytes(warp::http::StatusCode::OK, "application/octet-stream", "");
        return Ok(empty);
    }
    first.truncate(n);
    let (mut tx, body) = warp::hyper::Body::channel();
    tokio::spawn(async move {
        let mut chunk = first;
        loop {
            if chunk.is_empty() {
                break;
            }
            if tx.send_data(chunk.into()).await.is_err() {
                // The client left: dropping the child stops pg_dump.
                return;
            }
            let mut next = vec![0u8; CHUNK];
            match out.read(&mut next).await {
                Ok(k) => {
                    next.truncate(k);
                    chunk = next;
                }
                Err(_) => return tx.abort(),
            }
        }
        // A dump that failed half-way must not look complete.
        if let Err(e) = piped.finish().await {
            log::warn!("dump failed while streaming: {e}");
            tx.abort();
        }
    });
    let (ct, ext) = match format {
        DumpFormat::Custom => ("application/octet-stream", "dump"),
        DumpFormat::Plain => ("application/sql", "sql"),
    };
    let r = reply::bytes(warp::http::StatusCode::OK, ct, body);
    Ok(reply::with_header(
        r,
        "content-disposition",
        &format!("attachment; filename=\"{}.{ext}\"", sanitize(key)),
    ))
}

/// A file name from an instance key (names are validated already; ids too).
fn sanitize(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[utoipa::path(post, path = "/instances/{id}/import", tag = "instances",
    params(("id" = String, Path, description = "Instance id or name")),
    request_body(content = Vec<u8>, description = "A dump: custom format (pg_restore) or plain SQL, told apart by its first bytes; streamed, no size limit", content_type = "application/octet-stream"),
    responses((status = 200, body = Imported),
        (status = 400, description = "The dump failed to load (nothing was changed: one transaction); the message has the tool's error", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
        (status = 409, description = "Instance not running", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(state: &Arc<AppState>, req: &Request, key: &str) -> Result<Reply, Error> {
    let mut body = req
        .take_stream()
        .ok_or_else(|| Error::Failed("the request body was already read".into()))?;
    // Enough of the start to tell the format.
    let mut head = Vec::new();
    while head.len() < 5 {
        match next_chunk(&mut body).await? {
            Some(c) => head.extend_from_slice(&c),
            None => break,
        }
    }
    if head.is_empty() {
        return Err(Error::invalid(
            "dump",
            "the body is empty: send a dump file",
        ));
    }
    let custom = dump::is_custom(&head);
    let mut importer = dump::Importer::start(&state.home, key, custom).await?;
    let mut bytes = head.len() as u64;
    let mut chunk = Some(bytes::Bytes::from(head));
    // Any error here drops the importer unfinished: nothing is committed.
    while let Some(c) = chunk {
        if !importer.write(&c).await {
            break;
        }
        chunk = next_chunk(&mut body).await?;
        bytes += chunk.as_ref().map_or(0, |c| c.len() as u64);
    }
    importer.finish().await?;
    let format = if custom { "custom" } else { "plain" };
    Ok(reply::json(
        200,
        &Imported {
            format: format.into(),
            bytes,
        },
    ))
}

/// The next chunk of the body, waiting at most `BODY_TIMEOUT` for it.
async fn next_chunk(body: &mut super::BodyStream) -> Result<Option<bytes::Bytes>, Error> {
    match tokio::time::timeout(BODY_TIMEOUT, body.next()).await {
        Err(_) => Err(Error::Timeout {
            what: "waiting for the next part of the dump".into(),
            secs: BODY_TIMEOUT.as_secs(),
        }),
        Ok(None) => Ok(None),
        Ok(Some(Ok(c))) => Ok(Some(c)),
        Ok(Some(Err(e))) => Err(Error::invalid("body", format!("reading the body: {e}"))),
    }
}
