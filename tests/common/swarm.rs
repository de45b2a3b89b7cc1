//! A real multi-node Docker Swarm for the tests, inside containers the test
//! starts and removes: one manager and N workers (dbaas/swarm-node, built
//! by scripts/build-node-image.sh), each its own dockerd, on a Docker
//! network the test creates, with Debian's docker-registry beside them for
//! the images. The host's own daemon never joins: only the nodes' daemons
//! do, and the host reaches the manager through its socket, bind-mounted
//! out of its container. Drop removes everything, whatever happened.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const NODE_IMAGE: &str = "dbaas/swarm-node";
/// A node's daemon starts in a few seconds; a restarted one, cleaning up its
/// old tasks beside the other tests, took over a minute in CI. The bound
/// only catches a broken one.
const DAEMON_START: Duration = Duration::from_secs(240);

pub struct Node {
    /// The node's hostname, which is its Swarm node name.
    pub name: String,
    pub container: String,
    pub ip: String,
    /// Its daemon's socket, as the host sees it.
    pub socket: PathBuf,
}

pub struct Swarm {
    pub tag: String,
    pub network: String,
    /// The manager first.
    pub nodes: Vec<Node>,
    /// host:port of the registry, as the nodes reach it.
    pub registry: String,
    registry_container: String,
    dir: PathBuf,
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("running docker")
}

fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Node {
    /// `docker` against this node's daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("running docker")
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {} on {} failed: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wait_daemon(&self) {
        let deadline = Instant::now() + DAEMON_START;
        loop {
            if self.socket.exists()
                && self
                    .docker(&["info", "--format", "{{.ID}}"])
                    .status
                    .success()
            {
                return;
            }
            if Instant::now() > deadline {
                let logs = docker(&["logs", "--tail", "30", &self.container]);
                panic!(
                    "the daemon of node {} did not start within {DAEMON_START:?}:\n{}",
                    self.name,
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Swarm {
    /// A manager and `workers` workers, joined; every node labelled for
    /// dbaas (`dbaas=true`).
    pub fn start(workers: usize) -> Swarm {
        let tag = format!("{:08x}", rand_u32());
        let dir = std::env::temp_dir().join(format!("dbaas-swarm-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let network = format!("dbaas-swarm-{tag}");
        let mut swarm = Swarm {
            registry_container: format!("dbaas-swarm-{tag}-registry"),
            tag: tag.clone(),
            network: network.clone(),
            nodes: vec![],
            registry: String::new(),
            dir,
        };
        // Fixed addresses: a stopped and restarted node keeps its own.
        let prefix = swarm.create_network();
        swarm.registry = format!("{prefix}.5:5000");
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &swarm.registry_container,
            "--network",
            &network,
            "--ip",
            &format!("{prefix}.5"),
            "--label",
            "dbaas.test=swarm",
            NODE_IMAGE,
            "registry",
        ]);
        for i in 0..=workers {
            let role = if i == 0 {
                "m".to_string()
            } else {
                format!("w{i}")
            };
            let name = format!("n{tag}-{role}");
            let container = format!("dbaas-swarm-{tag}-{role}");
            let ip = format!("{prefix}.{}", 10 + i);
            let sockdir = swarm.dir.join(&role);
            std::fs::create_dir_all(&sockdir).unwrap();
            let volume = format!("{container}-docker");
            let mount = format!("{}:/run/dbaas-node", sockdir.display());
            let state = format!("{volume}:/var/lib/docker");
            let env = format!("DBAAS_REGISTRY={}", swarm.registry);
            // Not --privileged (this host lacks CAP_SYS_RESOURCE): every
            // other capability, no seccomp or AppArmor profile.
            docker_ok(&[
                "run",
                "-d",
                "--name",
                &container,
                "--hostname",
                &name,
                "--network",
                &network,
                "--ip",
                &ip,
                "--label",
                "dbaas.test=swarm",
                "--cap-add",
                "ALL",
                "--cap-drop",
                "SYS_RESOURCE",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
                "--device",
                "/dev/fuse",
                "-v",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "-v",
                &state,
                "-v",
                &mount,
                "-e",
                &env,
                NODE_IMAGE,
                "node",
            ]);
            swarm.nodes.push(Node {
                name,
                container,
                ip,
                socket: sockdir.join("docker.sock"),
            });
        }
        for n in &swarm.nodes {
            n.wait_daemon();
        }
        let manager = &swarm.nodes[0];
        manager.docker_ok(&["swarm", "init", "--advertise-addr", &manager.ip]);
        let token = manager.docker_ok(&["swarm", "join-token", "-q", "worker"]);
        let addr = format!("{}:2377", manager.ip);
        for w in &swarm.nodes[1..] {
            w.docker_ok(&[
                "swarm",
                "join",
                "--advertise-addr",
                &w.ip,
                "--token",
                &token,
                &addr,
            ]);
        }
        for n in &swarm.nodes {
            manager.docker_ok(&["node", "update", "--label-add", "dbaas=true", &n.name]);
        }
        swarm
    }

    /// A /24 for the test network that no existing network overlaps:
    /// returns its first three octets.
    fn create_network(&self) -> String {
        let start = rand_u32() % 200;
        for k in 0..50 {
            let prefix = format!("10.198.{}", (start + k) % 250 + 1);
            let out = docker(&[
                "network",
                "create",
                "--subnet",
                &format!("{prefix}.0/24"),
                "--label",
                "dbaas.test=swarm",
                &self.network,
            ]);
            if out.status.success() {
                return prefix;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("overlap"),
                "docker network create failed: {err}"
            );
        }
        panic!("no free /24 in 10.198.0.0/16 for the test swarm's network");
    }

    pub fn manager(&self) -> &Node {
        &self.nodes[0]
    }

    /// DOCKER_HOST for a dbaas home run against this swarm.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.manager().socket.display())
    }

    /// The image the nodes pull: `image` from the host, loaded into the
    /// manager and pushed to the swarm's registry. Returns its reference
    /// there.
    pub fn publish(&self, image: &str) -> String {
        let target = format!("{}/{image}", self.registry);
        let sock = format!("unix://{}", self.manager().socket.display());
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; docker save {image} | docker -H {sock} load -q >/dev/null"
            ))
            .status()
            .unwrap();
        assert!(status.success(), "loading {image} into the manager failed");
        self.manager().docker_ok(&["tag", image, &target]);
        self.manager().docker_ok(&["push", "-q", &target]);
        target
    }

    /// An S3-compatible server (dbaas/s3test: moto behind stunnel on 443)
    /// on the swarm's network, off every node: what a restore reads when a
    /// node is gone. Returns its address; Drop removes it.
    pub fn start_s3(&self) -> String {
        let prefix = self.registry.rsplit_once('.').unwrap().0;
        let ip = format!("{prefix}.6");
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &self.s3_container(),
            "--network",
            &self.network,
            "--ip",
            &ip,
            "--label",
            "dbaas.test=swarm",
            "dbaas/s3test",
            "dbaas-test",
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker_ok(&["logs", &self.s3_container()]).contains("s3-server: bucket") {
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        ip
    }

    fn s3_container(&self) -> String {
        format!("dbaas-swarm-{}-s3", self.tag)
    }

    /// Stops a node's container (its daemon goes; the swarm sees it down).
    pub fn stop_node(&self, i: usize) {
        docker_ok(&["stop", "-t", "5", &self.nodes[i].container]);
    }

    pub fn start_node(&self, i: usize) {
        docker_ok(&["start", &self.nodes[i].container]);
        self.nodes[i].wait_daemon();
    }

    /// `docker node ls` on the manager: (hostname, status, availability).
    pub fn node_states(&self) -> Vec<(String, String, String)> {
        self.manager()
            .docker_ok(&[
                "node",
                "ls",
                "--format",
                "{{.Hostname}} {{.Status}} {{.Availability}}",
            ])
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.into(), w.next()?.into(), w.next()?.into()))
            })
            .collect()
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let mut names: Vec<String> = self.nodes.iter().map(|n| n.container.clone()).collect();
        names.push(self.registry_container.clone());
        let _ = docker(&["rm", "-f", "-v", &self.s3_container()]);
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(names.iter().map(String::as_str));
        let _ = docker(&args);
        for n in &self.nodes {
            let _ = docker(&["volume", "rm", "-f", &format!("{}-docker", n.container)]);
            remove_cgroups(&format!("dbaas-swarm-{}", n.name));
        }
        let _ = docker(&["network", "rm", &self.network]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cgroup directories a node's daemon made under the host's hierarchy
/// (its containers' parent), deepest first.
fn remove_cgroups(parent: &str) {
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for c in controllers.flatten() {
        let dir = c.path().join(parent);
        if dir.is_dir() {
            remove_cgroup_tree(&dir);
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u32::from_le_bytes(b) ^ std::process::id()
}
