//! The router: one warp filter takes every request, resolves (method, path)
//! against the route table, and dispatches to a handler; an unknown path is
//! a 404, a known path with another method a 405.

use super::reply::{self, Reply};
use super::route_table::{self as routes};
use super::state::AppState;
use super::{backups, console, database, docs, dumps, instances, monitoring, sql};
use crate::error::{Error, Result};
use std::sync::Arc;
use warp::http::{HeaderMap, Method};

/// A request's body as a stream of chunks, for the routes that take it
/// that way (an import is not held whole).
pub type BodyStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = std::result::Result<bytes::Bytes, warp::Error>> + Send>,
>;

pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    /// The body, read whole; empty for a route that streams it.
    pub body: Vec<u8>,
    /// The body of a route that streams it, for its handler to take.
    pub stream: std::sync::Mutex<Option<BodyStream>>,
    /// The route the path matched, and its `{…}` values.
    pub route: Option<&'static routes::Route>,
    pub params: Vec<String>,
}

impl Request {
    /// The streamed body (once).
    pub fn take_stream(&self) -> Option<BodyStream> {
        self.stream.lock().ok()?.take()
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// A true/false (or 1/0) query parameter; `default` when it is absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool> {
        match self.query_param(name).as_deref() {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(Error::invalid(
                name,
                format!("'{other}' is not true or false"),
            )),
        }
    }
}

/// The route of a path, found once per request: its entry in the table
/// (public? streamed body? methods), its `{…}` values, and the label of the
/// request metrics (the template, never the values: a label per instance or
/// per unknown path would grow without bound).
pub(super) fn resolve(path: &str) -> (Option<&'static routes::Route>, Vec<String>, &'static str) {
    let Some(seg) = segments(path) else {
        return (None, vec![], "unmatched");
    };
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match routes::lookup(&seg) {
        Some((r, p)) => (
            Some(r),
            p.into_iter().map(String::from).collect(),
            r.label(),
        ),
        None if seg.is_empty() => (None, vec![], "/"),
        None => (None, vec![], "unmatched"),
    }
}

/// Percent-decoded path segments; None when a segment is not valid UTF-8.
pub(super) fn segments(path: &str) -> Option<Vec<String>> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Finds the route in the table, checks its method, and answers with the
/// one handler for it; every handler's error is answered in the JSON error
/// shape here, by `reply::from_error`.
pub(super) async fn handle(state: &Arc<AppState>, req: &Request) -> Reply {
    let Some(route) = req.route else {
        return no_such_route(req);
    };
    if !route.methods.contains(&req.method) {
        return method_not_allowed(route.methods);
    }
    dispatch(state, req, route.path, &req.params)
        .await
        .unwrap_or_else(|e| reply::from_error(&e))
}

/// One arm per route and method of the table (routes.rs).
pub(super) async fn dispatch(
    state: &Arc<AppState>,
    req: &Request,
    route: &str,
    p: &[String],
) -> std::result::Result<Reply, Error> {
    let param = |i: usize| p.get(i).map_or("", String::as_str);
    let (id, table) = (param(0), param(1));
    let m = &req.method;
    match route {
        "/" => console::page(state, req, "overview", "", "").await,
        "/login" if *m == Method::GET => console::login_page(state, req),
        "/login" => console::login(state, req).await,
        "/logout" => Ok(console::logout(state, req)),
        "/ui/assets/*" => Ok(console::asset(&p.join("/"))),
        "/ui/instances/{id}" => console::page(state, req, "instance", id, "").await,
        "/ui/instances/{id}/tables" => console::page(state, req, "tables", id, "").await,
        "/ui/instances/{id}/tables/{table}" => console::page(state, req, "table", id, table).await,
        "/ui/instances/{id}/sql" => console::page(state, req, "sql", id, "").await,
        "/health" => Ok(instances::health(state)),
        "/openapi.json" => Ok(docs::openapi_json()),
        "/docs/*" => Ok(docs::swagger(&req.path, &p.join("/"))),
        "/redoc" => Ok(docs::redoc_page()),
        "/redoc/redoc.standalone.js" => {
            Ok(docs::redoc_js(state.home.settings.server.redoc_js.clone()).await)
        }
        "/instances" if *m == Method::GET => instances::list(state).await,
        "/instances" => instances::create(state, req).await,
        "/instances/{id}" if *m == Method::GET => instances::show(state, id).await,
        "/instances/{id}" if *m == Method::PATCH => instances::resize(state, req, id).await,
        "/instances/{id}" => instances::destroy(state, req, id).await,
        "/instances/{id}/credentials" => instances::credentials(state, id).await,
        "/instances/{id}/logs" => instances::logs(state, req, id).await,
        "/instances/{id}/start" => instances::action(state, req, id, "start").await,
        "/instances/{id}/stop" => instances::action(state, req, id, "stop").await,
        "/instances/{id}/restart" => instances::action(state, req, id, "restart").await,
        "/instances/{id}/move" => instances::move_to(state, req, id).await,
        "/instances/{id}/dump" => dumps::dump(state, req, id).await,
        "/instances/{id}/import" => dumps::import(state, req, id).await,
        "/instances/{id}/backups" if *m == Method::GET => backups::list(state, id).await,
        "/instances/{id}/backups" => backups::take(state, req, id).await,
        "/instances/{id}/backups/{label}" => backups::get(state, id, table).await,
        "/instances/{id}/restore" => backups::restore(state, req, id).await,
        "/instances/{id}/clone" => backups::clone(state, req, id).await,
        "/backups" => backups::list_all(state).await,
        "/nodes" => instances::nodes(state).await,
        "/database/{id}/tables" if *m == Method::GET => database::list_tables(state, req, id).await,
        "/database/{id}/tables" => database::create_table(state, req, id).await,
        "/database/{id}/tables/{table}" if *m == Method::GET => {
            database::describe_table(state, req, id, table).await
        }
        "/database/{id}/tables/{table}" => database::drop_table(state, req, id, table).await,
        "/database/{id}/tables/{table}/rows" => match *m {
            Method::GET => database::read_rows(state, req, id, table).await,
            Method::POST => database::insert_rows(state, req, id, table).await,
            Method::PATCH => database::update_rows(state, req, id, table).await,
            _ => database::delete_rows(state, req, id, table).await,
        },
        "/database/{id}/sql" => sql::sql(state, req, id).await,
        "/database/{id}/transaction" => sql::transaction(state, req, id).await,
        "/monitoring/{id}/metrics" => monitoring::samples(state, req, id).await,
        "/monitoring/{id}/metrics/summary" => monitoring::summary(state, id).await,
        "/monitoring/{id}/metrics/series" => monitoring::series(state, req, id).await,
        "/monitoring/summaries" => monitoring::summaries(state).await,
        "/monitoring/{id}/agent" => monitoring::agent(state, id).await,
        "/monitoring/{id}/agent/logs" => monitoring::agent_logs(state, req, id).await,
        "/monitoring/{id}/agent/restart" => monitoring::agent_restart(state, id).await,
        "/metrics" => monitoring::prometheus(state).await,
        // A fault hook for the tests of panic handling (DBAAS_TEST_FAULTS=1).
        "/_test/panic" if state.home.settings.server.test_faults => {
            panic!("a panic provoked through /_test/panic")
        }
        _ => Ok(no_such_route(req)),
    }
}

pub(super) fn no_such_route(req: &Request) -> Reply {
    reply::error(
        404,
        "not_found",
        format!("no such route: {}", req.path),
        serde_json::Value::Null,
    )
}

pub(crate) fn method_not_allowed(allowed: &[Method]) -> Reply {
    let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    reply::with_header(
        reply::error(
            405,
            "method_not_allowed",
            format!("method not allowed here; use {}", list.join(" or ")),
            serde_json::json!({ "allowed": list }),
        ),
        "allow",
        &list.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_segments() {
        assert_eq!(
            segments("/instances/a%20b").unwrap(),
            vec!["instances", "a b"]
        );
        assert_eq!(
            segments("/instances/..%2F..").unwrap(),
            vec!["instances", "../.."]
        );
        assert_eq!(segments("/").unwrap(), Vec::<String>::new());
        assert!(segments("/x/%ff").is_none());
        assert_eq!(segments("/x/%").unwrap(), vec!["x", "%"]);
    }
}

/// In-process tests of routing, auth, validation and the error shape
/// (warp::test); none of these reach Docker.
#[cfg(test)]
mod routing_tests {
    use super::*;
    use crate::api::MAX_BODY;
    use crate::home::Home;

    const TOKEN: &str = "0123456789abcdef0123";

    fn state() -> (crate::testing::TempDir, Arc<AppState>) {
        let dir = crate::testing::TempDir::new("api-unit");
        let home = Home::new(crate::settings::Settings::with_root(dir.to_path_buf()));
        (dir, Arc::new(AppState::new(home, TOKEN.to_string())))
    }

    async fn call(
        st: &Arc<AppState>,
        method: &str,
        path: &str,
        body: Option<&str>,
        auth: bool,
    ) -> (u16, serde_json::Value) {
        let mut req = warp::test::request().method(method).path(path);
        if auth {
            req = req.header("authorization", format!("Bearer {TOKEN}"));
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.reply(&crate::api::routes(st.clone())).await;
        let v = serde_json::from_slice(res.body()).unwrap_or(serde_json::Value::Null);
        (res.status().as_u16(), v)
    }

    fn code(v: &serde_json::Value) -> &str {
        v["error"]["code"].as_str().unwrap_or("")
    }

    /// PATCH below what the instance uses: 409 with nothing changed (on
    /// the fake engine, whose container reports 400 MB in use).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_resize_below_use_is_a_409() {
        let (_dir, st) = state();
        let home = st.home.clone();
        let fake = crate::ops::fake_engine_tests::fake_for(&home);
        let i = crate::registry::Instance::fixture("db_0000000d", "big", 45435);
        crate::ops::fake_engine_tests::recorded(&home, &i);
        fake.exec_prints("419430400\n");
        let (s, v) = call(
            &st,
            "PATCH",
            "/instances/big",
            Some(r#"{"memory":"256m"}"#),
            true,
        )
        .await;
        assert_eq!((s, code(&v)), (409, "conflict"), "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("uses 400m"),
            "{v}"
        );
        let reg = crate::registry::load(&home).unwrap();
        assert_eq!(reg.find("db_0000000d").unwrap().memory, i.memory);
    }

    #[tokio::test]
    async fn auth_is_required_except_for_public_routes() {
        let (dir, st) = state();
        let (s, v) = call(&st, "GET", "/instances", None, false).await;
        assert_eq!((s, code(&v)), (401, "unauthorized"));
        let res = warp::test::request()
            .path("/instances")
            .header("authorization", "Bearer wrong-token-wrong-toke")
            .reply(&crate::api::routes(st.clone()))
            .await;
        assert_eq!(res.status(), 401);
        let (s, v) = call(&st, "GET", "/instances", None, true).await;
        assert_eq!((s, v), (200, serde_json::json!([])));
        let (s, v) = call(&st, "GET", "/openapi.json", None, false).await;
        assert_eq!(s, 200);
        assert!(v["paths"]["/instances"].is_object());
        let res = warp::test::request()
            .path("/docs/")
            .reply(&crate::api::routes(st.clone()))
            .await;
        assert_eq!(res.status(), 200);
        drop(dir);
    }

    #[tokio::test]
    async fn routing_errors_have_the_json_shape() {
        let (dir, st) = state();
        for (method, path, status, c) in [
            ("GET", "/nope", 404, "not_found"),
            ("GET", "/instances/x/y/z", 404, "not_found"),
            ("PUT", "/instances", 405, "method_not_allowed"),
            ("PUT", "/instances/x", 405, "method_not_allowed"),
            ("GET", "/instances/x/start", 405, "method_not_allowed"),
            ("GET", "/instances/nope", 404, "not_found"),
            ("GET", "/instances/..%2F..%2Fetc", 404, "not_found"),
            ("DELETE", "/instances/nope", 404, "not_found"),
            ("POST", "/instances/nope/start", 404, "not_found"),
            ("POST", "/health", 405, "method_not_allowed"),
        ] {
            let (s, v) = call(&st, method, path, None, true).await;
            assert_eq!((s, code(&v)), (status, c), "{method} {path}: {v}");
            assert!(v["error"]["message"].is_string());
        }
        drop(dir);
    }

    #[tokio::test]
    async fn bodies_are_validated_before_anything_happens() {
        let (dir, st) = state();
        for (body, status, c) in [
            ("{not json", 400, "invalid_json"),
            (r#"{"name":"x","bogus":1}"#, 400, "invalid_json"),
            (r#"{"name":5}"#, 400, "invalid_json"),
            (r#"{"name":"Bad Name"}"#, 400, "invalid"),
            (r#"{"name":"x","version":14}"#, 400, "invalid"),
            (r#"{"name":"x","memory":"-1g"}"#, 400, "invalid"),
            (r#"{"name":"x","cpus":99999}"#, 400, "invalid"),
            (r#"{"name":"x","cpus":[1]}"#, 400, "invalid"),
            (r#"{"name":"x","port":80}"#, 400, "invalid"),
            (r#"{"name":"x","metrics_interval":0}"#, 400, "invalid"),
            (r#"{"name":"x","metrics_interval":"often"}"#, 400, "invalid"),
        ] {
            let (s, v) = call(&st, "POST", "/instances", Some(body), true).await;
            assert_eq!((s, code(&v)), (status, c), "{body}: {v}");
        }
        let (s, v) = call(
            &st,
            "POST",
            "/instances",
            Some(r#"{"name":"x","port":80}"#),
            true,
        )
        .await;
        assert_eq!(
            (s, v["error"]["detail"]["field"].as_str()),
            (400, Some("port"))
        );
        // Not JSON at all.
        let res = warp::test::request()
            .method("POST")
            .path("/instances")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body("name=x")
            .reply(&crate::api::routes(st.clone()))
            .await;
        assert_eq!(res.status(), 415);
        // Too large.
        let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(MAX_BODY + 10));
        let (s, v) = call(&st, "POST", "/instances", Some(&big), true).await;
        assert_eq!((s, code(&v)), (413, "payload_too_large"));
        assert!(!st.home.registry_path().exists(), "nothing was written");
        drop(dir);
    }
}
