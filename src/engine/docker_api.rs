//! The reads worth asking the Docker daemon for directly, over its unix
//! socket: a home's containers and an image's id. At 200 instances the
//! `docker ps` subprocess (a CLI start and a Go template per container) is
//! most of a status refresh, and a create's preflight waits on the image.
//! Everything else stays the CLI's: where this cannot answer (another
//! daemon, a context, a socket it may not open), the caller asks the CLI,
//! which reports any error in full.

use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The daemon answers a list in milliseconds; the bound only catches a hung one.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// The oldest API that Engine 20.10 and later all speak.
const API_VERSION: &str = "v1.41";
/// 200 instances' containers are ~1 MB of JSON; far past that is not a list.
const MAX_RESPONSE: u64 = 64 << 20;

/// One container as `GET /containers/json` describes it.
#[derive(Debug, serde::Deserialize)]
pub struct ApiContainer {
    #[serde(rename = "Names", default)]
    pub names: Vec<String>,
    #[serde(rename = "State", default)]
    pub state: String,
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "Labels", default)]
    pub labels: Option<std::collections::HashMap<String, String>>,
}

/// All containers (running or not) carrying every one of `labels`
/// (`key=value`), or why the socket could not tell.
pub async fn containers(socket: &Path, labels: &[String]) -> Result<Vec<ApiContainer>, String> {
    let filters = serde_json::json!({ "label": labels }).to_string();
    let path = format!(
        "/{API_VERSION}/containers/json?all=1&filters={}",
        percent_encode(&filters)
    );
    let body = get_bounded(socket, &path)
        .await?
        .ok_or("the daemon does not know /containers/json")?;
    serde_json::from_slice(&body).map_err(|e| format!("unexpected container list: {e}"))
}

/// An image's id (`sha256:...`), None when the daemon has no such image.
pub async fn image_id(socket: &Path, image: &str) -> Result<Option<String>, String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
    if image.is_empty() || !image.chars().all(plain) {
        return Err(format!("'{image}' is left to the CLI"));
    }
    let Some(body) = get_bounded(socket, &format!("/{API_VERSION}/images/{image}/json")).await?
    else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(rename = "Id")]
        id: String,
    }
    let img: Image =
        serde_json::from_slice(&body).map_err(|e| format!("unexpected image answer: {e}"))?;
    Ok(Some(img.id))
}

async fn get_bounded(socket: &Path, path: &str) -> Result<Option<Vec<u8>>, String> {
    tokio::time::timeout(API_TIMEOUT, get(socket, path))
        .await
        .map_err(|_| format!("no answer within {API_TIMEOUT:?}"))?
}

/// A bare HTTP/1.0 GET: the daemon answers it unchunked and closes.
async fn get(socket: &Path, path: &str) -> Result<Option<Vec<u8>>, String> {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("writing to {}: {e}", socket.display()))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("reading from {}: {e}", socket.display()))?;
    split_response(&raw)
}

/// The body of a 200 answer, None for a 404; anything else is the status line.
fn split_response(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an answer without headers")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head.lines().next().unwrap_or("");
    match status.split_whitespace().nth(1) {
        Some("200") => {}
        Some("404") => return Ok(None),
        _ => return Err(format!("the daemon answered '{status}'")),
    }
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"))
    {
        return Err("a chunked answer to an HTTP/1.0 request".to_string());
    }
    Ok(Some(raw[end + 4..].to_vec()))
}

/// Query-string encoding: letters, digits and `-._~` stay, the rest is %XX.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_answers() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[]";
        assert_eq!(split_response(ok).unwrap().unwrap(), b"[]");
        let missing = b"HTTP/1.0 404 Not Found\r\n\r\n{}";
        assert_eq!(split_response(missing).unwrap(), None);
        let bad = b"HTTP/1.0 400 Bad Request\r\n\r\n{\"message\":\"x\"}";
        assert!(split_response(bad).unwrap_err().contains("400"));
        assert!(split_response(b"garbage").is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]";
        assert!(split_response(chunked).is_err());
    }

    #[test]
    fn encodes_filters() {
        assert_eq!(
            percent_encode(r#"{"label":["a=b"]}"#),
            "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
        );
    }
}
