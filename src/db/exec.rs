//! The statements of the database service, on one connection: free SQL
//! with parameters, multi-statement transactions, and the result set that
//! row reads and writes (rows.rs) share.

use super::pool::PgConn;
use super::session::{self, Context};
use super::values::{self, Param};
use super::Failure;
use crate::error::Error;
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, IsolationLevel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A statement's result: columns, rows (values in column order) and the
/// number of rows returned or affected.
#[derive(Debug, Default)]
pub struct ResultSet {
    pub command: String,
    pub row_count: u64,
    pub columns: Vec<(String, Type)>,
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// `[{"col": value, ...}, ...]` in column order.
    pub fn objects_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 * self.rows.len() + 2);
        out.push(b'[');
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (j, ((name, _), v)) in self.columns.iter().zip(row).enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, name).expect("string");
                out.push(b':');
                serde_json::to_writer(&mut out, v).expect("value");
            }
            out.push(b'}');
        }
        out.push(b']');
        out
    }

    pub fn objects(&self) -> Vec<serde_json::Map<String, Value>> {
        self.rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row)
                    .map(|((n, _), v)| (n.clone(), v.clone()))
                    .collect()
            })
            .collect()
    }
}

/// Runs built SQL whose parameters are all text, as a statement prepared
/// once per connection (one round trip per request), and decodes its rows.
pub(super) fn run_text(
    conn: &mut PgConn,
    sql: &str,
    params: &[String],
) -> Result<ResultSet, postgres::Error> {
    let stmt = conn.prepared(sql, params.len())?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let rows = conn.client.query(&stmt, &refs)?;
    let mut rs = decode(&mut conn.client, rows, None)?;
    rs.columns = values::columns(stmt.columns());
    Ok(rs)
}

fn decode(
    client: &mut impl GenericClient,
    rows: Vec<postgres::Row>,
    affected: Option<u64>,
) -> Result<ResultSet, postgres::Error> {
    let columns = rows
        .first()
        .map(|r| values::columns(r.columns()))
        .unwrap_or_default();
    let (mut decoded, pending) = values::decode_rows(&rows);
    values::resolve_pending(client, &mut decoded, pending)?;
    Ok(ResultSet {
        command: String::new(),
        row_count: affected.unwrap_or(decoded.len() as u64),
        columns,
        rows: decoded,
    })
}

/// One statement of `POST /sql` or `POST /transaction`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// One SQL statement, with `$1`, `$2`, ... for the parameters.
    pub sql: String,
    /// Values for `$1`, `$2`, ...: JSON, converted to each parameter's type.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<Value>,
}

/// The first keyword of a statement (SELECT, INSERT, CREATE, ...).
pub fn command_of(sql: &str) -> String {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix('(') {
            s = rest.trim_start();
        } else {
            break;
        }
    }
    s.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// What a request may still receive (`DBAAS_MAX_ROWS` rows and
/// `DBAAS_MAX_RESULT_BYTES` bytes as PostgreSQL sends them), shared by the
/// statements of a transaction. Past it the statement is cancelled on the
/// server, not buffered.
pub struct Budget<'a> {
    rows: u64,
    bytes: u64,
    max_rows: u64,
    max_bytes: u64,
    cancel: postgres::CancelToken,
    /// Set once a cancel request was sent: it reaches the server on a
    /// connection of its own, possibly after the statement ended, and would
    /// then cancel the session's next statement, so the session must not
    /// serve another request (the pool closes it).
    cancelled: &'a std::cell::Cell<bool>,
}

impl<'a> Budget<'a> {
    pub fn new(
        client: &postgres::Client,
        max_rows: u64,
        max_bytes: u64,
        cancelled: &'a std::cell::Cell<bool>,
    ) -> Budget<'a> {
        Budget {
            rows: max_rows,
            bytes: max_bytes,
            max_rows,
            max_bytes,
            cancel: client.cancel_token(),
            cancelled,
        }
    }

    /// Counts one row; past the budget, cancels the running statement.
    fn take(&mut self, row: &postgres::Row) -> Result<(), Error> {
        let size = values::raw_size(row) as u64;
        let over = if self.rows == 0 {
            Some(format!(
                "the result has more than DBAAS_MAX_ROWS ({}) rows",
                self.max_rows
            ))
        } else if size > self.bytes {
            Some(format!(
                "the result is larger than DBAAS_MAX_RESULT_BYTES ({} bytes)",
                self.max_bytes
            ))
        } else {
            None
        };
        match over {
            None => {
                self.rows -= 1;
                self.bytes -= size;
                Ok(())
            }
            Some(what) => {
                self.cancelled.set(true);
                let cancelled = super::tls::for_cancel().and_then(|tls| {
                    self.cancel
                        .cancel_query(tls)
                        .map_err(|e| super::pg_error(&e, None))
                });
                if let Err(e) = cancelled {
                    log::warn!("cancelling an oversized statement: {e}");
                }
                Err(Error::invalid(
                    "sql",
                    format!("{what}: the statement was cancelled; add a LIMIT or select less, or raise the setting"),
                ))
            }
        }
    }
}

/// Prepares, binds the JSON parameters to the types PostgreSQL inferred,
/// runs and decodes one statement, within `budget`.
pub fn run_statement(
    client: &mut impl GenericClient,
    st: &Statement,
    index: Option<usize>,
    array_mode: bool,
    budget: &mut Budget<'_>,
) -> Result<ResultSet, Failure> {
    let at = |field: &str| match index {
        Some(i) => format!("statements[{i}].{field}"),
        None => field.to_string(),
    };
    if st.sql.contains('\0') {
        return Err(Error::invalid(at("sql"), "the statement contains a NUL byte").into());
    }
    let tag = |e: postgres::Error| Failure::Pg(e, index);
    let stmt = client.prepare(&st.sql).map_err(tag)?;
    let types = stmt.params();
    if types.len() != st.params.len() {
        return Err(Error::invalid(
            at("params"),
            format!(
                "the statement has {} parameter(s) ($1..${}) but {} value(s) were given",
                types.len(),
                types.len(),
                st.params.len()
            ),
        )
        .into());
    }
    let params = types
        .iter()
        .zip(&st.params)
        .enumerate()
        .map(|(i, (ty, v))| {
            values::param(ty, v).map_err(|e| {
                Error::invalid(
                    at(&format!("params[{i}]")),
                    format!("for ${} ({}): {e}", i + 1, ty.name()),
                )
            })
        })
        .collect::<Result<Vec<Param>, Error>>()?;
    let columns = values::columns(stmt.columns());
    // Objects keyed by name would lose one of two same-named columns: say
    // so before anything runs.
    let mut seen = std::collections::HashSet::new();
    if let Some((dup, _)) = columns
        .iter()
        .find(|(n, _)| !array_mode && !seen.insert(n.as_str()))
    {
        return Err(Error::invalid(
            at("sql"),
            format!("two result columns are named '{dup}': alias them (AS ...) or send \"array_mode\": true"),
        )
        .into());
    }
    let mut it = client
        .query_raw(&stmt, params.iter().map(|p| p as &dyn ToSql))
        .map_err(tag)?;
    let mut rows = vec![];
    use fallible_iterator::FallibleIterator;
    while let Some(r) = it.next().map_err(tag)? {
        budget.take(&r)?;
        rows.push(r);
    }
    let affected = it.rows_affected();
    drop(it);
    let mut rs = decode(client, rows, affected).map_err(tag)?;
    rs.columns = columns;
    rs.command = command_of(&st.sql);
    Ok(rs)
}

/// `POST /sql`: one statement, in a transaction of its own (READ ONLY with
/// `read_only`), committed unless `abandoned()` says the request was
/// already answered. Statements that cannot run in a transaction block
/// (VACUUM, CREATE DATABASE, ...) fail at once there and then run alone.
/// The caller resets the session afterwards (`session::reset`).
pub fn run_sql(
    client: &mut postgres::Client,
    st: &Statement,
    opts: &SqlOptions,
    abandoned: &dyn Fn() -> bool,
    cancelled: &std::cell::Cell<bool>,
) -> Result<ResultSet, Failure> {
    let (read_only, array_mode) = (opts.read_only, opts.array_mode);
    session::check(&st.sql, Context::Alone)?;
    let mut budget = Budget::new(client, opts.max_rows, opts.max_bytes, cancelled);
    let mut tx = client.build_transaction().read_only(read_only).start()?;
    match run_statement(&mut tx, st, None, array_mode, &mut budget) {
        Ok(rs) => {
            if abandoned() {
                return Err(Failure::Other(session::abandoned()));
            }
            session::commit_outcome(tx.commit())?;
            Ok(rs)
        }
        Err(Failure::Pg(e, _)) if !read_only && sqlstate(&e) == Some("25001") => {
            tx.rollback()?;
            if abandoned() {
                return Err(Failure::Other(session::abandoned()));
            }
            run_statement(client, st, None, array_mode, &mut budget).map_err(session::uncertain)
        }
        Err(e) => Err(e),
    }
}

/// How `/sql`, `/transaction` and `dbaasctl sql` run their statements.
#[derive(Debug, Clone, Copy)]
pub struct SqlOptions {
    pub read_only: bool,
    pub array_mode: bool,
    /// DBAAS_MAX_ROWS
    pub max_rows: u64,
    /// DBAAS_MAX_RESULT_BYTES
    pub max_bytes: u64,
}

fn sqlstate(e: &postgres::Error) -> Option<&str> {
    e.as_db_error().map(|d| d.code().code())
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

/// `POST /transaction`: all statements or none. A failure names the
/// statement; the transaction is rolled back when `tx` drops.
pub fn run_transaction(
    client: &mut postgres::Client,
    statements: &[Statement],
    isolation: Option<Isolation>,
    opts: &SqlOptions,
    abandoned: &dyn Fn() -> bool,
    cancelled: &std::cell::Cell<bool>,
) -> Result<Vec<ResultSet>, Failure> {
    let array_mode = opts.array_mode;
    for (i, st) in statements.iter().enumerate() {
        session::check(&st.sql, Context::InTransaction).map_err(|e| match e {
            Error::Invalid { reason, .. } => Error::invalid(format!("statements[{i}].sql"), reason),
            other => other,
        })?;
    }
    let level = match isolation.unwrap_or(Isolation::ReadCommitted) {
        Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        Isolation::RepeatableRead => IsolationLevel::RepeatableRead,
        Isolation::Serializable => IsolationLevel::Serializable,
    };
    let mut budget = Budget::new(client, opts.max_rows, opts.max_bytes, cancelled);
    let mut tx = client.build_transaction().isolation_level(level).start()?;
    let mut out = Vec::with_capacity(statements.len());
    for (i, st) in statements.iter().enumerate() {
        out.push(run_statement(
            &mut tx,
            st,
            Some(i),
            array_mode,
            &mut budget,
        )?);
    }
    if abandoned() {
        return Err(Failure::Other(session::abandoned()));
    }
    session::commit_outcome(tx.commit())?;
    Ok(out)
}

/// The answer of `/sql`, and of each statement of `/transaction`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SqlResult {
    /// The statement's first keyword: SELECT, INSERT, CREATE, ...
    pub command: String,
    /// Rows returned, or rows affected.
    pub row_count: u64,
    pub columns: Vec<SqlColumn>,
    /// Objects keyed by column name (or arrays in column order with
    /// `"array_mode": true`).
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SqlColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

impl SqlResult {
    /// Objects or arrays; `run_statement` refused same-named columns as
    /// objects before running, so nothing is lost silently.
    pub fn from_set(rs: ResultSet, array_mode: bool) -> Result<SqlResult, Error> {
        let columns: Vec<SqlColumn> = rs
            .columns
            .iter()
            .map(|(n, t)| SqlColumn {
                name: n.clone(),
                ty: t.name().to_string(),
            })
            .collect();
        let rows = if array_mode {
            rs.rows.into_iter().map(Value::Array).collect()
        } else {
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = columns.iter().find(|c| !seen.insert(c.name.as_str())) {
                return Err(Error::invalid(
                    "sql",
                    format!(
                        "two result columns are named '{}': alias them (AS ...) or send \"array_mode\": true",
                        dup.name
                    ),
                ));
            }
            rs.objects().into_iter().map(Value::Object).collect()
        };
        Ok(SqlResult {
            command: rs.command,
            row_count: rs.row_count,
            columns,
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_first_keywords() {
        assert_eq!(command_of("  select 1"), "SELECT");
        assert_eq!(command_of("-- hi\n/* x */ (SELECT 1)"), "SELECT");
        assert_eq!(command_of("insert into t values (1)"), "INSERT");
        assert_eq!(command_of(""), "");
    }

    #[test]
    fn rows_serialize_in_column_order() {
        let rs = ResultSet {
            columns: vec![("b".into(), Type::INT4), ("a".into(), Type::TEXT)],
            rows: vec![vec![Value::from(1), Value::from("x\"")]],
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(rs.objects_json()).unwrap(),
            r#"[{"b":1,"a":"x\""}]"#
        );
    }
}
