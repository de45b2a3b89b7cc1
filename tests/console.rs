//! The web console in a real browser: Debian's chromium driven through
//! chromedriver (WebDriver), against a real `serve` and a real instance.
//! Screenshots of every page go to target/console-screenshots/.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::*;
use serde_json::json;
use webdriver::Browser;

const CTRL: &str = "\u{E009}";
const ENTER: &str = "\u{E007}";

/// The session cookie from a sign-in made over plain HTTP (no browser),
/// and the CSRF token of the page it opens.
fn sign_in_by_hand(s: &Server) -> (String, String) {
    let body = format!("token={}", s.token);
    let r = http::request_with(
        s.port,
        "POST",
        "/login",
        None,
        Some(body.as_bytes()),
        "application/x-www-form-urlencoded",
        &[("Origin", "http://127.0.0.1")],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r
        .header("set-cookie")
        .expect("a session cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = http::request_with(s.port, "GET", "/", None, None, "", &[("Cookie", &cookie)]);
    assert_eq!(page.status, 200);
    let html = page.text();
    let csrf = html
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page carries its CSRF token")
        .to_string();
    (cookie, csrf)
}

/// Without a browser: what the console's routes refuse.
fn refusals(s: &Server) {
    let r = http::request(s.port, "GET", "/", None, None, "");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/login"));
    // A sign-in posted from another site's page.
    let body = format!("token={}", s.token);
    let r = http::request_with(
        s.port,
        "POST",
        "/login",
        None,
        Some(body.as_bytes()),
        "application/x-www-form-urlencoded",
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
    let (cookie, csrf) = sign_in_by_hand(s);
    // A request with no body and only these headers.
    let bare = |method: &str, path: &str, headers: &[(&str, &str)]| {
        http::request_with(s.port, method, path, None, None, "", headers)
    };
    // Reads with the session alone work; changes need the CSRF token, from
    // this origin.
    let r = bare("GET", "/instances", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{}", r.text());
    let stop = "/instances/nope/stop";
    let r = bare("POST", stop, &[("Cookie", &cookie)]);
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (403, json!("csrf"))
    );
    let wrong = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", "0123456789abcdef0123456789abcdef"),
    ];
    assert_eq!(bare("POST", stop, &wrong).status, 403, "a wrong CSRF token");
    let other = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", csrf.as_str()),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(bare("POST", stop, &other).status, 403, "another origin");
    let r = bare(
        "POST",
        stop,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
    );
    assert_eq!(
        r.status,
        404,
        "allowed through, then no such instance: {}",
        r.text()
    );
    // A made-up session is no session.
    let made_up = "dbaas_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        bare("GET", "/instances", &[("Cookie", made_up)]).status,
        401
    );
    // The bearer token works as before.
    assert_eq!(s.get("/instances").status, 200);
    // Pages carry a policy that loads nothing from elsewhere.
    let r = bare("GET", "/", &[("Cookie", &cookie)]);
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
}

/// What the data API says, to compare with what the page shows.
fn api_rows(s: &Server, id: &str, query: &str) -> Vec<String> {
    let r = s.get(&format!("/database/{id}/tables/items/rows?{query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["name"].as_str().unwrap().to_string())
        .collect()
}

fn run_sql(b: &Browser, sql: &str) {
    let area = b.find("#sql");
    b.clear(&area);
    b.send_keys(&area, sql);
    b.click(&area);
    b.chord(&[CTRL, ENTER]);
}

#[test]
fn the_console_signs_in_creates_charts_browses_runs_sql_and_destroys_in_chromium() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("console");
    let s = Server::start(&h, &[]);
    refusals(&s);
    let base = format!("http://127.0.0.1:{}", s.port);
    let b = Browser::start();

    // Sign in: a wrong token is refused with a message, the right one opens
    // the overview.
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.fill("#token", "not-the-token");
    b.click_css("#login-form button[type=submit]");
    b.wait_text("#token-error", "not this server's API token", 10);
    b.screenshot("01-sign-in-refused");
    b.fill("#token", &s.token);
    b.click_css("#login-form button[type=submit]");
    b.wait_for("the overview", 10, || b.try_find("#instances"));
    assert!(!b.url().contains(&s.token));
    let cookies = b.cookies();
    let c = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "dbaas_session")
        .expect("the session cookie");
    assert_eq!(
        (c["httpOnly"].as_bool(), c["sameSite"].as_str()),
        (Some(true), Some("Strict"))
    );
    let storage = b.script(
        "return localStorage.length + sessionStorage.length + (document.cookie.includes(arguments[0]) ? 1 : 0)",
        vec![json!(s.token)],
    );
    assert_eq!(
        storage,
        json!(0),
        "the token is nowhere in the browser's storage"
    );
    b.screenshot("02-overview-empty");

    // Create from the form: a bad name first, its error next to the field.
    b.fill("#f-name", "Bad Name");
    b.click_css("#create-button");
    let err = b.wait_text("#err-name", "name", 10);
    assert!(
        b.text_of("#err-form").is_empty(),
        "the error is the field's: {err}"
    );
    assert_eq!(
        b.attr(&b.find("#f-name"), "aria-invalid").as_deref(),
        Some("true")
    );
    b.screenshot("03-create-bad-name");
    b.fill("#f-name", "web");
    b.fill("#f-metrics_interval", "1");
    b.click_css("#f-no_backups");
    b.script("window.__same_page = 1; return 0", vec![]);
    b.click_css("#create-button");
    let mut seen: Vec<String> = vec![];
    b.wait_for("web running in the overview", 120, || {
        let st = b
            .script(
                "const r = document.querySelector('tr[data-name=web]'); return r ? r.dataset.status : null",
                vec![],
            )
            .as_str()
            .map(String::from);
        if let Some(st) = st {
            if seen.last() != Some(&st) {
                seen.push(st.clone());
            }
            if st == "running" {
                return Some(());
            }
        }
        None
    });
    assert_eq!(
        b.script("return window.__same_page", vec![]),
        json!(1),
        "no reload"
    );
    assert!(
        seen.first().map(String::as_str) == Some("creating"),
        "the row appeared as creating, then running: {seen:?}"
    );
    let id = s.get("/instances/web").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.screenshot("04-overview-running");

    // The instance page: charts draw points once two samples exist.
    b.click_css("tr[data-name=web] a");
    b.wait_for("the instance page", 10, || b.try_find("#charts"));
    b.wait_for("two points on the connections chart", 60, || {
        let n = b.script(
            "const f = document.querySelectorAll('figure.chart')[1]; return f ? Number(f.dataset.points) : 0",
            vec![],
        );
        (n.as_u64().unwrap_or(0) >= 2).then_some(())
    });
    assert!(
        b.find_all("figure.chart svg polyline").len() >= 2,
        "lines are drawn"
    );
    assert!(b.try_find("#copy-url").is_some(), "a copy control");
    let password = s.get("/instances/web/credentials").json()["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !b.text_of("#conn-url").contains(&password),
        "hidden until asked"
    );
    b.click_css("#show-password");
    b.wait_text("#conn-url", &password, 10);
    b.wait_text("#agent", "running", 20);
    b.screenshot("05-instance");
    b.screenshot_of("#charts", "05-instance-charts-1h");
    b.click_css("[data-window='24h']");
    b.wait_for("the 24 h charts", 10, || {
        let label = b.script(
            "const s = document.querySelector('figure.chart svg'); return s ? s.getAttribute('aria-label') : ''",
            vec![],
        );
        label.as_str().unwrap_or("").contains("24 hours").then_some(())
    });
    b.screenshot_of("#charts", "06-instance-charts-24h");

    // SQL console: a table and rows, then an error with SQLSTATE and
    // position.
    b.goto(&format!("{base}/ui/instances/{id}/sql"));
    run_sql(
        &b,
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int)",
    );
    b.wait_text("#sql-meta", "CREATE", 20);
    run_sql(
        &b,
        "INSERT INTO items VALUES (1, 'pear', 5), (2, 'apple', 1), (3, 'fig', 7), (4, 'kiwi', 3), (5, 'date', 9)",
    );
    b.wait_text("#sql-meta", "INSERT: 5 rows", 20);
    run_sql(&b, "SELECT name, qty FROM items WHERE qty > 2 ORDER BY qty");
    b.wait_text("#sql-meta", "SELECT: 4 rows", 20);
    assert_eq!(b.find_all("#sql-result tbody tr").len(), 4);
    b.screenshot("07-sql-result");
    run_sql(&b, "SELECT nmae FROM items");
    b.wait_text("#sql-error", "42703", 20);
    assert_eq!(b.text_of("#sql-error .sqlstate"), "42703");
    assert_eq!(
        b.text_of("#sql-error pre.position mark"),
        "n",
        "position 8 marked"
    );
    b.screenshot("08-sql-error");
    // Read-only refuses a write.
    b.click_css("#read-only");
    run_sql(&b, "DELETE FROM items");
    b.wait_text("#sql-error", "25006", 20);
    b.click_css("#read-only");

    // Table browser: a filter and an ordering give the API's rows.
    b.goto(&format!("{base}/ui/instances/{id}/tables"));
    b.wait_text("#tables", "items", 20);
    b.click_css("#tables a");
    b.wait_for("the grid", 20, || b.try_find("#op-qty"));
    b.script(
        "document.getElementById('op-qty').value = 'gt'; return 0",
        vec![],
    );
    b.fill("#fv-qty", "2");
    b.click_css("#exact-count");
    b.click_css("#filter-form button[type=submit]");
    b.wait_text("#range", "of 4", 20);
    b.click_css("button.sort[data-column=name]");
    let want = api_rows(&s, &id, "qty=gt.2&order=name.asc");
    assert_eq!(want, ["date", "fig", "kiwi", "pear"]);
    let grid_names = || -> Vec<String> {
        b.script(
            "return [...document.querySelectorAll('#rows tbody tr')].map(r => r.children[1] ? r.children[1].textContent : '')",
            vec![],
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect()
    };
    b.wait_for("rows ordered by name", 20, || {
        (grid_names() == want).then_some(())
    });
    b.click_css("button.sort[data-column=name]");
    let desc: Vec<String> = want.iter().rev().cloned().collect();
    b.wait_for("rows ordered by name descending", 20, || {
        (grid_names() == desc).then_some(())
    });
    assert!(
        b.text_of("#structure").contains("PRIMARY KEY")
            || b.text_of("#structure").contains("items_pkey")
    );
    b.screenshot("09-table");

    // Stop, start, and destroy from the instance page.
    b.goto(&format!("{base}/ui/instances/{id}"));
    b.wait_text("#status", "running", 20);
    b.click_css("[data-action=stop]");
    b.wait_text("#status", "stopped", 120);
    assert_eq!(
        s.get(&format!("/instances/{id}")).json()["status"],
        "stopped"
    );
    b.click_css("[data-action=start]");
    b.wait_text("#status", "running", 120);
    // Resize from the page: CPUs change on the running container.
    b.fill("#r-cpus", "0.5");
    b.click_css("#resize-form button[type=submit]");
    b.wait_text("#action-state", "Resized", 60);
    assert_eq!(
        s.get(&format!("/instances/{id}")).json()["cpus"],
        json!(0.5)
    );
    b.fill("#r-memory", "1k");
    b.click_css("#resize-form button[type=submit]");
    b.wait_text("#rerr-memory", "memory", 20);
    b.fill("#destroy-confirm", "wrong-name");
    b.click_css("#destroy-form button[type=submit]");
    b.wait_text("#destroy-error", "not the instance's name", 10);
    assert_eq!(
        s.get(&format!("/instances/{id}")).status,
        200,
        "still there"
    );
    b.screenshot("10-destroy-refused");
    b.fill("#destroy-confirm", "web");
    b.click_css("#destroy-form button[type=submit]");
    b.wait_for("back on the overview", 120, || {
        (!b.url().contains("/ui/")).then_some(())
    });
    assert_eq!(s.get(&format!("/instances/{id}")).status, 404, "destroyed");

    // A phone's width.
    b.set_window(390, 844);
    b.goto(&format!("{base}/"));
    b.wait_for("the overview", 10, || b.try_find("#instances"));
    b.screenshot("11-overview-phone");
    b.set_window(1280, 900);

    // Sign out ends the session.
    b.click_css("form.signout button");
    b.wait_for("the sign-in page", 10, || b.try_find("#token"));
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "signed out: {}", b.url());
}
