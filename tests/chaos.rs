//! Faults while work goes on, counted (issue 10, part 9). Each test prints
//! a `chaos:` line with its figures; docs/tests.md quotes them.

mod common;
use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A figure of this run: printed, and appended to target/tmp/chaos-figures.txt
/// (which `make test` prints at its end).
fn figure(line: String) {
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos-figures.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = writeln!(f, "{line}");
    }
}

/// Kills PostgreSQL's main process from the host, as the OOM killer would.
fn crash(container: &str) {
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", container]);
    assert_ne!(pid, "0", "{container} is not running");
    let st = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(st.success());
}

/// Waits until the app user can write again.
fn wait_writable(url: &str) -> Duration {
    let t = Instant::now();
    loop {
        if let Ok(mut c) = try_connect(url) {
            if c.batch_execute("SELECT 1").is_ok() {
                return t.elapsed();
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the instance never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn acknowledged_writes_survive_crashes_of_postgres() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("chaos-crash");
    let (id, url) = h.create("crashy", &[]);
    let db = format!("{id}-db-1");
    let s = Server::start(&h, &[]);
    let r = s.post(
        "/database/crashy/sql",
        &json!({"sql": "CREATE TABLE t (id bigint PRIMARY KEY, via text NOT NULL)"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let (failed, conflicts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut writers = vec![];
    for _ in 0..4 {
        // Through the API: acknowledged = 201.
        let (stop, next, acked, failed, conflicts) = (
            stop.clone(),
            next.clone(),
            acked.clone(),
            failed.clone(),
            conflicts.clone(),
        );
        let (port, token) = (s.port, s.token.clone());
        writers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst) as i64;
                let body = json!({"id": id, "via": "api"}).to_string();
                let r = http::request(
                    port,
                    "POST",
                    "/database/crashy/tables/t/rows",
                    Some(&token),
                    Some(body.as_bytes()),
                    "application/json",
                );
                match r.status {
                    201 => acked.lock().unwrap().push(id),
                    // A second run of a committed insert would be a 409.
                    409 if r.text().contains("23505") => {
                        conflicts.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }));
    }
    for _ in 0..4 {
        // Direct connections, as psql would: acknowledged = COMMIT returned.
        let (stop, next, acked, failed) =
            (stop.clone(), next.clone(), acked.clone(), failed.clone());
        let url = url.clone();
        writers.push(std::thread::spawn(move || {
            let mut client: Option<postgres::Client> = None;
            while !stop.load(Ordering::SeqCst) {
                let c = match client.as_mut() {
                    Some(c) => c,
                    None => match try_connect(&url) {
                        Ok(c) => client.insert(c),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    },
                };
                let id = next.fetch_add(1, Ordering::SeqCst) as i64;
                match c.execute("INSERT INTO t VALUES ($1, 'psql')", &[&id]) {
                    Ok(1) => acked.lock().unwrap().push(id),
                    _ => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        client = None;
                    }
                }
            }
        }));
    }

    let crashes = 5;
    let mut recoveries = vec![];
    for _ in 0..crashes {
        std::thread::sleep(Duration::from_millis(1500));
        crash(&db);
        std::thread::sleep(Duration::from_millis(200));
        recoveries.push(wait_writable(&url));
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }

    let mut c = connect(&url);
    let present: HashSet<i64> = c
        .query("SELECT id FROM t", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<&i64> = acked.iter().filter(|id| !present.contains(id)).collect();
    let restarts = docker_ok(&["inspect", "-f", "{{.RestartCount}}", &db]);
    let worst = recoveries.iter().max().unwrap();
    figure(format!(
        "chaos: {crashes} crashes of PostgreSQL (kill -9 of PID 1) under 8 writers: {} writes acknowledged, {} lost, {} refused while down, {} double runs; back after at most {:.1} s; restart count {restarts}",
        acked.len(),
        lost.len(),
        failed.load(Ordering::SeqCst),
        conflicts.load(Ordering::SeqCst),
        worst.as_secs_f64()
    ));
    assert!(acked.len() > 100, "too little load: {}", acked.len());
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert_eq!(conflicts.load(Ordering::SeqCst), 0, "an insert ran twice");
    assert_eq!(
        restarts,
        crashes.to_string(),
        "the restart policy brought it back each time"
    );
}

#[test]
fn an_operators_docker_kill_is_reported_and_undone_by_up() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("chaos-kill");
    let (id, url) = h.create("killed", &[]);
    let mut c = connect(&url);
    c.batch_execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)")
        .unwrap();
    drop(c);
    docker_ok(&["kill", &format!("{id}-db-1")]);
    // Docker counts it as a manual stop: no restart.
    std::thread::sleep(Duration::from_secs(2));
    let show = h.run(&["show", "killed", "--json"]).json();
    assert_eq!(show["status"], "exited", "{show}");
    let doctor = h.run(&["doctor"]);
    let text = doctor.stdout() + &doctor.stderr();
    assert!(text.contains("dbaasctl up killed"), "{text}");
    h.run(&["up", "killed"]).ok();
    let mut c = connect(&url);
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
    assert_eq!(n, 1000);
    let doctor = h.run(&["doctor", "--json"]).json();
    let open: Vec<_> = doctor
        .as_array()
        .map(|a| a.iter().filter(|f| f["level"] != "ok").cloned().collect())
        .unwrap_or_default();
    assert!(open.iter().all(|f| f["level"] != "error"), "{open:?}");
    figure("chaos: docker kill of the db container: shown exited, doctor names `dbaasctl up`, 1000 of 1000 rows back after up".into());
}

/// A docker CLI that works for `ok_calls` calls, then answers as a docker
/// CLI does when the daemon is gone. The count is kept under a lock: a
/// create's calls may overlap, and an unlocked read between another call's
/// truncate and write counted from 0 again (CI once saw 1 call).
fn docker_dying_after(h: &TestHome, ok_calls: usize) -> String {
    let count = h.root.join(format!("docker-calls-{ok_calls}"));
    let _ = std::fs::remove_file(&count);
    write_script(
        h,
        &format!("docker-dying-after-{ok_calls}"),
        &format!(
            "#!/bin/sh\nf='{}'\n\
             n=$(flock \"$f.lock\" sh -c 'n=$(cat \"$1\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > \"$1\"; echo $n' sh \"$f\")\n\
             if [ $n -gt {ok_calls} ]; then echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1; fi\n\
             exec docker \"$@\"\n",
            count.display()
        ),
    )
}

/// Containers whose compose project is an instance id this home made.
fn home_containers(h: &TestHome) -> Vec<String> {
    let out = docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let ids: Vec<String> = std::fs::read_dir(h.root.join("instances"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.lines()
        .filter(|l| ids.iter().any(|id| l.starts_with(id.as_str())))
        .map(str::to_string)
        .collect()
}

#[test]
fn docker_going_away_mid_create_leaves_nothing_half_done() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("chaos-daemon");
    // The home's first create also makes the template (a `docker run`
    // beside it, which a create does not wait on); the calls counted are
    // those of a create after it, which every later create makes too.
    h.run(&["create", "warm"]).ok();
    h.run(&["destroy", "warm", "--yes"]).ok();
    // How many docker calls a create makes.
    let all = docker_dying_after(&h, 1000);
    h.run_env(&["create", "counted"], &[("DBAAS_DOCKER", &all)])
        .ok();
    let calls: usize = std::fs::read_to_string(h.root.join("docker-calls-1000"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    h.run(&["destroy", "counted", "--yes"]).ok();
    for k in 0..calls {
        let name = format!("gone{k}");
        let dying = docker_dying_after(&h, k);
        let run = h.run_env(&["create", &name], &[("DBAAS_DOCKER", &dying)]);
        // Every call is on the create's path: each one failing fails it.
        let err = run.fails_with(5);
        assert!(err.contains("Docker daemon is not reachable"), "{err}");
        // With the daemon back: doctor --fix cleans what could not be.
        h.run(&["doctor", "--fix"]);
        let reg = h.registry();
        assert_eq!(
            reg["instances"],
            json!([]),
            "after failing at docker call {k}: {reg}"
        );
        assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());
        let ids: Vec<String> = std::fs::read_dir(h.root.join("instances"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(ids.is_empty(), "{ids:?}");
        let doctor = h.run(&["doctor", "--json"]).json();
        assert!(
            !doctor.to_string().contains("orphan"),
            "after failing at docker call {k}: {doctor}"
        );
    }
    // Gone in the middle of `compose up`: the containers were made, and
    // neither the create nor its rollback can reach the daemon any more.
    let flag = h.root.join("daemon-gone");
    let midway = write_script(
        &h,
        "docker-dying-in-up",
        &format!(
            "#!/bin/sh
f='{}'
if [ -e \"$f\" ]; then echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1; fi
             for a in \"$@\"; do [ \"$a\" = up ] && up=1; done
             if [ -n \"$up\" ]; then docker \"$@\"; touch \"$f\"; echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1; fi
             exec docker \"$@\"\n",
            flag.display()
        ),
    );
    let run = h.run_env(&["create", "midway"], &[("DBAAS_DOCKER", &midway)]);
    let err = run.fails_with(5);
    assert!(err.contains("Docker daemon is not reachable"), "{err}");
    let left = home_containers(&h);
    h.run(&["doctor", "--fix"]);
    assert_eq!(h.registry()["instances"], json!([]));
    assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());
    let doctor = h.run(&["doctor", "--json"]).json();
    assert!(!doctor.to_string().contains("orphan"), "{doctor}");
    figure(format!(
        "chaos: the Docker daemon gone at each of the {calls} docker calls of a create, and in the middle of `compose up` ({} containers left behind): {} failed with exit 5, nothing left after doctor --fix",
        left.len(),
        calls + 1
    ));
    assert!(calls >= 3, "a create made {calls} docker calls");
}

/// The Docker daemon's socket as dbaas sees it through DOCKER_HOST: a
/// proxy that forwards `limit` connections to the real socket, then goes
/// away as a daemon does (its open connections cut, the socket file
/// gone). So the paths production uses when the daemon is local (the
/// socket API of engine/docker_api.rs and the Compose plugin run directly)
/// meet the fault too, not only the docker CLI.
struct DyingSocket {
    path: std::path::PathBuf,
    conns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DyingSocket {
    fn start(path: std::path::PathBuf, limit: u64) -> DyingSocket {
        use std::os::unix::net::{UnixListener, UnixStream};
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (conns, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, st, p) = (conns.clone(), stop.clone(), path.clone());
        let thread = std::thread::spawn(move || {
            let mut open: Vec<UnixStream> = vec![];
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if c.fetch_add(1, Ordering::SeqCst) >= limit {
                            // Gone: this connection, the open ones, the socket.
                            drop(client);
                            for o in &open {
                                let _ = o.shutdown(std::net::Shutdown::Both);
                            }
                            let _ = std::fs::remove_file(&p);
                            break;
                        }
                        client.set_nonblocking(false).unwrap();
                        let daemon = UnixStream::connect("/var/run/docker.sock").unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(daemon.try_clone().unwrap());
                        pump(client.try_clone().unwrap(), daemon.try_clone().unwrap());
                        pump(daemon, client);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => break,
                }
            }
        });
        DyingSocket {
            path,
            conns,
            stop,
            thread: Some(thread),
        }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn connections(&self) -> u64 {
        self.conns.load(Ordering::SeqCst)
    }
}

impl Drop for DyingSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies one direction of a connection until either side closes.
fn pump(mut from: std::os::unix::net::UnixStream, mut to: std::os::unix::net::UnixStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
fn the_docker_socket_going_away_mid_create_leaves_nothing_half_done() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("chaos-socket");
    // The template first (a create after it is what is counted); the home's
    // tag, which every container of it carries, from its first container.
    let (warm, _) = h.create("warm", &[]);
    let tag = docker_ok(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"dbaas.home\"}}",
        &h.containers_of(&warm)[0],
    ])
    .trim()
    .to_string();
    let of_home = || {
        docker_ok(&[
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=dbaas.home={tag}"),
        ])
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    h.run(&["destroy", "warm", "--yes"]).ok();
    let sock = |limit| DyingSocket::start(h.root.join(format!("docker-{limit}.sock")), limit);
    let counting = sock(u64::MAX);
    h.run_env(
        &["create", "counted"],
        &[("DOCKER_HOST", &counting.docker_host())],
    )
    .ok();
    let total = counting.connections();
    drop(counting);
    h.run(&["destroy", "counted", "--yes"]).ok();
    assert!(
        total >= 2,
        "a create opened {total} connections to the daemon"
    );
    let (mut failed, mut done) = (0, 0);
    let step = (total / 8).max(1);
    for k in (0..total).step_by(step as usize) {
        let name = format!("gone{k}");
        let dying = sock(k);
        let run = h.run_env(&["create", &name], &[("DOCKER_HOST", &dying.docker_host())]);
        drop(dying);
        if run.code() == 0 {
            // Every call the create needed was made before the fault (the
            // rest were reads it could do without): it is simply done.
            done += 1;
            h.run(&["destroy", &name, "--yes"]).ok();
        } else {
            failed += 1;
            let err = run.fails_with(5);
            assert!(
                err.contains("Docker daemon is not reachable"),
                "after {k}: {err}"
            );
        }
        // With the daemon back: doctor --fix cleans what could not be.
        h.run(&["doctor", "--fix"]);
        assert_eq!(
            h.registry()["instances"],
            json!([]),
            "after {k} connections"
        );
        assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());
        assert_eq!(of_home(), Vec::<String>::new(), "after {k} connections");
        let doctor = h.run(&["doctor", "--json"]).json();
        assert!(
            !doctor.to_string().contains("orphan"),
            "after {k}: {doctor}"
        );
    }
    figure(format!(
        "chaos: the Docker socket gone after k of the {total} connections of a create (socket API and Compose plugin): {failed} failed with exit 5, {done} had made every call they needed; nothing left after doctor --fix"
    ));
    assert!(failed >= 1, "no create met the fault");
}

/// A tiny xorshift generator: the soak's choices, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn random_lifecycle_operations_from_twenty_clients() {
    if !docker_required() {
        return;
    }
    let secs: u64 = std::env::var("DBAAS_CHAOS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let h = TestHome::new("chaos-soak");
    let s = Server::start(&h, &[]);
    let names: Vec<String> = (0..5).map(|i| format!("soak{i}")).collect();
    let creators: Vec<_> = names
        .iter()
        .map(|n| {
            let (port, token, n) = (s.port, s.token.clone(), n.clone());
            std::thread::spawn(move || {
                let body = json!({ "name": n }).to_string();
                http::request(
                    port,
                    "POST",
                    "/instances",
                    Some(&token),
                    Some(body.as_bytes()),
                    "application/json",
                )
            })
        })
        .collect();
    for c in creators {
        let r = c.join().unwrap();
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let clients: Vec<_> = (0..20u64)
        .map(|i| {
            let (port, token) = (s.port, s.token.clone());
            let (names, statuses, bad) = (names.clone(), statuses.clone(), bad.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((i + 1) * 7919));
                while Instant::now() < deadline {
                    let name = &names[rng.below(names.len())];
                    let (method, path, body): (&str, String, Option<String>) = match rng.below(9) {
                        0 => ("POST", format!("/instances/{name}/stop"), None),
                        1 => ("POST", format!("/instances/{name}/start"), None),
                        2 => ("POST", format!("/instances/{name}/restart"), None),
                        3 => ("POST", format!("/monitoring/{name}/agent/restart"), None),
                        4 => ("GET", "/instances".into(), None),
                        5 => ("GET", format!("/instances/{name}/credentials"), None),
                        6 => ("GET", format!("/instances/{name}/logs?tail=5"), None),
                        7 => ("GET", format!("/monitoring/{name}/metrics/summary"), None),
                        _ => (
                            "POST",
                            format!("/database/{name}/sql"),
                            Some(json!({"sql": "SELECT 1 AS one"}).to_string()),
                        ),
                    };
                    let r = http::request(
                        port,
                        method,
                        &path,
                        Some(&token),
                        body.as_ref().map(|b| b.as_bytes()),
                        "application/json",
                    );
                    *statuses
                        .lock()
                        .unwrap()
                        .entry(format!("{}", r.status))
                        .or_default() += 1;
                    if r.status >= 500 && r.status != 503 {
                        bad.lock().unwrap().push(format!(
                            "{method} {path}: {} {}",
                            r.status,
                            r.text()
                        ));
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let bad = bad.lock().unwrap();
    assert!(
        bad.is_empty(),
        "{} answers of 500 or worse: {:#?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    // Every instance is in a final state, and the registry is valid.
    let list = s.get("/instances").json();
    for v in list.as_array().unwrap() {
        let st = v["status"].as_str().unwrap_or("");
        assert!(
            matches!(st, "running" | "stopped" | "starting"),
            "{} ended {st}",
            v["name"]
        );
    }
    let reg = h.registry();
    assert_eq!(reg["instances"].as_array().map(Vec::len), Some(5), "{reg}");
    let total: u64 = statuses.lock().unwrap().values().sum();
    figure(format!(
        "chaos: 20 clients, random lifecycle and data requests on 5 instances for {secs} s: {total} requests, statuses {:?}, none 500, every instance final, registry valid",
        statuses.lock().unwrap()
    ));
}

/// The status an instance rests in after recovery (or gone: 404), once no
/// operation is recorded on it any more.
fn settled(h: &TestHome, s: &Server, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = s.get(&format!("/instances/{name}"));
        if r.status == 404 {
            return "gone".into();
        }
        let st = r.json()["status"].as_str().unwrap_or("").to_string();
        let reg = h.registry();
        let busy =
            reg["instances"].as_array().unwrap().iter().any(|i| {
                i["name"] == name && (i.get("intent").is_some() || i["state"] == "creating")
            });
        if !busy && matches!(st.as_str(), "running" | "stopped") {
            return st;
        }
        assert!(Instant::now() < deadline, "{name} stayed {st}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_killed_server_s_operations_are_finished_by_the_next() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("chaos-serve");
    let mut s = Server::start(&h, &[]);
    let mut outcomes = vec![];
    let mut n = 0;
    for op in ["create", "stop", "start", "restart", "destroy"] {
        for delay in [400u64, 1500] {
            n += 1;
            let name = format!("cut{n}");
            // The state the operation starts from.
            if op != "create" {
                let r = s.post("/instances", &json!({ "name": name }));
                assert_eq!(r.status, 201, "{}", r.text());
                if op == "start" {
                    assert_eq!(s.post_empty(&format!("/instances/{name}/stop")).status, 200);
                }
            }
            let (method, path, body) = match op {
                "create" => (
                    "POST",
                    "/instances".to_string(),
                    json!({ "name": name }).to_string(),
                ),
                "destroy" => ("DELETE", format!("/instances/{name}"), String::new()),
                other => ("POST", format!("/instances/{name}/{other}"), String::new()),
            };
            let (port, token) = (s.port, s.token.clone());
            let client = std::thread::spawn(move || {
                http::send_and_hang_up(
                    port,
                    method,
                    &path,
                    &token,
                    &body,
                    Duration::from_millis(delay + 200),
                )
            });
            std::thread::sleep(Duration::from_millis(delay));
            let killed = Command::new("kill")
                .args(["-9", &s.pid().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
            s.wait_exit();
            client.join().unwrap();
            s = Server::start(&h, &[]);
            let end = settled(&h, &s, &name);
            let open = open_findings(&h);
            assert!(
                open.is_empty(),
                "{op} cut at {delay} ms, ended {end}: {open:?}"
            );
            outcomes.push(format!("{op}@{delay}ms->{end}"));
            if end != "gone" {
                assert_eq!(s.delete(&format!("/instances/{name}")).status, 200);
            }
        }
    }
    figure(format!(
        "chaos: serve killed (SIGKILL) {} times in the middle of create, stop, start, restart and destroy; the next serve finished each, doctor clean every time: {}",
        outcomes.len(),
        outcomes.join(", ")
    ));
}

#[test]
fn a_killed_cli_leaves_nothing_that_destroy_or_doctor_cannot_clean() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("chaos-cli");
    // A bystander whose data must survive everything below.
    let (_, url) = h.create("bystander", &[]);
    let mut c = connect(&url);
    c.batch_execute("CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2), (3)")
        .unwrap();
    drop(c);
    let mut cuts = 0;
    for (i, delay) in [100u64, 400, 900, 1600, 2500].into_iter().enumerate() {
        for op in ["create", "destroy"] {
            let name = format!("cli{i}");
            if op == "destroy" && h.run(&["show", &name]).code() != 0 {
                h.create(&name, &[]);
            }
            let mut child = match op {
                "create" => h.command(&["create", &name]),
                _ => h.command(&["destroy", &name, "--yes"]),
            }
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
            std::thread::sleep(Duration::from_millis(delay));
            let _ = child.kill();
            let _ = child.wait();
            cuts += 1;
            h.run(&["doctor", "--fix"]);
            // No entry points at nothing; what remains is consistent.
            let reg = h.registry();
            for inst in reg["instances"].as_array().unwrap() {
                let id = inst["id"].as_str().unwrap();
                assert!(
                    h.root
                        .join(format!("instances/{id}/docker-compose.yml"))
                        .exists(),
                    "{op} cut at {delay} ms: {id} has no directory"
                );
            }
            let open = open_findings(&h);
            assert!(open.is_empty(), "{op} cut at {delay} ms: {open:?}");
        }
        h.run(&["destroy", &format!("cli{i}"), "--yes"]);
    }
    let mut c = connect(&url);
    let n: i64 = c
        .query_one("SELECT count(*) FROM keep", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 3, "the bystander's data");
    figure(format!(
        "chaos: dbaasctl killed (SIGKILL) {cuts} times in create and destroy: doctor --fix left no entry without its directory, no finding open, and the bystander's rows intact"
    ));
}
