//! JSON replies and the one error shape of the API:
//! `{"error": {"code": "...", "message": "...", "detail": ...}}`.

use crate::error::Error;
use serde::Serialize;
use warp::http::{header, Response, StatusCode};
use warp::hyper::Body;

pub type Reply = Response<Body>;

/// The error body, as documented in the OpenAPI spec.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorInfo {
    /// Machine-readable: invalid, not_found, conflict, unauthorized, ...
    pub code: String,
    pub message: String,
    /// Extra context: the field, the command and its stderr, PostgreSQL's
    /// detail, ...
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// PostgreSQL's hint (or null), for SQL errors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub hint: Option<serde_json::Value>,
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Reply {
    let bytes = serde_json::to_vec(body).expect("serializable");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .expect("valid response")
}

pub fn error(
    status: u16,
    code: &str,
    message: impl Into<String>,
    detail: serde_json::Value,
) -> Reply {
    // Always an object, so clients (and the schema) need no null case.
    let detail = if detail.is_null() {
        serde_json::json!({})
    } else {
        detail
    };
    json(
        status,
        &ErrorBody {
            error: ErrorInfo {
                code: code.to_string(),
                message: message.into(),
                detail,
                hint: None,
            },
        },
    )
}

/// Maps a typed error to its status, code and detail (the field that is
/// wrong, or the failed command with the tail of its stderr).
/// DBAAS_HOME as the server knows it: error messages sent to clients name
/// paths relative to it, never the host's absolute paths (the server log
/// keeps those).
static HOME_ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn hide_paths_under(root: &std::path::Path) {
    let _ = HOME_ROOT.set(root.to_string_lossy().into_owned());
}

/// `text` with the home's absolute path replaced by `$DBAAS_HOME`.
pub fn redact(text: &str) -> String {
    match HOME_ROOT.get() {
        Some(root) if root.len() > 1 => text.replace(root.as_str(), "$DBAAS_HOME"),
        _ => text.to_string(),
    }
}

pub fn from_error(e: &Error) -> Reply {
    let inner = match e {
        Error::CreateFailed { cause, .. } => cause.as_ref(),
        other => other,
    };
    if let Error::Sql(f) = inner {
        return sql_error(f);
    }
    let detail = match inner {
        Error::Invalid { field, .. } => serde_json::json!({ "field": field }),
        Error::Compose(f) => serde_json::json!({
            "command": redact(&f.cmd),
            "status": f.status,
            "stderr": redact(&f.stderr_tail),
        }),
        Error::Timeout { secs, .. } => serde_json::json!({ "timeout_seconds": secs }),
        Error::InvalidJson { line, column, .. } => {
            serde_json::json!({ "line": line, "column": column })
        }
        _ => serde_json::Value::Null,
    };
    if let Error::Busy(_) = inner {
        return with_header(
            error(503, e.code(), redact(&e.to_string()), detail),
            "retry-after",
            "1",
        );
    }
    if e.http_status() >= 500 {
        log::warn!("request failed: {e}");
    }
    error(e.http_status(), e.code(), redact(&e.to_string()), detail)
}

/// A PostgreSQL error: the SQLSTATE as the code, its message, and its
/// detail, position and (in a transaction) the failing statement's index.
fn sql_error(f: &crate::error::SqlFailure) -> Reply {
    let status = crate::error::http_status_for_sqlstate(&f.sqlstate);
    if status >= 500 {
        log::warn!("SQL failed: {f}");
    }
    let mut detail = serde_json::Map::new();
    if let Some(d) = &f.detail {
        detail.insert("detail".into(), d.clone().into());
    }
    if let Some(p) = f.position {
        detail.insert("position".into(), p.into());
    }
    if let Some(i) = f.statement {
        detail.insert("statement".into(), i.into());
    }
    json(
        status,
        &ErrorBody {
            error: ErrorInfo {
                code: f.sqlstate.clone(),
                message: match f.statement {
                    Some(i) => format!("statement {i}: {}", f.message),
                    None => f.message.clone(),
                },
                detail: detail.into(),
                hint: Some(f.hint.clone().map_or(serde_json::Value::Null, Into::into)),
            },
        },
    )
}

/// The request body as JSON of type `T`: 415 unless it is declared JSON,
/// 400 `invalid_json` (with line and column) unless it parses as a `what`.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &warp::http::HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<T, Error> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(Error::NotJson(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| Error::InvalidJson {
        message: format!("the body is not a valid {what}: {e}"),
        line: e.line(),
        column: e.column(),
    })
}

/// `?tail=N` of the log routes: default 100; ops checks the bound.
pub fn tail_param(req: &super::Request) -> Result<u32, Error> {
    match req.query_param("tail").map(|t| t.parse::<u32>()) {
        None => Ok(100),
        Some(Ok(n)) => Ok(n),
        Some(Err(_)) => Err(Error::invalid("tail", "use a whole number from 0 to 10000")),
    }
}

/// `{"lines": [...]}`: a log's newest lines (both streams: PostgreSQL and
/// the agent write to stderr).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LogLines {
    pub lines: Vec<String>,
}

pub fn with_header(mut r: Reply, name: &'static str, value: &str) -> Reply {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

pub fn bytes(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Reply {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .expect("valid response")
}
