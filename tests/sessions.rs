//! Pooled sessions stay clean: on a pool of one connection, no statement
//! sent to /sql or /transaction may leave state behind that changes or
//! loses a later request's write (issue 10, part 1).

mod common;
use common::*;
use serde_json::{json, Value};

fn sql(s: &Server, q: &str) -> http::Response {
    s.post("/database/sess/sql", &json!({ "sql": q }))
}

/// The session as a fresh connection has it, read through the API.
fn session_state(s: &Server) -> Value {
    let r = sql(
        s,
        "SELECT current_setting('statement_timeout') AS st, current_setting('search_path') AS sp, \
         current_user::text AS u, current_setting('default_transaction_read_only') AS ro, \
         current_setting('transaction_isolation') AS iso, \
         (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())::int AS locks, \
         (SELECT count(*) FROM pg_class WHERE relpersistence = 't')::int AS temps, \
         (SELECT count(*) FROM pg_listening_channels())::int AS listens, \
         (SELECT count(*) FROM pg_cursors)::int AS cursors, \
         (SELECT count(*) FROM pg_prepared_xacts)::int AS prepared_xacts",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["rows"][0].clone()
}

#[test]
fn no_statement_leaves_state_on_a_pooled_session() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("sessions");
    let (_, url) = h.create("sess", &[]);
    let s = Server::start(
        &h,
        &[("DBAAS_POOL_SIZE", "1"), ("DBAAS_DB_CONCURRENCY", "1")],
    );
    let r = sql(&s, "CREATE TABLE t (id int PRIMARY KEY)");
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = session_state(&s);
    assert_eq!(fresh["st"], "30s", "{fresh}");
    assert_eq!(fresh["locks"], 0, "{fresh}");

    // (statement, refused before it ran?)
    let catalogue: &[(&str, bool)] = &[
        ("BEGIN", true),
        ("begin isolation level serializable", true),
        ("START TRANSACTION", true),
        ("/* a comment */ BEGIN", true),
        ("COMMIT", true),
        ("ROLLBACK", true),
        ("END", true),
        ("ABORT", true),
        ("SAVEPOINT s", true),
        ("RELEASE SAVEPOINT s", true),
        ("PREPARE TRANSACTION 'x'", true),
        ("SET statement_timeout = 0", true),
        ("SET search_path = pg_catalog", true),
        ("SET ROLE pg_monitor", true),
        ("SET LOCAL statement_timeout = 1", true),
        ("SET default_transaction_read_only = on", true),
        ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", true),
        ("RESET ALL", true),
        ("DISCARD ALL", true),
        ("LISTEN chan", true),
        ("UNLISTEN *", true),
        ("PREPARE p AS SELECT 1", true),
        ("DEALLOCATE ALL", true),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", true),
        ("COPY t FROM STDIN", true),
        (
            "SELECT set_config('search_path', 'pg_catalog', false)",
            false,
        ),
        ("SELECT set_config('statement_timeout', '1', false)", false),
        (
            "SELECT set_config('default_transaction_read_only', 'on', false)",
            false,
        ),
        (
            "SELECT set_config('default_transaction_isolation', 'serializable', false)",
            false,
        ),
        ("SELECT pg_advisory_lock(1)", false),
        ("SELECT pg_advisory_lock(2), pg_advisory_lock(2)", false),
        ("CREATE TEMP TABLE t (id int)", false),
        (
            "CREATE TEMP TABLE tmp_keep (id int) ON COMMIT PRESERVE ROWS",
            false,
        ),
        ("SELECT pg_notify('chan', 'x')", false),
        (
            "DO $$BEGIN PERFORM set_config('search_path', 'pg_catalog', false); END$$",
            false,
        ),
        ("SELECT pg_advisory_lock(3), 1/0", false),
        ("VACUUM t", false),
    ];
    assert!(catalogue.len() >= 20);
    for (i, (stmt, refused)) in catalogue.iter().enumerate() {
        let id = i as i64 + 1;
        let r = sql(&s, stmt);
        if *refused {
            assert_eq!(r.status, 400, "{stmt}: {}", r.text());
            let e = r.json();
            assert_eq!(e["error"]["code"], "invalid", "{stmt}: {e}");
            assert_eq!(e["error"]["detail"]["field"], "sql", "{stmt}: {e}");
        } else {
            assert!(r.status == 200 || r.status == 400, "{stmt}: {}", r.text());
        }
        // Another request's write, then a failing read-only statement (which
        // rolled the write back when the session was left in a transaction).
        let w = s.post("/database/sess/tables/t/rows", &json!({ "id": id }));
        assert_eq!(w.status, 201, "after {stmt}: {}", w.text());
        let f = s.post(
            "/database/sess/sql",
            &json!({"sql": "SELECT 1/0", "read_only": true}),
        );
        assert_eq!(f.status, 400, "after {stmt}: {}", f.text());
        // Committed: visible from a connection of its own.
        let mut c = connect(&url);
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM public.t WHERE id = $1",
                &[&(id as i32)],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "the write after {stmt} was lost");
        let free: bool = c
            .query_one(
                "SELECT pg_try_advisory_lock(1) AND pg_try_advisory_lock(2) AND pg_try_advisory_lock(3)",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(free, "an advisory lock of {stmt} outlived its request");
        drop(c);
        assert_eq!(session_state(&s), fresh, "the session after {stmt}");
    }

    // /transaction: its statements may use SET, savepoints and cursors, but
    // not end the transaction, and nothing survives it.
    let tx = |stmts: &[&str]| {
        let statements: Vec<Value> = stmts.iter().map(|q| json!({ "sql": q })).collect();
        s.post(
            "/database/sess/transaction",
            &json!({ "statements": statements }),
        )
    };
    for stmts in [
        &["INSERT INTO t VALUES (1000)", "COMMIT"][..],
        &["INSERT INTO t VALUES (1001)", "ROLLBACK"],
        &["BEGIN", "INSERT INTO t VALUES (1002)"],
        &["INSERT INTO t VALUES (1003)", "PREPARE TRANSACTION 'x'"],
        &["PREPARE q AS SELECT 1"],
    ] {
        let r = tx(stmts);
        assert_eq!(r.status, 400, "{stmts:?}: {}", r.text());
        assert!(
            r.json()["error"]["detail"]["field"]
                .as_str()
                .unwrap_or("")
                .starts_with("statements["),
            "{}",
            r.text()
        );
    }
    for (next, stmts) in (3000..).zip([
        &["SET search_path = pg_catalog", "SELECT 1"][..],
        &["SET LOCAL statement_timeout = 5000", "SELECT 1"],
        &[
            "SAVEPOINT a",
            "INSERT INTO t VALUES (2000)",
            "ROLLBACK TO SAVEPOINT a",
        ],
        &["SELECT pg_advisory_lock(1)"],
        &["LISTEN chan"],
        &["DECLARE c CURSOR WITH HOLD FOR SELECT 1", "FETCH 1 FROM c"],
        &["CREATE TEMP TABLE tt (id int) ON COMMIT PRESERVE ROWS"],
        &[
            "SET ROLE NONE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        ],
    ]) {
        let r = tx(stmts);
        assert_eq!(r.status, 200, "{stmts:?}: {}", r.text());
        let w = s.post("/database/sess/tables/t/rows", &json!({ "id": next }));
        assert_eq!(w.status, 201, "after {stmts:?}: {}", w.text());
        assert_eq!(session_state(&s), fresh, "the session after {stmts:?}");
    }
    let mut c = connect(&url);
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM public.t WHERE id BETWEEN 1000 AND 2999",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a refused or rolled-back transaction wrote");
}
