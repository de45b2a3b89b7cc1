//! TLS on by default (issue 32, first part): a new instance serves TLS with
//! a certificate of the home's authority, its connection string asks libpq
//! for `verify-full`, and psql, the API's pools, the CLI and rust-postgres
//! all connect that way; another authority's certificate fails verification.

mod common;
use common::*;
use serde_json::json;

/// `psql URL -Atc SQL` on the host (libpq reads sslmode and sslrootcert).
fn psql(url: &str, sql: &str) -> std::process::Output {
    std::process::Command::new("psql")
        .args([url, "-X", "-Atc", sql])
        .output()
        .unwrap()
}

/// The first column of the first row of a `{columns, rows}` answer.
fn first_value(v: &serde_json::Value) -> String {
    let row = v["rows"][0].as_object().expect("a row");
    row.values()
        .next()
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_string()
}

const MY_TLS: &str =
    "SELECT ssl::text || ' ' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[test]
fn a_new_instance_is_reached_over_verified_tls_only_with_its_homes_authority() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("tls");
    let created = h
        .run(&["create", "secure", "--no-backups", "--json"])
        .json();
    // What the create answers is the instance as it is: running.
    assert_eq!(created["instance"]["status"], "running", "{created}");
    let id = created["instance"]["id"].as_str().unwrap().to_string();
    let url = created["url"].as_str().unwrap().to_string();
    let ca = h.root.join("config/ca/ca.crt");
    assert!(
        url.ends_with(&format!(
            "?sslmode=verify-full&sslrootcert={}",
            ca.display()
        )),
        "{url}"
    );
    // The authority: its key is root's alone; `dbaasctl ca` prints it.
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&h.root.join("config/ca/ca.key")), 0o600);
    let printed = h.run(&["ca"]).ok();
    assert_eq!(printed, std::fs::read_to_string(&ca).unwrap());
    assert!(
        printed.starts_with("-----BEGIN CERTIFICATE-----"),
        "{printed}"
    );
    assert_eq!(
        mode(&h.root.join(format!("instances/{id}/tls/server.key"))),
        0o600
    );

    // psql with the printed string: verify-full, over TLS 1.2 or newer.
    let out = psql(&url, MY_TLS);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text == "true TLSv1.3" || text == "true TLSv1.2",
        "psql's session: {text}"
    );
    // Plain text over TCP finds no pg_hba.conf line.
    let plain = format!("{}?sslmode=disable", url.split('?').next().unwrap());
    let out = psql(&plain, "SELECT 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no encryption"),
        "{err}"
    );
    // rust-postgres, verifying as libpq does.
    let row: String = connect(&url).query_one(MY_TLS, &[]).unwrap().get(0);
    assert!(row.starts_with("true TLSv1."), "{row}");

    // Another home's authority does not vouch for this instance.
    let other = TestHome::new("tls-other");
    other.run(&["ca"]).ok();
    let foreign_ca = other.root.join("config/ca/ca.crt");
    let wrong = url.replace(&ca.display().to_string(), &foreign_ca.display().to_string());
    let out = psql(&wrong, "SELECT 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "psql trusted another authority");
    assert!(err.contains("certificate verify failed"), "{err}");
    let err = try_connect(&wrong).err().expect("verification fails");
    assert!(
        format!("{err:?}").contains("certificate verify failed"),
        "{err:?}"
    );

    // The CLI's connection and the API's pools use TLS too.
    let out = h.run(&["sql", "secure", "--json", MY_TLS]).json();
    assert!(first_value(&out).starts_with("true TLSv1."), "{out}");
    let server = Server::start(&h, &[]);
    let r = server.post("/database/secure/sql", &json!({ "sql": MY_TLS }));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(first_value(&v).starts_with("true TLSv1."), "{v}");

    // Its expiry, a year out: in show, and in /metrics for alerting.
    let show = h.run(&["show", "secure", "--json"]).json();
    let expires = show["tls_expires_at"].as_str().unwrap_or_default();
    let created = show["created_at"].as_str().unwrap();
    assert!(expires.len() == 20 && expires > created, "{show}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let metrics = server.get("/metrics").text();
    let series = format!("dbaas_tls_cert_expiry_timestamp_seconds{{dbaas_instance=\"{id}\"}} ");
    let at: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    let days = (at - now) / 86400.0;
    assert!((364.0..=365.1).contains(&days), "{days}");
}

#[test]
fn an_instance_made_before_tls_gets_it_at_its_next_restart() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("tls-old");
    let (id, _) = h.create("old", &["--no-backups"]);
    // Made as dbaas made them before TLS: no `tls` in the registry entry,
    // no tls/ directory, a compose file without the two secrets, and a
    // server started from it.
    let reg_path = h.root.join("config/instances.json");
    let mut reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&reg_path).unwrap()).unwrap();
    for i in reg["instances"].as_array_mut().unwrap() {
        i.as_object_mut().unwrap().remove("tls");
    }
    std::fs::write(&reg_path, serde_json::to_string_pretty(&reg).unwrap()).unwrap();
    let dir = h.root.join("instances").join(&id);
    std::fs::remove_dir_all(dir.join("tls")).unwrap();
    let compose = dir.join("docker-compose.yml");
    let text = std::fs::read_to_string(&compose)
        .unwrap()
        .replace(", server_crt, server_key]", "]")
        .replace(
            "  server_crt:\n    file: ./tls/server.crt\n  server_key:\n    file: ./tls/server.key\n",
            "",
        );
    assert!(
        !text.contains("./tls/") && !text.contains(", server_key"),
        "{text}"
    );
    std::fs::write(&compose, text).unwrap();
    let up = std::process::Command::new("docker")
        .args(["compose", "-p", &id, "up", "-d", "--wait"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    // Until its restart: said in show, and its string asks for no TLS,
    // which the server indeed does not offer.
    let show = h.run(&["show", "old", "--json"]).json();
    assert_eq!(show["tls"], false, "{show}");
    assert!(
        show["pending_restart"]
            .as_array()
            .is_some_and(|p| p.iter().any(|s| s == "ssl")),
        "{show}"
    );
    let text = h.run(&["show", "old"]).ok();
    assert!(text.contains("gets TLS at its next restart"), "{text}");
    let plain = h.run(&["url", "old"]).ok().trim().to_string();
    assert!(!plain.contains("sslmode"), "{plain}");
    let out = psql(&format!("{plain}?sslmode=require"), "SELECT 1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not support SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    h.run(&["restart", "old"]).ok();
    let show = h.run(&["show", "old", "--json"]).json();
    assert_eq!(show["tls"], true, "{show}");
    assert!(show.get("pending_restart").is_none(), "{show}");
    let url = h.run(&["url", "old"]).ok().trim().to_string();
    assert!(url.contains("?sslmode=verify-full&sslrootcert="), "{url}");
    let out = psql(&url, MY_TLS);
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        got.starts_with("true TLSv1."),
        "{got} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("tls/server.key").exists());
}

#[test]
fn allow_plaintext_accepts_both_and_still_prints_a_verified_string() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("tls-plain");
    let (_, url) = h.create("open", &["--no-backups", "--allow-plaintext"]);
    assert!(url.contains("?sslmode=verify-full&sslrootcert="), "{url}");
    let row: String = connect(&url).query_one(MY_TLS, &[]).unwrap().get(0);
    assert!(row.starts_with("true TLSv1."), "{row}");
    let plain = format!("{}?sslmode=disable", url.split('?').next().unwrap());
    let out = psql(
        &plain,
        "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "false");
}
