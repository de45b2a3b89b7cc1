//! Provisioning benchmark: prints figures next to baselines measured in the
//! same run. Not a test: nothing here passes or fails on time.
//!
//!   (p) `dbaasctl create` served by a spare of the warm pool,
//!   (a) `dbaasctl create` until the app user connects      vs
//!   (b) `docker run` of the same image and environment until the first
//!       connection as the app user (the floor), and the ratio a/b;
//!   (u) `docker compose up -d` of that instance's own project again (after
//!       `down`, its data in place: no copy, no first start) until the app
//!       user connects: what Docker alone takes for its three containers;
//!   (c) `dbaasctl list` with 20 instances                   vs `docker ps`;
//!   (d) `dbaasctl --help`                                   vs `/bin/true`.
//!
//! Run: `make bench` or `cargo bench --bench provision`. REPEATS (default 5),
//! LIST_INSTANCES (default 20) and BENCH_PORT_BASE (default 30000) tune it.

use dbaas::ops::ready::{probe, READY_FIRST_PROBE_TIMEOUT, READY_POLL};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{batched, env_num, median, ms, time_cmd, BIN};

struct Home {
    root: PathBuf,
    range: String,
}

impl Home {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("DBAAS_HOME", &self.root)
            .env("DBAAS_PORT_RANGE", &self.range)
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().expect("run dbaasctl");
        assert!(
            out.status.success(),
            "dbaasctl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.root.join("instances")) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.cmd(&["destroy", &id, "--yes"]).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Polls like `dbaasctl create` does until the app user connects.
fn wait_connect(rt: &tokio::runtime::Runtime, port: u16, password: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    rt.block_on(async {
        let mut t = READY_FIRST_PROBE_TIMEOUT;
        loop {
            let mut cfg = postgres::Config::new();
            cfg.host("127.0.0.1")
                .port(port)
                .user("app")
                .password(password)
                .dbname("app");
            match tokio::time::timeout(t, probe(cfg, None)).await {
                Ok(Ok(())) => return,
                Ok(Err(_)) => {}
                Err(_) => t = (t * 2).min(Duration::from_secs(4)),
            }
            assert!(
                Instant::now() < deadline,
                "floor container never became ready"
            );
            tokio::time::sleep(READY_POLL).await;
        }
    });
}

fn floor_once(rt: &tokio::runtime::Runtime, scratch: &Path, port: u16) -> Duration {
    let scripts = scratch.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    for (name, body) in dbaas::provision::INIT_SCRIPTS {
        std::fs::write(scripts.join(name), body).unwrap();
    }
    let name = format!("dbaas-bench-floor-{port}");
    let publish = format!("127.0.0.1:{port}:5432");
    let mount = format!("{}:/docker-entrypoint-initdb.d:ro", scripts.display());
    let data = scratch.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let data_mount = format!("{}:/var/lib/postgresql/data", data.display());
    let start = Instant::now();
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &publish,
            "-v",
            &mount,
            "-v",
            &data_mount,
        ])
        .args(["-e", "POSTGRES_PASSWORD=superpw", "-e", "POSTGRES_DB=app"])
        .args(["-e", "DBAAS_APP_USER=app", "-e", "DBAAS_APP_PASSWORD=apppw"])
        .args([
            "-e",
            "DBAAS_MONITOR_USER=dbaas_monitor",
            "-e",
            "DBAAS_MONITOR_PASSWORD=monpw",
        ])
        .args(["--memory", "512m", "--cpus", "1.0", "dbaas/postgres:15"])
        .args([
            "postgres",
            "-c",
            "shared_preload_libraries=pg_stat_statements",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_connect(rt, port, "apppw");
    let took = start.elapsed();
    let _ = Command::new("docker")
        .args(["rm", "-f", "-v", &name])
        .output();
    let _ = std::fs::remove_dir_all(scratch);
    took
}

/// A pause before each timed create (SETTLE_MS, default 3000): docker
/// finishes removing the previous instance (its mounts, its network) in the
/// background after `destroy` returns, and a user's create usually meets a
/// quiet host, not one still tearing down.
fn settle() {
    std::thread::sleep(Duration::from_millis(env_num("SETTLE_MS", 3000)));
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let repeats = env_num("REPEATS", 5).max(1) as usize;
    let list_n = env_num("LIST_INSTANCES", 20) as usize;
    let base = env_num("BENCH_PORT_BASE", 30000) as u16;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = std::env::temp_dir().join(format!("dbaas-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let home = Home {
        root: root.clone(),
        range: format!("{}-{}", base, base + 99),
    };
    println!(
        "dbaas provisioning benchmark: {repeats} repeats, PostgreSQL 15, {} CPUs",
        dbaas::settings::host_cpus()
    );

    // The template is made by the first create (not measured).
    home.run(&["create", "warm-up"]);
    home.run(&["destroy", "warm-up", "--yes"]);

    // (p) from the pool, (a) from the template, (a') with initdb, (b) the
    // floor: interleaved so that all see the same machine state. The spare
    // is made (and, after a claim, made again) before anything is timed.
    let pooled = |args: &[&str]| {
        let mut c = home.cmd(args);
        c.env("DBAAS_WARM_POOL", "15=1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let (mut creates, mut initdbs, mut floors, mut pools) = (vec![], vec![], vec![], vec![]);
    let mut ups = vec![];
    for i in 0..repeats {
        let name = format!("bench-{i}");
        assert!(pooled(&["pool", "fill"]).status().unwrap().success());
        settle();
        let start = Instant::now();
        let out = pooled(&["create", &name, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        pools.push(start.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert!(
            out.status.success() && v["from_pool"] == true,
            "the create was not served by the pool: {v} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The refill the claim started, finished, and the pool emptied: no
        // spare's first backup may run beside the next measurements.
        assert!(pooled(&["pool", "fill"]).status().unwrap().success());
        assert!(pooled(&["pool", "drain"]).status().unwrap().success());
        home.run(&["destroy", &name, "--yes"]);
        settle();
        let start = Instant::now();
        let out = home.cmd(&["create", &name, "--json"]).output().unwrap();
        creates.push(start.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        ups.push(compose_up_again(&rt, &home, &made));
        home.run(&["destroy", &name, "--yes"]);
        settle();
        let mut c = home.cmd(&["create", &name]);
        c.env("DBAAS_PROVISION", "initdb");
        initdbs.push(time_cmd(c));
        home.run(&["destroy", &name, "--yes"]);
        settle();
        floors.push(floor_once(
            &rt,
            &root.join(format!("floor-{i}")),
            base + 100,
        ));
    }
    assert!(pooled(&["pool", "drain"]).status().unwrap().success());
    let p = median(pools.clone());
    println!(
        "(p)  dbaasctl create (warm pool) -> app user connects: median {} (runs: {})  (target <= 0.5 s)",
        ms(p),
        list(&pools)
    );
    let (a, a2, b) = (
        median(creates.clone()),
        median(initdbs.clone()),
        median(floors.clone()),
    );
    println!(
        "(a)  dbaasctl create (template) -> app user connects: median {} (runs: {})  (target <= 1.0 s)",
        ms(a),
        list(&creates)
    );
    println!(
        "(u)  docker compose up -d of its project, data in place: median {} (runs: {})  (Docker's part of (a))",
        ms(median(ups.clone())),
        list(&ups)
    );
    println!(
        "(a') dbaasctl create (DBAAS_PROVISION=initdb):        median {} (runs: {})",
        ms(a2),
        list(&initdbs)
    );
    println!(
        "(b)  docker run + initdb -> app user connects:        median {} (runs: {})",
        ms(b),
        list(&floors)
    );
    println!(
        "     pool/floor = {:.3}, template/floor = {:.2}, initdb/floor = {:.2}, template/initdb = {:.2}",
        p.as_secs_f64() / b.as_secs_f64(),
        a.as_secs_f64() / b.as_secs_f64(),
        a2.as_secs_f64() / b.as_secs_f64(),
        a.as_secs_f64() / a2.as_secs_f64()
    );

    // (e) 10 creates at once, from the template and with initdb.
    let together = |provision: &str| {
        let names: Vec<String> = (0..10).map(|i| format!("many-{i}")).collect();
        let start = Instant::now();
        batched(&names, 10, |n| {
            let mut c = home.cmd(&["create", n, "--memory", "256m"]);
            c.env("DBAAS_PROVISION", provision);
            c
        });
        let took = start.elapsed();
        for i in 0..10 {
            home.run(&["destroy", &format!("many-{i}"), "--yes"]);
        }
        took
    };
    let (t, i) = (together("template"), together("initdb"));
    println!(
        "(e)  10 concurrent creates: template {}   baseline initdb {}  (ratio {:.2})",
        ms(t),
        ms(i),
        t.as_secs_f64() / i.as_secs_f64()
    );

    // (f) resize to the new limit in force, against `docker update` of the
    // same container.
    home.run(&["create", "sized", "--memory", "512m"]);
    let shown: serde_json::Value =
        serde_json::from_str(&home.run(&["show", "sized", "--json"])).unwrap();
    let db = format!("{}-db-1", shown["id"].as_str().unwrap());
    let (mut resizes, mut updates) = (vec![], vec![]);
    for i in 0..repeats {
        let (m, c) = if i % 2 == 0 {
            ("768m", "1")
        } else {
            ("512m", "0.5")
        };
        resizes.push(time_cmd(
            home.cmd(&["resize", "sized", "--memory", m, "--cpus", c]),
        ));
        let mut u = Command::new("docker");
        u.args([
            "update",
            "--memory",
            m,
            "--memory-swap",
            if i % 2 == 0 { "1536m" } else { "1g" },
            "--cpus",
            c,
            &db,
        ]);
        updates.push(time_cmd(u));
    }
    home.run(&["destroy", "sized", "--yes"]);
    println!(
        "(f)  dbaasctl resize (limits, tuning file, reload): median {}   baseline docker update: median {}",
        ms(median(resizes)),
        ms(median(updates))
    );

    // (c) list with N instances: created 4 at a time.
    let names: Vec<String> = (0..list_n).map(|i| format!("list-{i}")).collect();
    batched(&names, 4, |n| home.cmd(&["create", n, "--memory", "256m"]));
    let listed = home.run(&["list", "--json"]);
    let count = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, list_n);
    let lists: Vec<Duration> = (0..21).map(|_| time_cmd(home.cmd(&["list"]))).collect();
    let ps: Vec<Duration> = (0..21)
        .map(|_| {
            let mut c = Command::new("docker");
            c.args([
                "ps",
                "-a",
                "--filter",
                "label=dbaas.instance",
                "--format",
                dbaas::engine::compose::PS_FORMAT,
            ]);
            time_cmd(c)
        })
        .collect();
    println!(
        "(c) dbaasctl list, {list_n} instances: median {}   baseline docker ps: median {}  (target <= 150 ms)",
        ms(median(lists)),
        ms(median(ps))
    );

    // (d) commands that call nothing.
    let helps: Vec<Duration> = (0..51).map(|_| time_cmd(home.cmd(&["--help"]))).collect();
    let trues: Vec<Duration> = (0..51).map(|_| time_cmd(Command::new("true"))).collect();
    println!(
        "(d) dbaasctl --help: median {}   baseline true: median {}  (target <= 10 ms)",
        ms(median(helps)),
        ms(median(trues))
    );
}

/// (u): the instance just created, `down` (its data kept), then the Compose
/// plugin's `up -d` of its project until the app user connects.
fn compose_up_again(
    rt: &tokio::runtime::Runtime,
    home: &Home,
    made: &serde_json::Value,
) -> Duration {
    let id = made["instance"]["id"].as_str().expect("the instance's id");
    let port = made["instance"]["port"].as_u64().expect("its port") as u16;
    let password = made["password"].as_str().expect("its password");
    home.run(&["down", id]);
    settle();
    let dir = home.root.join("instances").join(id);
    let start = Instant::now();
    let st = Command::new("docker")
        .args(["compose", "up", "-d"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "docker compose up -d in {}", dir.display());
    wait_connect(rt, port, password);
    start.elapsed()
}

fn list(v: &[Duration]) -> String {
    v.iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}
