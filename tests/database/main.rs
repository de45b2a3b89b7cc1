//! /database/{id}/...: tables, rows, SQL and transactions against a real
//! `dbaasctl serve` and real PostgreSQL instances.

#[path = "../common/mod.rs"]
mod common;
use common::*;
use serde_json::{json, Value};

mod injection;
mod pools;
mod rows;
mod statements;
mod types;

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn code(r: &http::Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

fn ids(r: &http::Response) -> Vec<i64> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

fn sql(s: &Server, db: &str, q: &str, params: Value) -> http::Response {
    s.post(
        &format!("/database/{db}/sql"),
        &json!({"sql": q, "params": params}),
    )
}

fn scalar(s: &Server, db: &str, q: &str) -> Value {
    let r = sql(s, db, q, json!([]));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    let v = r.json();
    let row = v["rows"][0].as_object().unwrap().clone();
    row.into_iter().next().unwrap().1
}
