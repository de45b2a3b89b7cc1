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
        let (slot, slot_file) = reserve_slot();
        let lo = PORT_BASE + slot * PORTS_PER_SLOT;
        TestHome {
            root,
            ports: (lo, lo + PORTS_PER_SLOT - 1),
            slot_file,
            env: vec![],
        }
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
            .env_remove("DBAAS_IMAGE")
            .env_remove("DBAAS_DOCKER")
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

impl Drop for TestHome {
    fn drop(&mut self) {
        // Destroy through the binary, then remove whatever is left by project.
        for id in self.instance_dirs() {
            let _ = self.command(&["destroy", &id, "--yes"]).output();
            let _ = Command::new("docker")
                .args([
                    "compose",
                    "-p",
                    &id,
                    "down",
                    "--remove-orphans",
                    "--timeout",
                    "5",
                ])
                .current_dir(&self.root)
                .output();
        }
        if let Some(text) = self.registry_text() {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                for i in v["instances"].as_array().cloned().unwrap_or_default() {
                    if let Some(id) = i["id"].as_str() {
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
                            .current_dir(&self.root)
                            .output();
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(&self.slot_file);
    }
}

fn rand_u32() -> u32 {
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
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to {url}: {e:?}"))
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

/// A script in the test's home that stands in for `docker` (DBAAS_DOCKER).
pub fn write_script(home: &TestHome, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = home.root.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}
