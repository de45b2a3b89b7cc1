//! What the benchmarks share: settings from the environment, medians, and
//! timing a command.
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dbaasctl");

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// How long a command that must succeed takes, its output dropped.
pub fn time_cmd(mut c: Command) -> Duration {
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    let st = c.status().unwrap();
    let took = start.elapsed();
    assert!(st.success());
    took
}

/// Runs the command `cmd` makes of every item, `batch` at a time; panics
/// on a failure, with its standard error.
pub fn batched(items: &[String], batch: usize, cmd: impl Fn(&str) -> Command) {
    for chunk in items.chunks(batch) {
        let children: Vec<_> = chunk
            .iter()
            .map(|n| {
                cmd(n)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A benchmark's own DBAAS_HOME for many small instances: memory limits may
/// add up past the host's (what they use is measured), no warm pool. Its
/// instances are destroyed and the directory removed on drop.
pub struct ManyHome {
    pub root: PathBuf,
    pub range: String,
}

impl ManyHome {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("DBAAS_HOME", &self.root)
            .env("DBAAS_PORT_RANGE", &self.range)
            .env("DBAAS_MAX_MEMORY", "64g")
            .env_remove("DBAAS_WARM_POOL")
            .stdin(Stdio::null());
        c
    }

    pub fn ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("instances"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `dbaasctl serve` on a free loopback port with `token`, once it
    /// listens: the child and its port.
    pub fn serve(&self, token: &str) -> (Child, u16) {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = self
            .cmd(&["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DBAAS_API_TOKEN", token)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        (server, port)
    }
}

impl Drop for ManyHome {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.cmd(&["destroy", &id, "--yes"]).output();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
