//! Row reads and writes of the data API, on one connection: built by
//! query.rs against the cached catalog, re-read once when the catalog
//! changed under it.

use super::catalog::{self, TableInfo};
use super::exec::{run_text, ResultSet};
use super::pool::{InstancePool, PgConn};
use super::query::{self, Filter, ReadQuery, Resolution};
use super::Failure;
use crate::error::Error;
use postgres::types::ToSql;
use serde_json::Value;
use std::sync::Arc;

/// SQLSTATEs that mean the catalog changed under a cached column list.
const STALE: &[&str] = &["42703", "42P01", "42804", "42883", "0A000"];

/// Runs `f` with the table's columns, from the pool's cache. When the cache
/// may be stale (an unknown column, or PostgreSQL says the table changed)
/// the columns are read again and `f` runs once more; such failures happen
/// before anything is written.
pub fn with_table<T>(
    conn: &mut PgConn,
    pool: &InstancePool,
    schema: &str,
    table: &str,
    mut f: impl FnMut(&mut PgConn, &TableInfo) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let key = (schema.to_string(), table.to_string());
    let cached = pool.tables.lock().expect("table cache").get(&key).cloned();
    if let Some(info) = cached {
        match f(conn, &info) {
            Err(Failure::Pg(e, _))
                if e.as_db_error()
                    .is_some_and(|d| STALE.contains(&d.code().code())) => {}
            Err(Failure::Other(Error::Invalid { .. })) => {}
            other => return other,
        }
        pool.tables.lock().expect("table cache").remove(&key);
    }
    // Statements prepared against older columns go with them.
    conn.forget_statements();
    let info = Arc::new(catalog::load(&mut conn.client, schema, table)?);
    pool.tables
        .lock()
        .expect("table cache")
        .insert(key, info.clone());
    f(conn, &info)
}

/// `GET .../rows`: the rows, and the total count when asked for.
pub fn read_rows(
    conn: &mut PgConn,
    info: &TableInfo,
    q: &ReadQuery,
    count: bool,
) -> Result<(ResultSet, Option<i64>), Failure> {
    let sql = query::build_select(&info.schema, &info.name, q, &info.types)?;
    let rs = run_text(conn, &sql.text, &sql.params)?;
    let total = if count {
        let c = query::build_count(&info.schema, &info.name, &q.filters, &info.types)?;
        let n = run_text(conn, &c.text, &c.params)?;
        n.rows
            .first()
            .and_then(|r| r.first())
            .and_then(Value::as_i64)
    } else {
        None
    };
    Ok((rs, total))
}

/// The keys of a write body, checked: each object's keys, in first-seen
/// order.
fn keys_of(rows: &[serde_json::Map<String, Value>]) -> Vec<String> {
    let mut keys: Vec<String> = vec![];
    for r in rows {
        for k in r.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

pub struct Insert<'a> {
    pub rows: &'a [serde_json::Map<String, Value>],
    pub on_conflict: Option<Vec<String>>,
    pub resolution: Option<Resolution>,
    pub returning: bool,
}

/// `POST .../rows`: every row in one INSERT.
pub fn insert_rows(
    conn: &mut PgConn,
    info: &TableInfo,
    ins: &Insert,
) -> Result<ResultSet, Failure> {
    let keys = keys_of(ins.rows);
    if keys.is_empty() && ins.rows.len() > 1 {
        return Err(Error::invalid(
            "body",
            "objects without any column can only be inserted one at a time",
        )
        .into());
    }
    let upsert = match (ins.resolution, &ins.on_conflict) {
        (None, None) => None,
        (r, conflict) => {
            let target = match conflict {
                Some(c) => c.clone(),
                None if !info.primary_key.is_empty() => info.primary_key.clone(),
                None => {
                    return Err(Error::invalid(
                        "on_conflict",
                        "the table has no primary key: name the unique columns with on_conflict=col1,col2",
                    )
                    .into())
                }
            };
            Some((target, r.unwrap_or(Resolution::Merge)))
        }
    };
    let sql = query::build_insert(
        &info.schema,
        &info.name,
        &keys,
        &info.types,
        upsert.as_ref().map(|(c, r)| (c.as_slice(), *r)),
        ins.returning,
    )?;
    let body = if keys.is_empty() {
        vec![]
    } else {
        vec![serde_json::to_string(ins.rows).expect("json")]
    };
    let mut rs = if ins.returning {
        run_text(conn, &sql, &body)?
    } else {
        let stmt = conn.prepared(&sql, body.len())?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            body.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        ResultSet {
            row_count: conn.client.execute(&stmt, &refs)?,
            ..Default::default()
        }
    };
    rs.command = "INSERT".into();
    Ok(rs)
}

/// `PATCH .../rows?filters`: sets the body's columns on the matching rows.
pub fn update_rows(
    conn: &mut PgConn,
    info: &TableInfo,
    values: &serde_json::Map<String, Value>,
    filters: &[Filter],
    returning: bool,
) -> Result<ResultSet, Failure> {
    let keys: Vec<String> = values.keys().cloned().collect();
    let mut sql = query::build_update(&info.schema, &info.name, &keys, filters, &info.types, true)?;
    sql.params[0] = serde_json::to_string(values).expect("json");
    let mut rs = run_text(conn, &sql.text, &sql.params)?;
    if !returning {
        rs.rows.clear();
    }
    rs.command = "UPDATE".into();
    Ok(rs)
}

/// `DELETE .../rows?filters`.
pub fn delete_rows(
    conn: &mut PgConn,
    info: &TableInfo,
    filters: &[Filter],
    returning: bool,
) -> Result<ResultSet, Failure> {
    let sql = query::build_delete(&info.schema, &info.name, filters, &info.types, true)?;
    let mut rs = run_text(conn, &sql.text, &sql.params)?;
    if !returning {
        rs.rows.clear();
    }
    rs.command = "DELETE".into();
    Ok(rs)
}
