//! The read grammar of the database service, after PostgREST:
//! `select=a,b`, filters `col=[not.]op.value` (eq neq gt gte lt lte like ilike
//! in is), `order=col.asc|desc[.nullsfirst|.nullslast]`, `limit`, `offset`.
//! Parsing is pure; building SQL needs the table's columns (from the
//! catalog), so every identifier is checked, double-quoted, and every value
//! is a bind parameter, cast to its column's type by PostgreSQL.
//!
//! Writes (insert, update) carry their values as one JSON parameter that
//! PostgreSQL itself turns into typed columns (json_to_recordset).

use crate::error::{Error, Result};

mod build;
pub use build::*;

/// Query keys that are not filters.
pub const RESERVED: &[&str] = &[
    "select",
    "order",
    "limit",
    "offset",
    "on_conflict",
    "all",
    "columns",
    "schema",
];
pub const DEFAULT_LIMIT: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    Is,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    One(String),
    List(Vec<String>),
    /// `is.null`, `is.not_null`, `is.true`, `is.false`
    Is(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub negate: bool,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub column: String,
    pub desc: bool,
    /// Some(true) = NULLS FIRST, Some(false) = NULLS LAST.
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadQuery {
    /// Empty means every column.
    pub select: Vec<String>,
    pub filters: Vec<Filter>,
    pub order: Vec<Order>,
    pub limit: u64,
    pub offset: u64,
}

fn bad(field: &str, reason: impl Into<String>) -> Error {
    Error::invalid(field, reason)
}

/// Parses one filter value such as `not.in.(1,2)` or `gte.10`.
pub fn parse_filter(column: &str, raw: &str) -> Result<Filter> {
    let (negate, rest) = match raw.strip_prefix("not.") {
        Some(r) => (true, r),
        None => (false, raw),
    };
    let (op_text, value) = rest.split_once('.').ok_or_else(|| {
        bad(
            column,
            format!("'{raw}' is not op.value (e.g. eq.5, in.(1,2), is.null)"),
        )
    })?;
    let op = match op_text {
        "eq" => Op::Eq,
        "neq" => Op::Neq,
        "gt" => Op::Gt,
        "gte" => Op::Gte,
        "lt" => Op::Lt,
        "lte" => Op::Lte,
        "like" => Op::Like,
        "ilike" => Op::Ilike,
        "in" => Op::In,
        "is" => Op::Is,
        other => {
            return Err(bad(
                column,
                format!("unknown operator '{other}'; use eq neq gt gte lt lte like ilike in is, optionally after not."),
            ))
        }
    };
    let value = match op {
        Op::In => {
            let inner = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| bad(column, "in takes a list: in.(a,b,c)"))?;
            Value::List(split_list(inner))
        }
        Op::Is => Value::Is(match value {
            "null" => "NULL",
            "not_null" => "NOT NULL",
            "true" => "TRUE",
            "false" => "FALSE",
            _ => return Err(bad(column, "is takes null, not_null, true or false")),
        }),
        // `*` is the URL-friendly wildcard.
        Op::Like | Op::Ilike => Value::One(value.replace('*', "%")),
        _ => Value::One(value.to_string()),
    };
    Ok(Filter {
        column: column.to_string(),
        negate,
        op,
        value,
    })
}

/// `a,"b,c",d` -> [a, b,c, d]: double quotes protect commas.
fn split_list(s: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !s.is_empty() {
        out.push(cur);
    }
    out
}

pub fn parse_order(raw: &str) -> Result<Vec<Order>> {
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(|term| {
            let mut parts = term.split('.');
            let column = parts.next().unwrap_or_default().to_string();
            let mut o = Order {
                column,
                desc: false,
                nulls_first: None,
            };
            for p in parts {
                match p {
                    "asc" => o.desc = false,
                    "desc" => o.desc = true,
                    "nullsfirst" => o.nulls_first = Some(true),
                    "nullslast" => o.nulls_first = Some(false),
                    other => {
                        return Err(bad(
                            "order",
                            format!(
                                "'{other}' in '{term}'; use col.asc|desc[.nullsfirst|.nullslast]"
                            ),
                        ))
                    }
                }
            }
            Ok(o)
        })
        .collect()
}

/// Parses decoded query pairs into a read query; `max_limit` caps `limit`.
pub fn parse_read(pairs: &[(String, String)], max_limit: u64) -> Result<ReadQuery> {
    let mut q = ReadQuery {
        limit: DEFAULT_LIMIT.min(max_limit),
        ..Default::default()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "select" => {
                q.select = v
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && *c != "*")
                    .map(str::to_string)
                    .collect()
            }
            "order" => q.order = parse_order(v)?,
            "limit" => {
                q.limit = v.parse().ok().filter(|n| *n <= max_limit).ok_or_else(|| {
                    bad("limit", format!("use a whole number from 0 to {max_limit}"))
                })?
            }
            "offset" => q.offset = v.parse().map_err(|_| bad("offset", "use a whole number"))?,
            k if RESERVED.contains(&k) => {}
            column => q.filters.push(parse_filter(column, v)?),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests;
