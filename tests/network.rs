//! The instances' networks (issue 13): each instance has its own bridge
//! network on a block of the address pool dbaas manages, so the host is not
//! limited to Docker's ~30 default pools, and a container of one instance
//! still cannot reach another's. A pool over the host's own network is
//! refused with nothing changed.

mod common;
use common::*;

fn subnet_of(id: &str) -> String {
    docker_ok(&[
        "network",
        "inspect",
        &format!("{id}_default"),
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
    ])
}

fn ip_of(id: &str) -> String {
    docker_ok(&[
        "inspect",
        &format!("{id}-db-1"),
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    ])
}

/// Whether the db container of `from` opens a TCP connection to ip:5432.
fn reaches(from: &str, ip: &str) -> bool {
    std::process::Command::new("docker")
        .args([
            "exec",
            &format!("{from}-db-1"),
            "timeout",
            "3",
            "bash",
            "-c",
            &format!("echo > /dev/tcp/{ip}/5432"),
        ])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn each_instance_has_its_own_network_from_the_pool_and_cannot_reach_another() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("net");
    let (a, _) = h.create("na", &["--no-backups"]);
    let (b, _) = h.create("nb", &["--no-backups"]);
    let pool = dbaas::subnet::Net::parse(&h.subnet_pool()).unwrap();
    let (sa, sb) = (subnet_of(&a), subnet_of(&b));
    assert_ne!(sa, sb);
    for s in [&sa, &sb] {
        let net = dbaas::subnet::Net::parse(s).unwrap();
        assert!(
            net.prefix == 28 && pool.overlaps(net),
            "{s} is not a /28 of {pool}"
        );
    }
    let reg = h.registry();
    let recorded: Vec<&str> = reg["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["subnet"].as_str().unwrap())
        .collect();
    assert!(recorded.contains(&sa.as_str()) && recorded.contains(&sb.as_str()));
    // The probe works (an instance reaches its own address) and is refused
    // across instances.
    assert!(reaches(&a, &ip_of(&a)));
    assert!(!reaches(&a, &ip_of(&b)), "{a} reached {b}");
    assert!(!reaches(&b, &ip_of(&a)), "{b} reached {a}");
    // The block comes back when its instance goes.
    h.run(&["destroy", "na", "--yes"]).ok();
    let (c, _) = h.create("nc", &["--no-backups"]);
    assert_eq!(subnet_of(&c), sa);
}

#[test]
fn a_pool_over_the_hosts_own_network_is_refused_and_changes_nothing() {
    if !docker_required() {
        return;
    }
    let lan = dbaas::subnet::host_routes()
        .into_iter()
        .find(|r| r.iface != "docker0" && !r.iface.starts_with("br-") && r.iface != "lo")
        .expect("the host routes to a network of its own (/proc/net/route)");
    let h = TestHome::new("netbad").with_env("DBAAS_SUBNET_POOL", &lan.net.to_string());
    let err = h.run(&["create", "x", "--no-backups"]).fails_with(2);
    assert!(
        err.contains("DBAAS_SUBNET_POOL") && err.contains(&lan.iface),
        "{err}"
    );
    assert!(h.instance_dirs().is_empty());
    let reg = h.registry();
    assert!(
        reg["instances"].as_array().is_none_or(|a| a.is_empty()),
        "{reg}"
    );
    // Bad values of the settings themselves are named too.
    let err = h
        .run_env(&["list"], &[("DBAAS_SUBNET_POOL", "10.1.2.3/16")])
        .fails_with(2);
    assert!(
        err.contains("DBAAS_SUBNET_POOL") && err.contains("10.1.0.0/16"),
        "{err}"
    );
}
