//! POST /sql and /transaction: parameters, errors, isolation, and
//! concurrent writers.

use super::*;

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
