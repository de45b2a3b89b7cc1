//! dbaas: self-hosted PostgreSQL instances on one Docker host. The library
//! holds everything below the command line, shared by `dbaasctl` (CLI and
//! server), the integration tests and the benchmarks.

pub mod api;
pub mod backups;
pub mod certs;
pub mod db;
pub mod engine;
pub mod error;
pub mod home;
pub mod layers;
pub mod metrics;
pub mod oplog;
pub mod ops;
pub mod provision;
pub mod registry;
pub mod safe_fs;
pub mod secrets;
pub mod settings;
pub mod subnet;
#[cfg(test)]
pub mod testing;
pub mod top_dir;
pub mod validate;
