//! Test harness: each test gets its own DBAAS_HOME and its own port range,
//! runs the real dbaasctl binary against the real Docker engine, prints the
//! command with its stdout and stderr when something fails, and cleans up its
//! instances in Drop even when the test panics.
#![allow(dead_code)]

use serde_json::Value;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_dbaasctl");
/// Test port ranges: 10 ports per slot from 20000, below the ephemeral range.
const PORT_BASE: u16 = 20000;
const PORTS_PER_SLOT: u16 = 10;
const SLOTS: u16 = 1200;

/// True when Docker tests must run. They fail (not skip) when Docker is
/// missing, unless DBAAS_SKIP_DOCKER_TESTS=1 is set explicitly.
pub fn docker_required() -> bool {
    if std::env::var("DBAAS_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("DBAAS_SKIP_DOCKER_TESTS=1: skipping a test that needs Docker");
        return false;
    }
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!(
            "this test needs a running Docker daemon (set DBAAS_SKIP_DOCKER_TESTS=1 to skip explicitly): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("this test needs the docker CLI: {e}"),
    }
}

pub struct Run {
    pub cmd: String,
    pub out: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd,
            self.out.status,
            self.stdout(),
            self.stderr()
        )
    }
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> String {
        assert!(
            self.out.status.success(),
            "expected success\n{}",
            self.describe()
        );
        self.stdout()
    }
    /// Asserts failure with the given exit code and returns stderr.
    pub fn fails_with(&self, code: i32) -> String {
        assert_eq!(
            self.code(),
            code,
            "expected exit code {code}\n{}",
            self.describe()
        );
        self.stderr()
    }
    pub fn json(&self) -> Value {
        let s = self.ok();
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e})\n{}", self.describe()))
    }
}

/// The templates the test homes share (rebuilt when an image changes).
pub fn shared_templates() -> PathBuf {
    std::env::temp_dir().join("dbaas-test-templates")
}

pub struct TestHome {
    pub root: PathBuf,
    pub ports: (u16, u16),
    slot_file: PathBuf,
    pub env: Vec<(String, String)>,
}

impl TestHome {
    pub fn new(name: &str) -> TestHome {
        let root = std::env::temp_dir().join(format!(
            "dbaas-test-{name}-{}-{:x}",
            std::process::id(),
            rand_u32()
        ));
        std::fs::create_dir_all(&root).unwrap();
        // dbaas refuses a home others can write, whatever the umask.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (slot, slot_file) = reserve_slot();
        let lo = PORT_BASE + slot * PORTS_PER_SLOT;
        TestHome {
            root,
            ports: (lo, lo + PORTS_PER_SLOT - 1),
            slot_file,
            env: vec![],
        }
    }

    /// The home's own block of addresses for its instances' networks, as
    /// its port range is its own: homes on one host never race for one.
    pub fn subnet_pool(&self) -> String {
        let slot = (self.ports.0 - PORT_BASE) / PORTS_PER_SLOT;
        format!("10.{}.{}.0/24", 200 + slot / 256, slot % 256)
    }

    pub fn with_env(mut self, k: &str, v: &str) -> TestHome {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("DBAAS_HOME", &self.root)
            .env(
                "DBAAS_PORT_RANGE",
                format!("{}-{}", self.ports.0, self.ports.1),
            )
            .env("DBAAS_SUBNET_POOL", self.subnet_pool())
            .env_remove("DBAAS_IMAGE")
            .env_remove("DBAAS_DOCKER")
            .env_remove("DBAAS_PROVISION")
            // One template per version for every test home (made once,
            // under its lock), as homes on one host may share it.
            .env("DBAAS_TEMPLATE_DIR", shared_templates())
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let env_text: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        let out = c.output().expect("run dbaasctl");
        Run {
            cmd: format!("{env_text}dbaasctl {}", args.join(" ")),
            out,
        }
    }

    pub fn registry_text(&self) -> Option<String> {
        std::fs::read_to_string(self.root.join("config/instances.json")).ok()
    }

    pub fn registry(&self) -> Value {
        serde_json::from_str(
            &self
                .registry_text()
                .unwrap_or_else(|| "{\"instances\":[]}".into()),
        )
        .expect("registry is valid JSON")
    }

    pub fn instance_dirs(&self) -> Vec<String> {
        match std::fs::read_dir(self.root.join("instances")) {
            Ok(rd) => {
                let mut v: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            }
            Err(_) => vec![],
        }
    }

    /// Containers carrying the label of one instance (any home).
    pub fn containers_of(&self, id: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=dbaas.instance={id}"),
                "--format",
                "{{.Names}}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// `create` that must succeed; returns (id, url).
    pub fn create(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["create", name, "--json"];
        args.extend_from_slice(extra);
        let v = self.run(&args).json();
        (
            v["instance"]["id"].as_str().unwrap().to_string(),
            v["url"].as_str().unwrap().to_string(),
        )
    }
}

/// Removes a compose project's containers by name, whatever dbaas knows.
fn compose_down(id: &str, cwd: &Path) {
    let _ = Command::new("docker")
        .args([
            "compose",
            "-p",
            id,
            "down",
            "--remove-orphans",
            "--timeout",
            "5",
        ])
        .current_dir(cwd)
        .output();
}

impl Drop for TestHome {
    fn drop(&mut self) {
        // Destroy through the binary, then remove whatever is left by project.
        for id in self.instance_dirs() {
            let _ = self.command(&["destroy", &id, "--yes"]).output();
            compose_down(&id, &self.root);
        }
        if let Some(text) = self.registry_text() {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                for i in v["instances"].as_array().cloned().unwrap_or_default() {
                    if let Some(id) = i["id"].as_str() {
                        compose_down(id, &self.root);
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(&self.slot_file);
    }
}

pub fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_le_bytes(b)
}

/// Claims a port slot shared by every test process on the host: a marker
/// file created exclusively, holding the owner's pid; a dead owner's marker
/// is taken over.
fn reserve_slot() -> (u16, PathBuf) {
    let dir = std::env::temp_dir().join("dbaas-test-port-slots");
    std::fs::create_dir_all(&dir).unwrap();
    let start = (rand_u32() % u32::from(SLOTS)) as u16;
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let path = dir.join(format!("slot-{slot}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let _ = write!(f, "{}", std::process::id());
                return (slot, path);
            }
            Err(_) => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                let alive =
                    !owner.is_empty() && Path::new(&format!("/proc/{}", owner.trim())).exists();
                if !alive {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    panic!("no free test port slot in {}", dir.display());
}

/// Connects as the app user with the connection string dbaas printed.
pub fn connect(url: &str) -> postgres::Client {
    try_connect(url).unwrap_or_else(|e| panic!("connect to {url}: {e:?}"))
}

/// A connection string as dbaas prints it, as rust-postgres takes it:
/// without libpq's TLS parameters (which it does not read), and the
/// authority that `sslrootcert` names, if any.
pub fn pg_config(url: &str) -> (postgres::Config, Option<std::path::PathBuf>) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut ca = None;
    let mut rest = vec![];
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("sslrootcert", v)) => ca = Some(std::path::PathBuf::from(percent_decode(v))),
            Some(("sslmode", v)) => assert_eq!(v, "verify-full", "{url}"),
            _ => rest.push(kv),
        }
    }
    let url = match rest.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", rest.join("&")),
    };
    let cfg = url
        .parse()
        .unwrap_or_else(|e| panic!("a connection string: {url}: {e}"));
    (cfg, ca)
}

/// Connects with `cfg`: over TLS verified against `ca` (as libpq's
/// verify-full) where there is one, else in plain text.
pub fn connect_with(
    mut cfg: postgres::Config,
    ca: Option<&std::path::Path>,
) -> Result<postgres::Client, postgres::Error> {
    match ca {
        Some(ca) => {
            cfg.ssl_mode(postgres::config::SslMode::Require);
            let tls = dbaas::db::tls::connector(ca).unwrap_or_else(|e| panic!("{e}"));
            cfg.connect(tls)
        }
        None => cfg.connect(postgres::NoTls),
    }
}

/// `connect`, its error returned.
pub fn try_connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let (cfg, ca) = pg_config(url);
    connect_with(cfg, ca.as_deref())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One text value: the first column of the one row `sql` returns.
pub fn query_text(url: &str, sql: &str) -> String {
    connect(url).query_one(sql, &[]).unwrap().get(0)
}

pub fn docker_inspect(container: &str) -> Value {
    let out = Command::new("docker")
        .args(["inspect", container])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker inspect {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

/// `docker ARGS` that must succeed; its stdout, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One statement as the superuser over the db container's local socket
/// (psql -A -t): its output, trimmed.
pub fn superuser_sql(instance_id: &str, db: &str, sql: &str) -> String {
    docker_ok(&[
        "exec",
        &format!("{instance_id}-db-1"),
        "psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-U",
        "postgres",
        "-d",
        db,
        "-c",
        sql,
    ])
}

/// `doctor --json` findings above "ok".
pub fn open_findings(home: &TestHome) -> Vec<Value> {
    home.run(&["doctor", "--json"])
        .json()
        .as_array()
        .map(|a| a.iter().filter(|f| f["level"] != "ok").cloned().collect())
        .unwrap_or_default()
}

/// A process's resident memory, in kB (0 when it is gone).
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A docker CLI without the Compose v2 plugin (DBAAS_DOCKER): real docker
/// for everything else.
pub fn docker_without_compose(home: &TestHome) -> String {
    write_script(
        home,
        "docker-without-compose",
        "#!/bin/sh\nif [ \"$1\" = compose ]; then echo \"docker: 'compose' is not a docker command.\" >&2; exit 1; fi\nexec docker \"$@\"\n",
    )
}

/// A docker CLI whose `compose ... up` fails with `message` on stderr and exit
/// status `code`; with `after_real_up` the real `up` runs first, so the
/// containers exist (a later step failing). Real docker for everything else.
pub fn docker_failing_up(home: &TestHome, message: &str, code: u8, after_real_up: bool) -> String {
    let real = if after_real_up { "docker \"$@\"; " } else { "" };
    write_script(
        home,
        &format!("docker-failing-up-{code}"),
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = up ] && up=1; done\n\
             if [ \"$1\" = compose ] && [ -n \"$up\" ]; then {real}echo '{message}' >&2; exit {code}; fi\n\
             exec docker \"$@\"\n"
        ),
    )
}

/// A script in the test's home that stands in for `docker` (DBAAS_DOCKER).
pub fn write_script(home: &TestHome, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = home.root.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

/// A minimal HTTP/1.1 client for the API tests (one request per connection).
pub mod http {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or_else(|e| {
                panic!(
                    "status {}: body is not JSON ({e}): {}",
                    self.status,
                    String::from_utf8_lossy(&self.body)
                )
            })
        }
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub fn request(
        port: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Response {
        request_with(port, method, path, token, body, content_type, &[])
    }

    pub fn request_with(
        port: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        content_type: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
        s.set_read_timeout(Some(Duration::from_secs(400))).unwrap();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        if let Some(b) = body {
            // The server may answer (413) and close before reading it all.
            let _ = s.write_all(b);
        }
        let mut raw = vec![];
        let _ = s.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        if chunked {
            body = dechunk(&body);
        }
        Response {
            status,
            headers,
            body,
        }
    }

    /// Sends a request and closes the connection after `after`, without
    /// reading the answer: a client that gives up (curl -m).
    pub fn send_and_hang_up(
        port: u16,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
        after: Duration,
    ) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        std::thread::sleep(after);
        let _ = s.shutdown(std::net::Shutdown::Both);
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = vec![];
        while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&b[i + 2..i + 2 + size]);
            b = &b[i + 2 + size + 2..];
        }
        out
    }
}

/// A running `dbaasctl serve` for one test home; killed on drop.
pub struct Server {
    pub port: u16,
    pub token: String,
    child: std::process::Child,
}

impl Server {
    /// The server on a port the kernel picks as it binds (`--listen
    /// 127.0.0.1:0`), read back from its first line: a port picked here and
    /// released could be taken by another test's server before this one
    /// binds it (a request then met that server, or its shutdown).
    pub fn start(home: &TestHome, extra_env: &[(&str, &str)]) -> Server {
        let token = format!("test-token-{:08x}{:08x}", rand_u32(), rand_u32());
        let mut c = home.command(&["serve", "--listen", "127.0.0.1:0"]);
        c.env("DBAAS_API_TOKEN", &token)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("start dbaasctl serve");
        let err = child.stderr.take().expect("serve's stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Passes the server's log on, as inherited stderr did.
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let port = line
                    .split("listening on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|p| p.parse::<u16>().ok());
                if let (Some(p), Some(t)) = (port, tx.as_ref()) {
                    let _ = t.send(p);
                    tx = None;
                }
                eprintln!("{line}");
            }
        });
        let port = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("dbaasctl serve did not listen");
        Server { port, token, child }
    }

    pub fn get(&self, path: &str) -> http::Response {
        http::request(self.port, "GET", path, Some(&self.token), None, "")
    }
    pub fn post(&self, path: &str, body: &serde_json::Value) -> http::Response {
        let b = body.to_string();
        http::request(
            self.port,
            "POST",
            path,
            Some(&self.token),
            Some(b.as_bytes()),
            "application/json",
        )
    }
    /// Any method, an optional JSON body, extra headers.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> http::Response {
        let b = body.map(|b| b.to_string());
        http::request_with(
            self.port,
            method,
            path,
            Some(&self.token),
            b.as_ref().map(|b| b.as_bytes()),
            "application/json",
            headers,
        )
    }
    pub fn post_empty(&self, path: &str) -> http::Response {
        http::request(self.port, "POST", path, Some(&self.token), None, "")
    }
    /// POST /instances with a raw JSON body.
    pub fn create_raw(&self, body: &[u8]) -> http::Response {
        http::request(
            self.port,
            "POST",
            "/instances",
            Some(&self.token),
            Some(body),
            "application/json",
        )
    }
    pub fn delete(&self, path: &str) -> http::Response {
        http::request(self.port, "DELETE", path, Some(&self.token), None, "")
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The parts of a long scenario on one instance: each runs even when an
/// earlier one failed, so one failure does not hide later checks; `finish`
/// fails the test naming every part that failed.
#[derive(Default)]
pub struct Sections {
    failed: Vec<String>,
}

impl Sections {
    pub fn run(&mut self, name: &str, part: impl FnOnce()) {
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(part));
        if res.is_err() {
            eprintln!("--- part failed: {name} (the panic is printed above)");
            self.failed.push(name.to_string());
        }
    }

    pub fn finish(self) {
        assert!(
            self.failed.is_empty(),
            "{} part(s) failed: {:?}",
            self.failed.len(),
            self.failed
        );
    }
}

/// Polls `done` every 100 ms until it holds; panics naming `what` after
/// `limit` (a bound that only catches a hang, never a timing claim).
pub fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "still waiting after {limit:?}: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Backends of the database at `url`, other than the asking one, in one
/// of `states` (pg_stat_activity.state).
pub fn other_backends(url: &str, states: &[&str]) -> i64 {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    connect(url)
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = ANY($1)",
            &[&states],
        )
        .unwrap()
        .get(0)
}
