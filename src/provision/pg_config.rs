//! PostgreSQL's settings that dbaas derives for an instance: sized to its
//! memory, written by the entrypoint at each start and by `resize` live.

/// PostgreSQL settings derived from an instance's memory limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    pub shared_buffers: String,
    pub effective_cache_size: String,
    pub temp_file_limit: String,
}

/// A quarter of the limit for shared buffers (PostgreSQL's usual advice),
/// at least 16MB; the planner may assume three quarters cached; a runaway
/// sort or hash may spill four times the limit to disk per session (at
/// least 1 GB), not fill the host's disk.
pub fn tuning(memory: u64) -> Tuning {
    Tuning {
        shared_buffers: format!("{}MB", ((memory / 4) >> 20).max(16)),
        effective_cache_size: format!("{}MB", ((memory * 3 / 4) >> 20).max(16)),
        temp_file_limit: format!("{}MB", ((memory * 4) >> 20).max(1024)),
    }
}

/// data/dbaas-tuning.conf, which postgresql.conf includes: written by the
/// entrypoint at each start, and by `resize` on a running instance.
pub const TUNING_FILE: &str = "dbaas-tuning.conf";

pub fn render_tuning(t: &Tuning) -> String {
    format!(
        "# Sized to the container's memory by dbaas (the compose file's environment at\n\
         # each start; `dbaasctl resize` while it runs). ALTER SYSTEM overrides it.\n\
         shared_buffers = '{}'\neffective_cache_size = '{}'\ntemp_file_limit = '{}'\n",
        t.shared_buffers, t.effective_cache_size, t.temp_file_limit
    )
}
