//! The instance lifecycle against the real Docker engine and real PostgreSQL.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn create_write_down_up_restart_read_destroy() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("cycle");
    let (id, url) = h.create("cycle", &[]);
    assert!(id.starts_with("db_") && id.len() == 11, "{id}");
    assert!(url.starts_with("postgresql://app:"), "{url}");
    assert!(
        url.contains(&format!("@127.0.0.1:{}/app", h.ports.0)),
        "lowest port of the range: {url}"
    );

    let dir = h.root.join("instances").join(&id);
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    let mut sections = Sections::default();
    sections.run("The instance directory and its secrets", || {
        // The instance directory and its secrets.
        for f in [
            "docker-compose.yml",
            ".env",
            "data",
            "logs",
            "scripts/01-init-users.sql",
            "scripts/02-monitoring-setup.sql",
        ] {
            assert!(dir.join(f).exists(), "{f} missing");
        }
        let mode = std::fs::metadata(dir.join(".env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, ".env must be 0600");
        let reg = h.registry_text().unwrap();
        assert!(!reg.contains(password), "no secret in the registry");
        let log = std::fs::read_to_string(h.root.join("logs/provisioning.log")).unwrap();
        assert!(
            log.contains(&id) && log.contains("create.compose_up"),
            "{log}"
        );
        assert!(!log.contains(password), "no secret in the log");
    });
    sections.run("The app user is not a superuser, owns its database and ca...", || {
        // The app user is not a superuser, owns its database and can write.
        let mut c = connect(&url);
        let row = c
            .query_one(
                "SELECT rolsuper, current_user::text FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .unwrap();
        assert!(!row.get::<_, bool>(0));
        assert_eq!(row.get::<_, String>(1), "app");
        let owner: String = c
            .query_one("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()", &[])
            .unwrap()
            .get(0);
        assert_eq!(owner, "app");
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 100) g;")
            .unwrap();
        drop(c);
    });
    sections.run("The monitoring role exists with pg_monitor and a connecti...", || {
        // The monitoring role exists with pg_monitor and a connection limit.
        let mut c = connect(&url);
        let row = c
            .query_one(
                "SELECT r.rolconnlimit, pg_has_role(r.oid, 'pg_monitor', 'member') FROM pg_roles r WHERE rolname = 'dbaas_monitor'",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 3);
        assert!(row.get::<_, bool>(1));
        drop(c);
    });
    sections.run(
        "down keeps the data and is idempotent; up brings it back",
        || {
            // down keeps the data and is idempotent; up brings it back.
            h.run(&["down", "cycle"]).ok();
            h.run(&["down", "cycle"]).ok();
            assert!(h.containers_of(&id).is_empty(), "down removes containers");
            let show = h.run(&["show", "cycle", "--json"]).json();
            assert_eq!(show["status"], "stopped");
            h.run(&["up", "cycle"]).ok();
            h.run(&["up", id.as_str()]).ok();
            let n: i64 = connect(&url)
                .query_one("SELECT count(*) FROM t", &[])
                .unwrap()
                .get(0);
            assert_eq!(n, 100, "rows survive down/up");

            h.run(&["restart", "cycle"]).ok();
            let mut c = connect(&url);
            let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
            assert_eq!(n, 100, "rows survive restart");
            drop(c);
        },
    );
    sections.run("url, show, list, logs and psql", || {
        // url, show, list, logs and psql.
        assert_eq!(h.run(&["url", "cycle"]).ok().trim(), url);
        let show = h.run(&["show", "cycle", "--json"]).json();
        assert!(
            show.get("password").is_none(),
            "no password without --show-password"
        );
        let show = h
            .run(&["show", "cycle", "--json", "--show-password"])
            .json();
        assert_eq!(show["url"], url.as_str());
        let text = h.run(&["show", "cycle"]).ok();
        assert!(text.contains(&id) && !text.contains(password), "{text}");
    });
    sections.run(
        "docker logs replays the container's stderr (PostgreSQL's ...",
        || {
            // docker logs replays the container's stderr (PostgreSQL's log) on
            // stderr. Not only the last lines: an archive attempt made before
            // the backup sidecar created the stanza may be logged after the
            // server became ready.
            let logs = h.run(&["logs", "cycle", "--tail", "100"]);
            logs.ok();
            assert!(
                logs.stderr().contains("database system is ready"),
                "{}",
                logs.stderr()
            );
            let out = h
                .run(&["psql", "cycle", "-c", "SELECT count(*) AS n FROM t"])
                .ok();
            assert!(out.contains("100"), "{out}");
        },
    );
    sections.run("destroy removes everything", || {
        // destroy removes everything.
        h.run(&["destroy", "cycle"]).fails_with(2); // stdin is not a terminal: needs --yes
        h.run(&["destroy", "cycle", "--yes"]).ok();
        assert!(h.containers_of(&id).is_empty());
        assert!(!dir.exists());
        assert_eq!(h.registry()["instances"].as_array().unwrap().len(), 0);
        h.run(&["show", "cycle"]).fails_with(3);
    });
    sections.finish();
}

#[test]
fn versions_13_15_17_report_their_version() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("versions");
    for v in ["13", "15", "17"] {
        let name = format!("pg{v}");
        let (_, url) = h.create(&name, &["--version", v]);
        let version: String = connect(&url)
            .query_one("SELECT version()", &[])
            .unwrap()
            .get(0);
        assert!(
            version.starts_with(&format!("PostgreSQL {v}.")),
            "{version}"
        );
        let show = h.run(&["show", &name, "--json"]).json();
        assert_eq!(show["version"], v.parse::<u32>().unwrap());
        h.run(&["destroy", &name, "--yes"]).ok();
    }
}

#[test]
fn limits_labels_and_port_binding_as_docker_sees_them() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("limits");
    let port = h.ports.1.to_string();
    let (id, _) = h.create(
        "lim",
        &[
            "--memory",
            "256m",
            "--cpus",
            "0.5",
            "--port",
            &port,
            "--database",
            "shop",
            "--user",
            "clerk",
        ],
    );
    // The PostgreSQL container, the monitoring agent's and the backup
    // sidecar's (no network, a small limit, a low CPU weight).
    let containers = h.containers_of(&id);
    assert_eq!(containers.len(), 3, "{containers:?}");
    let db = containers.iter().find(|c| c.ends_with("-db-1")).unwrap();
    assert!(containers.iter().any(|c| c.ends_with("-agent-1")));
    let sidecar = docker_inspect(&format!("{id}-backup-1"));
    assert_eq!(sidecar["HostConfig"]["NetworkMode"], "disabled");
    assert_eq!(sidecar["Config"]["NetworkDisabled"], true);
    assert_eq!(sidecar["HostConfig"]["Memory"], 256 * 1024 * 1024);
    assert_eq!(sidecar["HostConfig"]["CpuShares"], 256);
    let c = docker_inspect(db);
    assert_eq!(c["HostConfig"]["Memory"], 256 * 1024 * 1024);
    assert_eq!(c["HostConfig"]["NanoCpus"], 500_000_000);
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    let binding = &c["HostConfig"]["PortBindings"]["5432/tcp"][0];
    assert_eq!(binding["HostIp"], "127.0.0.1");
    assert_eq!(binding["HostPort"], port.as_str());
    assert_eq!(c["Config"]["Labels"]["dbaas.instance"], id.as_str());
    assert_eq!(
        c["Config"]["Labels"]["com.docker.compose.project"],
        id.as_str()
    );
    assert!(c["Config"]["Healthcheck"]["Test"]
        .to_string()
        .contains("pg_isready"));

    // list --json: one entry with the fields a dashboard needs.
    let list = h.run(&["list", "--json"]).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let i = &list[0];
    assert_eq!(i["id"], id.as_str());
    assert_eq!(i["name"], "lim");
    assert_eq!(i["memory"], "256m");
    assert_eq!(i["memory_bytes"], 256 * 1024 * 1024);
    assert_eq!(i["cpus"], 0.5);
    assert_eq!(i["port"], h.ports.1);
    assert_eq!(i["database"], "shop");
    assert_eq!(i["user"], "clerk");
    assert!(
        ["running", "starting"].contains(&i["status"].as_str().unwrap()),
        "{i}"
    );
    assert!(i.get("password").is_none());
    let table = h.run(&["list"]).ok();
    assert!(
        table.starts_with("NAME") && table.contains("lim") && table.contains("256m"),
        "{table}"
    );

    // The compose file runs by hand from its directory.
    let dir = h.root.join("instances").join(&id);
    let out = std::process::Command::new("docker")
        .args(["compose", "config", "--quiet"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn concurrent_creates_get_distinct_ids_and_ports() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("concurrent");
    let children: Vec<_> = (0..10)
        .map(|n| {
            h.command(&[
                "create",
                &format!("c{n}"),
                "--json",
                "--memory",
                "128m",
                "--cpus",
                "0.2",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "create failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ids.insert(v["instance"]["id"].as_str().unwrap().to_string());
        ports.insert(v["instance"]["port"].as_u64().unwrap());
    }
    assert_eq!(ids.len(), 10);
    assert_eq!(ports.len(), 10);
    let reg = h.registry();
    let entries = reg["instances"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    assert!(entries.iter().all(|e| e["state"] == "running"));
    let list = h.run(&["list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 10);
}
