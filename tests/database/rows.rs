//! Row reads and writes: filters, ordering, paging, inserts, updates,
//! deletes and the Prefer header.

use super::*;

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
