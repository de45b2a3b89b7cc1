//! `docker` and `docker compose` subprocesses. Every call is bounded by a named
//! timeout, reads stdout and stderr concurrently, and turns failures into
//! typed errors that carry the command line, the exit status and the tail of
//! stderr.

use crate::error::{Error, ProcessFailure, Result};
use crate::home::Home;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// `docker ps`, `image inspect`, `compose version`: should answer in well under
/// a second; the bound only catches a hung daemon.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(30);
/// `compose up -d`: creates the network and containers, no waiting on health.
pub const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// `compose down`/`restart`: PostgreSQL gets `STOP_GRACE` to shut down cleanly.
pub const DOWN_TIMEOUT: Duration = Duration::from_secs(120);
pub const STOP_GRACE_SECS: u32 = 30;
const STDERR_TAIL_LINES: usize = 20;

pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// A docker subprocess is killed when dbaasctl dies: otherwise a `compose
/// up` orphaned by a killed CLI or server goes on creating containers while
/// the next `serve` or `doctor --fix` rolls the same instance back (seen in
/// the chaos suite as a port taken by a container of a rolled-back create).
fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before prctl took effect.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Starts `docker ARGS` with both output pipes, killed when dropped or when
/// dbaasctl dies; returns its command line (for errors) and the child.
fn spawn(
    home: &Home,
    args: &[&str],
    cwd: Option<&Path>,
) -> Result<(String, tokio::process::Child)> {
    let cmdline = format!("{} {}", home.settings.docker, args.join(" "));
    log::debug!("running {cmdline}");
    let mut cmd = Command::new(&home.settings.docker);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    die_with_parent(cmd.as_std_mut());
    let child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Docker(format!(
                "the docker CLI ('{}') was not found: install Docker Engine (Debian: apt-get install docker.io) or set DBAAS_DOCKER",
                home.settings.docker
            ))
        } else {
            Error::io(format!("running {cmdline}"), e)
        }
    })?;
    Ok((cmdline, child))
}

/// `work` on a child within `timeout`; its io error and the timeout name
/// the command.
async fn bounded<T>(
    cmdline: &str,
    timeout: Duration,
    work: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r.map_err(|e| Error::io(format!("running {cmdline}"), e)),
        Err(_) => Err(Error::Timeout {
            what: format!("waiting for `{cmdline}`"),
            secs: timeout.as_secs(),
        }),
    }
}

/// Runs `docker ARGS` with a timeout and classifies failures.
pub async fn docker(
    home: &Home,
    args: &[&str],
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<Output> {
    let (cmdline, child) = spawn(home, args, cwd)?;
    // wait_with_output drains both pipes concurrently, so a chatty child
    // cannot block on a full pipe.
    let out = bounded(&cmdline, timeout, child.wait_with_output()).await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        return Ok(Output { stdout, stderr });
    }
    Err(classify(&cmdline, &out.status.to_string(), &stderr))
}

/// `docker logs --tail N CONTAINER` (both streams), holding at most twice
/// `max_bytes` while it reads and returning the newest whole lines that fit
/// in `max_bytes`: a container that logs without end cannot make the server
/// buffer without end.
pub async fn logs_tail(
    home: &Home,
    container: &str,
    tail: u32,
    max_bytes: usize,
) -> Result<Vec<String>> {
    use tokio::io::AsyncReadExt;
    let n = tail.to_string();
    let (cmdline, mut child) = spawn(home, &["logs", "--tail", &n, container], None)?;
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::Failed(format!("{cmdline}: no pipes")));
    };
    let keep = |buf: &mut Vec<u8>| {
        if buf.len() > 2 * max_bytes {
            let cut = buf.len() - max_bytes;
            buf.drain(..cut);
        }
    };
    let read = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut ca, mut cb) = ([0u8; 8192], [0u8; 8192]);
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            tokio::select! {
                r = out.read(&mut ca), if a_open => match r? {
                    0 => a_open = false,
                    k => { a.extend_from_slice(&ca[..k]); keep(&mut a); }
                },
                r = err.read(&mut cb), if b_open => match r? {
                    0 => b_open = false,
                    k => { b.extend_from_slice(&cb[..k]); keep(&mut b); }
                },
            }
        }
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((a, b, status))
    };
    let (a, b, status) = bounded(&cmdline, QUICK_TIMEOUT, read).await?;
    let (a, b) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
    if !status.success() {
        return Err(classify(&cmdline, &status.to_string(), &b));
    }
    // The newest lines that fit, in order; a line cut by the trimming above
    // (the first of a trimmed stream) is dropped.
    let all: Vec<&str> = a.lines().chain(b.lines()).collect();
    let mut budget = max_bytes;
    let mut lines: Vec<String> = all
        .iter()
        .rev()
        .take_while(|l| match budget.checked_sub(l.len() + 1) {
            Some(rest) => {
                budget = rest;
                true
            }
            None => false,
        })
        .map(|l| l.to_string())
        .collect();
    lines.reverse();
    Ok(lines)
}

/// Recognizes "no daemon" and "no compose v2" so the message names the fix.
pub fn classify(cmdline: &str, status: &str, stderr: &str) -> Error {
    if stderr.contains("Cannot connect to the Docker daemon")
        || stderr.contains("Is the docker daemon running")
        || stderr.contains("error during connect")
    {
        return Error::Docker(format!(
            "the Docker daemon is not reachable ({}): start it (systemctl start docker) or fix DOCKER_HOST",
            first_line(stderr)
        ));
    }
    if stderr.contains("'compose' is not a docker command")
        || stderr.contains("unknown command: docker compose")
        || stderr.contains("unknown shorthand flag: 'p' in -p")
    {
        return Error::Docker(
            "Docker Compose v2 (`docker compose`) is missing: run scripts/setup-host.sh, which installs the plugin".into(),
        );
    }
    // A container that went away between looking it up and using it: the
    // instance is being stopped or removed. The caller's state, not a fault.
    if stderr.contains("No such container")
        || stderr.contains("marked for removal")
        || stderr.contains("is not running")
        || stderr.contains("is restarting, wait until")
        || stderr.contains("removal of container") && stderr.contains("is already in progress")
    {
        return Error::Conflict(format!(
            "the container is going away or not running ({}); retry once the instance is running",
            first_line(stderr)
        ));
    }
    Error::Compose(ProcessFailure {
        cmd: cmdline.to_string(),
        status: status.to_string(),
        stderr_tail: tail(stderr, STDERR_TAIL_LINES),
    })
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn compose_file(dir: &Path) -> String {
    dir.join("docker-compose.yml")
        .to_string_lossy()
        .into_owned()
}

/// Checks, concurrently, that the daemon answers, the image exists and
/// Compose v2 is installed: the preflight of `create`.
pub async fn preflight(home: &Home, image: &str) -> Result<()> {
    let inspect_args = ["image", "inspect", "--format", "{{.Id}}", image];
    let image_check = docker(home, &inspect_args, None, QUICK_TIMEOUT);
    let compose_check = docker(
        home,
        &["compose", "version", "--short"],
        None,
        QUICK_TIMEOUT,
    );
    let (img, comp) = tokio::join!(image_check, compose_check);
    match img {
        Ok(_) => {}
        Err(Error::Compose(f)) if f.stderr_tail.contains("No such image") => {
            let hint = match image.strip_prefix("dbaas/postgres:") {
                Some(v) => format!("build it with: scripts/build-image.sh {v}"),
                None => format!("pull or build it (docker pull {image})"),
            };
            return Err(Error::Docker(format!(
                "the image {image} is missing: {hint}"
            )));
        }
        Err(e) => return Err(e),
    }
    let version = comp?.stdout;
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap_or("");
    if major.parse::<u32>().map_or(true, |m| m < 2) {
        return Err(Error::Docker(format!(
            "`docker compose` is version {} but dbaas needs Compose v2: run scripts/setup-host.sh",
            version.trim()
        )));
    }
    Ok(())
}

/// `docker compose -p ID -f DIR/docker-compose.yml ARGS...`, run in DIR.
async fn in_project(
    home: &Home,
    id: &str,
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<()> {
    let file = compose_file(dir);
    let mut all = vec!["compose", "-p", id, "-f", file.as_str()];
    all.extend_from_slice(args);
    docker(home, &all, Some(dir), timeout).await.map(|_| ())
}

pub async fn up(home: &Home, id: &str, dir: &Path) -> Result<()> {
    in_project(home, id, dir, &["up", "-d", "--remove-orphans"], UP_TIMEOUT).await
}

pub async fn restart(home: &Home, id: &str, dir: &Path) -> Result<()> {
    let grace = STOP_GRACE_SECS.to_string();
    in_project(
        home,
        id,
        dir,
        &["restart", "--timeout", &grace],
        DOWN_TIMEOUT,
    )
    .await
}

/// Removes the project's containers and network. Works from the project name
/// alone, so it also cleans up when the instance directory is gone.
pub async fn down(home: &Home, id: &str, dir: &Path) -> Result<()> {
    let grace = STOP_GRACE_SECS.to_string();
    let file = compose_file(dir);
    let mut args = vec!["compose", "-p", id];
    if dir.join("docker-compose.yml").is_file() {
        args.extend(["-f", file.as_str()]);
    }
    args.extend(["down", "--remove-orphans", "--timeout", grace.as_str()]);
    // Run from the home's root: with no -f, compose must not pick up some
    // unrelated docker-compose.yml from the caller's directory.
    let cwd = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        home.root.clone()
    };
    docker(home, &args, Some(&cwd), DOWN_TIMEOUT)
        .await
        .map(|_| ())
}

/// Containers by instance id, from one `docker ps`.
pub type PsMap = HashMap<String, Vec<Container>>;

/// The PostgreSQL (`db` service) container among an instance's containers.
pub fn db_of(containers: &[Container]) -> Option<&Container> {
    containers.iter().find(|c| c.service == "db")
}

/// The PostgreSQL container of instance `id` in a `ps` result.
pub fn db_container<'a>(ps: &'a PsMap, id: &str) -> Option<&'a Container> {
    ps.get(id).and_then(|cs| db_of(cs))
}

/// One container as `docker ps` reports it.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub service: String,
    /// created, running, restarting, exited, paused, dead
    pub state: String,
    /// `Up 3 minutes (healthy)` and the like.
    pub status: String,
}

impl Container {
    pub fn health(&self) -> Option<&'static str> {
        if self.status.contains("(healthy)") {
            Some("healthy")
        } else if self.status.contains("(unhealthy)") {
            Some("unhealthy")
        } else if self.status.contains("(health: starting)") {
            Some("starting")
        } else {
            None
        }
    }
}

pub const PS_FORMAT: &str = r#"{"Names":{{json .Names}},"State":{{json .State}},"Status":{{json .Status}},"Labels":{{json .Labels}}}"#;

#[derive(Deserialize)]
struct PsLine {
    #[serde(rename = "Names")]
    names: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Labels")]
    labels: String,
}

/// Every container of this home, from one `docker ps` call: the status of
/// all instances costs one subprocess, whatever their number.
pub async fn ps(home: &Home, only_instance: Option<&str>) -> Result<PsMap> {
    let home_filter = format!("label=dbaas.home={}", home.tag());
    let inst_filter = only_instance.map(|id| format!("label=dbaas.instance={id}"));
    let mut args = vec!["ps", "-a", "--no-trunc", "--filter", home_filter.as_str()];
    if let Some(f) = &inst_filter {
        args.extend(["--filter", f.as_str()]);
    }
    // Only the fields needed: `{{json .}}` would make docker compute every
    // container's disk usage, which takes seconds on fuse-overlayfs.
    args.extend(["--format", PS_FORMAT]);
    let out = docker(home, &args, None, QUICK_TIMEOUT).await?;
    Ok(parse_ps(&out.stdout))
}

pub fn parse_ps(stdout: &str) -> PsMap {
    let mut map: PsMap = HashMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(p) = serde_json::from_str::<PsLine>(line) else {
            log::warn!("unexpected docker ps line: {line}");
            continue;
        };
        let labels: HashMap<&str, &str> = p
            .labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let Some(instance) = labels.get("dbaas.instance") else {
            continue;
        };
        map.entry(instance.to_string())
            .or_default()
            .push(Container {
                name: p.names,
                service: labels
                    .get("com.docker.compose.service")
                    .unwrap_or(&"")
                    .to_string(),
                state: p.state,
                status: p.status,
            });
    }
    map
}

/// Runs docker with the terminal attached (logs -f, psql) and returns its
/// exit code; no timeout, the user ends it.
pub fn interactive(home: &Home, args: &[&str], cwd: &Path) -> Result<i32> {
    let status = std::process::Command::new(&home.settings.docker)
        .args(args)
        .current_dir(cwd)
        .status()
        .map_err(|e| {
            Error::io(
                format!("running {} {}", home.settings.docker, args.join(" ")),
                e,
            )
        })?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_daemon_and_compose_errors() {
        let e = classify(
            "docker ps",
            "exit status: 1",
            "Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?",
        );
        assert!(matches!(e, Error::Docker(ref m) if m.contains("systemctl start docker")));
        let e = classify(
            "docker compose version",
            "exit status: 1",
            "docker: 'compose' is not a docker command.",
        );
        assert!(matches!(e, Error::Docker(ref m) if m.contains("setup-host.sh")));
        let e = classify(
            "docker compose up",
            "exit status: 17",
            "a\nb\nport is already allocated",
        );
        let msg = e.to_string();
        assert!(
            msg.contains("docker compose up")
                && msg.contains("17")
                && msg.contains("already allocated")
        );
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn parses_ps_json_lines() {
        let out = r#"{"Names":"db_1-db-1","State":"running","Status":"Up 2 seconds (health: starting)","Labels":"com.docker.compose.service=db,dbaas.instance=db_1,dbaas.home=x"}
{"Names":"other","State":"exited","Status":"Exited (0)","Labels":"foo=bar"}
garbage"#;
        let m = parse_ps(out);
        assert_eq!(m.len(), 1);
        let c = &m["db_1"][0];
        assert_eq!(c.service, "db");
        assert_eq!(c.health(), Some("starting"));
    }
}
