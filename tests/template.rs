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
    let err = postgres::Client::connect(&crossed, postgres::NoTls)
        .err()
        .expect("refused");
    let msg = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(msg.contains("password authentication failed"), "{err:?}");
    // Both copies of one template: the same system identifier (README).
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
    let h = TestHome::new("tplold");
    let own = h.root.join("tpl");
    let h = h.with_env("DBAAS_TEMPLATE_DIR", own.to_str().unwrap());
    h.create("first", &["--no-backups"]);
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
