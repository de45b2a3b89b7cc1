//! The settings read from a table of variables.

use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_vars(
        |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        PathBuf::from("/srv"),
    )
}

#[test]
fn port_range_parses_and_rejects() {
    assert_eq!(parse_port_range("5432-5999").unwrap(), (5432, 5999));
    assert_eq!(parse_port_range("40000-40000").unwrap(), (40000, 40000));
    for bad in ["", "5432", "6000-5000", "80-90", "a-b", "1-70000"] {
        assert!(parse_port_range(bad).is_err(), "{bad}");
    }
}

#[test]
fn concurrency_defaults_within_the_pool_and_is_checked() {
    let cpus = host_cpus() as u32;
    let s = settings(&[]).unwrap();
    assert_eq!(s.db.concurrency, (2 * cpus).clamp(2, 8));
    assert_eq!(
        settings(&[("DBAAS_POOL_SIZE", "1")])
            .unwrap()
            .db
            .concurrency,
        1
    );
    let s = settings(&[("DBAAS_POOL_SIZE", "20"), ("DBAAS_DB_CONCURRENCY", "20")]).unwrap();
    assert_eq!((s.db.pool_size, s.db.concurrency), (20, 20));
    for bad in ["0", "9", "x", "-1"] {
        let e = settings(&[("DBAAS_DB_CONCURRENCY", bad)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("DBAAS_DB_CONCURRENCY") && e.contains("DBAAS_POOL_SIZE"),
            "{e}"
        );
    }
}

#[test]
fn every_bad_value_names_its_variable() {
    for (name, bad) in [
        ("DBAAS_PORT_RANGE", "1-2"),
        ("DBAAS_BIND_ADDRESS", "localhost"),
        ("DBAAS_IMAGE", "x y"),
        ("DBAAS_READY_TIMEOUT", "2m"),
        ("DBAAS_METRICS_MAX_BYTES", "10"),
        ("DBAAS_METRICS_KEEP", "101"),
        ("DBAAS_MAX_MEMORY", "lots"),
        ("DBAAS_MIN_FREE_DISK", "-1"),
        ("DBAAS_PROVISION_SLOTS", "0"),
        ("DBAAS_POOL_SIZE", "0"),
        ("DBAAS_MAX_ROWS", "0"),
        ("DBAAS_MAX_RESULT_BYTES", "10"),
        ("DBAAS_STATEMENT_TIMEOUT", "0s"),
        ("DBAAS_CONNECT_TIMEOUT", "soon"),
        ("DBAAS_MAX_CONNECTIONS", "0"),
        ("DBAAS_REQUEST_TIMEOUT", "x"),
        ("DBAAS_API_TOKEN", "short"),
        ("DBAAS_WORKER_THREADS", "0"),
        ("DBAAS_PROVISION", "fast"),
        ("DBAAS_SUBNET_POOL", "10.0.0.1/16"),
        ("DBAAS_SUBNET_POOL", "10.0.0.0"),
        ("DBAAS_SUBNET_PREFIX", "30"),
        ("DBAAS_WARM_POOL", "15"),
        ("DBAAS_WARM_POOL", "16=1"),
        ("DBAAS_WARM_POOL", "15=x"),
        ("DBAAS_WARM_POOL", "15=1,15=2"),
    ] {
        let e = settings(&[(name, bad)]).unwrap_err().to_string();
        assert!(e.contains(name), "{name}={bad}: {e}");
    }
}

#[test]
fn subnet_pool_and_warm_pool() {
    let s = settings(&[]).unwrap();
    assert_eq!(
        (s.subnet_pool.to_string(), s.subnet_prefix),
        ("10.199.0.0/16".into(), 28)
    );
    assert!(s.warm_pool.is_empty());
    let e = settings(&[
        ("DBAAS_SUBNET_POOL", "10.0.0.0/26"),
        ("DBAAS_SUBNET_PREFIX", "24"),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("DBAAS_SUBNET_PREFIX"), "{e}");
    let s = settings(&[("DBAAS_WARM_POOL", "15=2, 17=1,13=0")]).unwrap();
    assert_eq!(s.warm_pool, [(15, 2), (17, 1)]);
    assert!(settings(&[("DBAAS_WARM_POOL", "off")])
        .unwrap()
        .warm_pool
        .is_empty());
}

#[test]
fn provisioning_path_and_template_dir() {
    let s = settings(&[]).unwrap();
    assert_eq!((s.provision, s.template_dir), (Provision::Template, None));
    let s = settings(&[("DBAAS_PROVISION", "initdb"), ("DBAAS_TEMPLATE_DIR", "t")]).unwrap();
    assert_eq!(s.provision, Provision::Initdb);
    assert_eq!(s.template_dir, Some(PathBuf::from("/srv/t")));
}

#[test]
fn home_is_made_absolute_and_the_token_is_never_printed() {
    assert_eq!(settings(&[]).unwrap().root, PathBuf::from("/srv"));
    assert_eq!(
        settings(&[("DBAAS_HOME", "h")]).unwrap().root,
        PathBuf::from("/srv/h")
    );
    let s = settings(&[("DBAAS_API_TOKEN", "0123456789abcdef-secret")]).unwrap();
    assert!(!format!("{s:?}").contains("secret"));
    assert_eq!(s.image_for(15), "dbaas/postgres:15");
}
