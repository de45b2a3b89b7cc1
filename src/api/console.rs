//! The web console: sign-in and the pages at `/` and under `/ui/`. Pages
//! are Askama templates compiled into the binary, with one stylesheet and
//! one script (templates/console/); the script draws each page from the
//! same JSON API a client uses, with the session cookie and the CSRF token
//! (session.rs) instead of the bearer token, which never reaches the
//! browser's storage or a URL. The overview's first data is in its page, so
//! it paints without waiting for a request.

use super::reply::{self, Reply};
use super::session::{self, constant_time_eq, Session};
use super::state::AppState;
use super::Request;
use crate::error::Error;
use crate::registry::State;
use askama::Template;
use std::sync::Arc;
use warp::http::{header, Response, StatusCode};

const CSS: &str = include_str!("../../templates/console/console.css");
const JS: &str = include_str!("../../templates/console/console.js");

/// Pages may load only this server's own script, style and images, and may
/// not be framed (clickjacking).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "console/login.html")]
struct Login<'a> {
    error: &'a str,
}

#[derive(Template)]
#[template(path = "console/page.html")]
struct Page<'a> {
    /// overview, instance, tables, table or sql.
    page: &'a str,
    title: &'a str,
    csrf: &'a str,
    id: &'a str,
    name: &'a str,
    table: &'a str,
    versions: &'a [u32],
    /// JSON for the script, made safe to sit in a <script> element.
    data: &'a str,
}

fn html(status: StatusCode, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("content-security-policy", CSP)
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
        // Not no-referrer: with it, a form sends `Origin: null`, and the
        // origin check refuses the console's own sign-in.
        .header("referrer-policy", "same-origin")
        .body(body.into())
        .expect("valid response")
}

fn redirect(to: &str) -> Reply {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Default::default())
        .expect("valid response")
}

fn render(t: &impl Template) -> Result<String, Error> {
    t.render().map_err(|e| {
        log::error!("rendering a console page: {e}");
        Error::Failed("the page failed to render (see the server log)".into())
    })
}

pub fn asset(name: &str) -> Reply {
    let (ct, body) = match name {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        _ => return reply::error(404, "not_found", "no such asset", serde_json::Value::Null),
    };
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, ct)
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff")
        .body(body.into())
        .expect("valid response")
}

pub fn login_page(state: &AppState, req: &Request) -> Result<Reply, Error> {
    if state.sessions.get(&req.headers).is_some() {
        return Ok(redirect("/"));
    }
    Ok(html(StatusCode::OK, render(&Login { error: "" })?))
}

pub async fn login(state: &AppState, req: &Request) -> Result<Reply, Error> {
    if !session::same_origin(&req.headers) {
        return Ok(forbidden_html());
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&req.body).unwrap_or_default();
    let token = form
        .iter()
        .find(|(k, _)| k == "token")
        .map_or("", |(_, v)| v.trim());
    if token.is_empty() || !constant_time_eq(token.as_bytes(), state.token().as_bytes()) {
        // The bearer path's backoff, shared: guessing stays slow even for
        // a token chosen by hand, and parallel guesses wait their turn.
        session::wrong_token_backoff().await;
        let error = if token.is_empty() {
            "Enter the API token."
        } else {
            "That is not this server's API token. It is in config/api-token (or DBAAS_API_TOKEN), printed by the first `dbaasctl serve` and by `make demo`."
        };
        return Ok(html(StatusCode::UNAUTHORIZED, render(&Login { error })?));
    }
    let (id, _) = state.sessions.create();
    Ok(reply::with_header(
        redirect("/"),
        "set-cookie",
        &session::set_cookie(&id),
    ))
}

pub fn logout(state: &AppState, req: &Request) -> Reply {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&req.body).unwrap_or_default();
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    match state.sessions.get(&req.headers) {
        Some(s)
            if session::same_origin(&req.headers)
                && constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) =>
        {
            state.sessions.end(&req.headers);
            reply::with_header(redirect("/login"), "set-cookie", &session::clear_cookie())
        }
        Some(_) => forbidden_html(),
        None => redirect("/login"),
    }
}

fn forbidden_html() -> Reply {
    html(
        StatusCode::FORBIDDEN,
        "<!doctype html><title>Refused</title><p>Refused: this request did not come from this server's own page. Reload the page and try again.</p>".into(),
    )
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON that can sit inside a <script> element: no `<`, `>` or `&` that
/// could close it.
fn script_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A page of the console: the sign-in page without a session.
pub async fn page(
    state: &Arc<AppState>,
    req: &Request,
    page: &str,
    key: &str,
    table: &str,
) -> Result<Reply, Error> {
    let Some(sess) = state.sessions.get(&req.headers) else {
        return Ok(redirect("/login"));
    };
    let versions = crate::validate::SUPPORTED_VERSIONS;
    if page == "overview" {
        return overview(state, &sess, versions).await;
    }
    let inst = match super::instances::find(state, key) {
        Ok(i) => i,
        Err(e @ Error::NotFound { .. }) => {
            let m = e.to_string();
            let body = format!(
                "<!doctype html><meta charset=utf-8><title>Not found</title><p>{}</p><p><a href=\"/\">All instances</a></p>",
                escape_html(&m)
            );
            return Ok(html(StatusCode::NOT_FOUND, body));
        }
        Err(e) => return Err(e),
    };
    let title = match page {
        "tables" => format!("Tables of {}", inst.name),
        "table" => format!("{table} on {}", inst.name),
        "sql" => format!("SQL on {}", inst.name),
        _ => inst.name.clone(),
    };
    let p = Page {
        page,
        title: &title,
        csrf: &sess.csrf,
        id: &inst.id,
        name: &inst.name,
        table,
        versions,
        data: "null",
    };
    Ok(html(StatusCode::OK, render(&p)?))
}

/// The overview with its first data: the instances and their summaries.
async fn overview(state: &Arc<AppState>, sess: &Session, versions: &[u32]) -> Result<Reply, Error> {
    let reg = state.registry()?;
    let should_run: Vec<&str> = reg
        .owned()
        .filter(|i| i.state == State::Running)
        .map(|i| i.id.as_str())
        .collect();
    // Docker down: the page still opens, with the registry's view.
    let ps = state
        .status_for(&should_run)
        .await
        .unwrap_or_else(|_| Arc::new(Default::default()));
    let views = crate::ops::views(&reg, &ps);
    let summaries = super::monitoring::all_summaries(state).await?;
    let data = script_json(&serde_json::json!({
        "instances": views,
        "summaries": summaries,
    }));
    let p = Page {
        page: "overview",
        title: "Instances",
        csrf: &sess.csrf,
        id: "",
        name: "",
        table: "",
        versions,
        data: &data,
    };
    Ok(html(StatusCode::OK, render(&p)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let s = script_json(&serde_json::json!({"a": "</script><b>&"}));
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["a"], "</script><b>&");
    }
}
