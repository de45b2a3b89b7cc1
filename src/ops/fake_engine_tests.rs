//! `ops` on the fake engine (engine/fake.rs), without Docker: a create that
//! fails at each of its engine steps, or never gets ready, leaves nothing
//! behind, and says so.

use crate::engine::fake::{install, FakeEngine};
use crate::error::Error;
use crate::home::Home;
use crate::settings::{Provision, Settings};
use crate::testing::TempDir;
use crate::validate::CreateRequest;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn home(label: &str) -> (TempDir, Home, Arc<FakeEngine>) {
    let t = TempDir::new(label);
    let mut s = Settings::with_root(t.path().to_path_buf());
    // initdb: no template to make; readiness given up quickly (nothing
    // listens on the instance's port).
    s.provision = Provision::Initdb;
    s.ready_timeout = Duration::from_millis(600);
    let home = Home::new(s);
    let fake = fake_for(&home);
    (t, home, fake)
}

/// The fake engine for `home`, installed (what the API's unit tests use too).
pub(crate) fn fake_for(home: &Home) -> Arc<FakeEngine> {
    // Instances are made with TLS: the home has its authority.
    crate::certs::Authority::load_or_create(&home.config_dir().join("ca"), "test").unwrap();
    let fake = Arc::new(FakeEngine::new(&home.root.join("instances")));
    install(&home.root, fake.clone());
    fake
}

/// `inst` as a create leaves it: its directory written, its entry recorded.
pub(crate) fn recorded(home: &Home, inst: &crate::registry::Instance) {
    let project = crate::engine::project_file(inst, &home.tag());
    let creds = crate::provision::Credentials::generate();
    crate::provision::provision(&home.instance_dir(&inst.id), inst, &creds, &project).unwrap();
    let i = inst.clone();
    crate::registry::update(home, move |reg| {
        reg.instances.push(i);
        Ok(())
    })
    .unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of a create: no registry entry, no directory, no backups, no
/// kept metadata, nothing up.
fn nothing_left(home: &Home, fake: &FakeEngine) {
    let reg = crate::registry::load(home).unwrap();
    assert!(reg.instances.is_empty(), "{:?}", reg.instances);
    assert_eq!(entries(&home.root.join("instances")), Vec::<String>::new());
    assert_eq!(entries(&home.root.join("backups")), Vec::<String>::new());
    assert_eq!(
        entries(&home.root.join("config").join("kept")),
        Vec::<String>::new()
    );
    let calls = fake.calls();
    let ids: Vec<&str> = calls.iter().filter_map(|c| c.strip_prefix("up ")).collect();
    assert!(ids.iter().all(|id| !fake.is_up(id)), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_failing_at_each_engine_step_rolls_back_everything() {
    for step in ["preflight", "up_service", "up"] {
        let (_t, home, fake) = home(&format!("fake-create-{step}"));
        fake.fail_next(step);
        let req = CreateRequest {
            name: "shop".into(),
            ..Default::default()
        };
        let err = super::create_new(&home, req).await.unwrap_err();
        assert_eq!(err.exit_code(), 5, "{step}: {err}");
        let text = err.to_string();
        assert!(text.contains("not reachable"), "{step}: {text}");
        if step != "preflight" {
            // Allocated, provisioned, then rolled back through the engine.
            assert!(text.contains("rolled back"), "{step}: {text}");
            assert!(
                fake.calls().iter().any(|c| c.starts_with("down db_")),
                "{step}: {:?}",
                fake.calls()
            );
        }
        nothing_left(&home, &fake);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_never_gets_ready_rolls_back_everything() {
    let (_t, home, fake) = home("fake-create-ready");
    let req = CreateRequest {
        name: "shop".into(),
        ..Default::default()
    };
    let err = super::create_new(&home, req).await.unwrap_err();
    assert!(
        matches!(&err, Error::CreateFailed { cause, .. } if matches!(**cause, Error::Timeout { .. })),
        "{err}"
    );
    assert!(fake.calls().iter().any(|c| c.starts_with("down db_")));
    nothing_left(&home, &fake);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_that_fails_says_how_to_clean_up() {
    let (_t, home, fake) = home("fake-create-rollback");
    // The up fails, and so does the rollback's down.
    fake.fail_next("up");
    let req = CreateRequest {
        name: "shop".into(),
        ..Default::default()
    };
    fake.fail_next("down");
    let res = super::create_new(&home, req).await;
    let text = res.unwrap_err().to_string();
    assert!(text.contains("doctor --fix"), "{text}");
}

/// Two running instances recorded in the home (their directories written
/// as a create would), for the resize tests.
fn two_running(home: &Home) -> (crate::registry::Instance, crate::registry::Instance) {
    use crate::registry::Instance;
    let a = Instance::fixture("db_0000000a", "a", 45432);
    let b = Instance::fixture("db_0000000b", "b", 45433);
    recorded(home, &a);
    recorded(home, &b);
    (a, b)
}

/// The registry's entry and the compose file of `id`, to compare before
/// and after a refused resize.
fn state_of(home: &Home, id: &str) -> (String, String) {
    let reg = crate::registry::load(home).unwrap();
    let entry = serde_json::to_string(reg.find(id).unwrap()).unwrap();
    let file = std::fs::read_to_string(home.instance_dir(id).join("docker-compose.yml")).unwrap();
    (entry, file)
}

/// A resize of "a" that must be refused with `code`, and change nothing.
async fn refused(home: &Home, id: &str, req: super::resize::ResizeRequest, code: i32) -> String {
    let before = state_of(home, id);
    let e = super::resize::resize(home, "a", req).await.unwrap_err();
    assert_eq!(e.exit_code(), code, "{e}");
    assert_eq!(state_of(home, id), before, "{e}");
    e.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_resize_changes_nothing() {
    use super::resize::ResizeRequest;
    let (_t, home, fake) = home("fake-resize");
    let (a, b) = two_running(&home);
    let memory = || ResizeRequest {
        memory: Some("256m".into()),
        ..Default::default()
    };
    // The other instance's port: refused under the registry's lock.
    let port = ResizeRequest {
        port: Some(b.port as u32),
        ..Default::default()
    };
    assert!(refused(&home, &a.id, port, 4).await.contains("port"));
    // Docker refuses the new limits: the registry and the file keep the old.
    fake.fail_next("update_limits");
    let cpus = ResizeRequest {
        cpus: Some("0.5".into()),
        ..Default::default()
    };
    refused(&home, &a.id, cpus, 5).await;
    // Below what it uses (the container reports 400 MB in use).
    fake.exec_prints("419430400\n");
    let e = refused(&home, &a.id, memory(), 4).await;
    assert!(e.contains("uses 400m now"), "{e}");
    // What it uses cannot be read: refused as well.
    fake.exec_prints("");
    let e = refused(&home, &a.id, memory(), 1).await;
    assert!(e.contains("could not read the memory"), "{e}");
    // Nothing was started or restarted.
    assert!(
        !fake.calls().iter().any(|c| c.starts_with("up ")
            || c.starts_with("up_service")
            || c.starts_with("restart")),
        "{:?}",
        fake.calls()
    );
}

/// What the engine cannot do is refused before anything changes (the
/// fake, like one host's engine, has no nodes).
#[tokio::test(flavor = "multi_thread")]
async fn a_node_on_an_engine_without_nodes_is_refused_first() {
    let (_t, home, fake) = home("fake-create-node");
    let req = CreateRequest {
        name: "shop".into(),
        node: Some("n1".into()),
        ..Default::default()
    };
    let e = super::create_new(&home, req).await.unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("--node"), "{e}");
    assert_eq!(fake.calls(), Vec::<String>::new());
    nothing_left(&home, &fake);
}

/// An in-place restore whose recovery fails puts the original data
/// directory back (docs/commands.md promises it), keeps nothing aside and
/// says what happened.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_in_place_restore_puts_the_data_back() {
    use super::backup::restore::{restore_in_place, FromRepo, Target};
    let (_t, home, fake) = home("fake-in-place");
    let mut i = crate::registry::Instance::fixture("db_0000000c", "kept", 45434);
    i.backups = Some(crate::backups::BackupPolicy::default());
    recorded(&home, &i);
    let dir = home.instance_dir(&i.id);
    std::fs::write(dir.join("data").join("original"), b"x").unwrap();
    // One verified backup in the repository.
    let repo = home.backup_dir(&i.id);
    std::fs::create_dir_all(repo.join("repo/backup").join(&i.id).join("A")).unwrap();
    std::fs::write(
        repo.join("backups.json"),
        concat!(
            r#"{"ts":"2020-01-01T00:27:21Z","event":"backup","ok":true,"label":"A","type":"full","reason":"first","start":"2020-01-01T00:27:17Z","stop":"2020-01-01T00:27:21Z","start_lsn":"0/2","stop_lsn":"0/3","size_bytes":30,"repo_size_bytes":3,"duration_s":4}"#,
            "\n",
            r#"{"ts":"2020-01-01T00:27:30Z","event":"verify","label":"A","verified":true,"duration_s":6,"restore_s":4,"tables":1,"indexes_checked":1}"#,
            "\n"
        ),
    )
    .unwrap();
    fake.fail_next("run_once");
    let e = restore_in_place(&home, "kept", Target::Latest, FromRepo::Local)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("was put back"), "{text}");
    assert!(dir.join("data").join("original").exists(), "{text}");
    assert_eq!(super::backup::in_place::kept(&dir), Vec::<String>::new());
    let calls = fake.calls();
    let pos = |k: &str| calls.iter().position(|c| c.starts_with(k));
    assert!(
        pos("down").unwrap() < pos("run_once").unwrap() && pos("run_once") < pos("up "),
        "stopped, recovery tried, started again: {calls:?}"
    );
}

/// doctor warns about an S3 network that lets containers reach each other
/// (instances made before a create checked it), naming its instances and
/// how to remake it.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_an_s3_network_without_isolation() {
    let (_t, home, fake) = home("fake-doctor-s3");
    let mut i = crate::registry::Instance::fixture("db_0000000e", "old", 45436);
    i.backups = Some(crate::backups::BackupPolicy::default());
    let mut s3 = crate::backups::s3::parse(
        "endpoint=10.0.0.6\nbucket=b\nregion=r\naccess_key=AK\nsecret_key=SK\nnetwork=shared\n",
    )
    .unwrap()
    .repo;
    s3.network = Some("shared".into());
    i.s3 = Some(s3);
    crate::registry::update(&home, move |reg| {
        reg.instances.push(i);
        Ok(())
    })
    .unwrap();
    let warning = |f: &Vec<super::doctor::Finding>| {
        let v = serde_json::to_value(f).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "s3-network")
            .cloned()
    };
    let ok = super::doctor::run(&home, false).await.unwrap();
    assert!(warning(&ok).is_none(), "{:?}", warning(&ok));
    fake.fail_next("check_s3_network");
    let found = super::doctor::run(&home, false).await.unwrap();
    let w = warning(&found).expect("a finding for the network");
    assert_eq!(w["level"], "warning", "{w}");
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("old joined the S3 network 'shared'"),
        "{w}"
    );
    assert!(
        w["fix"]
            .as_str()
            .unwrap()
            .contains("enable_icc=false shared"),
        "{w}"
    );
}

/// Two nodes that take instances, for the move tests.
pub(crate) fn two_nodes() -> Vec<crate::engine::NodeInfo> {
    ["n1", "n2"]
        .iter()
        .enumerate()
        .map(|(i, n)| crate::engine::NodeInfo {
            id: format!("id{i}"),
            name: n.to_string(),
            address: format!("10.0.0.{}", i + 1),
            state: "ready".into(),
            availability: "active".into(),
            manager: i == 0,
            labels: [("dbaas".to_string(), "true".to_string())].into(),
            memory: 8 << 30,
            cpus: 2.0,
        })
        .collect()
}

/// A swarm instance on n1 (its stack written), running or stopped, on a
/// fake engine with two nodes.
fn on_node_one(label: &str, state: crate::registry::State) -> (TempDir, Home, Arc<FakeEngine>) {
    let (t, home, _) = home(label);
    let mut fake = FakeEngine::new(&home.root.join("instances"));
    fake.nodes = two_nodes();
    let fake = Arc::new(fake);
    install(&home.root, fake.clone());
    let mut i = crate::registry::Instance::fixture("db_0000000f", "mv", 45437);
    i.node = Some("n1".into());
    i.bind_address = "10.0.0.1".into();
    i.state = state;
    recorded(&home, &i);
    (t, home, fake)
}

fn node_of(home: &Home) -> (Option<String>, String) {
    let reg = crate::registry::load(home).unwrap();
    let i = reg.find("db_0000000f").unwrap();
    (i.node.clone(), i.bind_address.clone())
}

/// A move whose copy fails leaves the instance where it was; one whose
/// start on the new node fails (after the copy) goes back to the old node
/// and removes the new node's copy, and never the old one's.
#[tokio::test(flavor = "multi_thread")]
async fn a_move_that_fails_half_way_goes_back() {
    use crate::registry::State;
    let (_t, home, fake) = on_node_one("fake-move-copy", State::Stopped);
    fake.fail_next("move_data");
    let e = super::relocate::move_to(&home, "mv", "n2")
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    assert_eq!(node_of(&home), (Some("n1".into()), "10.0.0.1".into()));
    assert!(!fake.calls().iter().any(|c| c.starts_with("clear_node")));

    // Running: copied, then it does not get ready on n2 (nothing listens).
    let (_t, home, fake) = on_node_one("fake-move-start", State::Running);
    let e = super::relocate::move_to(&home, "mv", "n2")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(node_of(&home), (Some("n1".into()), "10.0.0.1".into()));
    let stack =
        std::fs::read_to_string(home.instance_dir("db_0000000f").join("stack.yml")).unwrap();
    assert!(stack.contains("node.hostname == n1"), "{stack}");
    let calls = fake.calls();
    assert!(
        calls.contains(&"move_data db_0000000f n1 n2".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"clear_node db_0000000f n2".to_string()),
        "{calls:?}"
    );
    assert!(
        !calls.contains(&"clear_node db_0000000f n1".to_string()),
        "{calls:?}"
    );
}

/// The rules that differ between engines come from the engine's answers,
/// not from its name: a fake that says what the swarm engine says gets the
/// swarm engine's refusals, each before anything changes.
#[tokio::test(flavor = "multi_thread")]
async fn the_parity_rules_follow_the_engines_capabilities() {
    let (_t, home, _) = home("fake-parity");
    let mut fake = FakeEngine::new(&home.root.join("instances"));
    fake.nodes = two_nodes();
    fake.capabilities = Some(crate::engine::Capabilities {
        warm_pool: false,
        s3_network: false,
        in_place_restore: false,
    });
    let fake = Arc::new(fake);
    install(&home.root, fake.clone());
    // A spare of the warm pool.
    let req = CreateRequest {
        name: "spare".into(),
        ..Default::default()
    };
    let e = crate::ops::create::create_begin_as(&home, &req, true)
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("DBAAS_WARM_POOL"), "{e}");
    // An S3 repository reached through a Docker network of one host.
    let s3 = crate::backups::s3::parse(
        "endpoint = s3.example.net\nbucket = b\nregion = r\naccess_key = k\nsecret_key = s\nnetwork = s3net\n",
    )
    .unwrap();
    let req = CreateRequest {
        name: "withs3".into(),
        s3: crate::backups::s3::S3Choice::Given(Box::new(s3)),
        ..Default::default()
    };
    let e = crate::ops::create(&home, req).await.expect_err("refused");
    assert!(e.to_string().contains("Docker network"), "{e}");
    nothing_left(&home, &fake);
    assert!(
        fake.calls().iter().all(|c| !c.starts_with("up")),
        "{:?}",
        fake.calls()
    );
    // An in-place restore.
    let mut i = crate::registry::Instance::fixture("db_0000000b", "inplace", 45438);
    i.node = Some("n1".into());
    i.backups = Some(crate::backups::BackupPolicy::default());
    recorded(&home, &i);
    let e = crate::ops::backup::restore::restore_in_place(
        &home,
        "inplace",
        crate::ops::backup::restore::Target::Latest,
        crate::ops::backup::restore::FromRepo::Local,
    )
    .await
    .expect_err("refused");
    assert!(e.to_string().contains("--to NEW"), "{e}");
    assert!(
        fake.calls().iter().all(|c| !c.starts_with("down")),
        "{:?}",
        fake.calls()
    );
}
