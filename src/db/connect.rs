//! How to reach an instance's PostgreSQL from the host: its address, its
//! connection string, and a client configuration as its app user. Shared by
//! the lifecycle (readiness), the pools and the faces.

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

pub fn connection_url(inst: &Instance, password: &str) -> String {
    format!(
        "postgresql://{}:{}@{}:{}/{}",
        inst.user,
        password,
        connect_host(inst),
        inst.port,
        inst.database
    )
}
