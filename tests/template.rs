//! Provisioning from a template (issue 13): a copy of one initialised data
//! directory per version, personalised at the first start. Instances made
//! from one template share no secret; a template made by another image is
//! rebuilt, not used; the initdb path stays available.

mod common;
use common::*;

#[test]
fn instances_from_one_template_share_no_secret() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("tpl");
    let (a, url_a) = h.create("ta", &["--no-backups"]);
    let (b, url_b) = h.create("tb", &["--no-backups"]);
    for url in [&url_a, &url_b] {
        let r = connect(url)
            .query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .unwrap();
        assert!(!r.get::<_, bool>(0), "the app user is not a superuser");
    }
    let hashes = |id: &str| {
        superuser_sql(
            id,
            "postgres",
            "SELECT string_agg(rolname || '=' || rolpassword, ',' ORDER BY rolname) FROM pg_authid WHERE rolpassword IS NOT NULL",
        )
    };
    let (ha, hb) = (hashes(&a), hashes(&b));
    assert!(
        ha.contains("app=SCRAM-SHA-256")
            && ha.contains("postgres=SCRAM-SHA-256")
            && ha.contains("dbaas_monitor="),
        "{ha}"
    );
    for part in ha.trim().split(',') {
        assert!(!hb.contains(part), "{part} is in both instances");
    }
    // One instance's password does not open the other.
    let port_b = url_b.rsplit(':').next().unwrap().split('/').next().unwrap();
    let crossed = url_a.replace(
        url_a.rsplit(':').next().unwrap().split('/').next().unwrap(),
        port_b,
    );
    let err = try_connect(&crossed).err().expect("refused");
    let msg = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(msg.contains("password authentication failed"), "{err:?}");
    // Both copies of one template: the same system identifier (docs/provisioning.md).
    assert_eq!(
        superuser_sql(
            &a,
            "postgres",
            "SELECT system_identifier FROM pg_control_system()"
        ),
        superuser_sql(
            &b,
            "postgres",
            "SELECT system_identifier FROM pg_control_system()"
        )
    );
    // Personalised: the marker is gone, the superuser is refused over TCP.
    let db = format!("{a}-db-1");
    docker_ok(&[
        "exec",
        &db,
        "test",
        "!",
        "-e",
        "/var/lib/postgresql/data/dbaas-personalise",
    ]);
    let hba = docker_ok(&["exec", &db, "cat", "/var/lib/postgresql/data/pg_hba.conf"]);
    assert!(hba.lines().next().unwrap_or("").contains("reject"), "{hba}");
    // The first start's guard (every TCP connection refused while the init
    // scripts run) is gone.
    assert!(!hba.contains("until the first start"), "{hba}");
    assert_eq!(query_text(&url_a, "SELECT current_database()::text"), "app");
    let log = std::fs::read_to_string(h.root.join("logs/provisioning.log")).unwrap();
    assert!(log.contains(&format!("{a} create.template")), "{log}");
}

#[test]
fn a_template_made_by_another_image_is_rebuilt_and_initdb_stays() {
    if !docker_required() {
        return;
    }
    let (h, own) = home_with_own_template("tplold", "first");
    let image_file = own.join("15/image");
    let current = std::fs::read_to_string(&image_file).unwrap();
    assert_eq!(
        current.trim(),
        docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            "dbaas/postgres:15"
        ])
        .trim()
    );
    // As if an older image had made it.
    std::fs::write(&image_file, "sha256:older\n").unwrap();
    std::fs::write(own.join("15/data/STALE"), "from the old template").unwrap();
    let (id, url) = h.create("second", &["--no-backups"]);
    assert_eq!(std::fs::read_to_string(&image_file).unwrap(), current);
    assert!(
        !own.join("15/data/STALE").exists(),
        "the old template is gone"
    );
    assert!(!h
        .root
        .join("instances")
        .join(&id)
        .join("data/STALE")
        .exists());
    assert_eq!(query_text(&url, "SELECT current_user::text"), "app");

    // DBAAS_PROVISION=initdb: no template involved.
    let fresh = h.root.join("tpl-unused");
    let h2 = TestHome::new("tplinitdb")
        .with_env("DBAAS_PROVISION", "initdb")
        .with_env("DBAAS_TEMPLATE_DIR", fresh.to_str().unwrap());
    let (id2, url2) = h2.create("old-way", &["--no-backups"]);
    assert_eq!(query_text(&url2, "SELECT current_user::text"), "app");
    assert!(!fresh.exists(), "initdb made no template");
    let log = std::fs::read_to_string(h2.root.join("logs/provisioning.log")).unwrap();
    assert!(!log.contains(&format!("{id2} create.template")), "{log}");
    let err = h2
        .run_env(&["list"], &[("DBAAS_PROVISION", "fast")])
        .fails_with(2);
    assert!(
        err.contains("DBAAS_PROVISION") && err.contains("template or initdb"),
        "{err}"
    );
}

/// The first start's SQL runs in one psql session, in order with the .sh
/// scripts between; a failing statement stops the container with the
/// marker and the guard in place, and the next start does it all again.
#[test]
fn a_failing_init_script_stops_the_first_start_and_is_redone() {
    if !docker_required() {
        return;
    }
    let (h, own) = home_with_own_template("tplfail", "source");
    let scratch = h.root.join("by-hand");
    let (data, scripts) = (scratch.join("data"), scratch.join("scripts"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&scripts).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(own.join("15/data/."))
        .arg(&data)
        .status()
        .unwrap();
    assert!(copied.success());
    let write = |name: &str, body: &str| std::fs::write(scripts.join(name), body).unwrap();
    write(
        "01-first.sql",
        "CREATE TABLE IF NOT EXISTS first_step (x int);\n",
    );
    // Sees the table only if the SQL before it has run.
    write(
        "02-check.sh",
        "psql -qAt -U \"$POSTGRES_USER\" -h /var/run/postgresql -d \"$POSTGRES_DB\" \
         -c \"SELECT to_regclass('first_step') IS NOT NULL\" > \"$PGDATA/sh-saw\"\n",
    );
    write("03-last.sql", "SELECT 1/0;\n");
    let name = format!("dbaas-test-initfail-{}", std::process::id());
    let _gone = ContainerGuard(name.clone());
    let data_mount = format!("{}:/var/lib/postgresql/data", data.display());
    let scripts_mount = format!("{}:/docker-entrypoint-initdb.d:ro", scripts.display());
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &data_mount,
        "-v",
        &scripts_mount,
        "-e",
        "POSTGRES_PASSWORD=first-start-pw",
        "-e",
        "POSTGRES_DB=appdb",
        "dbaas/postgres:15",
        "postgres",
    ]);
    let exited = wait_exited(&name);
    assert_ne!(exited, "0", "a failing init script fails the container");
    let logs = docker_logs(&name);
    assert!(logs.contains("division by zero"), "{logs}");
    assert!(logs.contains("the first start's SQL stopped"), "{logs}");
    assert!(!logs.contains("init complete"), "{logs}");
    assert_eq!(
        std::fs::read_to_string(data.join("sh-saw")).unwrap().trim(),
        "t"
    );
    assert!(data.join("dbaas-personalise").exists(), "the marker stays");
    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    assert!(
        hba.contains("until the first start has run"),
        "the guard stays: {hba}"
    );

    // Fixed, the next start runs everything again and completes.
    write(
        "03-last.sql",
        "CREATE TABLE IF NOT EXISTS last_step (x int);\n",
    );
    docker_ok(&["start", &name]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !docker_logs(&name).contains("init complete") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            docker_logs(&name)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(!data.join("dbaas-personalise").exists());
    let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    assert!(!hba.contains("until the first start has run"), "{hba}");
    let tables = docker_ok(&[
        "exec", &name, "psql", "-qAt", "-U", "postgres", "-d", "appdb", "-c",
        "SELECT string_agg(relname::text, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE '%_step'",
    ]);
    assert_eq!(tables, "first_step,last_step");
}

/// Removes the container when the test ends, however it ends.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

/// Waits (bounded) for a container to stop; its exit code.
fn wait_exited(name: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Running}} {{.State.ExitCode}}",
            name,
        ]);
        if let Some(code) = state.strip_prefix("false ") {
            return code.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} still runs: {}",
            docker_logs(name)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn docker_logs(name: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["logs", name])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A home whose templates are its own (not the tests' shared ones), made
/// by a first create named `first`; the home and its template directory.
fn home_with_own_template(home: &str, first: &str) -> (TestHome, std::path::PathBuf) {
    let h = TestHome::new(home);
    let own = h.root.join("tpl");
    let h = h.with_env("DBAAS_TEMPLATE_DIR", own.to_str().unwrap());
    h.create(first, &["--no-backups"]);
    (h, own)
}
