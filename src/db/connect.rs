//! How to reach an instance's PostgreSQL from the host: its address, its
//! connection string, and a client configuration as its app user. Shared by
//! the lifecycle (readiness), the pools and the faces.

use crate::home::Home;
use crate::registry::Instance;
use std::net::IpAddr;

/// The host clients should connect to: the bind address, or loopback when
/// bound to every interface.
pub fn connect_host(inst: &Instance) -> String {
    match inst.bind_address.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "127.0.0.1".into(),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => inst.bind_address.clone(),
    }
}

pub fn pg_config(inst: &Instance, password: &str) -> postgres::Config {
    let mut cfg = postgres::Config::new();
    cfg.host(connect_host(inst).trim_matches(|c| c == '[' || c == ']'))
        .port(inst.port)
        .user(&inst.user)
        .password(password)
        .dbname(&inst.database)
        .application_name("dbaasctl");
    cfg
}

/// The app user's connection string. An instance with TLS is verified as
/// libpq does it (`sslmode=verify-full`, the home's authority as root).
pub fn connection_url(home: &Home, inst: &Instance, password: &str) -> String {
    let mut url = format!(
        "postgresql://{}:{}@{}:{}/{}",
        inst.user,
        password,
        connect_host(inst),
        inst.port,
        inst.database
    );
    if inst.tls {
        url.push_str("?sslmode=verify-full&sslrootcert=");
        url.push_str(&percent_encode(&ca_file(home).to_string_lossy()));
    }
    url
}

/// The home's authority certificate, which clients trust.
pub fn ca_file(home: &Home) -> std::path::PathBuf {
    crate::certs::ca_cert_path(&home.config_dir())
}

/// A URL query value: unreserved characters and `/` as they are.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
