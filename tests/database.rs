//! /database/{id}/...: tables, rows, SQL and transactions against a real
//! `dbaasctl serve` and real PostgreSQL instances.

mod common;
use common::*;
use serde_json::{json, Value};

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

#[test]
fn rows_filters_order_paging_and_writes() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbrows");
    h.create("rows", &[]);
    let s = Server::start(&h, &[]);
    let t = "/database/rows/tables";

    let r = s.post(
        t,
        &json!({"name": "items", "columns": [
            {"name": "id", "type": "int8", "primary_key": true},
            {"name": "name", "type": "text", "nullable": false},
            {"name": "score", "type": "numeric(10,2)"},
            {"name": "flag", "type": "bool"},
            {"name": "code", "type": "text", "unique": true},
            {"name": "created", "type": "timestamptz", "default_expr": "now()"},
            {"name": "note", "type": "text", "default": "it's new"}
        ]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let d = r.json();
    assert_eq!(d["primary_key"], json!(["id"]));
    assert_eq!(d["unique"][0]["columns"], json!(["code"]));
    assert!(d["indexes"].as_array().unwrap().len() >= 2);
    let get = |q: &str| s.get(&format!("{t}/items/rows?{q}"));
    let mut sections = Sections::default();
    sections.run(
        "The same again is a conflict; with if_not_exists it is not",
        || {
            // The same again is a conflict; with if_not_exists it is not.
            let again = json!({"name": "items", "columns": [{"name": "id", "type": "int8"}]});
            let r = s.post(t, &again);
            assert_eq!(
                (r.status, code(&r).as_str()),
                (409, "42P07"),
                "{}",
                r.text()
            );
            let mut again = again;
            again["if_not_exists"] = json!(true);
            assert_eq!(s.post(t, &again).status, 201);
        },
    );
    sections.run("Types are checked against the catalog; names against the ...", || {
        // Types are checked against the catalog; names against the limits.
        for (bad, field) in [
            (
                json!({"name": "x", "columns": [{"name": "a", "type": "nosuchtype"}]}),
                "columns[0].type",
            ),
            (
                json!({"name": "x", "columns": [{"name": "a", "type": "int); DROP TABLE items; --"}]}),
                "columns[0].type",
            ),
            (
                json!({"name": "x".repeat(64), "columns": [{"name": "a", "type": "int"}]}),
                "name",
            ),
            (json!({"name": "x", "columns": []}), "columns"),
            (
                json!({"name": "x", "columns": [{"name": "a", "type": "int", "default_expr": "pg_sleep(10)"}]}),
                "columns[0].default_expr",
            ),
        ] {
            let r = s.post(t, &bad);
            assert_eq!(r.status, 400, "{bad}: {}", r.text());
            assert_eq!(r.json()["error"]["detail"]["field"], field, "{}", r.text());
        }
    });
    sections.run("10,000 rows in one request, one statement", || {
        // 10,000 rows in one request, one statement.
        let rows: Vec<Value> = (1..=10_000)
            .map(|i| {
                json!({
                    "id": i,
                    "name": format!("item {i}"),
                    "score": if i % 10 == 0 { Value::Null } else { json!(format!("{}.{:02}", i % 100, i % 7)) },
                    "flag": i % 2 == 0,
                    "code": format!("c{i}")
                })
            })
            .collect();
        let r = s.call(
            "POST",
            &format!("{t}/items/rows"),
            Some(&Value::Array(rows)),
            &[("Prefer", "return=minimal")],
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json(), json!({"count": 10000}));
        assert_eq!(
            scalar(&s, "rows", "SELECT count(*) AS n FROM items"),
            json!(10000)
        );
    });
    sections.run("Defaults applied to omitted columns", || {
        // Defaults applied to omitted columns.
        assert_eq!(
            scalar(
                &s,
                "rows",
                "SELECT count(*) FROM items WHERE note = 'it''s new' AND created IS NOT NULL"
            ),
            json!(10000)
        );
    });
    sections.run("Every operator, with and without not", || {
        // Every operator, with and without not.
        assert_eq!(ids(&get("id=eq.5")), vec![5]);
        assert_eq!(ids(&get("id=lt.4&order=id")), vec![1, 2, 3]);
        assert_eq!(ids(&get("id=lte.3&order=id")), vec![1, 2, 3]);
        assert_eq!(ids(&get("id=gt.9998&order=id")), vec![9999, 10000]);
        assert_eq!(ids(&get("id=gte.9999&order=id")), vec![9999, 10000]);
        assert_eq!(ids(&get("id=lte.3&id=neq.2&order=id")), vec![1, 3]);
        assert_eq!(ids(&get("id=in.(7,3,99999)&order=id")), vec![3, 7]);
        assert_eq!(
            ids(&get("id=lte.5&id=not.in.(1,2)&order=id")),
            vec![3, 4, 5]
        );
        assert_eq!(
            ids(&get(&format!(
                "name={}&order=id&limit=1000",
                enc("like.item 99*")
            )))
            .len(),
            111
        );
        assert_eq!(
            ids(&get(&format!("name={}&order=id", enc("ilike.ITEM 999*")))),
            vec![999, 9990, 9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999]
        );
        assert_eq!(
            ids(&get("id=lte.30&score=is.null&order=id")),
            vec![10, 20, 30]
        );
        assert_eq!(
            ids(&get("id=lte.3&score=is.not_null&order=id")),
            vec![1, 2, 3]
        );
        assert_eq!(ids(&get("id=lte.4&flag=is.true&order=id")), vec![2, 4]);
        assert_eq!(ids(&get("id=lte.4&flag=is.false&order=id")), vec![1, 3]);
        assert_eq!(ids(&get("id=lte.4&flag=not.is.true&order=id")), vec![1, 3]);
        assert_eq!(ids(&get("id=lte.3&id=not.eq.2&order=id.desc")), vec![3, 1]);
        assert_eq!(ids(&get("id=lte.12&score=gte.10&order=id")), vec![11, 12]);
    });
    sections.run("Order with nulls first and last, several keys", || {
        // Order with nulls first and last, several keys.
        assert_eq!(
            ids(&get("id=lte.20&order=score.desc.nullsfirst,id&limit=3")),
            vec![10, 20, 19]
        );
        assert_eq!(
            ids(&get("id=lte.20&order=score.asc.nullslast,id.desc&limit=2")),
            vec![1, 2]
        );
    });
    sections.run("Paging and the count", || {
        // Paging and the count.
        assert_eq!(ids(&get("order=id&limit=3&offset=10")), vec![11, 12, 13]);
        assert_eq!(ids(&get("")).len(), 100, "default limit");
        let r = s.call(
            "GET",
            &format!("{t}/items/rows?flag=is.true&order=id&limit=10&offset=20"),
            None,
            &[("Prefer", "count=exact")],
        );
        assert_eq!(r.header("content-range"), Some("20-29/5000"));
        let r = get("id=gt.10000");
        assert_eq!(
            (r.header("content-range"), r.text().as_str()),
            (Some("*/*"), "[]")
        );
        let r = get("select=id,name&id=eq.1");
        assert_eq!(r.json(), json!([{"id": 1, "name": "item 1"}]));
        assert_eq!(get("limit=10001").status, 400);
        assert_eq!(ids(&get("limit=10000")).len(), 10000);
    });
    sections.run(
        "Errors: unknown column (named), unknown table, bad value,...",
        || {
            // Errors: unknown column (named), unknown table, bad value, bad operator.
            let r = get("nope=eq.1");
            assert_eq!(
                (r.status, r.json()["error"]["detail"]["field"].as_str()),
                (400, Some("nope")),
                "{}",
                r.text()
            );
            assert!(r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nope"));
            assert_eq!(s.get(&format!("{t}/nope/rows")).status, 404);
            let r = get("id=eq.abc");
            assert_eq!(
                (r.status, code(&r).as_str()),
                (400, "22P02"),
                "{}",
                r.text()
            );
            assert_eq!(get("id=foo.1").status, 400);
            assert_eq!(get("order=id.sideways").status, 400);
        },
    );
    sections.run(
        "Write errors map SQLSTATEs: duplicate 409, not-null 400",
        || {
            // Write errors map SQLSTATEs: duplicate 409, not-null 400.
            let r = s.post(&format!("{t}/items/rows"), &json!({"id": 1, "name": "dup"}));
            assert_eq!(
                (r.status, code(&r).as_str()),
                (409, "23505"),
                "{}",
                r.text()
            );
            assert!(r.json()["error"]["detail"]["detail"]
                .as_str()
                .unwrap()
                .contains("(id)=(1)"));
            let r = s.post(&format!("{t}/items/rows"), &json!({"id": 20001}));
            assert_eq!(
                (r.status, code(&r).as_str()),
                (400, "23502"),
                "{}",
                r.text()
            );
        },
    );
    sections.run("Upsert both ways", || {
        // Upsert both ways.
        let r = s.call(
            "POST",
            &format!("{t}/items/rows"),
            Some(&json!([{"id": 1, "name": "merged"}, {"id": 20002, "name": "new"}])),
            &[("Prefer", "resolution=merge-duplicates")],
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json().as_array().unwrap().len(), 2);
        let r = s.call(
            "POST",
            &format!("{t}/items/rows?on_conflict=code"),
            Some(&json!({"id": 30000, "name": "ignored", "code": "c2"})),
            &[("Prefer", "resolution=ignore-duplicates")],
        );
        assert_eq!((r.status, r.json()), (201, json!([])), "{}", r.text());
        assert_eq!(
            get("id=in.(1,2,20002)&select=id,name&order=id").json(),
            json!([
            {"id": 1, "name": "merged"}, {"id": 2, "name": "item 2"}, {"id": 20002, "name": "new"}])
        );
    });
    sections.run(
        "PATCH and DELETE with filters; without any filter they ar...",
        || {
            // PATCH and DELETE with filters; without any filter they are refused.
            let r = s.call(
                "PATCH",
                &format!("{t}/items/rows?id=in.(3,4)"),
                Some(&json!({"name": "patched", "flag": null})),
                &[],
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let patched = r.json();
            assert_eq!(patched.as_array().unwrap().len(), 2);
            assert!(patched
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["name"] == "patched" && r["flag"].is_null()));
            for method in ["PATCH", "DELETE"] {
                let r = s.call(
                    method,
                    &format!("{t}/items/rows"),
                    Some(&json!({"name": "all"})),
                    &[],
                );
                assert_eq!(r.status, 400, "{method}: {}", r.text());
                assert!(r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("all=true"));
            }
            assert_eq!(
                scalar(&s, "rows", "SELECT count(*) FROM items WHERE name = 'all'"),
                json!(0)
            );
            let r = s.call(
                "DELETE",
                &format!("{t}/items/rows?id=gt.9995&id=lte.10000"),
                None,
                &[("Prefer", "return=minimal")],
            );
            assert_eq!(r.json(), json!({"count": 5}));
            let r = s.call("DELETE", &format!("{t}/items/rows?id=eq.20002"), None, &[]);
            assert_eq!(r.json()[0]["name"], "new");
            let r = s.call(
                "PATCH",
                &format!("{t}/items/rows?all=true"),
                Some(&json!({"flag": true})),
                &[("Prefer", "return=minimal")],
            );
            assert_eq!(r.json(), json!({"count": 9995}));
        },
    );
    sections.run("Tables: list, describe, foreign keys, drop with and witho...", || {
        // Tables: list, describe, foreign keys, drop with and without cascade.
        let r = s.post(t, &json!({"name": "child", "columns": [{"name": "id", "type": "serial", "primary_key": true}, {"name": "item", "type": "int8"}]}));
        assert_eq!(r.status, 201);
        let r = sql(
            &s,
            "rows",
            "ALTER TABLE child ADD FOREIGN KEY (item) REFERENCES items(id)",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = s.post(&format!("{t}/child/rows"), &json!({"item": 999999}));
        assert_eq!(
            (r.status, code(&r).as_str()),
            (409, "23503"),
            "{}",
            r.text()
        );
        let d = s.get(&format!("{t}/child")).json();
        assert_eq!(d["foreign_keys"][0]["references_table"], "items");
        assert_eq!(d["foreign_keys"][0]["columns"], json!(["item"]));
        let list = s.get(t).json();
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["child", "items"]);
        assert!(list[1]["total_bytes"].as_i64().unwrap() > 100_000);
        let r = s.delete(&format!("{t}/items"));
        assert_eq!(
            (r.status, code(&r).as_str()),
            (409, "2BP01"),
            "{}",
            r.text()
        );
        assert_eq!(s.delete(&format!("{t}/items?cascade=true")).status, 200);
        assert_eq!(s.get(&format!("{t}/items/rows")).status, 404);
        assert_eq!(
            s.get(&format!("{t}/child")).json()["foreign_keys"],
            json!([])
        );
    });
    sections.run("The CLI: tables and sql", || {
        // The CLI: tables and sql.
        let out = h.run(&["tables", "rows"]).ok();
        assert!(out.contains("child"), "{out}");
        let out = h
            .run(&[
                "sql",
                "rows",
                "SELECT $1::int + 1 AS answer, $2 AS word",
                "--param",
                "41",
                "--param",
                "hi",
            ])
            .ok();
        assert!(
            out.contains("answer")
                && out.contains("42")
                && out.contains("hi")
                && out.contains("(1 row)"),
            "{out}"
        );
        let v = h.run(&["sql", "rows", "SELECT 1 AS a", "--json"]).json();
        assert_eq!(v["rows"], json!([{"a": 1}]));
        let r = h.run(&["sql", "rows", "SELECT * FROM nope"]);
        assert!(r.fails_with(8).contains("42P01"), "{}", r.stderr());
    });
    sections.finish();
}

#[test]
fn every_type_round_trips_through_the_api_and_psql() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbtypes");
    h.create("types", &[]);
    let s = Server::start(&h, &[]);
    // (column, type, JSON value in, JSON value out, the same as a SQL literal)
    let cases: Vec<(&str, &str, Value, Value, &str)> = vec![
        ("b", "bool", json!(true), json!(true), "true"),
        ("i2", "int2", json!(32767), json!(32767), "32767"),
        (
            "i4",
            "int4",
            json!(-2147483648i64),
            json!(-2147483648i64),
            "-2147483648",
        ),
        (
            "i8",
            "int8",
            json!(9007199254740993i64),
            json!(9007199254740993i64),
            "9007199254740993",
        ),
        ("f4", "float4", json!(1.5), json!(1.5), "1.5"),
        (
            "f8",
            "float8",
            json!(1.2345678901234567),
            json!(1.2345678901234567),
            "1.2345678901234567",
        ),
        (
            "num",
            "numeric",
            json!("12345678901234567890.123456789012345678"),
            json!("12345678901234567890.123456789012345678"),
            "12345678901234567890.123456789012345678",
        ),
        (
            "num2",
            "numeric(12,4)",
            json!("-0.0001"),
            json!("-0.0001"),
            "-0.0001",
        ),
        (
            "t",
            "text",
            json!("héllo \"q\" 'single' \\ back ✓"),
            json!("héllo \"q\" 'single' \\ back ✓"),
            "'héllo \"q\" ''single'' \\ back ✓'",
        ),
        (
            "vc",
            "varchar(20)",
            json!("short"),
            json!("short"),
            "'short'",
        ),
        ("ch", "char(5)", json!("abcde"), json!("abcde"), "'abcde'"),
        (
            "u",
            "uuid",
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        ),
        (
            "j",
            "json",
            json!({"a": [1, 2, {"b": null}]}),
            json!({"a": [1, 2, {"b": null}]}),
            "'{\"a\":[1,2,{\"b\":null}]}'",
        ),
        (
            "jb",
            "jsonb",
            json!({"x": "y", "n": 1.5}),
            json!({"x": "y", "n": 1.5}),
            "'{\"x\": \"y\", \"n\": 1.5}'",
        ),
        (
            "js",
            "jsonb",
            json!("just a string"),
            json!("just a string"),
            "'\"just a string\"'",
        ),
        (
            "d",
            "date",
            json!("2024-02-29"),
            json!("2024-02-29"),
            "'2024-02-29'",
        ),
        (
            "tm",
            "time",
            json!("13:45:30.123456"),
            json!("13:45:30.123456"),
            "'13:45:30.123456'",
        ),
        (
            "ts",
            "timestamp",
            json!("2024-02-29T13:45:30.5"),
            json!("2024-02-29T13:45:30.5"),
            "'2024-02-29 13:45:30.5'",
        ),
        (
            "tz",
            "timestamptz",
            json!("2024-02-29T15:45:30.5+02:00"),
            json!("2024-02-29T13:45:30.5Z"),
            "'2024-02-29 13:45:30.5+00'",
        ),
        (
            "by",
            "bytea",
            json!("AAEC//4="),
            json!("AAEC//4="),
            "'\\x000102fffe'::bytea",
        ),
        (
            "ai",
            "int4[]",
            json!([1, null, 3]),
            json!([1, null, 3]),
            "'{1,NULL,3}'",
        ),
        (
            "at",
            "text[]",
            json!(["a", "b,c", "d\"e", null, "NULL", ""]),
            json!(["a", "b,c", "d\"e", null, "NULL", ""]),
            "ARRAY['a', 'b,c', 'd\"e', NULL, 'NULL', '']",
        ),
        (
            "an",
            "numeric[]",
            json!(["1.10", "2.5"]),
            json!(["1.10", "2.5"]),
            "'{1.10,2.5}'",
        ),
        (
            "ab",
            "bool[]",
            json!([true, false]),
            json!([true, false]),
            "'{t,f}'",
        ),
        (
            "af",
            "float8[]",
            json!([0.5, -2.0]),
            json!([0.5, -2.0]),
            "'{0.5,-2}'",
        ),
        (
            "au",
            "uuid[]",
            json!(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
            json!(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
            "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'",
        ),
        (
            "atz",
            "timestamptz[]",
            json!(["2024-01-01T00:00:00Z"]),
            json!(["2024-01-01T00:00:00Z"]),
            "'{2024-01-01 00:00:00+00}'",
        ),
        (
            "ad",
            "date[]",
            json!(["1999-12-31", "2000-01-01"]),
            json!(["1999-12-31", "2000-01-01"]),
            "'{1999-12-31,2000-01-01}'",
        ),
        (
            "aby",
            "bytea[]",
            json!(["AAE=", "/w=="]),
            json!(["AAE=", "/w=="]),
            "ARRAY['\\x0001'::bytea, '\\xff'::bytea]",
        ),
        (
            "ajb",
            "jsonb[]",
            json!([{"a": 1}, [1, 2]]),
            json!([{"a": 1}, [1, 2]]),
            "ARRAY['{\"a\": 1}'::jsonb, '[1, 2]'::jsonb]",
        ),
        ("nul", "text", Value::Null, Value::Null, "NULL"),
    ];
    let mut sections = Sections::default();
    sections.run("Every type round-trips through insert and read", || {
        let mut columns = vec![json!({"name": "id", "type": "int4", "primary_key": true})];
        columns.extend(
            cases
                .iter()
                .map(|(c, ty, ..)| json!({"name": c, "type": ty})),
        );
        let r = s.post(
            "/database/types/tables",
            &json!({"name": "ty", "columns": columns}),
        );
        assert_eq!(r.status, 201, "{}", r.text());

        let mut row = serde_json::Map::new();
        row.insert("id".into(), json!(1));
        for (c, _, v, ..) in &cases {
            row.insert(c.to_string(), v.clone());
        }
        let r = s.post("/database/types/tables/ty/rows", &Value::Object(row));
        assert_eq!(r.status, 201, "{}", r.text());
        let inserted = r.json()[0].clone();
        let read = s.get("/database/types/tables/ty/rows?id=eq.1").json()[0].clone();
        for (c, ty, _, out, _) in &cases {
            assert_eq!(&inserted[c], out, "{c} ({ty}) as returned by the insert");
            assert_eq!(&read[c], out, "{c} ({ty}) as read back");
        }
    });
    sections.run("Filters on typed columns bind correctly too", || {
        // Filters on typed columns bind correctly too.
        for q in [
            "u=eq.a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "tz=eq.2024-02-29T13:45:30.5Z",
            "by=eq.AAEC%2F%2F4%3D",
            "num=gt.1e19",
            "d=lt.2024-03-01",
        ] {
            assert_eq!(
                ids(&s.get(&format!("/database/types/tables/ty/rows?{q}"))),
                vec![1],
                "{q}"
            );
        }
    });
    sections.run(
        "psql, inside the container, finds exactly the intended va...",
        || {
            // psql, inside the container, finds exactly the intended values.
            let checks: Vec<String> = cases
                .iter()
                .map(|(c, ty, _, _, lit)| {
                    // json has no equality operator; compare it as jsonb.
                    let ty = if *ty == "json" { "jsonb" } else { ty };
                    format!("('{c}', \"{c}\"::{ty} IS NOT DISTINCT FROM ({lit})::{ty})")
                })
                .collect();
            let q = format!(
                "SELECT v.name FROM ty, LATERAL (VALUES {}) v(name, ok) WHERE ok IS NOT TRUE",
                checks.join(", ")
            );
            let out = h.run(&["psql", "types", "-c", &q]).ok();
            assert!(
                out.contains("(0 rows)"),
                "columns differing from what was sent:\n{out}"
            );
        },
    );
    sections.run(
        "/sql binds JSON parameters to each inferred type and deco...",
        || {
            // /sql binds JSON parameters to each inferred type and decodes results.
            for (c, ty, v, out, _) in &cases {
                let r = sql(&s, "types", &format!("SELECT $1::{ty} AS v"), json!([v]));
                assert_eq!(r.status, 200, "{c}: {}", r.text());
                assert_eq!(&r.json()["rows"][0]["v"], out, "{c} ({ty}) through /sql");
            }
        },
    );
    sections.run("Any other type comes back as PostgreSQL's text for it", || {
        // Any other type comes back as PostgreSQL's text for it.
        let r = sql(
            &s,
            "types",
            "CREATE TYPE mood AS ENUM ('sad', 'happy')",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = sql(
            &s,
            "types",
            "SELECT interval '1 day 2 hours' AS i, point(1, 2) AS p, inet '10.0.0.1/8' AS n, 12.5::money AS m, \
             'a fat cat'::tsvector AS tv, B'101' AS bits, int4range(1, 5) AS r, '{{1,2},{3,4}}'::int[] AS md, \
             'happy'::mood AS e, ARRAY['sad'::mood] AS ea, '10:00+02'::timetz AS ttz, 'NaN'::float8 AS nan, \
             'infinity'::timestamptz AS inf, '-infinity'::numeric AS ninf",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["rows"][0],
            json!({"i": "1 day 02:00:00", "p": "(1,2)", "n": "10.0.0.1/8", "m": "$12.50",
                   "tv": "'a' 'cat' 'fat'", "bits": "101", "r": "[1,5)", "md": "{{1,2},{3,4}}",
                   "e": "happy", "ea": ["sad"], "ttz": "10:00:00+02", "nan": "NaN", "inf": "infinity", "ninf": "-Infinity"})
        );
        assert_eq!(
            r.json()["columns"][0],
            json!({"name": "i", "type": "interval"})
        );
    });
    sections.run("dump and import carry every type to another instance", || {
        let r = sql(
            &s,
            "types",
            "CREATE TABLE other AS SELECT interval '1 day 2 hours' AS i, point(1, 2) AS p, inet '10.0.0.1/8' AS n, \
             12.5::money AS m, 'a fat cat'::tsvector AS tv, B'101' AS bits, int4range(1, 5) AS r, \
             '{{1,2},{3,4}}'::int[] AS md, 'happy'::mood AS e, ARRAY['sad'::mood] AS ea, '10:00+02'::timetz AS ttz, \
             'NaN'::float8 AS nan, 'infinity'::timestamptz AS inf, '-infinity'::numeric AS ninf",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let file = h.root.join("types.dump");
        let out = std::fs::File::create(&file).unwrap();
        let st = h
            .command(&["dump", "types"])
            .stdout(std::process::Stdio::from(out))
            .status()
            .unwrap();
        assert!(st.success(), "dump failed: {st}");
        let (_, copy) = h.create("types-copy", &[]);
        h.run(&["import", "types-copy", file.to_str().unwrap()]).ok();
        let original = h.run(&["url", "types"]).ok().trim().to_string();
        let each = |url: &str, table: &str| -> Vec<String> {
            connect(url)
                .query(&format!("SELECT to_jsonb(x)::text FROM {table} x ORDER BY 1"), &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        for table in ["ty", "other"] {
            let want = each(&original, table);
            assert_eq!(want.len(), 1, "{table}");
            assert_eq!(each(&copy, table), want, "{table} differs after dump and import");
        }
    });
    sections.finish();
}

#[test]
fn sql_transactions_errors_and_concurrent_writers() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbsql");
    h.create("sq", &[]);
    let s = Server::start(&h, &[("DBAAS_STATEMENT_TIMEOUT", "2s")]);
    let db = "sq";

    let r = sql(
        &s,
        db,
        "CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0))",
        json!([]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["command"], "CREATE");
    let r = sql(
        &s,
        db,
        "INSERT INTO acct SELECT g, 100 FROM generate_series(1, $1::int) g",
        json!([10]),
    );
    assert_eq!(
        (r.json()["command"].as_str(), r.json()["row_count"].as_u64()),
        (Some("INSERT"), Some(10))
    );
    let r = sql(
        &s,
        db,
        "SELECT id, balance FROM acct WHERE id <= $1 ORDER BY id",
        json!([2]),
    );
    assert_eq!(
        r.json()["rows"],
        json!([{"id": 1, "balance": 100}, {"id": 2, "balance": 100}])
    );
    assert_eq!(
        r.json()["columns"],
        json!([{"name": "id", "type": "int4"}, {"name": "balance", "type": "int4"}])
    );
    assert_eq!(r.json()["row_count"], 2);

    let mut sections = Sections::default();
    sections.run(
        "Read-only, one statement only, parameter count, syntax, p...",
        || {
            // Read-only, one statement only, parameter count, syntax, privileges,
            // the statement timeout, same-named columns: each a clear error.
            let r = s.post(
                &format!("/database/{db}/sql"),
                &json!({"sql": "DELETE FROM acct", "read_only": true}),
            );
            assert_eq!(
                (r.status, code(&r).as_str()),
                (400, "25006"),
                "{}",
                r.text()
            );
            let r = sql(&s, db, "SELECT 1; DELETE FROM acct", json!([]));
            assert_eq!(
                (r.status, code(&r).as_str()),
                (400, "42601"),
                "{}",
                r.text()
            );
            let r = sql(&s, db, "SELECT $1::int, $2::int", json!([1]));
            assert_eq!(
                (r.status, r.json()["error"]["detail"]["field"].as_str()),
                (400, Some("params")),
                "{}",
                r.text()
            );
            let r = sql(&s, db, "SELEKT 1", json!([]));
            assert_eq!((r.status, code(&r).as_str()), (400, "42601"));
            assert!(r.json()["error"]["detail"]["position"].as_u64().is_some());
            let r = sql(&s, db, "SELECT * FROM pg_authid", json!([]));
            assert_eq!(
                (r.status, code(&r).as_str()),
                (403, "42501"),
                "{}",
                r.text()
            );
            let r = sql(&s, db, "SELECT pg_sleep(5)", json!([]));
            assert_eq!(
                (r.status, code(&r).as_str()),
                (504, "57014"),
                "{}",
                r.text()
            );
            let r = sql(&s, db, "SELECT 1 AS a, 2 AS a", json!([]));
            assert_eq!(r.status, 400, "{}", r.text());
            let r = s.post(
                &format!("/database/{db}/sql"),
                &json!({"sql": "SELECT 1 AS a, 2 AS a", "array_mode": true}),
            );
            assert_eq!(r.json()["rows"], json!([[1, 2]]));
            let r = sql(&s, db, "SELECT $1::bytea", json!(["not base64!"]));
            assert_eq!(
                (r.status, r.json()["error"]["detail"]["field"].as_str()),
                (400, Some("params[0]"))
            );
            let r = sql(&s, db, "SELECT 1/0", json!([]));
            assert_eq!((r.status, code(&r).as_str()), (400, "22012"));
            assert!(
                r.json()["error"].as_object().unwrap().contains_key("hint")
                    && r.json()["error"]["hint"].is_null()
            );
            let r = sql(&s, db, "SELECT balanc FROM acct", json!([]));
            assert_eq!((r.status, code(&r).as_str()), (400, "42703"));
            assert!(
                r.json()["error"]["hint"]
                    .as_str()
                    .unwrap()
                    .contains("balance"),
                "{}",
                r.text()
            );
            let r = sql(&s, db, "SELECT * FROM missing_table", json!([]));
            assert_eq!((r.status, code(&r).as_str()), (404, "42P01"));
        },
    );
    sections.run(
        "A transaction is all or nothing and names the failing sta...",
        || {
            // A transaction is all or nothing and names the failing statement.
            let t = format!("/database/{db}/transaction");
            let r = s.post(
                &t,
                &json!({"statements": [
            {"sql": "UPDATE acct SET balance = balance - $1 WHERE id = 1", "params": [30]},
            {"sql": "UPDATE acct SET balance = balance + $1 WHERE id = 2", "params": [30]},
            {"sql": "SELECT balance FROM acct WHERE id IN (1, 2) ORDER BY id"}
        ], "isolation": "serializable"}),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(
                r.json()["results"][2]["rows"],
                json!([{"balance": 70}, {"balance": 130}])
            );
            let r = s.post(
                &t,
                &json!({"statements": [
                    {"sql": "INSERT INTO acct VALUES (100, 1)"},
                    {"sql": "UPDATE acct SET balance = balance - 500 WHERE id = 3"},
                    {"sql": "INSERT INTO acct VALUES (101, 1)"}
                ]}),
            );
            assert_eq!(
                (r.status, code(&r).as_str()),
                (400, "23514"),
                "{}",
                r.text()
            );
            assert_eq!(r.json()["error"]["detail"]["statement"], 1);
            assert!(r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("statement 1:"));
            assert_eq!(
                scalar(&s, db, "SELECT count(*) FROM acct WHERE id >= 100"),
                json!(0),
                "nothing left behind"
            );
            assert_eq!(
                scalar(&s, db, "SELECT balance FROM acct WHERE id = 3"),
                json!(100)
            );
            let r = s.post(
                &t,
                &json!({"statements": [{"sql": "SELECT 1"}], "isolation": "chaos"}),
            );
            assert_eq!((r.status, code(&r).as_str()), (400, "invalid_json"));
            let r = s.post(&t, &json!({"statements": []}));
            assert_eq!(r.status, 400);
        },
    );
    sections.run(
        "Concurrent writers: 8 threads x 25 single-row inserts, an...",
        || {
            // Concurrent writers: 8 threads x 25 single-row inserts, and 8 x 25
            // increments in transactions; nothing is lost.
            let r = sql(
                &s,
                db,
                "CREATE TABLE ev (id bigserial PRIMARY KEY, who int, n int)",
                json!([]),
            );
            assert_eq!(r.status, 200);
            std::thread::scope(|scope| {
                for w in 0..8 {
                    let s = &s;
                    scope.spawn(move || {
                        for n in 0..25 {
                            let r = s.post(
                                &format!("/database/{db}/tables/ev/rows"),
                                &json!({"who": w, "n": n}),
                            );
                            assert_eq!(r.status, 201, "{}", r.text());
                            let r = s.post(
                                &format!("/database/{db}/transaction"),
                                &json!({"statements": [
                            {"sql": "UPDATE acct SET balance = balance + 1 WHERE id = 10"},
                            {"sql": "SELECT balance FROM acct WHERE id = 10"}]}),
                            );
                            assert_eq!(r.status, 200, "{}", r.text());
                        }
                    });
                }
            });
            assert_eq!(
                scalar(&s, db, "SELECT count(DISTINCT (who, n)) FROM ev"),
                json!(200)
            );
            assert_eq!(
                scalar(&s, db, "SELECT balance FROM acct WHERE id = 10"),
                json!(300)
            );
        },
    );
    sections.finish();
}

#[test]
fn injection_attempts_are_rejected_or_treated_as_data() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbinject");
    h.create("inj", &[]);
    let s = Server::start(&h, &[]);
    let r = sql(
        &s,
        "inj",
        "CREATE TABLE t (id int PRIMARY KEY, name text, \"a\"\"b\" text)",
        json!([]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post(
        "/database/inj/tables/t/rows",
        &json!([{"id": 1, "name": "one", "a\"b": "q"}, {"id": 2, "name": "two"}]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let survives = |what: &str| {
        assert_eq!(
            scalar(&s, "inj", "SELECT count(*) FROM t"),
            json!(2),
            "after {what}"
        );
        assert_eq!(
            scalar(
                &s,
                "inj",
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ),
            json!(1),
            "after {what}"
        );
    };
    let long = "x".repeat(1000);
    let evil = [
        "\"; DROP TABLE t; --",
        "t\"; DROP TABLE t; --",
        "a\"b",
        "'; DROP TABLE t; --",
        "ünïcödé ✓ 表",
        "nul\u{0}byte",
        long.as_str(),
        "1) OR 1=1; --",
        "id desc; DROP TABLE t",
    ];
    for e in evil {
        let ee = enc(e);
        // As a table name: 404 (no such table) or 400 (not a name).
        for path in [
            format!("/database/inj/tables/{ee}/rows"),
            format!("/database/inj/tables/{ee}"),
        ] {
            let r = s.get(&path);
            assert!(
                matches!(r.status, 400 | 404),
                "{e:?} {path}: {} {}",
                r.status,
                r.text()
            );
        }
        let r = s.post(
            &format!("/database/inj/tables/{ee}/rows"),
            &json!({"id": 9}),
        );
        assert!(matches!(r.status, 400 | 404), "{e:?}: {}", r.text());
        let r = s.delete(&format!("/database/inj/tables/{ee}"));
        assert!(matches!(r.status, 400 | 404), "{e:?}: {}", r.text());
        // As a column: in select, order, a filter key and a written key.
        for q in [
            format!("select={ee}"),
            format!("order={ee}"),
            format!("{ee}=eq.1"),
        ] {
            let r = s.get(&format!("/database/inj/tables/t/rows?{q}"));
            if e == "a\"b" {
                assert_eq!(r.status, 200, "{q}: {}", r.text());
            } else {
                assert_eq!(r.status, 400, "{e:?} {q}: {}", r.text());
            }
        }
        let mut row = serde_json::Map::new();
        row.insert(e.to_string(), json!("x"));
        row.insert("id".into(), json!(50));
        let r = s.post("/database/inj/tables/t/rows", &Value::Object(row));
        if e != "a\"b" {
            assert_eq!(r.status, 400, "{e:?}: {}", r.text());
        } else {
            assert_eq!(r.status, 201);
            assert_eq!(
                s.call("DELETE", "/database/inj/tables/t/rows?id=eq.50", None, &[])
                    .status,
                200
            );
        }
        // As a value: data, never SQL.
        let r = s.get(&format!("/database/inj/tables/t/rows?name=eq.{ee}"));
        if e.contains('\0') {
            assert_eq!(r.status, 400, "NUL in a value: {}", r.text());
        } else {
            assert_eq!((r.status, r.text().as_str()), (200, "[]"), "{e:?}");
        }
        let r = s.get(&format!(
            "/database/inj/tables/t/rows?name=in.({ee},one)&select=id"
        ));
        assert!(matches!(r.status, 200 | 400), "{e:?}: {}", r.text());
        let r = s.get(&format!("/database/inj/tables/t/rows?id=eq.{ee}"));
        assert_eq!(r.status, 400, "{e:?} as an int: {}", r.text());
        let r = s.call(
            "PATCH",
            "/database/inj/tables/t/rows?id=eq.2",
            Some(&json!({"name": e})),
            &[],
        );
        if e.contains('\0') {
            assert_eq!(r.status, 400, "{}", r.text());
        } else {
            assert_eq!(r.json()[0]["name"], e, "stored as data");
        }
        survives(e);
    }
    // A quote in a schema name, and a table name over the limit, are
    // refused before PostgreSQL could truncate them onto another name.
    assert_eq!(
        s.get(&format!("/database/inj/tables/{}/rows", "t".repeat(64)))
            .status,
        400
    );
    assert_eq!(
        s.get("/database/inj/tables/t/rows?schema=public%22%3B%20DROP%20TABLE%20t%3B--")
            .status,
        404
    );
    survives("everything");
}

#[test]
fn pool_recovers_after_restarts_and_refuses_stopped_instances() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbpool");
    h.create("pl", &[]);
    let s = Server::start(&h, &[("DBAAS_POOL_SIZE", "3")]);
    let r = sql(
        &s,
        "pl",
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
        json!([]),
    );
    assert_eq!(r.status, 400, "two statements are refused: {}", r.text());
    assert_eq!(
        sql(&s, "pl", "CREATE TABLE t (id int PRIMARY KEY)", json!([])).status,
        200
    );
    assert_eq!(
        s.post("/database/pl/tables/t/rows", &json!({"id": 1}))
            .status,
        201
    );
    // Fill the pool with connections, concurrently.
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| assert_eq!(ids(&s.get("/database/pl/tables/t/rows")), vec![1]));
        }
    });
    // Restarted behind the server's back (from the CLI): the very next
    // requests succeed.
    h.run(&["restart", "pl"]).ok();
    for _ in 0..6 {
        assert_eq!(ids(&s.get("/database/pl/tables/t/rows")), vec![1]);
    }
    // Restarted through the API.
    assert_eq!(s.post_empty("/instances/pl/restart").status, 200);
    assert_eq!(ids(&s.get("/database/pl/tables/t/rows")), vec![1]);
    // The gate: with DBAAS_DB_CONCURRENCY=2, six concurrent slow statements
    // run two at a time (seen from PostgreSQL), and all of them succeed.
    let gated = Server::start(
        &h,
        &[("DBAAS_POOL_SIZE", "8"), ("DBAAS_DB_CONCURRENCY", "2")],
    );
    let mut watcher = common::connect(h.run(&["url", "pl"]).ok().trim());
    let started = std::time::Instant::now();
    let most = std::thread::scope(|scope| {
        let sleepers: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| sql(&gated, "pl", "SELECT pg_sleep(0.4)", json!([])).status))
            .collect();
        let mut most = 0;
        while !sleepers.iter().all(|t| t.is_finished()) {
            let n: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbaas-api' \
                     AND state = 'active' AND query LIKE '%pg_sleep(0.4)%'",
                    &[],
                )
                .unwrap()
                .get(0);
            most = most.max(n);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        for t in sleepers {
            assert_eq!(t.join().unwrap(), 200);
        }
        most
    });
    assert_eq!(most, 2, "statements running at once through the gate");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1200),
        "six 0.4 s statements two at a time take three rounds: {:?}",
        started.elapsed()
    );
    drop(gated);
    // Stopped: 409 saying so; started again: served.
    assert_eq!(s.post_empty("/instances/pl/stop").status, 200);
    let r = s.get("/database/pl/tables/t/rows");
    assert_eq!(
        (r.status, code(&r).as_str()),
        (409, "conflict"),
        "{}",
        r.text()
    );
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not running"));
    assert_eq!(s.post_empty("/instances/pl/start").status, 200);
    assert_eq!(ids(&s.get("/database/pl/tables/t/rows")), vec![1]);
    // Unknown instance 404; the CLI refuses a stopped instance too.
    assert_eq!(s.get("/database/nope/tables").status, 404);
    h.run(&["down", "pl"]).ok();
    let r = h.run(&["sql", "pl", "SELECT 1"]);
    assert!(r.fails_with(4).contains("not running"), "{}", r.stderr());
}
