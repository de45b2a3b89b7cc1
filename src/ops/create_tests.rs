use super::*;

#[test]
fn a_shared_passphrase_in_the_host_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = crate::testing::TempDir::new("host-s3");
    let f = d.join("s3.conf");
    let base = "endpoint = s3.example.net\nbucket = b\nregion = r\naccess_key = AKIAEXAMPLE\nsecret_key = 0123456789abcdef\n";
    std::fs::write(&f, base).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!host_s3(&f, "a").unwrap().secrets.cipher_pass_given);
    std::fs::write(&f, format!("{base}cipher_pass = one-pass-for-everyone\n")).unwrap();
    let e = host_s3(&f, "a").unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { field, reason } if field == "DBAAS_S3" && reason.contains("cipher_pass")),
        "{e}"
    );
    // The same file for one instance (--s3 FILE) may name its own.
    assert!(
        crate::backups::s3::read(&f)
            .unwrap()
            .secrets
            .cipher_pass_given
    );
}

#[test]
fn each_instance_takes_its_own_keys_from_the_keys_dir() {
    use std::os::unix::fs::PermissionsExt;
    let d = crate::testing::TempDir::new("host-s3-keys");
    let keys = d.join("keys");
    std::fs::create_dir(&keys).unwrap();
    let private = |p: &std::path::Path, text: &str| {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let f = d.join("s3.conf");
    private(
        &f,
        &format!(
            "endpoint = s3.example.net\nbucket = b\nregion = r\npath = /dbaas\nkeys_dir = {}\n",
            keys.display()
        ),
    );
    private(
        &keys.join("a.conf"),
        "access_key = AKIAA\nsecret_key = secret-of-a\npath = /dbaas/a\n",
    );
    private(
        &keys.join("b.conf"),
        "access_key = AKIAB\nsecret_key = secret-of-b\n",
    );
    let a = host_s3(&f, "a").unwrap();
    let b = host_s3(&f, "b").unwrap();
    assert_eq!(
        (a.secrets.access_key.as_str(), a.repo.path.as_str()),
        ("AKIAA", "/dbaas/a")
    );
    assert_eq!(
        (b.secrets.access_key.as_str(), b.repo.path.as_str()),
        ("AKIAB", "/dbaas")
    );
    assert_ne!(a.secrets.cipher_pass, b.secrets.cipher_pass);
    // No file for the instance: refused, naming the file to write.
    let e = host_s3(&f, "c").unwrap_err().to_string();
    assert!(e.contains("c.conf") && e.contains("--no-s3"), "{e}");
    // A key file may not move the endpoint, nor be readable by others.
    private(
        &keys.join("d.conf"),
        "access_key = AKIAD\nsecret_key = s\nendpoint = evil.example\n",
    );
    assert!(host_s3(&f, "d")
        .unwrap_err()
        .to_string()
        .contains("endpoint"));
    std::fs::set_permissions(keys.join("b.conf"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(host_s3(&f, "b")
        .unwrap_err()
        .to_string()
        .contains("chmod 600"));
    // keys_dir belongs in the host file only.
    assert!(crate::backups::s3::read(&f).is_err());
}

#[test]
fn url_uses_loopback_for_wildcard_bind() {
    let home = Home::new(crate::settings::Settings::with_root("/srv/my home".into()));
    let mut i = Instance::fixture("db_00000000", "n0", 6000);
    i.bind_address = "0.0.0.0".into();
    i.tls = false;
    assert_eq!(
        connection_url(&home, &i, "pw"),
        "postgresql://app:pw@127.0.0.1:6000/app"
    );
    // With TLS: verified against the home's authority, as libpq reads it.
    i.tls = true;
    assert_eq!(
        connection_url(&home, &i, "pw"),
        "postgresql://app:pw@127.0.0.1:6000/app?sslmode=verify-full&sslrootcert=/srv/my%20home/config/ca/ca.crt"
    );
}
