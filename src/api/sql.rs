//! /database/{id}/sql and /database/{id}/transaction: one statement, or
//! several in one transaction, as the app user over the instance's pool
//! (database.rs holds the way in, `with_db`).

use super::database::{json_body, with_db};
use super::reply::{self, ErrorBody, Reply};
use super::state::AppState;
use super::Request;
use crate::db::exec::{self, Isolation, SqlResult, Statement};
use crate::db::session;
use crate::error::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Body of `POST /database/{id}/sql`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    /// One SQL statement, with `$1`, `$2`, ... for the parameters.
    pub sql: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Value>,
    /// Run it in a READ ONLY transaction.
    #[serde(default)]
    pub read_only: bool,
    /// Rows as arrays in column order instead of objects.
    #[serde(default)]
    pub array_mode: bool,
}

#[utoipa::path(post, path = "/database/{id}/sql", tag = "database", request_body = SqlBody,
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, body = SqlResult),
        (status = 400, description = "Syntax error, bad parameter, bad value", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, description = "statement_timeout", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn sql(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let b: SqlBody = json_body(req)?;
    let st = Statement {
        sql: b.sql,
        params: b.params,
    };
    let array_mode = b.array_mode;
    let opts = crate::db::sql_options(state.ops.data.settings(), b.read_only, array_mode);
    let res = with_db(state, id, move |c, p| {
        // Any statement may change the catalog.
        p.forget_tables();
        let abandoned = c.abandon_check();
        let cancelled = std::cell::Cell::new(false);
        let res = exec::run_sql(&mut c.client, &st, &opts, &abandoned, &cancelled);
        session::reset(c);
        // A cancel sent for a result past its bound may land late, on the
        // session's next statement: the session is not reused.
        c.broken |= cancelled.get();
        res
    })
    .await;
    let rs = res?;
    Ok(reply::json(200, &SqlResult::from_set(rs, array_mode)?))
}

/// Body of `POST /database/{id}/transaction`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionBody {
    pub statements: Vec<Statement>,
    /// read_committed (default), repeatable_read or serializable.
    pub isolation: Option<Isolation>,
    /// Rows as arrays in column order instead of objects.
    #[serde(default)]
    pub array_mode: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TransactionResult {
    pub results: Vec<SqlResult>,
}

#[utoipa::path(post, path = "/database/{id}/transaction", tag = "database", request_body = TransactionBody,
    params(("id" = String, Path, description = "Instance id or name")),
    responses((status = 200, description = "Committed; one result per statement", body = TransactionResult),
        (status = 400, description = "A statement failed (detail.statement is its index); nothing was committed", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Serialization failure or deadlock (retry), conflict, or instance not running", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn transaction(state: &Arc<AppState>, req: &Request, id: &str) -> Result<Reply, Error> {
    let b: TransactionBody = json_body(req)?;
    if b.statements.is_empty() {
        return Err(Error::invalid("statements", "give at least one statement"));
    }
    let (statements, isolation, array_mode) = (b.statements, b.isolation, b.array_mode);
    let opts = crate::db::sql_options(state.ops.data.settings(), false, array_mode);
    let res = with_db(state, id, move |c, p| {
        p.forget_tables();
        let abandoned = c.abandon_check();
        let cancelled = std::cell::Cell::new(false);
        let res = exec::run_transaction(
            &mut c.client,
            &statements,
            isolation,
            &opts,
            &abandoned,
            &cancelled,
        );
        session::reset(c);
        c.broken |= cancelled.get();
        res
    })
    .await;
    let sets = res?;
    let results = sets
        .into_iter()
        .map(|rs| SqlResult::from_set(rs, array_mode))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(reply::json(200, &TransactionResult { results }))
}
