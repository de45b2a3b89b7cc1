//! The warm pool (issue 13): spares made ahead of time, claimed by a create
//! (CLI and API) that asks for their shape, refilled in the background,
//! hidden from the views; a claimed spare is an instance like any other and
//! its containers are not recreated by the next `up`.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// `pool --json` until it holds `n` running spares (none of `not`), bounded.
fn wait_for_spares(h: &TestHome, n: usize, not: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let st = h.run(&["pool", "--json"]).json();
        let ready: Vec<String> = st["spares"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "running")
            .map(|s| s["id"].as_str().unwrap().to_string())
            .filter(|id| !not.contains(&id.as_str()))
            .collect();
        if ready.len() >= n {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "the pool was not refilled to {n} in 180 s: {st}\npool.log: {}",
            std::fs::read_to_string(h.root.join("logs/pool.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn start_time(url: &str) -> String {
    query_text(url, "SELECT pg_postmaster_start_time()::text")
}

fn password_hashes(id: &str) -> String {
    superuser_sql(
        id,
        "postgres",
        "SELECT string_agg(rolname || '=' || rolpassword, ',' ORDER BY rolname) FROM pg_authid WHERE rolpassword IS NOT NULL",
    )
}

#[test]
fn a_create_claims_a_spare_and_the_pool_refills() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("pool").with_env("DBAAS_WARM_POOL", "15=1");
    h.run(&["pool", "fill"]).ok();
    let first = wait_for_spares(&h, 1, &[]);
    // Spares are nobody's: not in the list, not findable by the spares' name.
    assert_eq!(h.run(&["list", "--json"]).json(), serde_json::json!([]));
    h.run(&["show", "(spare)"]).fails_with(3);

    let t = Instant::now();
    let a = h.run(&["create", "pa", "--json"]).json();
    let took = t.elapsed();
    eprintln!(
        "pool: `dbaasctl create` from a spare took {} ms",
        took.as_millis()
    );
    assert_eq!(a["from_pool"], true, "{a}");
    let (id_a, url_a) = (
        a["instance"]["id"].as_str().unwrap().to_string(),
        a["url"].as_str().unwrap().to_string(),
    );
    assert_eq!(id_a, first[0], "the spare became the instance");
    assert_eq!(
        query_text(
            &url_a,
            "SELECT current_user || ':' || rolsuper FROM pg_roles WHERE rolname = current_user"
        ),
        "app:false"
    );
    let shown = h.run(&["show", "pa", "--json"]).json();
    assert_eq!(
        (shown["status"].as_str(), shown["name"].as_str()),
        (Some("running"), Some("pa"))
    );
    let header =
        std::fs::read_to_string(h.root.join(format!("instances/{id_a}/docker-compose.yml")))
            .unwrap();
    assert!(header.starts_with("# dbaas instance \"pa\""), "{header}");
    // Limits as create promises, and no container is recreated by `up`.
    let db = docker_inspect(&format!("{id_a}-db-1"));
    assert_eq!(db["HostConfig"]["Memory"], 512u64 << 20);
    let before = start_time(&url_a);
    h.run(&["up", "pa"]).ok();
    assert_eq!(
        start_time(&url_a),
        before,
        "`up` after a claim recreated nothing"
    );
    // The agent samples the claimed instance.
    let metrics = h.root.join(format!("instances/{id_a}/logs/metrics.json"));
    let deadline = Instant::now() + Duration::from_secs(25);
    while !std::fs::read_to_string(&metrics).is_ok_and(|t| t.lines().count() >= 1) {
        assert!(
            Instant::now() < deadline,
            "no agent sample within two intervals"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The background `pool fill` made another spare; the next create takes it.
    let second = wait_for_spares(&h, 1, &[&id_a]);
    let b = h.run(&["create", "pb", "--json"]).json();
    assert_eq!(b["from_pool"], true, "{b}");
    let id_b = b["instance"]["id"].as_str().unwrap().to_string();
    assert_eq!(id_b, second[0]);
    assert_ne!(
        a["instance"]["port"], b["instance"]["port"],
        "every spare has its own port"
    );
    let (ha, hb) = (password_hashes(&id_a), password_hashes(&id_b));
    for part in ha.split(',') {
        assert!(!hb.contains(part), "{part} is in both instances");
    }
    let url_b = b["url"].as_str().unwrap();
    let port_b = b["instance"]["port"].to_string();
    let port_a = a["instance"]["port"].to_string();
    let crossed = url_a.replace(&format!(":{port_a}/"), &format!(":{port_b}/"));
    assert_ne!(crossed, url_a);
    let err = try_connect(&crossed)
        .err()
        .expect("pa's password does not open pb");
    assert!(
        format!("{err:?}").contains("password authentication failed"),
        "{err:?}"
    );
    connect(url_b);

    // What no spare serves takes the template path; a bad create changes
    // nothing in the pool.
    let third = wait_for_spares(&h, 1, &[&id_a, &id_b]);
    let c = h
        .run(&["create", "pc", "--memory", "256m", "--no-backups", "--json"])
        .json();
    assert_eq!(c["from_pool"], false, "{c}");
    h.run(&["create", "pa"]).fails_with(4);
    h.run(&["create", "Bad_Name"]).fails_with(2);
    assert_eq!(wait_for_spares(&h, 1, &[&id_a, &id_b]), third);

    // The API claims too, and `serve` refills the pool itself.
    {
        let server = Server::start(&h, &[]);
        let r = server.post("/instances", &serde_json::json!({"name": "pd"}));
        assert_eq!(r.status, 201, "{}", r.text());
        let d = r.json();
        assert_eq!(
            (d["from_pool"].as_bool(), d["instance"]["id"].as_str()),
            (Some(true), Some(third[0].as_str()))
        );
        let listed = server.get("/instances").json();
        assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
        wait_for_spares(&h, 1, &[&id_a, &id_b, &third[0]]);
    }

    for name in ["pa", "pb", "pc", "pd"] {
        h.run(&["destroy", name, "--yes", "--delete-backups"]).ok();
    }
    h.run(&["pool", "drain"]).ok();
    let st = h.run(&["pool", "--json"]).json();
    assert_eq!(st["spares"], serde_json::json!([]), "{st}");
    assert_eq!(h.run(&["list", "--json"]).json(), serde_json::json!([]));
}
