//! The red-team suite (issue 30): an adversarial app user prepares every
//! trap it can in its own database (functions and operators in `public`
//! with the names of those dbaas's privileged SQL calls and closer-matching
//! signatures, views named like catalog relations, ALTER DATABASE/ROLE
//! settings, triggers), and hostile dump files are imported. Then dbaas
//! runs what it runs on an instance: a backup and its verification, a
//! resize, a restart, the agent's samples, dump and import, a clone, an
//! in-place restore and its undo. Afterwards
//! the app role is no superuser and has no new memberships, no file was
//! written by COPY TO PROGRAM, and the backups still verify.
//!
//! The trap list is read from the privileged channel itself (every
//! `pg_catalog.NAME(` in the sidecar's scripts and in src/), so it cannot
//! fall behind what dbaas calls.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Where a trap that ran as the superuser leaves its mark (in whichever
/// container ran it).
const PWNED: &str = "/tmp/dbaas-pwned";

/// The function names dbaas's privileged SQL calls.
fn privileged_function_names() -> BTreeSet<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut texts = vec![
        std::fs::read_to_string(format!("{root}/agent/backup.sh")).unwrap(),
        std::fs::read_to_string(format!("{root}/agent/recover.sh")).unwrap(),
    ];
    for f in ["src/ops/resize.rs", "src/db/privileged.rs"] {
        texts.push(std::fs::read_to_string(format!("{root}/{f}")).unwrap());
    }
    let mut names = BTreeSet::from(["bt_index_check".to_string(), "format".to_string()]);
    for t in &texts {
        for part in t.split("pg_catalog.").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if part[name.len()..].starts_with('(') && !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The escalation a trap attempts: as the superuser it would make the app
/// role one and leave a file (the confirmed attack of the issue, verbatim).
fn trap_body(user: &str) -> String {
    format!(
        "BEGIN
  BEGIN
    EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {PWNED}; psql -h /var/run/postgresql -U postgres -d postgres -c \"ALTER ROLE {user} SUPERUSER\"''';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  BEGIN
    EXECUTE 'ALTER ROLE {user} SUPERUSER';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN NULL;
END"
    )
}

fn set_traps(url: &str, user: &str, db: &str) {
    let mut c = connect(url);
    let body = trap_body(user);
    let mut sql = String::from(
        "CREATE TABLE t (id int PRIMARY KEY, note text);
         INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 100) g;
         CREATE INDEX t_note ON t (note);\n",
    );
    // Closer-matching overloads of every function the channel calls.
    for name in privileged_function_names() {
        for args in [
            "",
            "oid",
            "text",
            "regclass",
            "name",
            "text, name, name",
            "text, text, text, text, text",
            "text, boolean",
        ] {
            sql.push_str(&format!(
                "CREATE OR REPLACE FUNCTION public.{name}({args}) RETURNS text LANGUAGE plpgsql AS $trap${body}$trap$;\n"
            ));
        }
    }
    // Operators on the types the channel compares.
    sql.push_str(&format!(
        "CREATE FUNCTION public.trap_op(name, text) RETURNS boolean LANGUAGE plpgsql AS $trap${}$trap$;
         CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.trap_op);
         CREATE OPERATOR public.<> (LEFTARG = name, RIGHTARG = text, FUNCTION = public.trap_op);
         CREATE OPERATOR public.!~~ (LEFTARG = name, RIGHTARG = text, FUNCTION = public.trap_op);\n",
        body.replace("RETURN NULL", "RETURN false")
    ));
    // Views named like the catalog relations the channel reads.
    for rel in [
        "pg_class",
        "pg_namespace",
        "pg_index",
        "pg_am",
        "pg_settings",
        "pg_roles",
        "pg_database",
        "pg_db_role_setting",
    ] {
        sql.push_str(&format!(
            "CREATE VIEW public.{rel} AS SELECT * FROM pg_catalog.{rel} WHERE public.current_setting('x') IS NULL;\n"
        ));
    }
    // A trigger on its own table, and its settings everywhere it may set
    // them: its database, its role.
    sql.push_str(&format!(
        "CREATE FUNCTION public.trap_trigger() RETURNS trigger LANGUAGE plpgsql AS $trap${}$trap$;
         CREATE TRIGGER trap BEFORE INSERT OR UPDATE OR DELETE ON t FOR EACH ROW EXECUTE FUNCTION public.trap_trigger();
         ALTER ROLE \"{user}\" SET search_path = public, pg_catalog;
         ALTER DATABASE \"{db}\" SET search_path = public, pg_catalog;\n",
        body.replace("RETURN NULL", "RETURN NEW")
    ));
    c.batch_execute(&sql).unwrap();
    hostile_defaults(url, db, true);
}

/// The owner's defaults that would fail dbaas's own sessions if they
/// reached them: a 1 ms statement timeout, read-only transactions. Off
/// again for the parts that run the tenant's own sessions (an import is
/// one: it runs with the tenant's settings).
fn hostile_defaults(url: &str, db: &str, on: bool) {
    let sql = if on {
        format!(
            "ALTER DATABASE \"{db}\" SET default_transaction_read_only = on; ALTER DATABASE \"{db}\" SET statement_timeout = 1"
        )
    } else {
        format!(
            "ALTER DATABASE \"{db}\" RESET default_transaction_read_only; ALTER DATABASE \"{db}\" RESET statement_timeout"
        )
    };
    app_client(url).batch_execute(&sql).unwrap();
}

/// The app role's standing, and whether a trap left its file in any of
/// the instance's containers.
fn assert_still_a_tenant(h: &TestHome, id: &str, user: &str) {
    let q = format!(
        "SELECT rolsuper::text || ' ' || (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)::text FROM pg_roles r WHERE rolname = '{user}'"
    );
    assert_eq!(
        superuser_sql(id, "postgres", &q),
        "false 0",
        "the app role gained the superuser or a membership"
    );
    for c in h.containers_of(id) {
        let out = std::process::Command::new("docker")
            .args(["exec", &c, "ls", PWNED])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{c}: {PWNED} exists: a trap ran with the server's privileges"
        );
    }
}

/// A file of the instance's data directory, as its db container holds it
/// (without its last newline).
fn data_file(container: &str, file: &str) -> String {
    docker_ok(&[
        "exec",
        container,
        "cat",
        &format!("/var/lib/postgresql/data/{file}"),
    ])
}

/// Writes a file of the data directory as its owner (postgres) would.
fn write_data_file(container: &str, file: &str, text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("docker")
        .args(["exec", "-i", "-u", "postgres", container, "sh", "-c"])
        .arg(format!("cat > /var/lib/postgresql/data/{file}"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Lines a superuser of the source could add to its access rules.
fn append_data_files(container: &str, hba_line: &str, ident_line: &str) {
    for (file, line) in [("pg_hba.conf", hba_line), ("pg_ident.conf", ident_line)] {
        let text = format!("{}\n{line}\n", data_file(container, file));
        write_data_file(container, file, &text);
    }
}

/// A connection as the app user that overrides its database's 1 ms
/// statement timeout and read-only default (a startup option).
fn app_client(url: &str) -> postgres::Client {
    let (mut cfg, ca) = pg_config(url);
    cfg.options("-c statement_timeout=0 -c default_transaction_read_only=off");
    connect_with(cfg, ca.as_deref()).unwrap()
}

fn newest_backup(h: &TestHome, name: &str) -> Value {
    let v = h.run(&["backups", name, "--json"]).json();
    v["backups"].as_array().unwrap().last().unwrap().clone()
}

/// The first backup (taken right after the create) and its verification.
fn wait_first_backup(h: &TestHome, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let v = h.run(&["backups", name, "--json"]).json();
        if v["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty() && b[0]["verified"].is_boolean())
        {
            return;
        }
        assert!(v["last_failure"].is_null(), "the first backup failed: {v}");
        assert!(Instant::now() < deadline, "no first backup: {v}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn import(h: &TestHome, name: &str, file: &str, text: &[u8]) -> Run {
    let path = h.root.join(file);
    std::fs::write(&path, text).unwrap();
    h.run(&["import", name, path.to_str().unwrap()])
}

#[test]
fn a_tenant_stays_a_tenant() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("tenant");
    let (id, url) = h.create("victim", &[]);
    let reg = h.registry();
    let inst = reg["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap()
        .clone();
    let user = inst["user"].as_str().unwrap().to_string();
    let db = inst["database"].as_str().unwrap().to_string();
    wait_first_backup(&h, "victim");
    // dbaas's extensions live outside the tenant's public, in a schema of
    // the superuser's that the app role reads through its search path.
    assert_eq!(
        superuser_sql(
            &id,
            &db,
            "SELECT pg_catalog.string_agg(e.extname || ' ' || n.nspname || ' ' || pg_catalog.pg_get_userbyid(n.nspowner), ',') FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'"
        ),
        "pg_stat_statements extensions postgres"
    );
    app_client(&url)
        .query_one("SELECT pg_catalog.count(*) FROM pg_stat_statements", &[])
        .unwrap();
    set_traps(&url, &user, &db);
    eprintln!(
        "traps set for {} function names: {:?}",
        privileged_function_names().len(),
        privileged_function_names()
    );
    let mut s = Sections::default();

    s.run(
        "a backup and its verification run none of the tenant's code",
        || {
            let out = h.run(&["backup", "victim"]).ok();
            assert!(!out.trim().is_empty(), "no label: {out}");
            let b = newest_backup(&h, "victim");
            assert_eq!(b["verified"], true, "the backup did not verify: {b}");
            let v = &b["verification"];
            assert!(v["indexes_checked"].as_i64().unwrap() >= 2, "{b}");
            assert!(v["tables"].as_i64().unwrap() >= 1, "{b}");
            assert_still_a_tenant(&h, &id, &user);
        },
    );
    hostile_defaults(&url, &db, false);

    s.run("plain imports with psql meta-commands are refused, nothing runs", || {
        for (file, text, says) in [
            (
                "shell.sql",
                "\\! id > /tmp/x\n\\c - postgres\nALTER ROLE app SUPERUSER;\n".to_string(),
                "\\!",
            ),
            (
                "connect.sql",
                format!("CREATE TABLE m1 (x int);\n\\c - postgres\nALTER ROLE \"{user}\" SUPERUSER;\n"),
                "\\c",
            ),
            (
                "copyprog.sql",
                "CREATE TABLE m2 (x int);\n\\copy m2 to program 'touch /tmp/dbaas-pwned'\n".into(),
                "\\copy",
            ),
            ("out.sql", "\\o /tmp/dbaas-pwned\nSELECT 1;\n".into(), "\\o"),
            ("include.sql", "\\i /etc/passwd\n".into(), "\\i"),
            (
                "commit.sql",
                "CREATE TABLE c1(x int); COMMIT; SELECT 1/0;\n".into(),
                "COMMIT",
            ),
        ] {
            let r = import(&h, "victim", file, text.as_bytes());
            let err = r.fails_with(2);
            assert!(err.contains(says) && err.contains("line"), "{file}: {err}");
            assert!(err.contains("nothing was imported"), "{file}: {err}");
        }
        let mut c = app_client(&url);
        for t in ["m1", "m2", "c1"] {
            let n: i64 = c
                .query_one(
                    "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE relname OPERATOR(pg_catalog.=) $1::pg_catalog.name",
                    &[&t],
                )
                .unwrap()
                .get(0);
            assert_eq!(n, 0, "table {t} was left behind by a refused import");
        }
        let x = std::process::Command::new("docker")
            .args(["exec", &format!("{id}-db-1"), "ls", "/tmp/x"])
            .output()
            .unwrap();
        assert!(!x.status.success(), "/tmp/x was written in the db container");
        assert_still_a_tenant(&h, &id, &user);
    });

    s.run("a custom dump with a SECURITY DEFINER function loads as the app user", || {
        let mut c = app_client(&url);
        c.batch_execute(
            "CREATE FUNCTION public.definer() RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT current_user::text'",
        )
        .unwrap();
        let dump = h.command(&["dump", "victim"]).output().unwrap();
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        // Into a fresh instance: the dump carries every trap above, and
        // the table with its trigger (which fires as the rows go in).
        let (other_id, other_url) = h.create("other", &["--no-backups"]);
        let r = import(&h, "other", "custom.dump", &dump.stdout);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let other = h.registry()["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == other_id.as_str())
            .unwrap()["user"]
            .as_str()
            .unwrap()
            .to_string();
        let mut o = app_client(&other_url);
        let owner: String = o
            .query_one(
                "SELECT pg_catalog.pg_get_userbyid(proowner)::pg_catalog.text FROM pg_catalog.pg_proc WHERE proname OPERATOR(pg_catalog.=) 'definer'::pg_catalog.name",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(owner, other, "the imported function belongs to the app user");
        let me: String = o
            .query_one("SELECT public.definer()::pg_catalog.text", &[])
            .unwrap()
            .get(0);
        assert_eq!(me, other);
        assert_still_a_tenant(&h, &other_id, &other);
        assert_still_a_tenant(&h, &id, &user);
    });

    s.run(
        "resize, restart and the agent's samples run none of the tenant's code",
        || {
            h.run(&["resize", "victim", "--memory", "320m"]).ok();
            h.run(&["restart", "victim"]).ok();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let v = h.run(&["show", "victim", "--json"]).json();
                if v["status"] == "running" {
                    break;
                }
                assert!(Instant::now() < deadline, "not running again: {v}");
                std::thread::sleep(Duration::from_millis(300));
            }
            assert_still_a_tenant(&h, &id, &user);
        },
    );

    s.run("the backups still verify after all of it", || {
        hostile_defaults(&url, &db, true);
        h.run(&["backup", "victim"]).ok();
        let b = newest_backup(&h, "victim");
        assert_eq!(b["verified"], true, "{b}");
        assert_still_a_tenant(&h, &id, &user);
    });
    hostile_defaults(&url, &db, false);

    s.run(
        "a clone runs none of the tenant's code and keeps none of the source's ALTER SYSTEM",
        || {
            // What a superuser of the source (not the tenant) could leave in
            // postgresql.auto.conf.
            superuser_sql(&id, "postgres", "ALTER SYSTEM SET work_mem = '7MB'");
            // ... and in pg_hba.conf and pg_ident.conf, taken by a backup.
            let db_container = format!("{id}-db-1");
            let hba = data_file(&db_container, "pg_hba.conf");
            let ident = data_file(&db_container, "pg_ident.conf");
            append_data_files(&db_container, "host all all all trust", "evil root postgres");
            h.run(&["backup", "victim"]).ok();
            let v = h.run(&["clone", "victim", "twin", "--json"]).json();
            let twin = v["instance"]["id"].as_str().unwrap().to_string();
            let twin_user = v["instance"]["user"].as_str().unwrap().to_string();
            assert_eq!(
                superuser_sql(&twin, "postgres", "SELECT pg_catalog.count(*) FROM pg_catalog.pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'"),
                "0"
            );
            assert_ne!(superuser_sql(&twin, "postgres", "SHOW work_mem"), "7MB");
            // The clone's access rules are a fresh instance's.
            let twin_container = format!("{twin}-db-1");
            assert_eq!(data_file(&twin_container, "pg_hba.conf"), hba);
            assert_eq!(
                data_file(&twin_container, "pg_ident.conf"),
                ident.replace(&format!("\"{user}\""), &format!("\"{twin_user}\""))
            );
            // The clone's rows are the source's, and its tenant a tenant.
            let n: i64 = app_client(v["url"].as_str().unwrap())
                .query_one("SELECT pg_catalog.count(*) FROM public.t", &[])
                .unwrap()
                .get(0);
            assert_eq!(n, 100);
            assert_still_a_tenant(&h, &twin, &twin_user);
            assert_still_a_tenant(&h, &id, &user);
            superuser_sql(&id, "postgres", "ALTER SYSTEM RESET work_mem");
            write_data_file(&db_container, "pg_hba.conf", &format!("{hba}\n"));
            write_data_file(&db_container, "pg_ident.conf", &format!("{ident}\n"));
            h.run(&["destroy", "twin", "--yes", "--delete-backups"]).ok();
        },
    );

    s.run(
        "an in-place restore, and its undo, run none of the tenant's code",
        || {
            h.run(&["restore", "victim", "--in-place"]).ok();
            assert_still_a_tenant(&h, &id, &user);
            h.run(&["restore", "victim", "--undo"]).ok();
            assert_still_a_tenant(&h, &id, &user);
            let n: i64 = app_client(&url)
                .query_one("SELECT pg_catalog.count(*) FROM public.t", &[])
                .unwrap()
                .get(0);
            assert_eq!(n, 100);
        },
    );

    s.run(
        "on-demand backups do not queue: one at a time, 409 for the next",
        || {
            let server = Server::start(&h, &[]);
            // Backups whose verification is in the log too (the sidecar's
            // last write of each).
            let count = || {
                h.run(&["backups", "victim", "--json"]).json()["backups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|b| b["verified"].is_boolean())
                    .count()
            };
            let before = count();
            let path = format!("/instances/{id}/backups?wait=false");
            let first = server.post_empty(&path);
            assert_eq!(first.status, 202, "{}", first.text());
            let second = server.post_empty(&path);
            assert_eq!(second.status, 409, "{}", second.text());
            assert!(
                second.text().contains("already under way"),
                "{}",
                second.text()
            );
            // The first runs to its end; then another is accepted.
            let deadline = Instant::now() + Duration::from_secs(120);
            while count() == before {
                assert!(
                    Instant::now() < deadline,
                    "the background backup never landed"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let r = server.post_empty(&path);
                if r.status == 202 {
                    break;
                }
                assert_eq!(r.status, 409, "{}", r.text());
                assert!(Instant::now() < deadline, "still refused: {}", r.text());
                std::thread::sleep(Duration::from_millis(300));
            }
            // That one lands too before the next part replaces the log.
            let landed = count();
            let deadline = Instant::now() + Duration::from_secs(120);
            while count() == landed {
                assert!(Instant::now() < deadline, "the third backup never landed");
                std::thread::sleep(Duration::from_millis(300));
            }
        },
    );

    s.run(
        "a backups.json a container replaced cannot take the server down",
        || {
            let mut server = Server::start(&h, &[]);
            let log = h.root.join("backups").join(&id).join("backups.json");
            let kept = h.root.join("backups-json.kept");
            std::fs::rename(&log, &kept).unwrap();
            let fifo = std::ffi::CString::new(log.to_str().unwrap()).unwrap();
            let check = |what: &str, server: &Server| {
                let t = Instant::now();
                let r = server.get(&format!("/instances/{id}"));
                let took = t.elapsed();
                eprintln!(
                    "GET /instances/{{id}} with backups.json {what}: {} in {took:?}",
                    r.status
                );
                assert!(r.status == 200 || r.status >= 400, "{}", r.text());
                let rss = rss_kb(server.pid());
                eprintln!("serve's RSS: {rss} kB");
                assert!(rss < 100 * 1024, "serve grew to {rss} kB reading {what}");
            };
            std::os::unix::fs::symlink("/dev/zero", &log).unwrap();
            check("a symlink to /dev/zero", &server);
            std::fs::remove_file(&log).unwrap();
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
            check("a FIFO", &server);
            // SIGTERM stops it, whatever it is doing.
            let t = Instant::now();
            unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
            let status = server.wait_exit();
            eprintln!("serve stopped {:?} after SIGTERM ({status})", t.elapsed());
            std::fs::remove_file(&log).unwrap();
            std::fs::rename(&kept, &log).unwrap();
        },
    );
    s.finish();
}
