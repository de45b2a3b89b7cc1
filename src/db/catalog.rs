//! What the catalog says about tables: their columns (cached per pool, for
//! checking and typing every identifier of a request), the table list, a
//! table's full description, and CREATE/DROP TABLE from a JSON definition.
//! Everything is read from pg_catalog with the names as bound parameters.

use super::query::quote_ident;
use super::Failure;
use crate::error::Error;
use postgres::GenericClient;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// PostgreSQL's identifier limit; a longer name would be truncated and could
/// name another table.
pub const MAX_IDENT: usize = 63;

/// Checks a table, schema or column name; quoting makes any other character
/// safe.
pub fn check_ident(field: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid(field, "the name is empty"));
    }
    if name.len() > MAX_IDENT {
        return Err(Error::invalid(
            field,
            format!(
                "'{}…' is {} bytes; PostgreSQL names are at most {MAX_IDENT}",
                name.chars().take(20).collect::<String>(),
                name.len()
            ),
        ));
    }
    if name.contains('\0') {
        return Err(Error::invalid(field, "the name contains a NUL byte"));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    /// As PostgreSQL writes it (format_type), e.g. `character varying(20)`.
    #[serde(rename = "type")]
    pub ty: String,
    pub nullable: bool,
    /// The default expression, as SQL text.
    pub default: Option<String>,
}

/// The columns of one table, as requests need them.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    pub columns: Vec<Column>,
    /// Column name -> type, for checking and casting.
    pub types: BTreeMap<String, String>,
    pub primary_key: Vec<String>,
}

impl TableInfo {
    /// `"schema"."table"`
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

const COLUMNS_SQL: &str = "SELECT c.oid, a.attname::text, format_type(a.atttypid, a.atttypmod), \
       NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), \
       coalesce(a.attnum = ANY(i.indkey::int2[]), false) \
  FROM pg_catalog.pg_class c \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
  LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary \
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
 ORDER BY a.attnum";

/// Reads a table's columns from the catalog; NotFound when there is none.
pub fn load(
    client: &mut impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<TableInfo, Failure> {
    check_ident("schema", schema)?;
    check_ident("table", table)?;
    let rows = client.query(COLUMNS_SQL, &[&schema, &table])?;
    if rows.is_empty() {
        return Err(Error::NotFound {
            what: format!("table {schema}.{table}"),
            hint: "GET /database/<id>/tables lists the tables (add ?schema= for another schema)"
                .into(),
        }
        .into());
    }
    let mut info = TableInfo {
        schema: schema.to_string(),
        name: table.to_string(),
        oid: rows[0].get(0),
        columns: vec![],
        types: BTreeMap::new(),
        primary_key: vec![],
    };
    for r in rows {
        let c = Column {
            name: r.get(1),
            ty: r.get(2),
            nullable: r.get(3),
            default: r.get(4),
        };
        if r.get::<_, bool>(5) {
            info.primary_key.push(c.name.clone());
        }
        info.types.insert(c.name.clone(), c.ty.clone());
        info.columns.push(c);
    }
    Ok(info)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TableSummary {
    pub schema: String,
    pub name: String,
    /// The planner's estimate (pg_class.reltuples); 0 before the first
    /// ANALYZE or autovacuum.
    pub estimated_rows: i64,
    /// Table, indexes and TOAST, in bytes.
    pub total_bytes: i64,
}

pub fn list(client: &mut impl GenericClient, schema: &str) -> Result<Vec<TableSummary>, Failure> {
    check_ident("schema", schema)?;
    let rows = client.query(
        "SELECT n.nspname::text, c.relname::text, greatest(c.reltuples, 0)::int8, \
                pg_total_relation_size(c.oid) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.relkind IN ('r', 'p') AND n.nspname = $1 ORDER BY 2",
        &[&schema],
    )?;
    Ok(rows
        .iter()
        .map(|r| TableSummary {
            schema: r.get(0),
            name: r.get(1),
            estimated_rows: r.get(2),
            total_bytes: r.get(3),
        })
        .collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Constraint {
    pub name: String,
    pub columns: Vec<String>,
    pub definition: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub references_schema: String,
    pub references_table: String,
    pub references_columns: Vec<String>,
    pub definition: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Index {
    pub name: String,
    pub unique: bool,
    pub primary: bool,
    pub definition: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TableDescription {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub unique: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub foreign_keys: Vec<ForeignKey>,
}

pub fn describe(
    client: &mut impl GenericClient,
    schema: &str,
    table: &str,
) -> Result<TableDescription, Failure> {
    let info = load(client, schema, table)?;
    let cons = client.query(
        "SELECT con.conname::text, con.contype::text, \
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
                coalesce(fn.nspname::text, ''), coalesce(fc.relname::text, ''), \
                ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o), \
                pg_get_constraintdef(con.oid) \
           FROM pg_catalog.pg_constraint con \
           LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid \
           LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace \
          WHERE con.conrelid = $1 AND con.contype IN ('p', 'u', 'f') ORDER BY 1",
        &[&info.oid],
    )?;
    let mut d = TableDescription {
        schema: info.schema.clone(),
        name: info.name.clone(),
        columns: info.columns.clone(),
        primary_key: vec![],
        unique: vec![],
        indexes: vec![],
        foreign_keys: vec![],
    };
    for r in cons {
        let kind: String = r.get(1);
        let columns: Vec<String> = r.get(2);
        match kind.as_str() {
            "p" => d.primary_key = columns,
            "u" => d.unique.push(Constraint {
                name: r.get(0),
                columns,
                definition: r.get(6),
            }),
            _ => d.foreign_keys.push(ForeignKey {
                name: r.get(0),
                columns,
                references_schema: r.get(3),
                references_table: r.get(4),
                references_columns: r.get(5),
                definition: r.get(6),
            }),
        }
    }
    let idx = client.query(
        "SELECT ic.relname::text, i.indisunique, i.indisprimary, pg_get_indexdef(i.indexrelid) \
           FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid \
          WHERE i.indrelid = $1 ORDER BY 1",
        &[&info.oid],
    )?;
    d.indexes = idx
        .iter()
        .map(|r| Index {
            name: r.get(0),
            unique: r.get(1),
            primary: r.get(2),
            definition: r.get(3),
        })
        .collect();
    Ok(d)
}

/// Body of `POST /database/{id}/tables`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTable {
    pub name: String,
    /// Default public.
    pub schema: Option<String>,
    pub columns: Vec<NewColumn>,
    #[serde(default)]
    pub if_not_exists: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewColumn {
    pub name: String,
    /// Any type PostgreSQL knows (`text`, `int8`, `numeric(10,2)`,
    /// `timestamptz`, `text[]`, ...), or serial, bigserial, smallserial.
    #[serde(rename = "type")]
    pub ty: String,
    /// Default true (false for primary-key columns).
    pub nullable: Option<bool>,
    /// A constant default value, bound as a literal of the column's type.
    #[schema(value_type = Option<Object>)]
    pub default: Option<serde_json::Value>,
    /// A default that is an expression: one of now(), current_timestamp,
    /// current_date, current_time, localtimestamp, clock_timestamp(),
    /// gen_random_uuid(), current_user.
    pub default_expr: Option<String>,
    #[serde(default)]
    pub primary_key: bool,
    #[serde(default)]
    pub unique: bool,
}

const DEFAULT_EXPRS: &[&str] = &[
    "now()",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "clock_timestamp()",
    "gen_random_uuid()",
    "current_user",
];

const SERIALS: &[&str] = &[
    "serial",
    "bigserial",
    "smallserial",
    "serial4",
    "serial8",
    "serial2",
];

/// Type names may hold letters, digits, `_`, spaces, a typmod and `[]`, and
/// no quote or semicolon, so they are safe to write into DDL once
/// PostgreSQL confirms it knows them.
fn type_syntax_ok(ty: &str) -> bool {
    let t = ty.trim();
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _(),[].".contains(c))
}

/// Builds and runs CREATE TABLE. Types are checked against the catalog
/// (to_regtype); defaults become literals quoted by PostgreSQL itself.
pub fn create(client: &mut impl GenericClient, t: &NewTable) -> Result<(), Failure> {
    let schema = t.schema.as_deref().unwrap_or("public");
    check_ident("schema", schema)?;
    check_ident("name", &t.name)?;
    if t.columns.is_empty() {
        return Err(Error::invalid("columns", "give at least one column").into());
    }
    let mut seen = std::collections::HashSet::new();
    let mut defs = vec![];
    let mut pk = vec![];
    for (i, c) in t.columns.iter().enumerate() {
        let field = format!("columns[{i}]");
        check_ident(&format!("{field}.name"), &c.name)?;
        if !seen.insert(c.name.as_str()) {
            return Err(
                Error::invalid(&field, format!("column '{}' is given twice", c.name)).into(),
            );
        }
        defs.push(column_def(client, &field, c)?);
        if c.primary_key {
            pk.push(quote_ident(&c.name));
        }
    }
    if !pk.is_empty() {
        defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    let sql = format!(
        "CREATE TABLE {}{}.{} ({})",
        if t.if_not_exists {
            "IF NOT EXISTS "
        } else {
            ""
        },
        quote_ident(schema),
        quote_ident(&t.name),
        defs.join(", ")
    );
    client.batch_execute(&sql)?;
    Ok(())
}

/// One column of CREATE TABLE: its type checked against the catalog, its
/// default quoted by PostgreSQL itself or taken from the allowed list.
fn column_def(
    client: &mut impl GenericClient,
    field: &str,
    c: &NewColumn,
) -> Result<String, Failure> {
    let ty = c.ty.trim();
    let is_serial = SERIALS.contains(&ty.to_ascii_lowercase().as_str());
    if !type_syntax_ok(ty) {
        return Err(Error::invalid(
            format!("{field}.type"),
            format!(
                "'{}' is not a type name (e.g. text, int8, numeric(10,2), timestamptz, text[])",
                c.ty
            ),
        )
        .into());
    }
    if !is_serial {
        // NULL for a name PostgreSQL does not know; an error is that error.
        let known: Option<String> = client
            .query_one("SELECT to_regtype($1)::text", &[&ty])?
            .get(0);
        if known.is_none() {
            return Err(Error::invalid(
                format!("{field}.type"),
                format!("PostgreSQL knows no type '{ty}'"),
            )
            .into());
        }
    }
    let mut def = format!("{} {ty}", quote_ident(&c.name));
    if c.nullable == Some(false) || (c.primary_key && c.nullable.is_none()) {
        def.push_str(" NOT NULL");
    } else if c.nullable == Some(true) && c.primary_key {
        return Err(Error::invalid(field, "a primary-key column cannot be nullable").into());
    }
    match (&c.default, &c.default_expr) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(field, "give default or default_expr, not both").into())
        }
        (Some(v), None) if !v.is_null() => {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let lit: String = client
                .query_one("SELECT quote_literal($1::text)", &[&text])?
                .get(0);
            def.push_str(&format!(" DEFAULT {lit}"));
        }
        (_, Some(e)) => {
            let e = e.trim().to_ascii_lowercase();
            if !DEFAULT_EXPRS.contains(&e.as_str()) {
                return Err(Error::invalid(
                    format!("{field}.default_expr"),
                    format!(
                        "use one of {}; or a constant `default`",
                        DEFAULT_EXPRS.join(", ")
                    ),
                )
                .into());
            }
            def.push_str(&format!(" DEFAULT {e}"));
        }
        _ => {}
    }
    if c.unique {
        def.push_str(" UNIQUE");
    }
    Ok(def)
}

pub fn drop(
    client: &mut impl GenericClient,
    schema: &str,
    table: &str,
    cascade: bool,
) -> Result<(), Failure> {
    let info = load(client, schema, table)?;
    let sql = format!(
        "DROP TABLE {}{}",
        info.qualified(),
        if cascade { " CASCADE" } else { "" }
    );
    client.batch_execute(&sql)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_types_are_checked() {
        assert!(check_ident("t", "ok name \"with quotes\"").is_ok());
        assert!(check_ident("t", "").is_err());
        assert!(check_ident("t", &"a".repeat(64)).is_err());
        assert!(check_ident("t", "a\0b").is_err());
        for ok in [
            "text",
            "int8",
            "numeric(10,2)",
            "timestamp with time zone",
            "text[]",
            "public.mood",
            "character varying(20)",
        ] {
            assert!(type_syntax_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "int); DROP TABLE t; --",
            "text'",
            "\"x\"",
            "1int",
            "int -- x",
        ] {
            assert!(!type_syntax_ok(bad), "{bad}");
        }
    }
}
