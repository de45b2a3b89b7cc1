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

const MY_TLS: &str =
    "SELECT ssl::text || ' ' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[test]
fn a_new_instance_is_reached_over_verified_tls_only_with_its_homes_authority() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("tls");
    let (id, url) = h.create("secure", &["--no-backups"]);
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
    let cli = out["rows"][0]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert!(cli.as_str().unwrap().starts_with("true TLSv1."), "{out}");
    let server = Server::start(&h, &[]);
    let r = server.post("/database/secure/sql", &json!({ "sql": MY_TLS }));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let api = v["rows"][0]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert!(api.as_str().unwrap().starts_with("true TLSv1."), "{v}");
}
