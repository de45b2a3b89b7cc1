//! /openapi.json (generated from the handlers by utoipa), /docs (Swagger UI,
//! carried by utoipa-swagger-ui's `vendored` feature) and /redoc (ReDoc's
//! standalone bundle, installed by scripts/setup-host.sh from the PyPI
//! package drf-spectacular-sidecar). Nothing is loaded from a CDN.

use super::reply::{self, Reply};
use super::{backups, database, dumps, instances, monitoring, sql};
use std::sync::{Arc, OnceLock};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use warp::http::StatusCode;

#[derive(OpenApi)]
#[openapi(
    info(title = "dbaas", description = "Self-hosted PostgreSQL instances on one Docker host. Every route except /health, /docs, /redoc and /openapi.json needs `Authorization: Bearer <token>`. Every error has the shape {\"error\": {\"code\", \"message\", \"detail\"}}."),
    paths(
        instances::health,
        instances::list,
        instances::create,
        instances::show,
        instances::credentials,
        instances::start_doc,
        instances::stop_doc,
        instances::restart_doc,
        instances::destroy,
        instances::resize,
        instances::move_to,
        instances::logs,
        instances::nodes,
        dumps::dump,
        dumps::import,
        backups::list,
        backups::list_all,
        backups::get,
        backups::take,
        backups::restore,
        backups::clone,
        database::list_tables,
        database::create_table,
        database::describe_table,
        database::drop_table,
        database::read_rows,
        database::insert_rows,
        database::update_rows,
        database::delete_rows,
        sql::sql,
        sql::transaction,
        monitoring::samples,
        monitoring::summary,
        monitoring::series,
        monitoring::summaries,
        monitoring::agent,
        monitoring::agent_logs,
        monitoring::agent_restart,
        monitoring::prometheus,
    ),
    components(schemas(
        crate::ops::InstanceView,
        crate::metrics::series::Series,
        monitoring::InstanceSummary,
        crate::ops::Created,
        instances::CreateBody,
        instances::ResizeBody,
        instances::MoveBody,
        crate::ops::relocate::Moved,
        crate::ops::resize::Resized,
        instances::Health,
        crate::ops::nodes::NodeView,
        crate::ops::nodes::Placed,
        crate::ops::nodes::NodeInfo,
        crate::ops::Credentials,
        reply::LogLines,
        instances::Deleted,
        dumps::Imported,
        backups::BackupBody,
        backups::RestoreBody,
        backups::CloneBody,
        crate::ops::backup::BackupList,
        crate::ops::backup::policy::Configured,
        crate::ops::backup::restore::InPlace,
        crate::backups::Backup,
        crate::backups::Verification,
        crate::backups::Failure,
        crate::backups::Window,
        crate::backups::Report,
        crate::backups::BackupHealth,
        crate::backups::BackupPolicy,
        reply::ErrorBody,
        reply::ErrorInfo,
        sql::SqlBody,
        sql::TransactionBody,
        sql::TransactionResult,
        database::Dropped,
        database::Count,
        crate::db::exec::SqlResult,
        crate::db::exec::SqlColumn,
        crate::db::exec::Statement,
        crate::db::exec::Isolation,
        crate::db::catalog::TableSummary,
        crate::db::catalog::TableDescription,
        crate::db::catalog::Column,
        crate::db::catalog::Constraint,
        crate::db::catalog::ForeignKey,
        crate::db::catalog::Index,
        crate::db::catalog::NewTable,
        crate::db::catalog::NewColumn,
        crate::metrics::summary::Summary,
        crate::ops::AgentStatus,
        crate::ops::Status,
    )),
    modifiers(&BearerAuth),
    tags((name = "instances", description = "Instance lifecycle"),
        (name = "database", description = "Tables, rows (PostgREST's grammar), SQL and transactions on a running instance, as its app user"),
        (name = "backups", description = "pgBackRest backups, each verified by a restore; point-in-time restore, in place or into a new instance; clones"),
        (name = "monitoring", description = "The agent's samples, summaries, the agent itself, and Prometheus /metrics"),
        (name = "health"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn openapi_bytes() -> &'static [u8] {
    static SPEC: OnceLock<Vec<u8>> = OnceLock::new();
    SPEC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("spec serializes")
            .into_bytes()
    })
}

pub fn openapi_json() -> Reply {
    reply::bytes(StatusCode::OK, "application/json", openapi_bytes())
}

/// The docs pages may not be framed (clickjacking) nor load anything from
/// elsewhere. ReDoc injects its styles as <style> elements and may start a
/// worker from a blob, hence those two allowances.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn protected(mut r: Reply) -> Reply {
    use warp::http::HeaderValue;
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(DOCS_CSP),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub fn swagger(full_path: &str, tail: &str) -> Reply {
    protected(swagger_file(full_path, tail))
}

fn swagger_file(full_path: &str, tail: &str) -> Reply {
    // Swagger UI's relative asset links need the trailing slash.
    if !full_path.ends_with('/') && tail.is_empty() {
        let mut r = reply::bytes(StatusCode::MOVED_PERMANENTLY, "text/plain", "");
        r.headers_mut()
            .insert("location", warp::http::HeaderValue::from_static("/docs/"));
        return r;
    }
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")))
        .clone();
    match utoipa_swagger_ui::serve(tail, config) {
        Ok(Some(file)) => reply::bytes(StatusCode::OK, &file.content_type, file.bytes.into_owned()),
        Ok(None) => reply::error(
            404,
            "not_found",
            "no such file in Swagger UI",
            serde_json::Value::Null,
        ),
        Err(e) => reply::error(500, "internal", e.to_string(), serde_json::Value::Null),
    }
}

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dbaas API (ReDoc)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/redoc.standalone.js"></script></body></html>
"#;

pub fn redoc_page() -> Reply {
    protected(reply::bytes(
        StatusCode::OK,
        "text/html; charset=utf-8",
        REDOC_PAGE,
    ))
}

/// ReDoc's bundle (DBAAS_REDOC_JS), read on a blocking thread.
pub async fn redoc_js(path: std::path::PathBuf) -> Reply {
    let read = tokio::task::spawn_blocking({
        let path = path.clone();
        move || std::fs::read(path)
    })
    .await;
    let path = path.display();
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))) {
        Ok(bytes) => reply::bytes(StatusCode::OK, "application/javascript", bytes),
        Err(e) => reply::error(
            503,
            "redoc_missing",
            format!("ReDoc's bundle is not installed ({path}: {e}); run scripts/setup-host.sh"),
            serde_json::Value::Null,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_covers_every_route() {
        let spec: serde_json::Value = serde_json::from_slice(openapi_bytes()).unwrap();
        let paths = spec["paths"].as_object().unwrap();
        for p in [
            "/health",
            "/instances",
            "/instances/{id}",
            "/instances/{id}/credentials",
            "/instances/{id}/start",
            "/instances/{id}/stop",
            "/instances/{id}/restart",
            "/instances/{id}/logs",
        ] {
            assert!(paths.contains_key(p), "{p} missing from the spec");
        }
        assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
        assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    }

    /// utoipa keys schemas by their type's bare name: two types of one name
    /// would silently replace each other (a backup's `Health` once replaced
    /// /health's). Each schema here has the property its own type has.
    #[test]
    fn schemas_of_one_name_do_not_replace_each_other() {
        let spec: serde_json::Value = serde_json::from_slice(openapi_bytes()).unwrap();
        let schemas = &spec["components"]["schemas"];
        for (schema, property) in [
            ("Health", "docker"),
            ("BackupHealth", "concerns"),
            ("Backup", "verification"),
            ("Created", "password"),
            ("InstanceView", "backup_health"),
        ] {
            assert!(
                schemas[schema]["properties"][property].is_object(),
                "{schema} lacks {property}: another type of that name replaced it"
            );
        }
    }
}
