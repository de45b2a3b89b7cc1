//! Containers and instances hardened (issue 10, part 7), as Docker and
//! PostgreSQL themselves report it.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn containers_run_with_least_privilege_and_secrets_as_files() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("hardening");
    let (id, url) = h.create("tight", &["--memory", "256m"]);
    let dir = h.root.join(format!("instances/{id}"));
    let read = |f: &str| std::fs::read_to_string(dir.join("secrets").join(f)).unwrap();
    let passwords = [
        read("postgres_password"),
        read("app_password"),
        read("monitor_password"),
    ];
    let env_file = std::fs::read_to_string(dir.join(".env")).unwrap();
    for p in &passwords {
        assert_eq!(p.len(), 32);
        assert!(!env_file.contains(p.as_str()), ".env holds a password");
    }
    let db = format!("{id}-db-1");
    let agent = format!("{id}-agent-1");
    // (container, pids limit, the user of its PID 1)
    for (c, pids, user) in [(&db, 512, "postgres"), (&agent, 64, "65534")] {
        let v = docker_inspect(c);
        let hc = &v["HostConfig"];
        assert_eq!(strings(&hc["CapDrop"]), ["ALL"], "{c}");
        assert!(
            strings(&hc["SecurityOpt"]).contains(&"no-new-privileges:true".to_string()),
            "{c}"
        );
        assert_eq!(hc["PidsLimit"], pids, "{c}");
        assert_eq!(hc["LogConfig"]["Type"], "json-file", "{c}");
        assert!(hc["LogConfig"]["Config"]["max-size"].is_string(), "{c}");
        // No password in the container's configuration, or in what its
        // main process was started with.
        let config_env = strings(&v["Config"]["Env"]).join("\n");
        let environ = docker_ok(&["exec", "-u", user, c, "cat", "/proc/1/environ"]);
        for p in &passwords {
            assert!(
                !config_env.contains(p.as_str()),
                "{c}: a password in Config.Env"
            );
            assert!(
                !environ.contains(p.as_str()),
                "{c}: a password in PID 1's environment"
            );
        }
    }
    let a = docker_inspect(&agent);
    assert_eq!(a["Config"]["User"], "65534:65534");
    assert_eq!(a["HostConfig"]["ReadonlyRootfs"], true);
    assert!(strings(&a["HostConfig"]["CapAdd"]).is_empty());
    // The agent can read its own password and no other.
    let ls = docker_ok(&["exec", &agent, "ls", "/run/secrets"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["monitor_password"]
    );
    assert!(strings(&a["Config"]["Env"])
        .iter()
        .any(|e| e.starts_with("PGOPTIONS=") && e.contains("search_path=pg_catalog,pg_temp")));
    let cant_write = Command::new("docker")
        .args(["exec", &agent, "touch", "/etc/x"])
        .output()
        .unwrap();
    assert!(
        !cant_write.status.success(),
        "the agent's root filesystem is writable"
    );

    // The superuser cannot log in over the published port; the app and
    // monitoring roles can.
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    // Over TLS, verified as the printed string asks (TCP logins are TLS
    // only); the same login in plain text finds no pg_hba.conf line.
    let ca = url
        .split("sslrootcert=")
        .nth(1)
        .expect("a TLS string")
        .to_string();
    let as_user = |user: &str, password: &str, db: &str| {
        try_connect(&format!(
            "postgresql://{user}:{password}@127.0.0.1:{port}/{db}?sslmode=verify-full&sslrootcert={ca}"
        ))
    };
    let plain = postgres::Client::connect(
        &format!("postgresql://app:{}@127.0.0.1:{port}/app", passwords[1]),
        postgres::NoTls,
    )
    .err()
    .expect("plain text over TCP");
    assert!(format!("{plain:?}").contains("no encryption"), "{plain:?}");
    let err = as_user("postgres", &passwords[0], "app")
        .err()
        .expect("superuser over TCP");
    assert!(
        format!("{err:?}").contains("pg_hba.conf rejects"),
        "{err:?}"
    );
    as_user("dbaas_monitor", &passwords[2], "app").expect("monitoring role over TCP");
    let mut app = as_user("app", &passwords[1], "app").expect("app role over TCP");
    // temp_file_limit from the size: 4 x 256 MB is below the 1 GB floor.
    let limit: String = app.query_one("SHOW temp_file_limit", &[]).unwrap().get(0);
    assert_eq!(limit, "1GB");
    for other in ["postgres", "template1"] {
        let e = as_user("app", &passwords[1], other).err().expect(other);
        assert!(
            format!("{e:?}").contains("permission denied"),
            "{other}: {e:?}"
        );
    }
    // The local socket is shared with the sidecars, so it trusts nobody.
    // The agent (no network, the socket read-only) gets in as the
    // monitoring role with its password, and as nothing else, with or
    // without the other passwords.
    assert_eq!(a["HostConfig"]["NetworkMode"], "disabled");
    assert_eq!(a["Config"]["NetworkDisabled"], true);
    let links = docker_ok(&["exec", &agent, "cat", "/proc/net/dev"]);
    assert!(
        links
            .lines()
            .skip(2)
            .all(|l| l.trim_start().starts_with("lo:")),
        "the agent has a network link: {links}"
    );
    let from_agent = |user: &str, password: Option<&str>| {
        let mut c = Command::new("docker");
        c.arg("exec");
        if let Some(pw) = password {
            c.args(["-e", &format!("PGPASSWORD={pw}")]);
        }
        c.args([
            agent.as_str(),
            "psql",
            "-X",
            "-w",
            "-A",
            "-t",
            "-h",
            "/var/run/postgresql",
            "-U",
            user,
            "-d",
            "app",
            "-c",
            "SELECT current_user",
        ]);
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = from_agent("dbaas_monitor", Some(&passwords[2]));
    assert!(ok && out.starts_with("dbaas_monitor"), "{out}");
    for (user, pw) in [
        ("dbaas_monitor", None),
        ("postgres", None),
        ("postgres", Some(&passwords[0])),
        ("app", None),
        ("app", Some(&passwords[2])),
    ] {
        let (ok, out) = from_agent(user, pw.map(String::as_str));
        assert!(
            !ok && (out.contains("authentication failed") || out.contains("no password supplied")),
            "{user} over the socket from the agent: {out}"
        );
    }
    // root in the db container (`docker exec`: dbaasctl psql, dump,
    // import) logs in as the superuser and as the app user.
    let root_as_app = || {
        docker_ok(&[
            "exec",
            &db,
            "psql",
            "-X",
            "-w",
            "-A",
            "-t",
            "-U",
            "app",
            "-d",
            "app",
            "-c",
            "SELECT current_user",
        ])
    };
    assert_eq!(root_as_app(), "app");
    // A cluster made before this (initdb's `local all all trust`, no map)
    // is brought to the same rules at its next start.
    let data = dir.join("data");
    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    let old: String = hba
        .lines()
        .filter(|l| !l.starts_with("local"))
        .map(|l| format!("{l}\n"))
        .chain(["local   all             all                                     trust\n".into()])
        .collect();
    std::fs::write(data.join("pg_hba.conf"), old).unwrap();
    std::fs::write(data.join("pg_ident.conf"), "# none\n").unwrap();
    h.run(&["restart", "tight"]).ok();
    let (ok, out) = from_agent("dbaas_monitor", Some(&passwords[2]));
    assert!(ok, "{out}");
    let (ok, out) = from_agent("postgres", None);
    assert!(
        !ok && out.contains("authentication failed"),
        "the old trust line stayed: {out}"
    );
    assert_eq!(root_as_app(), "app");
    let q = |db: &str, sql: &str| superuser_sql(&id, db, sql);
    for dbname in ["postgres", "template1"] {
        assert_eq!(
            q(
                dbname,
                "SELECT has_schema_privilege('app', 'public', 'CREATE')"
            ),
            "f",
            "{dbname}"
        );
    }
}

#[test]
fn reserved_role_names_are_refused() {
    let h = TestHome::new("reserved");
    for user in [
        "none",
        "public",
        "current_user",
        "session_user",
        "pg_x",
        "postgres",
    ] {
        let err = h.run(&["create", "x", "--user", user]).fails_with(2);
        assert!(err.contains("user"), "{user}: {err}");
    }
    assert!(h.registry_text().is_none() || h.registry()["instances"] == serde_json::json!([]));
}
