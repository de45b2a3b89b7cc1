//! The swarm engine on a real multi-node Docker Swarm: a manager and two
//! workers, each a Docker-in-Docker container (tests/common/swarm.rs), the
//! images pulled from a registry beside them. The host's daemon is never a
//! member; everything is removed at the end, whatever happened.

mod common;
#[path = "common/swarm.rs"]
mod swarm;

use common::*;
use std::collections::HashSet;
use swarm::Swarm;

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

    // Bound once; a compose-only option is refused on it.
    home.run(&["init", "--engine", "swarm"]).ok();
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

    // Three instances of the same size: one on each node (the freest).
    let mut placed = HashSet::new();
    let mut ids = vec![];
    for name in ["s1", "s2", "s3"] {
        let v = home
            .run(&[
                "create", name, "--memory", "256m", "--cpus", "0.5", "--json",
            ])
            .json();
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
            "--json",
        ])
        .json();
    assert_eq!(v["instance"]["node"], worker.name.as_str());
    ids.push((
        v["instance"]["id"].as_str().unwrap().to_string(),
        worker.name.clone(),
    ));
    let err = home
        .run(&["create", "nowhere", "--node", "no-such-node"])
        .fails_with(2);
    assert!(err.contains("no-such-node"), "{err}");

    // The limits are the node's own container's.
    let (id, _) = &ids[3];
    let filter = format!("label=com.docker.swarm.service.name={id}_db");
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

    // list and nodes see all of it.
    let list = home.run(&["list", "--json"]).json();
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

    // psql runs in the db container on its node.
    let out = home.run(&["psql", "pinned", "-c", "SELECT 40 + 2"]).ok();
    assert!(out.contains("42"), "{out}");

    // down, up and restart on the worker's instance keep its data.
    let url = home.run(&["url", "pinned"]).ok().trim().to_string();
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
    let r = home.run(&["logs", "pinned", "--tail", "50"]);
    r.ok();
    let logs = r.stdout() + &r.stderr();
    assert!(logs.contains("database system is ready"), "{logs}");

    // Destroy removes services, secrets, configs and the volumes on every node.
    for name in ["s1", "s2", "s3", "pinned"] {
        home.run(&["destroy", name, "--yes"]).ok();
    }
    for n in &swarm.nodes {
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
}
