//! The front door: `make demo` builds only the default version's image and
//! leaves the others building in the background, under a lock that a
//! create for one of them waits on (src/engine/image_lock.rs).

mod common;
use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A create whose image is still being built waits for the build, says so,
/// and succeeds once the image is there; without a build it fails at once.
#[test]
fn a_create_waits_for_its_image_being_built() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("front-door");
    let repo = format!("dbaas/test-building-{:08x}", rand_u32());
    let image_template = format!("{repo}:{{version}}");
    let env = [("DBAAS_IMAGE", image_template.as_str())];
    // No build: the missing image is an error at once, nothing made.
    let err = h
        .run_env(&["create", "early", "--no-backups"], &env)
        .fails_with(5);
    assert!(err.contains("is missing"), "{err}");
    assert!(h.instance_dirs().is_empty());

    // A build holds the lock (as scripts/setup-host.sh does).
    std::fs::create_dir_all("/run/dbaas").unwrap();
    let lock = format!("/run/dbaas/image-{}_15.lock", repo.replace('/', "_"));
    let _cleanup = Cleanup {
        lock: lock.clone(),
        image: format!("{repo}:15"),
    };
    let mut holder = Command::new("flock")
        .args([&lock, "-c", "read x"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("flock(1) from util-linux");
    let held = Instant::now() + Duration::from_secs(30);
    while !std::path::Path::new(&lock).exists() {
        assert!(Instant::now() < held, "flock did not make {lock}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = h.root.join("create.err");
    let mut create = h.command(&["create", "waiter", "--no-backups"]);
    create
        .env("DBAAS_IMAGE", &image_template)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut create = create.spawn().unwrap();
    let said = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("is being built") {
            break;
        }
        assert!(
            create.try_wait().unwrap().is_none(),
            "the create ended while the image was being built: {text}"
        );
        assert!(
            Instant::now() < said,
            "the create did not say it waits: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The build ends: the image appears, the lock goes.
    docker_ok(&["tag", "dbaas/postgres:15", &format!("{repo}:15")]);
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let status = create.wait().unwrap();
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let show = h.run(&["show", "waiter", "--json"]);
    assert!(status.success(), "{text}");
    assert_eq!(show.json()["status"], "running");
}

/// The test's lock file and image tag go whatever happens.
struct Cleanup {
    lock: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
        let _ = Command::new("docker").args(["rmi", &self.image]).output();
    }
}
