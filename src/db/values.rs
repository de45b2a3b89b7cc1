//! JSON <-> PostgreSQL values.
//!
//! Out: rows are read in PostgreSQL's binary format as raw bytes and decoded
//! here by type: numbers as JSON numbers (numeric as a string, so no
//! precision is lost), dates and times in RFC 3339, bytea as base64, json as
//! JSON, one-dimensional arrays as JSON arrays. A value of any other type is
//! sent back to PostgreSQL (binary, typed) and cast to text there, so every
//! type comes out as its text representation and never as an error.
//!
//! In: a JSON parameter becomes text in PostgreSQL's input syntax (arrays as
//! array literals, json as JSON text), sent in the text format so PostgreSQL
//! parses it for the parameter's type; bytea takes base64.

use base64::Engine;
use bytes::BytesMut;
use postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type};
use postgres::Row;
use postgres_protocol::types as wire;
use serde_json::{json, Value};
use std::error::Error as StdError;

type BoxError = Box<dyn StdError + Sync + Send>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Any value as its raw binary bytes (None for NULL).
pub struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(Some(raw)))
    }
    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A parameter sent as is: text in PostgreSQL's input syntax, or binary.
#[derive(Debug, Clone)]
pub enum Param {
    Null,
    Text(String),
    Binary(Vec<u8>),
}

impl ToSql for Param {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Null => return Ok(IsNull::Yes),
            Param::Text(s) => out.extend_from_slice(s.as_bytes()),
            Param::Binary(b) => out.extend_from_slice(b),
        }
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    fn encode_format(&self, _: &Type) -> Format {
        match self {
            Param::Binary(_) => Format::Binary,
            _ => Format::Text,
        }
    }
    postgres::types::to_sql_checked!();
}

/// A JSON value as a parameter of type `ty`. `Err` names what is wrong.
pub fn param(ty: &Type, v: &Value) -> Result<Param, String> {
    if v.is_null() {
        return Ok(Param::Null);
    }
    if *ty == Type::BYTEA {
        let s = v.as_str().ok_or("bytea takes a base64 string")?;
        return B64
            .decode(s)
            .map(Param::Binary)
            .map_err(|e| format!("not base64: {e}"));
    }
    if *ty == Type::JSON || *ty == Type::JSONB {
        return Ok(Param::Text(v.to_string()));
    }
    if let (Kind::Array(elem), Value::Array(items)) = (ty.kind(), v) {
        return array_literal(elem, items).map(Param::Text);
    }
    Ok(Param::Text(text_of(v)))
}

/// A scalar JSON value in PostgreSQL's input syntax.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `["a", null, "b\"c"]` -> `{"a",NULL,"b\"c"}`.
pub fn array_literal(elem: &Type, items: &[Value]) -> Result<String, String> {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let text = match item {
            Value::Null => {
                out.push_str("NULL");
                continue;
            }
            Value::String(s) if *elem == Type::BYTEA => {
                let bytes = B64
                    .decode(s)
                    .map_err(|e| format!("element {i} is not base64: {e}"))?;
                format!("\\x{}", hex(&bytes))
            }
            Value::Array(_) if *elem != Type::JSON && *elem != Type::JSONB => {
                return Err("only one-dimensional arrays are supported".into())
            }
            other if *elem == Type::JSON || *elem == Type::JSONB => other.to_string(),
            other => text_of(other),
        };
        out.push('"');
        for c in text.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A value that needs PostgreSQL's help to become text: where it is and its
/// raw bytes.
pub struct Pending {
    pub row: usize,
    pub col: usize,
    pub ty: Type,
    pub raw: Vec<u8>,
}

/// Decodes one value; None when the type has no decoder here (the caller
/// then asks PostgreSQL for its text).
pub fn decode(ty: &Type, raw: &[u8]) -> Option<Value> {
    let v = match *ty {
        Type::BOOL => Value::Bool(wire::bool_from_sql(raw).ok()?),
        Type::INT2 => json!(wire::int2_from_sql(raw).ok()?),
        Type::INT4 => json!(wire::int4_from_sql(raw).ok()?),
        Type::INT8 => json!(wire::int8_from_sql(raw).ok()?),
        Type::OID => json!(wire::oid_from_sql(raw).ok()?),
        Type::FLOAT4 => float(wire::float4_from_sql(raw).ok()? as f64),
        Type::FLOAT8 => float(wire::float8_from_sql(raw).ok()?),
        Type::NUMERIC => Value::String(numeric_text(raw)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::XML | Type::UNKNOWN => {
            Value::String(wire::text_from_sql(raw).ok()?.to_string())
        }
        Type::CHAR => Value::String(String::from_utf8_lossy(raw).into_owned()),
        Type::UUID => Value::String(uuid_text(&wire::uuid_from_sql(raw).ok()?)),
        Type::JSON => serde_json::from_slice(raw).ok()?,
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => serde_json::from_slice(rest).ok()?,
            _ => return None,
        },
        Type::BYTEA => Value::String(B64.encode(raw)),
        Type::DATE => Value::String(date_text(wire::date_from_sql(raw).ok()?)?),
        Type::TIME => Value::String(time_text(wire::time_from_sql(raw).ok()?)),
        Type::TIMESTAMP => Value::String(timestamp_text(wire::timestamp_from_sql(raw).ok()?, "")?),
        Type::TIMESTAMPTZ => {
            Value::String(timestamp_text(wire::timestamp_from_sql(raw).ok()?, "Z")?)
        }
        _ => match ty.kind() {
            // An enum's binary form is its label.
            Kind::Enum(_) => Value::String(std::str::from_utf8(raw).ok()?.to_string()),
            Kind::Domain(inner) => decode(inner, raw)?,
            Kind::Array(elem) => decode_array(elem, raw)?,
            _ if ty.name() == "citext" => Value::String(std::str::from_utf8(raw).ok()?.into()),
            _ => return None,
        },
    };
    Some(v)
}

fn float(f: f64) -> Value {
    // JSON has no NaN or infinities; PostgreSQL's spellings as strings.
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(f)
    }
}

fn decode_array(elem: &Type, raw: &[u8]) -> Option<Value> {
    use fallible_iterator::FallibleIterator;
    let arr = wire::array_from_sql(raw).ok()?;
    let dims: Vec<_> = arr.dimensions().collect().ok()?;
    if dims.len() > 1 {
        return None;
    }
    let values: Vec<Option<&[u8]>> = arr.values().collect().ok()?;
    values
        .into_iter()
        .map(|v| match v {
            None => Some(Value::Null),
            Some(b) => decode(elem, b),
        })
        .collect::<Option<Vec<_>>>()
        .map(Value::Array)
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// PostgreSQL's binary numeric: ndigits, weight, sign, dscale, then base
/// 10,000 digits. Rendered exactly, with dscale fractional digits.
pub fn numeric_text(raw: &[u8]) -> Option<String> {
    let rd =
        |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?])) };
    let ndigits = rd(0)? as usize;
    let weight = rd(2)? as i32;
    let sign = rd(4)? as u16;
    let dscale = rd(6)? as u16 as usize;
    let digits: Vec<i16> = (0..ndigits).map(|i| rd(8 + 2 * i)).collect::<Option<_>>()?;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digit = |i: i32| -> i16 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// Days since 1970-01-01 -> (year, month, day) (Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// PostgreSQL counts from 2000-01-01; that is day 10,957 of the Unix epoch.
const PG_EPOCH_DAYS: i64 = 10_957;

fn date_text(days: i32) -> Option<String> {
    match days {
        i32::MAX => return Some("infinity".into()),
        i32::MIN => return Some("-infinity".into()),
        _ => {}
    }
    let (y, m, d) = civil(days as i64 + PG_EPOCH_DAYS);
    // RFC 3339 has four-digit years; others keep PostgreSQL's own text.
    (1..=9999)
        .contains(&y)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let mut s = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

fn timestamp_text(micros: i64, zone: &str) -> Option<String> {
    match micros {
        i64::MAX => return Some("infinity".into()),
        i64::MIN => return Some("-infinity".into()),
        _ => {}
    }
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let date = date_text(i32::try_from(days).ok()?)?;
    Some(format!("{date}T{}{zone}", time_text(rest)))
}

/// Column names and types of a result.
pub fn columns(cols: &[postgres::Column]) -> Vec<(String, Type)> {
    cols.iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect()
}

/// Decodes rows into arrays of JSON values in column order, and lists the
/// values that still need PostgreSQL's text cast.
pub fn decode_rows(rows: &[Row]) -> (Vec<Vec<Value>>, Vec<Pending>) {
    let mut pending = vec![];
    let out = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            row.columns()
                .iter()
                .enumerate()
                .map(|(c, col)| match row.try_get::<_, Raw>(c) {
                    Ok(Raw(None)) | Err(_) => Value::Null,
                    Ok(Raw(Some(raw))) => decode(col.type_(), raw).unwrap_or_else(|| {
                        pending.push(Pending {
                            row: r,
                            col: c,
                            ty: col.type_().clone(),
                            raw: raw.to_vec(),
                        });
                        Value::Null
                    }),
                })
                .collect()
        })
        .collect();
    (out, pending)
}

/// Fills in the values no decoder here knows, as PostgreSQL's text for them:
/// the raw bytes go back as binary parameters of their own types, up to
/// `PENDING_BATCH` of them in one `SELECT $1::text, $2::text, ...` (one
/// round trip per batch, not per value).
pub fn resolve_pending(
    client: &mut impl postgres::GenericClient,
    rows: &mut [Vec<Value>],
    pending: Vec<Pending>,
) -> Result<(), postgres::Error> {
    for batch in pending.chunks(PENDING_BATCH) {
        let list: Vec<String> = (1..=batch.len()).map(|i| format!("${i}::text")).collect();
        let sql = format!("SELECT {}", list.join(", "));
        let params: Vec<Param> = batch.iter().map(|p| Param::Binary(p.raw.clone())).collect();
        let typed: Vec<(&(dyn ToSql + Sync), Type)> = batch
            .iter()
            .zip(&params)
            .map(|(p, param)| (param as &(dyn ToSql + Sync), p.ty.clone()))
            .collect();
        let row = client.query_typed_one(&sql, &typed)?;
        for (i, p) in batch.iter().enumerate() {
            rows[p.row][p.col] = row
                .get::<_, Option<String>>(i)
                .map(Value::String)
                .unwrap_or(Value::Null);
        }
    }
    Ok(())
}

/// Values cast to text per round trip: below PostgreSQL's 1,664 columns.
const PENDING_BATCH: usize = 1000;

/// The size of a row as PostgreSQL sent it (the values' raw bytes).
pub fn raw_size(row: &Row) -> usize {
    (0..row.len())
        .map(|c| match row.try_get::<_, Raw>(c) {
            Ok(Raw(Some(raw))) => raw.len(),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
