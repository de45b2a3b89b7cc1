//! The API's backup routes: list, take, restore and clone.

use super::*;

#[test]
fn the_api_lists_takes_restores_and_clones() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("backupapi");
    let (id, url, _) = with_rows(&h, "web", &[], 100);
    let s = Server::start(&h, &[]);
    let mut sections = Sections::default();

    sections.run("take one, list, get by label", || {
        let r = s.post(
            "/instances/web/backups",
            &serde_json::json!({"type": "full"}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let b = r.json();
        assert_eq!(b["verified"], true, "{b}");
        assert!(b["verification"]["indexes_checked"].as_u64().unwrap() > 0);
        let label = b["label"].as_str().unwrap();
        let list = s.get("/instances/web/backups").json();
        assert_eq!(list["backups"].as_array().unwrap().len(), 2, "{list}");
        assert!(list["window"]["earliest"].is_string() && list["window"]["latest"].is_string());
        assert_eq!(
            s.get(&format!("/instances/{id}/backups/{label}")).json()["label"],
            label
        );
        assert_eq!(s.get("/instances/web/backups/20200101-000000F").status, 404);
        assert_eq!(s.get("/instances/web/backups/nonsense").status, 400);
        let r = s.post(
            "/instances/web/backups",
            &serde_json::json!({"type": "weekly"}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(s.get("/backups").json().as_array().unwrap().len(), 1);
    });

    sections.run(
        "clone with wait=false: 202, then running with the rows",
        || {
            let r = s.post(
                "/instances/web/clone?wait=false",
                &serde_json::json!({"name": "twin"}),
            );
            assert_eq!(r.status, 202, "{}", r.text());
            let twin_url = r.json()["url"].as_str().unwrap().to_string();
            let deadline = Instant::now() + Duration::from_secs(120);
            while s.get("/instances/twin").json()["status"] != "running" {
                assert!(
                    Instant::now() < deadline,
                    "{}",
                    s.get("/instances/twin").text()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            assert_eq!(ids(&twin_url).len(), 100);
        },
    );

    sections.run("restore: errors named, to a time, and in place", || {
        let r = s.post(
            "/instances/web/restore",
            &serde_json::json!({"to": "old", "time": "2001-01-01T00:00:00Z"}),
        );
        assert_eq!(r.status, 400);
        assert!(
            r.text().contains("outside the recoverable window"),
            "{}",
            r.text()
        );
        let r = s.post("/instances/web/restore", &serde_json::json!({"to": "twin"}));
        assert_eq!(r.status, 409, "{}", r.text());
        let r = s.post(
            "/instances/web/restore",
            &serde_json::json!({"to": "x", "in_place": true}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        let r = s.post(
            "/instances/web/restore",
            &serde_json::json!({"in_place": true}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["kept_aside"]
            .as_str()
            .unwrap()
            .contains("/data.before-restore-"));
        assert_eq!(ids(&url).len(), 100);
    });

    sections.run("the summary, show and /metrics carry the backups", || {
        let sum = s.get("/monitoring/web/metrics/summary").json();
        assert!(sum["backups"]["last_verified"].is_string(), "{sum}");
        let show = s.get("/instances/web").json();
        assert_eq!(show["backups"]["schedule"], "24h");
        assert!(
            show["backup_health"]["concerns"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{show}"
        );
        // The archiver's families come from the agent's samples: wait for
        // one that has them (a loaded machine may not have sampled yet).
        let deadline = Instant::now() + Duration::from_secs(120);
        let m = loop {
            let m = s.get("/metrics").text();
            if m.contains("# TYPE dbaas_wal_archive_failures_total counter")
                || Instant::now() > deadline
            {
                break m;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        for family in [
            "dbaas_backup_last_success_timestamp_seconds",
            "dbaas_backup_last_verified_timestamp_seconds",
            "dbaas_backup_size_bytes",
            "dbaas_backup_concerns",
        ] {
            assert!(
                m.contains(&format!("{family}{{dbaas_instance=\"{id}\"}}")),
                "{family} missing"
            );
        }
        assert!(
            m.contains("# TYPE dbaas_wal_archive_failures_total counter"),
            "archiver families"
        );
    });
    sections.finish();
}
