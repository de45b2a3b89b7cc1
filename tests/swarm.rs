//! The swarm engine on a real multi-node Docker Swarm: a manager and two
//! workers, each a Docker-in-Docker container (tests/common/swarm.rs), the
//! images pulled from a registry beside them. The host's daemon is never a
//! member; everything is removed at the end, whatever happened.

mod common;
#[path = "common/swarm.rs"]
mod swarm;

use common::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use swarm::Swarm;

/// Polls `show` until the instance has `status` (bounded); returns it.
fn wait_status(home: &TestHome, name: &str, status: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let show = home.run(&["show", name, "--json"]).json();
        if show["status"] == status {
            return show;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is not {status} after {within:?}: {show}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits for `node-down` and asserts that its detail says each of `says`.
fn wait_node_down(home: &TestHome, name: &str, says: &[&str], within: Duration) {
    let show = wait_status(home, name, "node-down", within);
    let detail = show["status_detail"].as_str().unwrap_or("");
    for s in says {
        assert!(detail.contains(s), "no {s:?} in the detail: {show}");
    }
}

/// A query's answer once the server accepts connections again (Swarm
/// reports the task running while PostgreSQL still recovers).
fn query_when_up(url: &str, sql: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        match try_connect(url) {
            Ok(mut c) => {
                let row = c.query_one(sql, &[]).unwrap();
                return row.get::<_, String>(0);
            }
            Err(e) => assert!(Instant::now() < deadline, "{url} after {within:?}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `doctor`'s findings of one check (doctor exits non-zero on errors).
fn doctor_findings(home: &TestHome, check: &str) -> Vec<serde_json::Value> {
    let r = home.run(&["doctor", "--json"]);
    let all: serde_json::Value = serde_json::from_str(&r.stdout())
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}{}", r.stdout(), r.stderr()));
    all.as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .cloned()
        .collect()
}

/// No container of these instances on any node but `home_node`.
fn assert_nowhere_else(swarm: &Swarm, home_node: usize, ids: &[String]) {
    for (i, n) in swarm
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != home_node)
    {
        for id in ids {
            let filter = format!("label=com.docker.stack.namespace={id}");
            let found = n.docker_ok(&["ps", "-aq", "--filter", &filter]);
            assert!(
                found.is_empty(),
                "{id} has containers on node {i} ({}): {found}",
                n.name
            );
        }
    }
}

#[test]
fn instances_spread_over_the_nodes_connect_at_their_node_and_leave_nothing() {
    if !docker_required() {
        return;
    }
    let swarm = Swarm::start(2);
    let image = swarm.publish("dbaas/postgres:15");
    let manager = swarm.manager();
    for n in &swarm.nodes {
        let ep = format!("dbaas.endpoint=unix://{}", n.socket.display());
        manager.docker_ok(&["node", "update", "--label-add", &ep, &n.name]);
    }
    let template = image.replace(":15", ":{version}");
    let home = TestHome::new("swarm")
        .with_env("DOCKER_HOST", &swarm.docker_host())
        .with_env("DBAAS_IMAGE", &template);

    // Named parts: a failing one is reported, and the later ones still run.
    let mut sections = Sections::default();

    // Bound once; a compose-only option is refused on it.
    home.run(&["init", "--engine", "swarm"]).ok();
    sections.run("the engine is bound", || {
        let doctor = home.run(&["doctor", "--json"]).json();
        let engine = doctor
            .as_array()
            .and_then(|a| a.iter().find(|f| f["check"] == "engine"))
            .unwrap_or_else(|| panic!("no engine finding: {doctor}"));
        assert!(
            engine["message"].as_str().unwrap().starts_with("swarm"),
            "{engine}"
        );
        let err = home.run(&["init", "--engine", "bogus"]).fails_with(2);
        assert!(err.contains("compose or swarm"), "{err}");
    });

    // Three instances of the same size: one on each node (the freest).
    let mut placed = HashSet::new();
    let mut ids = vec![];
    let mut create_times = vec![];
    for name in ["s1", "s2", "s3"] {
        let t = Instant::now();
        let v = home
            .run(&[
                "create",
                name,
                "--memory",
                "256m",
                "--cpus",
                "0.5",
                "--metrics-interval",
                "2",
                "--no-backups",
                "--json",
            ])
            .json();
        create_times.push(t.elapsed().as_secs_f64());
        let node = v["instance"]["node"].as_str().unwrap().to_string();
        let url = v["url"].as_str().unwrap().to_string();
        let address = v["instance"]["bind_address"].as_str().unwrap().to_string();
        let on = swarm
            .nodes
            .iter()
            .find(|n| n.name == node)
            .expect("a node of the swarm");
        assert_eq!(address, on.ip, "the address is the node's");
        assert_eq!(query_text(&url, "SELECT current_user"), "app");
        placed.insert(node);
        ids.push((
            v["instance"]["id"].as_str().unwrap().to_string(),
            on.name.clone(),
        ));
    }
    assert_eq!(placed.len(), 3, "one instance per node: {placed:?}");

    sections.run("a create's figure against compose", || {
    // The figure: a create on each node (its first: the node pulls the
        // image) and one on it again, against a compose create in this run.
        let t = Instant::now();
        let again = home
            .run(&[
                "create",
                "again",
                "--memory",
                "256m",
                "--node",
                &ids[0].1.clone(),
                "--no-backups",
                "--json",
            ])
            .json();
        let again_s = t.elapsed().as_secs_f64();
        home.run(&["destroy", "again", "--yes"]).ok();
        let compose = TestHome::new("swarm-vs-compose");
        let t = Instant::now();
        compose
            .run(&["create", "c1", "--memory", "256m", "--no-backups"])
            .ok();
        let compose_s = t.elapsed().as_secs_f64();
        compose.run(&["destroy", "c1", "--yes"]).ok();
        println!(
            "figure: create on the swarm {:.2?} s (a node's first, pulling the image), {again_s:.2} s again on a node ({}); on compose (--no-backups) {compose_s:.2} s",
            create_times,
            again["instance"]["node"]
        );


    });

    // --node pins; a node that does not exist is named in the error.
    let worker = &swarm.nodes[1];
    let v = home
        .run(&[
            "create",
            "pinned",
            "--memory",
            "256m",
            "--node",
            &worker.name,
            "--no-backups",
            "--json",
        ])
        .json();
    assert_eq!(v["instance"]["node"], worker.name.as_str());
    ids.push((
        v["instance"]["id"].as_str().unwrap().to_string(),
        worker.name.clone(),
    ));
    sections.run("a node that does not exist is named", || {
        let err = home
            .run(&["create", "nowhere", "--node", "no-such-node"])
            .fails_with(2);
        assert!(err.contains("no-such-node"), "{err}");
    });

    let filter = format!("label=com.docker.swarm.service.name={}_db", ids[3].0);
    sections.run("limits on the node's container", || {
        // The limits are the node's own container's.
        let c = worker.docker_ok(&["ps", "-q", "--filter", &filter]);
        let mem = worker.docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            &c,
        ]);
        assert_eq!(
            mem,
            format!("{} 1000000000", 256u64 << 20),
            "limits on {}",
            worker.name
        );
    });

    let list = home.run(&["list", "--json"]).json();
    sections.run("list and nodes", || {
        // list and nodes see all of it.
        assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
        for i in list.as_array().unwrap() {
            if i["status"] != "running" {
                let svc = format!("{}_db", i["id"].as_str().unwrap());
                let tasks = manager.docker(&["service", "ps", "--no-trunc", &svc]);
                let logs = manager.docker(&["service", "logs", "--tail", "40", &svc]);
                panic!(
                    "{i}\ntasks:\n{}\nlogs:\n{}{}",
                    String::from_utf8_lossy(&tasks.stdout),
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
        }
        let nodes = home.run(&["nodes", "--json"]).json();
        let on_worker = nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == worker.name.as_str())
            .unwrap();
        assert_eq!(
            on_worker["instances"].as_array().unwrap().len(),
            2,
            "{on_worker}"
        );
    });

    let server = Server::start(&home, &[]);
    sections.run("monitoring from the nodes", || {
        // Monitoring: the agents' samples, written on their nodes, reach the
        // CLI (synced before it reads) and the server (synced in the
        // background) without anything else changing.
        for (id, node) in &ids[..3] {
            let name = list
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == id.as_str())
                .unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let got = home
                    .run(&["metrics", &name, "--last", "2", "--json"])
                    .json();
                let ups = got
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["up"] == true)
                    .count();
                if ups == 2 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no two samples of {name} (on {node}) within 30 s: {got}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let r = server.get(&format!("/monitoring/{id}/metrics/summary"));
                let v = r.json();
                if r.status == 200 && v["up"] == true && v["connections"].is_u64() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the server's summary of {id}: {v}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let top = home.run(&["top", "--json"]).json();
        let s1 = top
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "s1")
            .unwrap();
        assert!(
            s1["sample_age_seconds"].as_f64().is_some_and(|a| a < 10.0),
            "{s1}"
        );
        let prom = server.get("/metrics").text();
        assert!(
            prom.contains(&format!("dbaas_up{{dbaas_instance=\"{}\"}} 1", ids[0].0)),
            "{prom}"
        );
    });

    sections.run("psql on the node", || {
        // psql runs in the db container on its node.
        let out = home.run(&["psql", "pinned", "-c", "SELECT 40 + 2"]).ok();
        assert!(out.contains("42"), "{out}");
    });

    let url = home.run(&["url", "pinned"]).ok().trim().to_string();
    let s1_url = home.run(&["url", "s1"]).ok().trim().to_string();
    sections.run("a dump into another node's instance", || {
        // A dump of one node's instance loads into another node's.
        connect(&s1_url)
            .batch_execute("CREATE TABLE moved AS SELECT generate_series(1, 100) AS n")
            .unwrap();
        let dump = home.command(&["dump", "s1"]).output().unwrap();
        assert!(
            dump.status.success() && dump.stdout.starts_with(b"PGDMP"),
            "dump: {}",
            String::from_utf8_lossy(&dump.stderr)
        );
        let file = home.root.join("s1.dump");
        std::fs::write(&file, &dump.stdout).unwrap();
        home.run(&["import", "pinned", file.to_str().unwrap()]).ok();
        assert_eq!(query_text(&url, "SELECT count(*)::text FROM moved"), "100");
    });

    sections.run("down, up and restart keep the data", || {
        // down, up and restart on the worker's instance keep its data.
        connect(&url)
            .batch_execute("CREATE TABLE kept AS SELECT 7 AS n")
            .unwrap();
        home.run(&["down", "pinned"]).ok();
        let show = home.run(&["show", "pinned", "--json"]).json();
        assert_eq!(show["status"], "stopped", "{show}");
        let left = worker.docker_ok(&["ps", "-q", "--filter", &filter]);
        assert!(
            left.is_empty(),
            "a stopped instance's server still runs: {left}"
        );
        home.run(&["up", "pinned"]).ok();
        assert_eq!(query_text(&url, "SELECT n::text FROM kept"), "7");
        home.run(&["restart", "pinned"]).ok();
        assert_eq!(query_text(&url, "SELECT n::text FROM kept"), "7");
    });

    sections.run("a live resize", || {
        // A live resize on the worker: the limits change on its container with
        // the server running, a reloadable setting at once, shared_buffers at
        // the next restart, which deploys the stack's new size.
        let started = "SELECT pg_postmaster_start_time()::text";
        let before = query_text(&url, started);
        let ecs = query_text(&url, "SHOW effective_cache_size");
        let resized = Instant::now();
        let v = home
            .run(&[
                "resize", "pinned", "--memory", "384m", "--cpus", "0.75", "--json",
            ])
            .json();
        println!(
            "figure: swarm live resize took {:.2} s",
            resized.elapsed().as_secs_f64()
        );
        assert_eq!(v["restarted"], false, "{v}");
        assert!(
            v["pending_restart"]
                .as_array()
                .is_some_and(|p| p.iter().any(|s| s == "shared_buffers")),
            "{v}"
        );
        let limits = |c: &str| {
            worker.docker_ok(&[
                "inspect",
                "-f",
                "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
                c,
            ])
        };
        let c = worker.docker_ok(&["ps", "-q", "--filter", &filter]);
        assert_eq!(limits(&c), format!("{} 750000000", 384u64 << 20));
        assert_eq!(
            query_text(&url, started),
            before,
            "resized without a restart"
        );
        assert_ne!(query_text(&url, "SHOW effective_cache_size"), ecs);
        home.run(&["restart", "pinned"]).ok();
        let show = home.run(&["show", "pinned", "--json"]).json();
        assert!(show.get("pending_restart").is_none(), "{show}");
        let spec = manager.docker_ok(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
            &format!("{}_db", ids[3].0),
        ]);
        assert_eq!(spec, (384u64 << 20).to_string(), "the stack's new size");
        let c = worker.docker_ok(&["ps", "-q", "--filter", &filter]);
        assert_eq!(limits(&c), format!("{} 750000000", 384u64 << 20));
        assert_eq!(query_text(&url, "SELECT n::text FROM kept"), "7");
    });

    sections.run("logs from the node", || {
        let r = home.run(&["logs", "pinned", "--tail", "50"]);
        r.ok();
        let logs = r.stdout() + &r.stderr();
        assert!(logs.contains("database system is ready"), "{logs}");
    });

    let b = home
        .run(&[
            "create",
            "b1",
            "--memory",
            "256m",
            "--node",
            &worker.name,
            "--json",
        ])
        .json();
    let b_id = b["instance"]["id"].as_str().unwrap().to_string();
    let b_url = b["url"].as_str().unwrap().to_string();
    let repo = format!("{b_id}_repo");
    sections.run("backups on the worker", || {
        // Backups on the worker: the sidecar is a service of the stack on the
        // same node, archiving into the node's repository volume; its first
        // backup is verified there and the log reaches `backups` here.
        connect(&b_url)
            .batch_execute("CREATE TABLE backed AS SELECT generate_series(1, 50) AS n")
            .unwrap();
        let made = Instant::now();
        let deadline = made + Duration::from_secs(240);
        let first = loop {
            let v = home.run(&["backups", "b1", "--json"]).json();
            if v["backups"]
                .as_array()
                .is_some_and(|b| !b.is_empty() && b[0]["verified"].is_boolean())
            {
                break v;
            }
            assert!(
                Instant::now() < deadline,
                "no verified first backup of b1 on {} after 240 s: {v}",
                worker.name
            );
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_eq!(first["backups"][0]["verified"], true, "{first}");
        println!(
            "figure: swarm first backup verified and mirrored {:.1} s after the create returned",
            made.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let taken = home.run(&["backup", "b1", "--json"]).json();
        println!(
            "figure: swarm backup on demand (full, verified) {:.1} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(taken["verified"], true, "{taken}");
        assert_eq!(taken["verification"]["tables"], 1, "{taken}");
        let v = home.run(&["backups", "b1", "--json"]).json();
        assert_eq!(v["backups"].as_array().unwrap().len(), 2, "{v}");
        assert!(v["window"]["latest"].is_string(), "{v}");
        let vols = worker.docker_ok(&["volume", "ls", "-q", "--filter", &format!("name={repo}")]);
        assert_eq!(
            vols.trim(),
            repo,
            "the repository is a volume on the worker"
        );
    });

    sections.run("restores from the node's repository", || {
        // Restores from the node's repository: into a new instance on the same
        // node (a one-off container there recovers into its data volume), and a
        // clone; another node, or an in-place restore, is refused with the way
        // that works, and nothing is left of the refused ones.
        let refused = home
            .run(&[
                "restore",
                "b1",
                "--to",
                "r0",
                "--node",
                &swarm.nodes[2].name,
            ])
            .fails_with(2);
        assert!(refused.contains("--from s3"), "{refused}");
        let refused = home.run(&["restore", "b1", "--in-place"]).fails_with(2);
        assert!(refused.contains("--to NEW"), "{refused}");
        let t = Instant::now();
        let r = home.run(&["restore", "b1", "--to", "r1", "--json"]).json();
        println!(
            "figure: swarm restore into a new instance (latest, local repository) {:.1} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(r["instance"]["node"], worker.name.as_str(), "{r}");
        let r_url = r["url"].as_str().unwrap().to_string();
        assert_eq!(
            query_text(&r_url, "SELECT count(*)::text FROM backed"),
            "50"
        );
        let c = home.run(&["clone", "b1", "c1", "--json"]).json();
        assert_eq!(c["instance"]["node"], worker.name.as_str(), "{c}");
        let c_url = c["url"].as_str().unwrap().to_string();
        assert_eq!(
            query_text(&c_url, "SELECT sum(n)::text FROM backed"),
            "1275"
        );
        let list = home.run(&["list", "--json"]).json();
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["name"].as_str())
            .collect();
        assert!(!names.contains(&"r0"), "{names:?}");
        let r_id = r["instance"]["id"].as_str().unwrap().to_string();
        for n in ["r1", "c1"] {
            home.run(&["destroy", n, "--yes", "--delete-backups"]).ok();
        }
        let left = worker.docker_ok(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=dbaas.instance={r_id}"),
        ]);
        assert!(left.trim().is_empty(), "left on {}: {left}", worker.name);
    });

    sections.run("a move carries the repository", || {
        // A move carries the backup repository along: one history, listed and
        // extended on the new node, nothing of it left on the old one.
        let third = &swarm.nodes[2];
        let m = home
            .run(&["move", "b1", "--to", &third.name, "--json"])
            .json();
        assert_eq!(m["instance"]["node"], third.name.as_str(), "{m}");
        let vols = third.docker_ok(&["volume", "ls", "-q", "--filter", &format!("name={repo}")]);
        assert_eq!(vols.trim(), repo, "the repository moved to {}", third.name);
        let b_filter = format!("label=dbaas.instance={b_id}");
        let vols = worker.docker_ok(&["volume", "ls", "-q", "--filter", &b_filter]);
        assert!(vols.trim().is_empty(), "left on {}: {vols}", worker.name);
        let taken = home.run(&["backup", "b1", "--json"]).json();
        assert_eq!(taken["verified"], true, "{taken}");
        let v = home.run(&["backups", "b1", "--json"]).json();
        assert_eq!(v["backups"].as_array().unwrap().len(), 3, "{v}");
        home.run(&["destroy", "b1", "--yes", "--delete-backups"])
            .ok();
        let vols = third.docker_ok(&["volume", "ls", "-q", "--filter", &b_filter]);
        assert!(vols.trim().is_empty(), "left on {}: {vols}", third.name);
    });

    // An instance on the worker that also backs up to an S3-compatible
    // server off the nodes: restorable elsewhere when the worker is gone.
    let s3_ip = swarm.start_s3();
    let s3_conf = home.root.join("s3.conf");
    std::fs::write(
        &s3_conf,
        format!(
            "endpoint = {s3_ip}\nbucket = dbaas-test\nregion = us-east-1\nuri_style = path\n\
             verify_tls = n\naccess_key = AKIATEST\nsecret_key = TopSecretKey123\n"
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&s3_conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let s3_conf = s3_conf.display().to_string();
    let w3 = home
        .run(&[
            "create",
            "s3w",
            "--memory",
            "256m",
            "--node",
            &worker.name,
            "--s3",
            &s3_conf,
            "--json",
        ])
        .json();
    let w3_id = w3["instance"]["id"].as_str().unwrap().to_string();
    connect(w3["url"].as_str().unwrap())
        .batch_execute("CREATE TABLE offsite AS SELECT generate_series(1, 30) AS n")
        .unwrap();
    let verified_in_s3 = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let v = home.run(&["backups", "s3w", "--json"]).json();
            let verified = v["s3"]["backups"]
                .as_array()
                .map_or(0, |b| b.iter().filter(|b| b["verified"] == true).count());
            if verified >= n {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {n} verified S3 backups of s3w: {v}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    sections.run("backups in S3", || {
        // The first backup may have begun before the table; one on demand
        // after it holds the table for sure.
        verified_in_s3(1);
        let taken = home.run(&["backup", "s3w", "--json"]).json();
        assert_eq!(taken["verified"], true, "{taken}");
        verified_in_s3(2);
    });

    let pinned_id = ids[3].0.clone();
    let mut on_worker: Vec<String> = ids
        .iter()
        .filter(|(_, n)| *n == worker.name)
        .map(|(id, _)| id.clone())
        .collect();
    on_worker.push(w3_id.clone());
    let kept = "SELECT n::text FROM kept";
    sections.run("a node down", || {
        // A worker goes away: its instances are node-down (naming it) and are
        // never started on another node; what needs the node is refused; when
        // it is back they run again with their data.
        let stopped = Instant::now();
        swarm.stop_node(1);
        wait_node_down(
            &home,
            "pinned",
            &[&worker.name, "down"],
            Duration::from_secs(30),
        );
        println!(
            "figure: swarm node down detected after {:.1} s",
            stopped.elapsed().as_secs_f64()
        );
        let list = home.run(&["list", "--json"]).json();
        for i in list.as_array().unwrap() {
            let id = i["id"].as_str().unwrap().to_string();
            let want = if on_worker.contains(&id) {
                "node-down"
            } else {
                "running"
            };
            assert_eq!(i["status"], want, "{i}");
        }
        assert_nowhere_else(&swarm, 1, &on_worker);
        for what in [
            &["restart", "pinned"][..],
            &["resize", "pinned", "--cpus", "0.5"],
        ] {
            let err = home.run(what).fails_with(4);
            assert!(err.contains(&worker.name), "{what:?}: {err}");
        }
        let findings = doctor_findings(&home, "node-down");
        assert_eq!(findings.len(), on_worker.len(), "{findings:?}");
    });

    sections.run("an S3 restore onto another node", || {
        // Its local repository went with the worker; the S3 one restores it on
        // another node.
        let err = home.run(&["restore", "s3w", "--to", "s3r"]).fails_with(4);
        assert!(err.contains("--from s3"), "{err}");
        let elsewhere = &swarm.nodes[2];
        let t = Instant::now();
        let r3 = home
            .run(&[
                "restore",
                "s3w",
                "--to",
                "s3r",
                "--from",
                "s3",
                "--node",
                &elsewhere.name,
                "--json",
            ])
            .json();
        println!(
            "figure: swarm restore of a node-down instance from S3 onto another node {:.1} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(r3["instance"]["node"], elsewhere.name.as_str(), "{r3}");
        assert_eq!(
            query_text(
                r3["url"].as_str().unwrap(),
                "SELECT sum(n)::text FROM offsite"
            ),
            "465"
        );
        // The restore (onto another node, while the worker is down) started
        // none of the worker's instances elsewhere either.
        assert_nowhere_else(&swarm, 1, &on_worker);
    });

    sections.run("the node back", || {
        // When it is back, its instances run again with their data.
        swarm.start_node(1);
        wait_status(&home, "pinned", "running", Duration::from_secs(120));
        assert_eq!(query_when_up(&url, kept, Duration::from_secs(60)), "7");
        wait_status(&home, "s3w", "running", Duration::from_secs(120));
        for n in ["s3r", "s3w"] {
            home.run(&["destroy", n, "--yes", "--delete-backups"]).ok();
        }
    });

    sections.run("a drained node", || {
        // A drained node keeps its instances (stopped, not moved), and doctor
        // says so; made active again, they run with their data.
        manager.docker_ok(&["node", "update", "--availability", "drain", &worker.name]);
        wait_node_down(&home, "pinned", &["drained"], Duration::from_secs(60));
        let findings = doctor_findings(&home, "node-down");
        assert!(
            findings
                .iter()
                .any(|f| f["message"].as_str().unwrap().contains(&pinned_id)
                    && f["message"].as_str().unwrap().contains("drained")),
            "{findings:?}"
        );
        assert_nowhere_else(&swarm, 1, &on_worker);
        manager.docker_ok(&["node", "update", "--availability", "active", &worker.name]);
        wait_status(&home, "pinned", "running", Duration::from_secs(120));
        assert_eq!(query_when_up(&url, kept, Duration::from_secs(60)), "7");
    });

    let (s1_id, s1_node) = ids[0].clone();
    let target = swarm.nodes.iter().find(|n| n.name != s1_node).unwrap();
    sections.run("move", || {
        // move: s1 to another node, with its data; nothing of it stays behind.
        // A move the new node cannot take is refused before anything stops:
        // the instance runs where it was, and what was on that node stays.
        let squatter = format!("{s1_id}_data");
        target.docker_ok(&["volume", "create", &squatter]);
        let err = home
            .run(&["move", "s1", "--to", &target.name])
            .fails_with(4);
        assert!(err.contains(&squatter), "{err}");
        let show = home.run(&["show", "s1", "--json"]).json();
        assert_eq!(show["node"], s1_node.as_str(), "{show}");
        assert_eq!(show["status"], "running", "{show}");
        let up_since = "SELECT (pg_postmaster_start_time() < now() - interval '2 seconds')::text";
        assert_eq!(query_text(&s1_url, up_since), "true", "not restarted");
        target.docker_ok(&["volume", "rm", &squatter]);
        let moved = Instant::now();
        let m = home
            .run(&["move", "s1", "--to", &target.name, "--json"])
            .json();
        println!(
            "figure: swarm move of a small instance took {:.1} s",
            moved.elapsed().as_secs_f64()
        );
        assert_eq!(m["instance"]["node"], target.name.as_str(), "{m}");
        assert_eq!(m["instance"]["bind_address"], target.ip.as_str(), "{m}");
        assert!(m.get("left_behind").is_none(), "{m}");
        let s1_url = home.run(&["url", "s1"]).ok().trim().to_string();
        assert!(s1_url.contains(&target.ip), "{s1_url}");
        assert_eq!(
            query_text(&s1_url, "SELECT count(*)::text FROM moved"),
            "100"
        );
        let old = swarm.nodes.iter().find(|n| n.name == s1_node).unwrap();
        let filter = format!("label=dbaas.instance={s1_id}");
        let left = old.docker_ok(&["volume", "ls", "-q", "--filter", &filter]);
        assert!(
            left.is_empty(),
            "volumes of s1 left on {}: {left}",
            old.name
        );
        let err = home
            .run(&["move", "s1", "--to", "no-such-node"])
            .fails_with(2);
        assert!(err.contains("no-such-node"), "{err}");
    });

    sections.run("the API's move", || {
        // The API's move is the same operation.
        let r = server.post(
            "/instances/s1/move",
            &serde_json::json!({"node": "no-such-node"}),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["error"]["detail"]["field"], "node", "{}", r.text());
        let r = server.post(
            "/instances/s1/move",
            &serde_json::json!({"node": target.name}),
        );
        assert_eq!(r.status, 409, "already there: {}", r.text());
    });

    drop(server);
    sections.run("a node gone for good", || {
        // A node gone for good (stopped, then removed from the swarm): its
        // instances say so, and destroy still removes their stacks from the
        // manager (their volumes went with the node).
        swarm.stop_node(1);
        manager.docker_ok(&["node", "rm", "--force", &worker.name]);
        wait_node_down(
            &home,
            "pinned",
            &["gone from the swarm"],
            Duration::from_secs(30),
        );
    });

    sections.run("destroy leaves nothing on any node", || {
        // Destroy removes services, secrets, configs and the volumes on every node.
        for name in ["s1", "s2", "s3", "pinned"] {
            home.run(&["destroy", name, "--yes"]).ok();
        }
        for n in swarm.nodes.iter().filter(|n| n.name != worker.name) {
            for (what, args) in [
                (
                    "containers",
                    vec!["ps", "-aq", "--filter", "label=com.docker.stack.namespace"],
                ),
                (
                    "volumes",
                    vec!["volume", "ls", "-q", "--filter", "label=dbaas.instance"],
                ),
            ] {
                let left = n.docker_ok(&args);
                assert!(left.is_empty(), "{what} left on {}: {left}", n.name);
            }
        }
        for what in ["service", "secret", "config"] {
            let left = manager.docker_ok(&[what, "ls", "-q"]);
            assert!(left.is_empty(), "{what}s left on the manager: {left}");
        }
    });
    sections.finish();
}
