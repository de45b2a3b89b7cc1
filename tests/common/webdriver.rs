//! A small W3C WebDriver client over the harness's HTTP client: Debian's
//! chromedriver driving headless Chromium. Just what the console's tests
//! need: open a page, find elements, click, type, read text and attributes,
//! run a script, wait for a condition, save a screenshot.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key WebDriver's element reference is stored under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    /// Where screenshots go (target/console-screenshots).
    pub shots: std::path::PathBuf,
}

#[derive(Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium session at 1280x900.
    pub fn start() -> Browser {
        // Port 0: chromedriver binds a free port and says which (a port
        // picked here and released could be taken before it binds).
        let mut driver = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed for this test: scripts/setup-host.sh installs chromium-driver");
        let out = driver.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            // Read to the end, so that chromedriver never blocks on a full pipe.
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("chromedriver did not say its port")
            .expect("chromedriver's port");
        let profile = std::env::temp_dir().join(format!("dbaas-chromium-{port}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--window-size=1280,900",
                         format!("--user-data-dir={}", profile.display())],
            }
        }}});
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            shots: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("console-screenshots"),
        };
        let v = b.raw("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        std::fs::create_dir_all(&b.shots).unwrap();
        b
    }

    /// One request; chromedriver keeps the connection open whatever the
    /// request says, so the answer is read by its Content-Length.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let b = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("chromedriver");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.port,
            b.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(b.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("chromedriver's answer");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("chromedriver's answer");
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "chromedriver: not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        v["value"].clone()
    }

    /// A command of the session; a WebDriver error is a panic naming it.
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.raw(method, &format!("/session/{}{path}", self.session), body);
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            panic!(
                "WebDriver {method} {path}: {e}: {}",
                v["message"].as_str().unwrap_or("")
            );
        }
        v
    }

    /// The same, but a WebDriver error is returned, not a panic.
    fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let v = self.raw(method, &format!("/session/{}{path}", self.session), body);
        match v.get("error").and_then(Value::as_str) {
            Some(e) => Err(format!("{e}: {}", v["message"].as_str().unwrap_or(""))),
            None => Ok(v),
        }
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches {css} on {}", self.url()))
    }

    pub fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .try_cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        v[ELEMENT].as_str().map(|s| Element(s.to_string()))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn click(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    /// Finds `css` and clicks it, finding it again when the page re-rendered
    /// it in between (the console redraws its lists as statuses change).
    pub fn click_css(&self, css: &str) {
        for _ in 0..50 {
            let e = self.find(css);
            match self.try_cmd("POST", &format!("/element/{}/click", e.0), Some(json!({}))) {
                Ok(_) => return,
                Err(err) if err.contains("stale element") => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Err(err) => panic!("WebDriver click on {css}: {err}"),
            }
        }
        panic!("{css} went stale 50 times in a row");
    }

    pub fn clear(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(json!({})));
    }

    /// Types into an element (WebDriver's key codes: "\u{E007}" is Enter,
    /// "\u{E009}" Ctrl).
    pub fn send_keys(&self, e: &Element, text: &str) {
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Replaces the value of the input `css` by `text`.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.clear(&e);
        if !text.is_empty() {
            self.send_keys(&e, text);
        }
    }

    pub fn text(&self, e: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn text_of(&self, css: &str) -> String {
        self.text(&self.find(css))
    }

    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .as_str()
            .map(String::from)
    }

    /// Runs a script in the page; its return value.
    pub fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": js, "args": args })),
        )
    }

    /// Presses keys through the actions API: `keys` are pressed in order
    /// and released in reverse (a chord such as Ctrl+Enter).
    pub fn chord(&self, keys: &[&str]) {
        let mut actions: Vec<Value> = keys
            .iter()
            .map(|k| json!({"type": "keyDown", "value": k}))
            .collect();
        actions.extend(
            keys.iter()
                .rev()
                .map(|k| json!({"type": "keyUp", "value": k})),
        );
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.cmd("DELETE", "/actions", None);
    }

    /// Waits (at most `secs`) until `check` gives Some; panics naming `what`.
    pub fn wait_for<T>(&self, what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-")));
                panic!("waited {secs} s for {what} on {}", self.url());
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Waits until the element `css` exists and its text contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str, secs: u64) -> String {
        self.wait_for(&format!("'{needle}' in {css}"), secs, || {
            let e = self.try_find(css)?;
            let t = self
                .try_cmd("GET", &format!("/element/{}/text", e.0), None)
                .ok()?;
            let t = t.as_str()?.to_string();
            t.contains(needle).then_some(t)
        })
    }

    /// Saves the viewport as target/console-screenshots/NAME.png.
    pub fn screenshot(&self, name: &str) {
        use base64::Engine;
        let Ok(v) = self.try_cmd("GET", "/screenshot", None) else {
            return;
        };
        if let Some(b64) = v.as_str() {
            if let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64) {
                let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
            }
        }
    }

    /// Saves one element (the whole of it, scrolled into view) as NAME.png.
    pub fn screenshot_of(&self, css: &str, name: &str) {
        use base64::Engine;
        let Some(e) = self.try_find(css) else { return };
        let Ok(v) = self.try_cmd("GET", &format!("/element/{}/screenshot", e.0), None) else {
            return;
        };
        if let Some(png) = v
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        {
            let _ = std::fs::write(self.shots.join(format!("{name}.png")), png);
        }
    }

    /// Cookies the browser holds for the page.
    pub fn cookies(&self) -> Value {
        self.cmd("GET", "/cookie", None)
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
