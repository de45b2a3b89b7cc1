//! The docker CLI as a subprocess, for the engines built on it. Every call
//! is bounded by a named timeout, reads stdout and stderr concurrently, and
//! turns failures into typed errors that carry the command line, the exit
//! status and the tail of stderr.

use crate::error::{Error, ProcessFailure, Result};
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
    docker: &str,
    args: &[&str],
    cwd: Option<&Path>,
) -> Result<(String, tokio::process::Child)> {
    spawn_with(docker, args, cwd, Stdio::null())
}

/// `docker ARGS` with all three pipes, for a caller that streams through
/// it (a dump out, an import in); killed when dropped.
pub fn spawn_piped(docker: &str, args: &[&str], cwd: &Path) -> Result<tokio::process::Child> {
    spawn_with(docker, args, Some(cwd), Stdio::piped()).map(|(_, c)| c)
}

fn spawn_with(
    docker: &str,
    args: &[&str],
    cwd: Option<&Path>,
    stdin: Stdio,
) -> Result<(String, tokio::process::Child)> {
    let cmdline = format!("{docker} {}", args.join(" "));
    log::debug!("running {cmdline}");
    let mut cmd = Command::new(docker);
    cmd.args(args)
        .stdin(stdin)
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
                "the docker CLI ('{docker}') was not found: install Docker Engine (Debian: apt-get install docker.io) or set DBAAS_DOCKER"
            ))
        } else {
            Error::io(format!("running {cmdline}"), e)
        }
    })?;
    Ok((cmdline, child))
}

/// `docker FROM | docker TO` within `timeout`, without a shell: the bytes
/// go from one child to the other through a pipe (not through dbaasctl).
/// Fails with the command and the stderr of whichever side failed.
pub async fn pipe(docker: &str, from: &[&str], to: &[&str], timeout: Duration) -> Result<()> {
    let (from_line, mut a) = spawn(docker, from, None)?;
    let out = a
        .stdout
        .take()
        .ok_or_else(|| Error::Failed(format!("`{from_line}` has no output pipe")))?;
    let stdin: Stdio = out
        .try_into()
        .map_err(|e| Error::io(format!("piping `{from_line}`"), e))?;
    let (to_line, b) = spawn_with(docker, to, None, stdin)?;
    let both = async { tokio::try_join!(a.wait_with_output(), b.wait_with_output()) };
    let cmdline = format!("{from_line} | {to_line}");
    let (ra, rb) = bounded(&cmdline, timeout, both).await?;
    for (line, r) in [(&from_line, &ra), (&to_line, &rb)] {
        if !r.status.success() {
            let stderr = String::from_utf8_lossy(&r.stderr);
            return Err(classify(line, &r.status.to_string(), &stderr));
        }
    }
    Ok(())
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
pub async fn run(
    docker: &str,
    args: &[&str],
    cwd: Option<&Path>,
    timeout: Duration,
) -> Result<Output> {
    let (cmdline, child) = spawn(docker, args, cwd)?;
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
    docker: &str,
    container: &str,
    tail: u32,
    max_bytes: usize,
) -> Result<Vec<String>> {
    use tokio::io::AsyncReadExt;
    let args = logs_args(container, tail, false);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (cmdline, mut child) = spawn(docker, &args, None)?;
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

/// `docker logs --tail N [--follow] CONTAINER`: both streams of a container.
pub fn logs_args(container: &str, tail: u32, follow: bool) -> Vec<String> {
    let mut a = vec!["logs".to_string(), "--tail".to_string(), tail.to_string()];
    if follow {
        a.push("--follow".into());
    }
    a.push(container.to_string());
    a
}

/// `docker update` of a container's memory and CPU limits, with swap as
/// Compose sets it for mem_limit (twice the memory).
pub fn update_args(memory: u64, cpus: f64, container: &str) -> Vec<String> {
    [
        "update".to_string(),
        "--memory".into(),
        memory.to_string(),
        "--memory-swap".into(),
        (memory * 2).to_string(),
        "--cpus".into(),
        format!("{cpus}"),
        container.into(),
    ]
    .into()
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

/// How to make an S3 network that keeps its containers apart, and reach
/// a containerized S3 server from it (docs/backups.md says more).
pub const S3_NETWORK_HOWTO: &str = "create it with `docker network create -o com.docker.network.bridge.enable_icc=false NAME` (its containers reach the host through its gateway address, and not each other; `--internal` would cut off the gateway too), publish the S3 server's port on that gateway (docker run -p GATEWAY:443:443 ...) and set endpoint = GATEWAY";

/// Whether `docker network inspect` of an S3 network ("DRIVER ICC") says
/// that its containers cannot reach each other.
pub fn s3_network_verdict(network: &str, inspect: &str) -> crate::error::Result<()> {
    let mut words = inspect.split_whitespace();
    match (words.next(), words.next()) {
        (Some("bridge"), Some("false")) => Ok(()),
        _ => Err(Error::invalid(
            "s3",
            format!(
                "the S3 settings name the Docker network '{network}', whose containers can reach each other ({}): every instance joins it, so one tenant's container could reach another's database; {}",
                inspect.trim(),
                S3_NETWORK_HOWTO
            ),
        )),
    }
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

/// Runs docker with the terminal attached (logs -f, psql) and returns its
/// exit code; no timeout, the user ends it.
pub fn interactive(docker: &str, args: &[&str], cwd: &Path) -> Result<i32> {
    let status = std::process::Command::new(docker)
        .args(args)
        .current_dir(cwd)
        .status()
        .map_err(|e| Error::io(format!("running {docker} {}", args.join(" ")), e))?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_bridge_without_icc_is_an_s3_network() {
        assert!(super::s3_network_verdict("n", "bridge false\n").is_ok());
        for bad in [
            "bridge true",
            "bridge <no value>",
            "overlay false",
            "",
            "macvlan",
        ] {
            let e = super::s3_network_verdict("n", bad).unwrap_err().to_string();
            assert!(e.contains("enable_icc=false"), "{bad}: {e}");
        }
    }

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
}
