//! Scale benchmark (issue 13): 200 instances of 128 MB on one host, created
//! from the template in parallel batches; at 10, 50, 100 and 200 instances
//! it prints the time of `dbaasctl list`, `dbaasctl top`, `GET /instances`,
//! `GET /metrics` and the status refresh (the one container list the
//! server's cache runs: the db containers), next to a `docker ps` of the
//! same containers as the baseline,
//! with the memory and idle CPU per instance; then the time to destroy
//! them all. Not a test: nothing here passes or fails on time.
//!
//! Run: `bash scripts/bench-scale.sh` (SCALE_INSTANCES=200, SCALE_BATCH=10, SCALE_HOLD_SECS=0,
//! BENCH_PORT_BASE=31000: below the ephemeral range, where a client's
//! loopback connection can hold a port). Instances are made `--no-backups` (the backup
//! sidecar's first backup and verification of each would dominate two
//! cores) and DBAAS_MAX_MEMORY=64g (the limits add up past the host's memory;
//! what they use is measured).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{batched, env_num, median, ms, time_cmd, ManyHome};

/// One HTTP/1.1 GET with the token; the time to the whole answer.
fn get(port: u16, path: &str, token: &str) -> Duration {
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    let took = start.elapsed();
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{path}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    took
}

/// The full ids of the home's containers (label dbaas.home).
fn containers(tag: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=dbaas.home={tag}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn cgroup_u64(controller: &str, id: &str, file: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/docker/{id}/{file}"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Memory the containers use (less inactive file cache, as `docker stats`
/// counts it) and the CPU they take over `window`, in cores.
fn usage(ids: &[String], window: Duration) -> (u64, f64) {
    let mem: u64 = ids
        .iter()
        .map(|id| {
            let used = cgroup_u64("memory", id, "memory.usage_in_bytes");
            let inactive =
                std::fs::read_to_string(format!("/sys/fs/cgroup/memory/docker/{id}/memory.stat"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("total_inactive_file ")
                            .and_then(|v| v.parse::<u64>().ok())
                    })
                    .unwrap_or(0);
            used.saturating_sub(inactive)
        })
        .sum();
    let cpu = |ids: &[String]| -> u64 {
        ids.iter()
            .map(|id| cgroup_u64("cpuacct", id, "cpuacct.usage"))
            .sum()
    };
    let before = cpu(ids);
    std::thread::sleep(window);
    let cores = (cpu(ids).saturating_sub(before)) as f64 / window.as_nanos() as f64;
    (mem, cores)
}

/// The value of the dbaas.home label of the home's containers.
/// Busy and total jiffies of the whole host (/proc/stat): the containers'
/// own cgroups miss what their health checks cost dockerd, containerd and
/// runc.
fn host_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// The host's busy CPU over `window`, in cores.
fn host_busy(window: Duration) -> f64 {
    let (b0, t0) = host_jiffies();
    std::thread::sleep(window);
    let (b1, t1) = host_jiffies();
    let cpus = dbaas::settings::host_cpus() as f64;
    (b1 - b0) as f64 / (t1 - t0).max(1) as f64 * cpus
}

fn tag_of(root: &Path) -> String {
    dbaas::home::Home::new(dbaas::settings::Settings::with_root(root.to_path_buf())).tag()
}

fn main() {
    let total = env_num("SCALE_INSTANCES", 200) as usize;
    let batch = env_num("SCALE_BATCH", 10).max(1) as usize;
    let base = env_num("BENCH_PORT_BASE", 31000) as u16;
    let root = std::env::temp_dir().join(format!("dbaas-scale-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let home = ManyHome {
        root: root.clone(),
        range: format!("{}-{}", base, base + total as u16 + 50),
    };
    println!(
        "dbaas scale benchmark: {total} instances of 128 MB (--no-backups), batches of {batch}, {} CPUs",
        dbaas::settings::host_cpus()
    );
    // The template is made first (not measured).
    assert!(home
        .cmd(&["create", "warm-up", "--no-backups"])
        .status()
        .unwrap()
        .success());
    let tag = tag_of(&root);
    assert!(home
        .cmd(&["destroy", "warm-up", "--yes"])
        .status()
        .unwrap()
        .success());

    let token = format!("scale-bench-token-{}", std::process::id());
    let (mut server, port) = home.serve(&token);
    let idle_before = host_busy(Duration::from_secs(10));
    println!(
        "host busy before any instance (serve running): {:.1}% of a core",
        idle_before * 100.0
    );
    let ps_args = [
        "ps",
        "-a",
        "--filter",
        &format!("label=dbaas.home={tag}"),
        "--filter",
        "label=com.docker.compose.service=db",
        "--format",
        dbaas::engine::compose::PS_FORMAT,
    ];

    // The status refresh as the server runs it (the engine's list of the db
    // containers: the daemon's socket where it is local), beside the same
    // list from `docker ps` as the baseline.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine_home = dbaas::home::Home::new(
        dbaas::settings::Settings::from_vars(
            |k| match k {
                "DBAAS_HOME" => Some(root.display().to_string()),
                _ => std::env::var(k).ok(),
            },
            root.clone(),
        )
        .unwrap(),
    );
    let refresh = || {
        let start = Instant::now();
        rt.block_on(dbaas::ops::containers(&engine_home)).unwrap();
        start.elapsed()
    };
    println!("instances | create batch | list | top | GET /instances | GET /metrics | status refresh (the server's) | baseline docker ps | memory/instance | idle CPU/instance (containers' cgroups) | host idle CPU/instance");
    let mut made = 0usize;
    let mut create_time = Duration::ZERO;
    for checkpoint in [10usize, 50, 100, 200].into_iter().filter(|c| *c <= total) {
        let names: Vec<String> = (made..checkpoint).map(|i| format!("s-{i:03}")).collect();
        let start = Instant::now();
        batched(&names, batch, |n| {
            home.cmd(&[
                "create",
                n,
                "--memory",
                "128m",
                "--cpus",
                "0.25",
                "--no-backups",
            ])
        });
        let took = start.elapsed();
        create_time += took;
        made = checkpoint;
        // Let the agents take their first samples and the server see them.
        std::thread::sleep(Duration::from_secs(12));
        let lists: Vec<Duration> = (0..11).map(|_| time_cmd(home.cmd(&["list"]))).collect();
        let tops: Vec<Duration> = (0..11).map(|_| time_cmd(home.cmd(&["top"]))).collect();
        let gets: Vec<Duration> = (0..21).map(|_| get(port, "/instances", &token)).collect();
        let metrics: Vec<Duration> = (0..21).map(|_| get(port, "/metrics", &token)).collect();
        let pss: Vec<Duration> = (0..11)
            .map(|_| {
                let mut c = Command::new("docker");
                c.args(ps_args);
                time_cmd(c)
            })
            .collect();
        let refreshes: Vec<Duration> = (0..11).map(|_| refresh()).collect();
        let ids = containers(&tag);
        let (mem, cores) = usage(&ids, Duration::from_secs(20));
        let host = host_busy(Duration::from_secs(30));
        println!(
            "{checkpoint:>9} | {:>7.1} s ({:.2} s each) | {} | {} | {} | {} | {} | {} | {:.1} MiB | {:.2}% of a core | {:.2}% of a core",
            took.as_secs_f64(),
            took.as_secs_f64() / names.len() as f64,
            ms(median(lists)),
            ms(median(tops)),
            ms(median(gets)),
            ms(median(metrics)),
            ms(median(refreshes)),
            ms(median(pss)),
            mem as f64 / checkpoint as f64 / (1 << 20) as f64,
            cores * 100.0 / checkpoint as f64,
            (host - idle_before).max(0.0) * 100.0 / checkpoint as f64,
        );
    }
    let rss = std::fs::read_to_string(format!("/proc/{}/status", server.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let networks = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", "name=db_"])
        .output()
        .unwrap();
    println!(
        "created {made} instances in {:.0} s; {} instance networks on the host; serve RSS {rss}",
        create_time.as_secs_f64(),
        String::from_utf8_lossy(&networks.stdout).lines().count()
    );
    let _ = server.kill();
    let _ = server.wait();
    // SCALE_HOLD_SECS: time to look at the full host by hand (DBAAS_HOME
    // as printed) before everything is destroyed.
    let hold = env_num("SCALE_HOLD_SECS", 0);
    if hold > 0 {
        println!("holding {hold} s: DBAAS_HOME={}", root.display());
        std::thread::sleep(Duration::from_secs(hold));
    }
    let names: Vec<String> = (0..made).map(|i| format!("s-{i:03}")).collect();
    let start = Instant::now();
    batched(&names, batch, |n| home.cmd(&["destroy", n, "--yes"]));
    println!(
        "destroyed {made} instances in {:.1} s ({batch} at a time)",
        start.elapsed().as_secs_f64()
    );
}
