//! The read grammar's SQL runs on real PostgreSQL with every value bound.

mod common;
use common::*;
use dbaas::db::query::{build_select, parse_read};
use std::collections::BTreeMap;

#[test]
fn built_selects_run_and_bind_every_value() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbquery");
    let (_, url) = h.create("q", &[]);
    let mut c = connect(&url);
    c.batch_execute(
        "CREATE TABLE t (id int PRIMARY KEY, name text, score numeric, at timestamptz);
         INSERT INTO t SELECT g, 'name ' || g, g * 1.5, CASE WHEN g % 2 = 0 THEN now() END FROM generate_series(1, 50) g;",
    )
    .unwrap();
    let cols: BTreeMap<String, String> = c
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'public.t'::regclass AND attnum > 0 AND NOT attisdropped",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ids = |c: &mut postgres::Client, q: &str| -> Result<Vec<i32>, postgres::Error> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
        let sql = build_select("public", "t", &parse_read(&pairs, 10_000).unwrap(), &cols).unwrap();
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = sql
            .params
            .iter()
            .map(|p| p as &(dyn postgres::types::ToSql + Sync))
            .collect();
        Ok(c.query(&sql.text, &params)?
            .iter()
            .map(|r| r.get("id"))
            .collect())
    };
    assert_eq!(
        ids(&mut c, "select=id&id=lte.3&order=id").unwrap(),
        vec![1, 2, 3]
    );
    assert_eq!(
        ids(&mut c, "select=id&id=in.(5,7,9)&order=id.desc").unwrap(),
        vec![9, 7, 5]
    );
    assert_eq!(
        ids(
            &mut c,
            "select=id&name=like.*name 1*&id=not.gte.11&order=id"
        )
        .unwrap(),
        vec![1, 10]
    );
    assert_eq!(
        ids(&mut c, "select=id&at=is.null&score=gt.70&order=id").unwrap(),
        vec![47, 49]
    );
    assert_eq!(
        ids(
            &mut c,
            "select=id&order=at.asc.nullsfirst,id&limit=2&offset=1"
        )
        .unwrap(),
        vec![3, 5]
    );
    // A value that is not an integer is PostgreSQL's 22P02, never SQL.
    let e = ids(&mut c, "select=id&id=eq.1; DROP TABLE t; --").unwrap_err();
    assert_eq!(e.code().unwrap().code(), "22P02");
    assert!(ids(&mut c, "select=id&name=eq.x'); DROP TABLE t; --")
        .unwrap()
        .is_empty());
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
    assert_eq!(n, 50, "the table survives");
}
