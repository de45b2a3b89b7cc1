//! The connection pools across restarts, and a stopped instance refused.

use super::*;

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
