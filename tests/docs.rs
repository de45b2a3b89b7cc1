//! /docs (Swagger UI) and /redoc load offline in headless Chromium and the
//! rendered pages list the API's operations.

mod common;
use common::*;
use std::process::Command;

/// The DOM after the page's scripts ran, from Debian's chromium.
fn rendered_dom(url: &str) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("chromium is needed for this test: scripts/setup-host.sh installs it");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const OPERATIONS: &[&str] = &[
    "/instances/{id}/credentials",
    "/instances/{id}/start",
    "/instances/{id}/stop",
    "/instances/{id}/restart",
    "/instances/{id}/logs",
];

#[test]
fn swagger_ui_renders_every_operation() {
    let h = TestHome::new("swagger");
    let s = Server::start(&h, &[]);
    let dom = rendered_dom(&format!("http://127.0.0.1:{}/docs/", s.port));
    assert!(
        dom.contains("opblock"),
        "Swagger UI did not render operations:\n{}",
        &dom[..dom.len().min(2000)]
    );
    for op in OPERATIONS {
        assert!(
            dom.contains(op),
            "{op} missing from the rendered Swagger UI"
        );
    }
}

#[test]
fn redoc_renders_every_operation() {
    let h = TestHome::new("redoc");
    let s = Server::start(&h, &[]);
    let js = http::request(s.port, "GET", "/redoc/redoc.standalone.js", None, None, "");
    assert_eq!(
        js.status,
        200,
        "ReDoc's bundle must be installed (scripts/setup-host.sh): {}",
        js.text()
    );
    // The page may not be framed, and loads nothing from elsewhere (and
    // still renders under that policy, below).
    let page = http::request(s.port, "GET", "/redoc", None, None, "");
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let docs = http::request(s.port, "GET", "/docs/", None, None, "");
    assert!(docs
        .header("content-security-policy")
        .is_some_and(|c| c.contains("frame-ancestors 'none'")));
    let dom = rendered_dom(&format!("http://127.0.0.1:{}/redoc", s.port));
    for op in OPERATIONS {
        assert!(
            dom.contains(op),
            "{op} missing from the rendered ReDoc page:\n{}",
            &dom[..dom.len().min(2000)]
        );
    }
}

/// Every page of docs/, as one text.
fn docs_text() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut text = String::new();
    for e in std::fs::read_dir(&dir).expect("docs/") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            text += &std::fs::read_to_string(&p).unwrap();
        }
    }
    text
}

/// The reference is in docs/: every subcommand `dbaasctl help` lists and
/// every route of the OpenAPI document is named there (each route as its
/// own `METHOD /path`).
#[test]
fn docs_name_every_command_and_route() {
    let docs = docs_text();
    let h = TestHome::new("docs-ref");
    let help = h.run(&["help"]).stdout();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("a command list in dbaasctl help")
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.len() > 20, "{help}");
    let missing: Vec<_> = commands
        .iter()
        .filter(|c| !docs.contains(&format!("`dbaasctl {c}")))
        .collect();
    assert!(missing.is_empty(), "commands not in docs/: {missing:?}");

    let s = Server::start(&h, &[]);
    let spec = http::request(s.port, "GET", "/openapi.json", None, None, "").json();
    let mut routes = vec![];
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            routes.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(routes.len() > 30, "{routes:?}");
    let missing: Vec<_> = routes
        .iter()
        .filter(|r| !docs.contains(&format!("`{r}")))
        .collect();
    assert!(missing.is_empty(), "routes not in docs/: {missing:?}");
}
