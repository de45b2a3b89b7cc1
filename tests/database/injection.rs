//! Injection attempts in names, values and headers: refused, or stored as
//! data.

use super::*;

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
