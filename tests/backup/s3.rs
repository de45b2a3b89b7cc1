//! The S3 repository on a real S3-compatible server: encrypted backups, and
//! a restore when the local repository is lost.

use super::*;

/// The S3-compatible server of these tests: moto behind stunnel (image
/// dbaas/s3test, built by scripts/setup-host.sh), as docs/backups.md tells an
/// operator to run one: on a network of its own, its port published on the
/// gateway of an S3 network this test creates with container-to-container
/// traffic off, so that the instances joined to that network reach the
/// server and not each other. Removed on drop.
struct S3Server {
    network: String,
    container: String,
    gateway: String,
}

impl S3Server {
    fn start(tag: &str) -> S3Server {
        let suffix = format!(
            "{}-{tag}-{:x}",
            std::process::id(),
            Instant::now().elapsed().subsec_nanos()
        );
        let (network, container) = (
            format!("dbaas-test-s3-{suffix}"),
            format!("dbaas-test-s3-{suffix}"),
        );
        docker_ok(&[
            "network",
            "create",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "--label",
            "dbaas.test=1",
            &network,
        ]);
        let gateway = docker_ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}}",
            &network,
        ])
        .trim()
        .to_string();
        let s = S3Server {
            network,
            container,
            gateway,
        };
        docker_ok(&[
            "run",
            "-d",
            "--rm",
            "--name",
            &s.container,
            "--label",
            "dbaas.test=1",
            "-p",
            &format!("{}:443:443", s.gateway),
            "dbaas/s3test",
            "dbaas-test",
        ]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker_ok(&["logs", &s.container]).contains("s3-server: bucket") {
            assert!(Instant::now() < deadline, "the S3 server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        s
    }

    /// A settings file (0600) for this server.
    fn settings(&self, h: &TestHome) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = h.root.join("s3.conf");
        // The server's certificate is self-signed, hence verify_tls = n.
        std::fs::write(
            &path,
            format!(
                "endpoint = {}\nbucket = dbaas-test\nregion = us-east-1\nuri_style = path\n\
                 verify_tls = n\naccess_key = AKIATEST\nsecret_key = TopSecretKey123\nnetwork = {}\n",
                self.gateway, self.network
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

/// The instance's backups once its first S3 backup is verified.
fn first_s3_backup(h: &TestHome, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let v = h.run(&["backups", name, "--json"]).json();
        if v["s3"]["backups"]
            .as_array()
            .is_some_and(|b| !b.is_empty() && b[0]["verified"].is_boolean())
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no verified S3 backup of {name} after 240 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_s3_repository_gets_every_backup_encrypted_and_restores_when_the_local_one_is_lost() {
    if !docker_required() {
        return;
    }
    // Declared first, so dropped after the instances that use its network.
    let s3 = S3Server::start("repo");
    let h = TestHome::new("s3");
    let settings = s3.settings(&h);

    // Bad settings change nothing.
    use std::os::unix::fs::PermissionsExt;
    let loose = h.root.join("loose.conf");
    std::fs::copy(&settings, &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = h
        .run(&["create", "nope", "--s3", loose.to_str().unwrap()])
        .fails_with(2);
    assert!(err.contains("chmod 600"), "{err}");
    let err = h
        .run(&["create", "nope", "--s3", &settings, "--no-backups"])
        .fails_with(2);
    assert!(err.contains("no backups"), "{err}");
    // A network whose containers reach each other is refused.
    let open_net = format!("{}-open", s3.network);
    docker_ok(&["network", "create", "--label", "dbaas.test=1", &open_net]);
    let open_settings = h.root.join("open.conf");
    std::fs::write(
        &open_settings,
        std::fs::read_to_string(&settings)
            .unwrap()
            .replace(&s3.network, &open_net),
    )
    .unwrap();
    std::fs::set_permissions(&open_settings, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = h
        .run(&["create", "nope", "--s3", open_settings.to_str().unwrap()])
        .fails_with(2);
    docker_ok(&["network", "rm", &open_net]);
    assert!(err.contains("enable_icc=false"), "{err}");
    assert!(h.registry_text().is_none_or(|t| !t.contains("nope")));
    assert!(h.instance_dirs().is_empty(), "{:?}", h.instance_dirs());

    let (id, _, _) = with_rows(&h, "s3src", &["--s3", &settings], 300);
    // On the S3 network, the containers reach the S3 server (on the
    // gateway) and not each other: the backup sidecar cannot open the db
    // container's port there.
    let db_ip = docker_ok(&[
        "inspect",
        "-f",
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            s3.network
        ),
        &format!("{id}-db-1"),
    ])
    .trim()
    .to_string();
    assert!(!db_ip.is_empty());
    let probe = std::process::Command::new("docker")
        .args([
            "exec",
            &format!("{id}-backup-1"),
            "timeout",
            "3",
            "bash",
            "-c",
        ])
        .arg(format!("echo > /dev/tcp/{db_ip}/5432"))
        .output()
        .unwrap();
    assert!(
        !probe.status.success(),
        "a container on the S3 network reached another's port 5432"
    );
    let dir = h.root.join("instances").join(&id);
    let conf = std::fs::read_to_string(dir.join("pgbackrest.conf")).unwrap();
    assert!(
        conf.contains("repo2-type=s3") && conf.contains("repo2-cipher-type=aes-256-cbc"),
        "{conf}"
    );
    assert!(conf.contains(&format!("repo2-path=/dbaas/{id}")), "{conf}");
    // The keys are in 0600 files only: not in the generated files people
    // read, not in the registry, not in any output.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("secrets/pgbackrest_s3.conf")), 0o600);
    // Beside the repository the host keeps them where no container
    // reaches (config/kept/<id>/), not in backups/<id>/ (mounted into the
    // containers).
    assert_eq!(
        mode(&h.root.join("config/kept").join(&id).join("s3.json")),
        0o600
    );
    assert!(!h.root.join("backups").join(&id).join("s3.json").exists());
    assert!(!h
        .root
        .join("backups")
        .join(&id)
        .join("instance.json")
        .exists());
    for text in [
        conf,
        std::fs::read_to_string(dir.join("docker-compose.yml")).unwrap(),
        h.registry_text().unwrap(),
        h.run(&["show", "s3src", "--json"]).ok(),
    ] {
        assert!(!text.contains("TopSecretKey123"), "a key leaked: {text}");
    }
    let shown = h.run(&["show", "s3src", "--json"]).json();
    assert_eq!(shown["s3"]["endpoint"], s3.gateway.as_str(), "{shown}");

    let v = first_s3_backup(&h, "s3src");
    assert_eq!(v["s3"]["backups"][0]["verified"], true, "{v}");
    let listed = h.run(&["backups", "s3src"]).ok();
    assert!(listed.contains("in the S3 repository"), "{listed}");
    // The bucket holds the repository encrypted.
    let backup = format!("{id}-backup-1");
    let info = docker_ok(&[
        "exec",
        "-u",
        "postgres",
        &backup,
        "pgbackrest",
        &format!("--stanza={id}"),
        "--repo=2",
        "info",
        "--output=json",
    ]);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info[0]["repo"][0]["cipher"], "aes-256-cbc", "{info}");

    // Rows written after the backups reach S3 through WAL archiving; then
    // the local repository is lost.
    let url = h.run(&["url", "s3src"]).ok().trim().to_string();
    connect(&url)
        .execute(
            "INSERT INTO w (at) SELECT now() FROM generate_series(1, 50)",
            &[],
        )
        .unwrap();
    std::fs::remove_dir_all(h.root.join("backups").join(&id).join("repo")).unwrap();
    let err = h
        .run(&["restore", "s3src", "--to", "nope", "--from", "gcs"])
        .fails_with(2);
    assert!(err.contains("local or s3"), "{err}");

    let r = h
        .run(&[
            "restore", "s3src", "--to", "s3dst", "--from", "s3", "--json",
        ])
        .json();
    let restored = r["url"].as_str().unwrap();
    assert_eq!(
        ids(restored).len(),
        350,
        "every committed row, from S3 alone"
    );
    // The restored instance backs up to S3 too, under its own path.
    let new_id = r["instance"]["id"].as_str().unwrap();
    let conf = std::fs::read_to_string(
        h.root
            .join("instances")
            .join(new_id)
            .join("pgbackrest.conf"),
    )
    .unwrap();
    assert!(
        conf.contains(&format!("repo2-path=/dbaas/{new_id}")),
        "{conf}"
    );

    // destroy --delete-backups deletes the S3 copy too.
    let in_bucket = || {
        docker_ok(&[
            "exec",
            "-u",
            "postgres",
            &backup,
            "pgbackrest",
            &format!("--stanza={id}"),
            "--repo=2",
            "--repo2-path=/dbaas",
            "repo-ls",
        ])
    };
    // The restored instance's sidecar creates its stanza once it runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !in_bucket().contains(new_id) {
        assert!(
            Instant::now() < deadline,
            "no stanza of {new_id} in S3: {}",
            in_bucket()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    h.run(&["destroy", "s3dst", "--yes", "--delete-backups"])
        .ok();
    let listed = in_bucket();
    assert!(!listed.contains(new_id) && listed.contains(&id), "{listed}");

    // An instance without S3 refuses an S3 restore, naming why.
    h.create("plain", &["--no-s3"]);
    let err = h
        .run(&["restore", "plain", "--to", "nope", "--from", "s3"])
        .fails_with(4);
    assert!(err.contains("no S3 repository"), "{err}");
}
