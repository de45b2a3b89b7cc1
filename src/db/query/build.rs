//! The parsed grammar built into SQL against a table's columns: every
//! identifier checked and double-quoted, every value a bind parameter.

use super::{bad, Filter, Op, ReadQuery, Value};
use crate::error::Result;
use std::collections::BTreeMap;

/// SQL text and its parameters (all text, cast by PostgreSQL to each
/// column's type).
#[derive(Debug, PartialEq, Eq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<String>,
}

/// Quotes an identifier: double quotes, embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn checked<'a>(columns: &'a BTreeMap<String, String>, name: &str) -> Result<(&'a str, String)> {
    match columns.get_key_value(name) {
        Some((k, ty)) => Ok((ty.as_str(), quote_ident(k))),
        None => Err(bad(
            name,
            format!(
                "no column '{}' in this table; columns: {}",
                name.chars().take(64).collect::<String>(),
                columns.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// WHERE clause for `filters`, numbering parameters from `params.len() + 1`.
pub fn where_clause(
    filters: &[Filter],
    columns: &BTreeMap<String, String>,
    params: &mut Vec<String>,
) -> Result<String> {
    let mut terms = vec![];
    for f in filters {
        let (ty, col) = checked(columns, &f.column)?;
        let mut bind = |v: &str| {
            params.push(v.to_string());
            // `$n::text`, so the parameter is text and PostgreSQL does the
            // conversion, with its own error for a bad value (22P02).
            if ty == "bytea" {
                format!("decode(${}::text, 'base64')", params.len())
            } else {
                format!("CAST(${}::text AS {ty})", params.len())
            }
        };
        let term = match (&f.op, &f.value) {
            (Op::Is, Value::Is(what)) => format!("{col} IS {what}"),
            (Op::In, Value::List(items)) if items.is_empty() => "FALSE".to_string(),
            (Op::In, Value::List(items)) => {
                let binds: Vec<String> = items.iter().map(|v| bind(v)).collect();
                format!("{col} IN ({})", binds.join(", "))
            }
            (Op::Like | Op::Ilike, Value::One(v)) => {
                params.push(v.clone());
                let kw = if f.op == Op::Like { "LIKE" } else { "ILIKE" };
                format!("{col}::text {kw} ${}::text", params.len())
            }
            (op, Value::One(v)) => {
                let sym = match op {
                    Op::Eq => "=",
                    Op::Neq => "<>",
                    Op::Gt => ">",
                    Op::Gte => ">=",
                    Op::Lt => "<",
                    _ => "<=",
                };
                format!("{col} {sym} {}", bind(v))
            }
            _ => unreachable!("parse_filter pairs ops with their value kinds"),
        };
        terms.push(if f.negate {
            format!("NOT ({term})")
        } else {
            term
        });
    }
    Ok(if terms.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", terms.join(" AND "))
    })
}

/// `SELECT ... FROM "schema"."table" WHERE ... ORDER BY ... LIMIT ... OFFSET ...`
pub fn build_select(
    schema: &str,
    table: &str,
    q: &ReadQuery,
    columns: &BTreeMap<String, String>,
) -> Result<Sql> {
    let mut params = vec![];
    let select = if q.select.is_empty() {
        "*".to_string()
    } else {
        q.select
            .iter()
            .map(|c| checked(columns, c).map(|(_, quoted)| quoted))
            .collect::<Result<Vec<_>>>()?
            .join(", ")
    };
    let mut text = format!(
        "SELECT {select} FROM {}.{}",
        quote_ident(schema),
        quote_ident(table)
    );
    text.push_str(&where_clause(&q.filters, columns, &mut params)?);
    if !q.order.is_empty() {
        let terms = q
            .order
            .iter()
            .map(|o| {
                let (_, col) = checked(columns, &o.column)?;
                let dir = if o.desc { "DESC" } else { "ASC" };
                let nulls = match o.nulls_first {
                    Some(true) => " NULLS FIRST",
                    Some(false) => " NULLS LAST",
                    None => "",
                };
                Ok(format!("{col} {dir}{nulls}"))
            })
            .collect::<Result<Vec<_>>>()?;
        text.push_str(&format!(" ORDER BY {}", terms.join(", ")));
    }
    text.push_str(&format!(" LIMIT {} OFFSET {}", q.limit, q.offset));
    Ok(Sql { text, params })
}

/// `SELECT count(*) FROM ... WHERE ...` for `Prefer: count=exact`.
pub fn build_count(
    schema: &str,
    table: &str,
    filters: &[Filter],
    columns: &BTreeMap<String, String>,
) -> Result<Sql> {
    let mut params = vec![];
    let w = where_clause(filters, columns, &mut params)?;
    Ok(Sql {
        text: format!(
            "SELECT count(*) FROM {}.{}{w}",
            quote_ident(schema),
            quote_ident(table)
        ),
        params,
    })
}

/// The record definition and value expressions that turn the JSON
/// parameter's keys into typed values: bytea comes as base64.
fn record_columns(
    keys: &[String],
    columns: &BTreeMap<String, String>,
) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let (mut names, mut defs, mut exprs) = (vec![], vec![], vec![]);
    for k in keys {
        let (ty, col) = checked(columns, k)?;
        let x = format!("x.{col}");
        let (def_ty, expr) = match ty {
            "bytea" => ("text".to_string(), format!("decode({x}, 'base64')")),
            "bytea[]" => (
                "text[]".to_string(),
                format!(
                    "CASE WHEN {x} IS NULL THEN NULL ELSE ARRAY(SELECT decode(e.v, 'base64') \
                     FROM unnest({x}) WITH ORDINALITY AS e(v, n) ORDER BY e.n) END"
                ),
            ),
            other => (other.to_string(), x),
        };
        defs.push(format!("{col} {def_ty}"));
        exprs.push(expr);
        names.push(col);
    }
    Ok((names, defs, exprs))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Merge,
    Ignore,
}

/// `INSERT ... SELECT ... FROM json_to_recordset($1)`: every row in one
/// statement. `keys` are the union of the objects' keys.
pub fn build_insert(
    schema: &str,
    table: &str,
    keys: &[String],
    columns: &BTreeMap<String, String>,
    upsert: Option<(&[String], Resolution)>,
    returning: bool,
) -> Result<String> {
    let target = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let mut text = if keys.is_empty() {
        format!("INSERT INTO {target} DEFAULT VALUES")
    } else {
        let (names, defs, exprs) = record_columns(keys, columns)?;
        format!(
            "INSERT INTO {target} ({}) SELECT {} FROM json_to_recordset($1::text::json) AS x({})",
            names.join(", "),
            exprs.join(", "),
            defs.join(", ")
        )
    };
    if let Some((conflict, resolution)) = upsert {
        let cols = conflict
            .iter()
            .map(|c| checked(columns, c).map(|(_, q)| q))
            .collect::<Result<Vec<_>>>()?;
        text.push_str(&format!(" ON CONFLICT ({})", cols.join(", ")));
        match resolution {
            Resolution::Ignore => text.push_str(" DO NOTHING"),
            Resolution::Merge if keys.is_empty() => text.push_str(" DO NOTHING"),
            Resolution::Merge => {
                let sets: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let q = quote_ident(k);
                        format!("{q} = EXCLUDED.{q}")
                    })
                    .collect();
                text.push_str(&format!(" DO UPDATE SET {}", sets.join(", ")));
            }
        }
    }
    if returning {
        text.push_str(" RETURNING *");
    }
    Ok(text)
}

/// `UPDATE ... SET (cols) = (SELECT ... FROM json_to_record($1)) WHERE ...`
pub fn build_update(
    schema: &str,
    table: &str,
    keys: &[String],
    filters: &[Filter],
    columns: &BTreeMap<String, String>,
    returning: bool,
) -> Result<Sql> {
    if keys.is_empty() {
        return Err(bad(
            "body",
            "give at least one column to set, e.g. {\"done\": true}",
        ));
    }
    let (names, defs, exprs) = record_columns(keys, columns)?;
    // $1 is the JSON body; filter values follow.
    let mut params = vec![String::new()];
    let w = where_clause(filters, columns, &mut params)?;
    let mut text = format!(
        "UPDATE {}.{} SET ({}) = (SELECT {} FROM json_to_record($1::text::json) AS x({})){w}",
        quote_ident(schema),
        quote_ident(table),
        names.join(", "),
        exprs.join(", "),
        defs.join(", ")
    );
    if returning {
        text.push_str(" RETURNING *");
    }
    Ok(Sql { text, params })
}

pub fn build_delete(
    schema: &str,
    table: &str,
    filters: &[Filter],
    columns: &BTreeMap<String, String>,
    returning: bool,
) -> Result<Sql> {
    let mut params = vec![];
    let w = where_clause(filters, columns, &mut params)?;
    let mut text = format!(
        "DELETE FROM {}.{}{w}",
        quote_ident(schema),
        quote_ident(table)
    );
    if returning {
        text.push_str(" RETURNING *");
    }
    Ok(Sql { text, params })
}
