//! resize: memory and CPUs changed on the running container (no restart),
//! the settings derived from memory rewritten and reloaded (those that need
//! a restart reported as pending until one), the port by recreating the
//! container. The registry and compose file keep the new size for the next
//! `up`. Every refusal comes before anything changes.

use super::capacity::Budget;
use super::lifecycle::operate;
use super::ready::wait_ready;
use super::views::{status_view, InstanceView};
use super::{blocking, find};
use crate::engine::{self, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::provision;
use crate::registry::{self, Instance, Intent, State};
use serde::Serialize;
use std::time::Duration;

/// What a resize asks for; at least one field.
#[derive(Debug, Clone, Default)]
pub struct ResizeRequest {
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub port: Option<u32>,
    /// Restart now, so that restart-only settings apply.
    pub restart: bool,
}

/// What a resize did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Resized {
    pub instance: InstanceView,
    /// PostgreSQL was restarted (a port change, or `restart`).
    pub restarted: bool,
    /// Settings that take effect at the next restart.
    pub pending_restart: Vec<String>,
}

/// A running instance must keep this much above what it uses now.
const MARGIN: u64 = 16 << 20;

pub async fn resize(home: &Home, key: &str, req: ResizeRequest) -> Result<Resized> {
    if req.memory.is_none() && req.cpus.is_none() && req.port.is_none() && !req.restart {
        return Err(Error::invalid(
            "resize",
            "nothing to change: give --memory, --cpus or --port (or --restart)",
        ));
    }
    let inst = find(home, key).await?;
    let host = (crate::settings::host_memory(), crate::settings::host_cpus());
    let memory = match &req.memory {
        Some(m) => crate::validate::memory(m, host.0)?,
        None => inst.memory,
    };
    let cpus = match &req.cpus {
        Some(c) => crate::validate::cpus(c, host.1)?,
        None => inst.cpus,
    };
    let port = req.port.map(crate::validate::port).transpose()?;
    let (h, id) = (home.clone(), inst.id.clone());
    let others = blocking(move || {
        let mut reg = registry::load(&h)?;
        reg.remove(&id);
        Budget::of(&h).check_memory(&reg, memory)?;
        Ok(reg)
    })
    .await?;
    if let Some(node) = &inst.node {
        let nodes = engine::nodes_of(engine::of(home).as_ref()).await?;
        super::placement::check_node(&others, &nodes, node, memory)?;
    }
    if inst.state == State::Running && memory < inst.memory {
        let used = memory_in_use(home, &inst).await?;
        if memory < used + MARGIN {
            return Err(Error::Conflict(format!(
                "'{}' uses {} now; {} would leave it less than {} of room. Give at least {}",
                inst.name,
                crate::validate::format_bytes(used),
                crate::validate::format_bytes(memory),
                crate::validate::format_bytes(MARGIN),
                crate::validate::format_bytes(used + MARGIN),
            )));
        }
    }
    let target = Target {
        memory,
        cpus,
        port,
        restart: req.restart,
    };
    let restarted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = restarted.clone();
    let view = operate(home, key, Intent::Start, move |inst| async move {
        apply(home, inst, target, &r).await
    })
    .await?;
    Ok(Resized {
        pending_restart: view.pending_restart.clone(),
        restarted: restarted.load(std::sync::atomic::Ordering::Relaxed),
        instance: view,
    })
}

#[derive(Clone, Copy)]
struct Target {
    memory: u64,
    cpus: f64,
    port: Option<u16>,
    restart: bool,
}

async fn apply(
    home: &Home,
    inst: Instance,
    t: Target,
    restarted: &std::sync::atomic::AtomicBool,
) -> Result<InstanceView> {
    let engine = engine::of(home);
    let running = inst.state == State::Running;
    let new_port = t.port.filter(|p| *p != inst.port);
    // Limits first: if Docker refuses them, nothing else has changed.
    if running && new_port.is_none() {
        engine
            .update_limits(&inst.id, &Service::Db, t.memory, t.cpus)
            .await?;
    }
    let updated = record(home, &inst.id, t, new_port).await?;
    let dir = home.instance_dir(&updated.id);
    let (d, u, tag) = (dir.clone(), updated.clone(), home.tag());
    blocking(move || provision::rewrite(&d, &u, &crate::engine::project_file(&u, &tag))).await?;
    if !running {
        return status_view(home, &updated).await;
    }
    let mut pending = vec![];
    if new_port.is_some() || t.restart {
        // A new container from the rewritten compose file: the new port,
        // limits and environment (from which the entrypoint writes the
        // tuning file) all apply.
        engine.apply_changes(&updated.id).await?;
        let d = dir.clone();
        let password = blocking(move || provision::app_password(&d)).await?;
        wait_ready(home, &updated, &password).await?;
        restarted.store(true, std::sync::atomic::Ordering::Relaxed);
    } else {
        pending = retune(home, &updated).await?;
    }
    let (h, id) = (home.clone(), updated.id.clone());
    let updated = blocking(move || {
        registry::update(&h, |reg| {
            let i = reg.find_mut(&id).ok_or_else(|| registry::not_found(&id))?;
            i.pending_restart = pending;
            Ok(i.clone())
        })
    })
    .await?;
    status_view(home, &updated).await
}

/// The new size in the registry, the port checked free under its lock.
async fn record(home: &Home, id: &str, t: Target, port: Option<u16>) -> Result<Instance> {
    let (h, id) = (home.clone(), id.to_string());
    blocking(move || {
        registry::update(&h, |reg| {
            if let Some(p) = port {
                let addr = h.settings.bind_address;
                if reg.instances.iter().any(|i| i.port == p && i.id != id)
                    || !super::create::port_is_free(addr, p)
                {
                    return Err(Error::Conflict(format!(
                        "port {p} is taken; choose another with --port"
                    )));
                }
            }
            let i = reg.find_mut(&id).ok_or_else(|| registry::not_found(&id))?;
            i.memory = t.memory;
            i.cpus = t.cpus;
            if let Some(p) = port {
                i.port = p;
            }
            Ok(i.clone())
        })
    })
    .await
}

/// Rewrites data/dbaas-tuning.conf for the new memory, reloads, and
/// returns the settings PostgreSQL says need a restart.
async fn retune(home: &Home, inst: &Instance) -> Result<Vec<String>> {
    let text = provision::render_tuning(&provision::tuning(inst.memory));
    let sql = |q: &str| crate::db::privileged::psql_argv("postgres", q);
    let engine = engine::of(home);
    // Written from inside the container, atomically and owned as the data
    // directory is: on a swarm node the data is a volume only the node has.
    let write = format!(
        "umask 022; f=\"$PGDATA/{}\"; printf '%s' \"$1\" >\"$f.new\" && chown --reference=\"$PGDATA\" \"$f.new\" && mv -f \"$f.new\" \"$f\"",
        provision::TUNING_FILE
    );
    let argv: Vec<String> = vec!["sh".into(), "-c".into(), write, "sh".into(), text];
    engine.exec(&inst.id, &Service::Db, &argv, QUICK).await?;
    engine
        .exec(
            &inst.id,
            &Service::Db,
            &sql("SELECT pg_catalog.pg_reload_conf()"),
            QUICK,
        )
        .await?;
    // The postmaster reloads asynchronously: a new session sees the file's
    // effect once it has (bounded).
    let want = provision::tuning(inst.memory).effective_cache_size;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let q = "SELECT pg_catalog.current_setting('effective_cache_size') || '|' || coalesce(pg_catalog.string_agg(name, ',' ORDER BY name), '') FROM pg_catalog.pg_settings WHERE pending_restart";
    loop {
        let out = engine.exec(&inst.id, &Service::Db, &sql(q), QUICK).await?;
        let (ecs, pending) = out.trim().split_once('|').unwrap_or((out.trim(), ""));
        if same_size(ecs, &want) || std::time::Instant::now() > deadline {
            return Ok(pending
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const QUICK: Duration = Duration::from_secs(30);

/// PostgreSQL shows `384MB` as `384MB` but `1024MB` as `1GB`.
fn same_size(shown: &str, want: &str) -> bool {
    let mb = |s: &str| -> Option<u64> {
        let s = s.trim();
        if let Some(n) = s.strip_suffix("GB") {
            n.parse::<u64>().ok().map(|n| n * 1024)
        } else {
            s.strip_suffix("MB").and_then(|n| n.parse().ok())
        }
    };
    mb(shown).is_some() && mb(shown) == mb(want)
}

/// What the db container uses now, as `docker stats` counts it (the
/// cgroup's usage less its inactive file cache).
async fn memory_in_use(home: &Home, inst: &Instance) -> Result<u64> {
    let script = "if [ -r /sys/fs/cgroup/memory.current ]; then \
        u=$(cat /sys/fs/cgroup/memory.current); i=$(awk '$1==\"inactive_file\"{print $2}' /sys/fs/cgroup/memory.stat); \
        else u=$(cat /sys/fs/cgroup/memory/memory.usage_in_bytes); i=$(awk '$1==\"total_inactive_file\"{print $2}' /sys/fs/cgroup/memory/memory.stat); fi; \
        echo $((u - ${i:-0}))";
    let argv: Vec<String> = ["sh", "-c", script].map(String::from).into();
    let out = engine::of(home)
        .exec(&inst.id, &Service::Db, &argv, QUICK)
        .await?;
    out.trim().parse().map_err(|_| {
        Error::Failed(format!(
            "could not read the memory '{}' uses now ({}); resize it while it runs",
            inst.name,
            out.trim()
        ))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_compare_across_units() {
        assert!(super::same_size("1GB", "1024MB"));
        assert!(super::same_size("384MB", "384MB"));
        assert!(!super::same_size("128MB", "384MB"));
        assert!(!super::same_size("", "384MB"));
    }
}
