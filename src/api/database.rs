//! /database/{id}/...: tables, rows (PostgREST's grammar), SQL and
//! transactions over the instance's pool, through the data plane
//! (ops/data_plane.rs): the instance must be running.

use super::reply::{self, ErrorBody, Reply};
use super::state::AppState;
use super::Request;
use crate::db::catalog::{self, NewTable, TableDescription, TableSummary};
use crate::db::exec;
use crate::db::query::{self, Resolution};
use crate::db::rows::{self, Insert};
use crate::db::session;
use crate::db::Failure;
use crate::error::Error;
use crate::ops::data_plane::{InstancePool, PgConn};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Runs `f` on a connection of the instance's pool, under the data
/// plane's running rule (ops/data_plane.rs).
pub(super) async fn with_db<T, F>(state: &Arc<AppState>, key: &str, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnMut(&mut PgConn, &InstancePool) -> Result<T, Failure> + Send + 'static,
{
    let inst = state.registry()?.get(key)?.clone();
    let id = [inst.id.as_str()];
    state.ops.data.run(&inst, state.status_for(&id), f).await
}

fn pairs(req: &Request) -> Result<Vec<(String, String)>, Error> {
    serde_urlencoded::from_str(&req.query)
        .map_err(|e| Error::invalid("query", format!("the query string is not valid: {e}")))
}

fn schema_of(req: &Request) -> String {
    req.query_param("schema").unwrap_or_else(|| "public".into())
}

/// `Prefer: count=exact, return=minimal, resolution=merge-duplicates`
#[derive(Default)]
struct Prefer {
    count: bool,
    minimal: bool,
    resolution: Option<Resolution>,
}

fn prefer(req: &Request) -> Result<Prefer, Error> {
    let mut p = Prefer::default();
    for v in req.headers.get_all("prefer") {
        let v = v
            .to_str()
            .map_err(|_| Error::invalid("Prefer", "the header is not text"))?;
        for token in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match token {
                "count=exact" => p.count = true,
                "return=minimal" => p.minimal = true,
                "return=representation" => p.minimal = false,
                "resolution=merge-duplicates" => p.resolution = Some(Resolution::Merge),
                "resolution=ignore-duplicates" => p.resolution = Some(Resolution::Ignore),
                other => {
                    return Err(Error::invalid(
                        "Prefer",
                        format!("'{other}' is not one of count=exact, return=minimal, return=representation, resolution=merge-duplicates, resolution=ignore-duplicates"),
                    ))
                }
            }
        }
    }
    Ok(p)
}

pub(super) fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Error> {
    reply::json_body(&req.headers, &req.body, "body for this route")
}

#[utoipa::path(get, path = "/database/{id}/tables", tag = "database",
    params(("id" = String, Path, description = "Instance id or name"),
        ("schema" = Option<String>, Query, description = "schema (default public)")),
    responses((status = 200, body = [TableSummary]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Instance not running", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_tables(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let schema = schema_of(req);
    let res = with_db(state, id, move |c, _| catalog::list(&mut c.client, &schema)).await;
    Ok(reply::json(200, &res?))
}

#[utoipa::path(post, path = "/database/{id}/tables", tag = "database", request_body = NewTable,
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 201, body = TableDescription), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Table exists, or instance not running", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_table(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let t: NewTable = json_body(req)?;
    let res = with_db(state, id, move |c, p| {
        p.forget_tables();
        session::in_transaction(c, |c| catalog::create(&mut c.client, &t))?;
        catalog::describe(
            &mut c.client,
            t.schema.as_deref().unwrap_or("public"),
            &t.name,
        )
    })
    .await;
    Ok(reply::json(201, &res?))
}

#[utoipa::path(get, path = "/database/{id}/tables/{table}", tag = "database",
    params(("id" = String, Path, description = "Instance id or name"), ("table" = String, Path),
        ("schema" = Option<String>, Query, description = "schema (default public)")),
    responses((status = 200, body = TableDescription), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn describe_table(
    state: &Arc<AppState>,
    req: &Request,
    id: &str,
    table: &str,
) -> Result<Reply, Error> {
    let (schema, table) = (schema_of(req), table.to_string());
    let res = with_db(state, id, move |c, _| {
        catalog::describe(&mut c.client, &schema, &table)
    })
    .await;
    Ok(reply::json(200, &res?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Dropped {
    pub dropped: String,
}

#[utoipa::path(delete, path = "/database/{id}/tables/{table}", tag = "database",
    params(("id" = String, Path, description = "Instance id or name"), ("table" = String, Path),
        ("schema" = Option<String>, Query, description = "schema (default public)"),
        ("cascade" = Option<bool>, Query, description = "also drop what depends on the table")),
    responses((status = 200, body = Dropped), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Other objects depend on it (use cascade=true), or instance not running", body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn drop_table(
    state: &Arc<AppState>,
    req: &Request,
    id: &str,
    table: &str,
) -> Result<Reply, Error> {
    let cascade = req.flag("cascade", false)?;
    let (schema, table) = (schema_of(req), table.to_string());
    let res = with_db(state, id, move |c, p| {
        p.forget_tables();
        session::in_transaction(c, |c| {
            catalog::drop(&mut c.client, &schema, &table, cascade)
        })?;
        Ok(format!("{schema}.{table}"))
    })
    .await;
    Ok(reply::json(200, &Dropped { dropped: res? }))
}

/// Content-Range of a read: `0-99/12345`, `*/0` when empty, `/*` when the
/// total was not asked for.
fn content_range(offset: u64, n: usize, total: Option<i64>) -> String {
    let range = if n == 0 {
        "*".to_string()
    } else {
        format!("{offset}-{}", offset + n as u64 - 1)
    };
    match total {
        Some(t) => format!("{range}/{t}"),
        None => format!("{range}/*"),
    }
}

#[utoipa::path(get, path = "/database/{id}/tables/{table}/rows", tag = "database",
    params(("id" = String, Path, description = "Instance id or name"), ("table" = String, Path),
        ("schema" = Option<String>, Query, description = "schema (default public)"),
        ("select" = Option<String>, Query, description = "columns: col1,col2"),
        ("order" = Option<String>, Query, description = "col.asc|desc[.nullsfirst|.nullslast],..."),
        ("limit" = Option<u64>, Query, description = "default 100, at most DBAAS_MAX_ROWS (10000)"),
        ("offset" = Option<u64>, Query),
        ("Prefer" = Option<String>, Header, description = "count=exact adds the total to Content-Range")),
    description = "Filters: `col=[not.]op.value` with op one of eq neq gt gte lt lte like ilike (`*` is the wildcard), in.(a,b), is.null|not_null|true|false; several are ANDed.",
    responses((status = 200, description = "Array of row objects; Content-Range: 0-99/total", body = [Object]),
        (status = 400, description = "Bad filter, unknown column or bad value", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "Unknown instance or table", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn read_rows(
    state: &Arc<AppState>,
    req: &Request,
    id: &str,
    table: &str,
) -> Result<Reply, Error> {
    let pairs = pairs(req)?;
    let q = query::parse_read(&pairs, state.ops.data.settings().max_rows)?;
    let count = prefer(req)?.count;
    let (schema, table) = (schema_of(req), table.to_string());
    let offset = q.offset;
    let res = with_db(state, id, move |c, p| {
        rows::with_table(c, p, &schema, &table, |c, info| {
            rows::read_rows(c, info, &q, count)
        })
    })
    .await;
    let (rs, total) = res?;
    let range = content_range(offset, rs.rows.len(), total);
    Ok(reply::with_header(
        reply::bytes(
            warp::http::StatusCode::OK,
            "application/json",
            rs.objects_json(),
        ),
        "content-range",
        &range,
    ))
}

/// `{"count": n}`: the answer of a write with `Prefer: return=minimal`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Count {
    pub count: u64,
}

fn rows_reply(status: u16, rs: &exec::ResultSet, minimal: bool) -> Reply {
    if minimal {
        reply::json(
            status,
            &Count {
                count: rs.row_count,
            },
        )
    } else {
        reply::bytes(
            warp::http::StatusCode::from_u16(status).expect("status"),
            "application/json",
            rs.objects_json(),
        )
    }
}

#[utoipa::path(post, path = "/database/{id}/tables/{table}/rows", tag = "database",
    request_body(content = Object, description = "One row object, or an array of them (inserted in one statement)"),
    params(("id" = String, Path, description = "Instance id or name"), ("table" = String, Path),
        ("schema" = Option<String>, Query, description = "schema (default public)"),
        ("on_conflict" = Option<String>, Query, description = "unique columns for an upsert (default: the primary key)"),
        ("Prefer" = Option<String>, Header, description = "return=minimal; resolution=merge-duplicates|ignore-duplicates")),
    responses((status = 201, description = "The inserted rows, or {\"count\": n} with return=minimal", body = [Object]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Duplicate key, foreign key, or instance not running", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn insert_rows(
    state: &Arc<AppState>,
    req: &Request,
    id: &str,
    table: &str,
) -> Result<Reply, Error> {
    let pref = prefer(req)?;
    let body: Value = json_body(req)?;
    let rows: Vec<serde_json::Map<String, Value>> = match body {
        Value::Object(o) => vec![o],
        Value::Array(items) => {
            let mut rows = Vec::with_capacity(items.len());
            for (i, v) in items.into_iter().enumerate() {
                match v {
                    Value::Object(o) => rows.push(o),
                    _ => {
                        return Err(Error::invalid(
                            format!("body[{i}]"),
                            "each row must be a JSON object",
                        ))
                    }
                }
            }
            rows
        }
        _ => {
            return Err(Error::invalid(
                "body",
                "send a row object or an array of row objects",
            ))
        }
    };
    if rows.is_empty() {
        return Ok(rows_reply(201, &exec::ResultSet::default(), pref.minimal));
    }
    let on_conflict = req.query_param("on_conflict").map(|v| {
        v.split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
    });
    let (schema, table) = (schema_of(req), table.to_string());
    let minimal = pref.minimal;
    let res = with_db(state, id, move |c, p| {
        rows::with_table(c, p, &schema, &table, |c, info| {
            session::in_transaction(c, |c| {
                rows::insert_rows(
                    c,
                    info,
                    &Insert {
                        rows: &rows,
                        on_conflict: on_conflict.clone(),
                        resolution: pref.resolution,
                        returning: !minimal,
                    },
                )
            })
        })
    })
    .await;
    Ok(rows_reply(201, &res?, minimal))
}

/// Filters of a write; none at all is refused unless `all=true`.
fn write_filters(req: &Request) -> Result<Vec<query::Filter>, Error> {
    let pairs = pairs(req)?;
    let q = query::parse_read(&pairs, u64::MAX)?;
    if q.filters.is_empty() && !req.flag("all", false)? {
        return Err(Error::invalid(
            "filters",
            "this would touch every row: add a filter such as ?id=eq.1, or ?all=true to mean every row",
        ));
    }
    Ok(q.filters)
}

#[utoipa::path(patch, path = "/database/{id}/tables/{table}/rows", tag = "database",
    request_body(content = Object, description = "The columns to set: {\"col\": value}"),
    params(("id" = String, Path, description = "Instance id or name"), ("table" = String, Path),
        ("schema" = Option<String>, Query, description = "schema (default public)"),
        ("all" = Option<bool>, Query, description = "allow an update without filters"),
        ("Prefer" = Option<String>, Header, description = "return=minimal answers {\"count\": n}")),
    responses((status = 200, description = "The updated rows", body = [Object]),
        (status = 400, description = "No filter (and no all=true), bad filter or value", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_rows(
    state: &Arc<AppState>,
    req: &Request,
    id: &str,
    table: &str,
) -> Result<Reply, Error> {
    let pref = prefer(req)?;
    let filters = write_filters(req)?;
    let values: serde_json::Map<String, Value> = json_body(req)?;
    let (schema, table) = (schema_of(req), table.to_string());
    let minimal = pref.minimal;
    let res = with_db(state, id, move |c, p| {
        rows::with_table(c, p, &schema, &table, |c, info| {
            session::in_transaction(c, |c| {
                rows::update_rows(c, info, &values, &filters, !minimal)
            })
        })
    })
    .await;
    Ok(rows_reply(200, &res?, minimal))
}

#[utoipa::path(delete, path = "/database/{id}/tables/{table}/rows", tag = "database",
    params(("id" = String, Path, description = "Instance id or name"), ("table" = String, Path),
        ("schema" = Option<String>, Query, description = "schema (default public)"),
        ("all" = Option<bool>, Query, description = "allow a delete without filters"),
        ("Prefer" = Option<String>, Header, description = "return=minimal answers {\"count\": n}")),
    responses((status = 200, description = "The deleted rows", body = [Object]),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_rows(
    state: &Arc<AppState>,
    req: &Request,
    id: &str,
    table: &str,
) -> Result<Reply, Error> {
    let pref = prefer(req)?;
    let filters = write_filters(req)?;
    let (schema, table) = (schema_of(req), table.to_string());
    let minimal = pref.minimal;
    let res = with_db(state, id, move |c, p| {
        rows::with_table(c, p, &schema, &table, |c, info| {
            session::in_transaction(c, |c| rows::delete_rows(c, info, &filters, !minimal))
        })
    })
    .await;
    Ok(rows_reply(200, &res?, minimal))
}
