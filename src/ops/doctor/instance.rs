//! Doctor's checks of one instance: its containers against its registry
//! entry, a create under way, a node down, its agent and its backups.

use super::{finding, Finding, Fixed, Level};
use crate::backups::Concern;
use crate::engine::{Container, ContainerState, Engine, Service};
use crate::home::Home;
use crate::metrics;
use crate::ops::{creator_alive, interrupted, remove_instance, resume};
use crate::registry::{Instance, State};
/// One registry entry against its containers and directory.
pub(super) async fn instance(
    home: &Home,
    engine: &dyn Engine,
    inst: &Instance,
    containers: Option<&Vec<Container>>,
    fix: bool,
) -> Vec<Finding> {
    let label = format!("'{}' ({})", inst.name, inst.id);
    if inst.state == State::Creating {
        return vec![creating(home, inst, &label, fix).await];
    }
    let mut out = vec![];
    if let Some(what) = interrupted(inst) {
        let mut f = finding(
            Level::Warning,
            "interrupted-operation",
            format!(
                "{label}: a {what} was cut short (process {} is gone)",
                inst.intent_pid.unwrap_or(0)
            ),
            Some("dbaasctl doctor --fix (runs it again to its end)".into()),
        );
        if fix {
            f.fixed = Some(Fixed::from(resume(home, &inst.id).await, |done| {
                done.unwrap_or_else(|| "nothing left to do".into())
            }));
            return vec![f];
        }
        out.push(f);
    }
    if !engine.provisioned(&inst.id) {
        let dir = home.instance_dir(&inst.id);
        let mut f = finding(
            Level::Error,
            "missing-directory",
            format!("{label}: {} is missing (its data is gone)", dir.display()),
            Some(format!(
                "dbaasctl destroy {} --yes (or dbaasctl doctor --fix)",
                inst.id
            )),
        );
        if fix {
            f.fixed = Some(Fixed::from(
                remove_instance(home, &inst.id, true, true).await,
                |_| "removed containers and registry entry".into(),
            ));
        }
        out.push(f);
        return out;
    }
    let db = containers.and_then(|cs| crate::engine::service_of(cs, &Service::Db));
    if let Some(c) = db.filter(|c| c.state == ContainerState::NodeDown) {
        out.push(node_down(inst, c, &label));
        return out;
    }
    let running = db.is_some_and(Container::running);
    out.push(consistency(inst, running, &label));
    if inst.state == State::Running && running {
        out.extend(agent(home, engine, inst, containers, &label));
    }
    if let Some(at) = crate::ops::tls::expiry(home, inst) {
        out.extend(certificate(inst, at, &label));
    }
    for c in crate::ops::backup::protection::concerns(home, inst).0 {
        // A failed backup is retried by the sidecar (after a minute, then
        // less often): a warning; no verified backup, or archiving failing, is
        // an error.
        let level = match c {
            Concern::Stale { .. } | Concern::BackupFailed { .. } => Level::Warning,
            _ => Level::Error,
        };
        out.push(finding(
            level,
            "backups",
            format!("{label}: {c}"),
            Some(format!(
                "dbaasctl backups {} shows them; dbaasctl backup {} takes and verifies a new one",
                inst.name, inst.name
            )),
        ));
    }
    out
}

/// A server certificate that expires within 30 days (or has).
fn certificate(inst: &Instance, at: i64, label: &str) -> Option<Finding> {
    let left = at - crate::ops::tls::now();
    if left > crate::ops::tls::WARN_BEFORE_SECS {
        return None;
    }
    let when = match left {
        l if l <= 0 => "has expired".to_string(),
        l => format!("expires in {} day(s)", l / 86400),
    };
    Some(finding(
        if left <= 0 { Level::Error } else { Level::Warning },
        "tls-certificate",
        format!("{label}: its server certificate {when}"),
        Some(format!(
            "`dbaasctl restart {}` gives it a new one (renewal without a restart, and on a swarm, is not built yet)",
            inst.name
        )),
    ))
}

/// An instance whose swarm node is down or drained.
fn node_down(inst: &Instance, db: &Container, label: &str) -> Finding {
    let node = inst.node.as_deref().unwrap_or("?");
    finding(
        Level::Error,
        "node-down",
        format!(
            "{label}: {}; it does not run, and it is never started on another node (its data is on {node})",
            db.status
        ),
        Some(format!(
            "bring {node} back (a drained node: docker node update --availability active {node}); if it is gone for good, docker node rm --force {node} on a manager, then dbaasctl destroy {}",
            inst.name
        )),
    )
}

/// An entry recorded as `creating`: fine while its creator runs.
async fn creating(home: &Home, inst: &Instance, label: &str, fix: bool) -> Finding {
    if creator_alive(inst) {
        return finding(
            Level::Ok,
            "instance",
            format!("{label} is being created"),
            None,
        );
    }
    let mut f = finding(
        Level::Error,
        "interrupted-create",
        format!("{label} was being created by a process that is gone"),
        Some(format!(
            "dbaasctl destroy {} --yes (or dbaasctl doctor --fix)",
            inst.id
        )),
    );
    if fix {
        f.fixed = Some(Fixed::from(
            crate::ops::destroy::remove_unfinished(home, &inst.id).await,
            |_| "removed containers, directory, repository and registry entry".into(),
        ));
    }
    f
}

/// The recorded state against whether PostgreSQL's container runs.
fn consistency(inst: &Instance, running: bool, label: &str) -> Finding {
    match inst.state {
        State::Running if !running => finding(
            Level::Warning,
            "missing-containers",
            format!("{label} should be running but its PostgreSQL container is not"),
            Some(format!("dbaasctl up {}", inst.name)),
        ),
        State::Stopped if running => finding(
            Level::Warning,
            "unexpected-containers",
            format!("{label} is recorded as stopped but its container runs"),
            Some(format!(
                "dbaasctl down {} (or dbaasctl up {} to record it)",
                inst.name, inst.name
            )),
        ),
        State::Failed => finding(
            Level::Warning,
            "failed-instance",
            format!(
                "{label} failed to provision: {}",
                inst.error.as_deref().unwrap_or("?")
            ),
            Some(format!("dbaasctl destroy {} --yes", inst.id)),
        ),
        _ => finding(Level::Ok, "instance", format!("{label} consistent"), None),
    }
}

/// The monitoring agent of a running instance: its container runs and its
/// latest sample is fresh. Instances created before the agent existed have
/// no `agent` service and are left alone.
fn agent(
    home: &Home,
    engine: &dyn Engine,
    inst: &Instance,
    containers: Option<&Vec<Container>>,
    label: &str,
) -> Option<Finding> {
    if !engine.defines(&inst.id, &Service::Agent) {
        return None;
    }
    let agent_up = containers
        .and_then(|cs| crate::engine::service_of(cs, &Service::Agent))
        .is_some_and(Container::running);
    if !agent_up {
        return Some(finding(
            Level::Warning,
            "monitoring-agent",
            format!("{label}: the monitoring agent's container is not running"),
            Some(format!(
                "dbaasctl restart {} (or POST /monitoring/{}/agent/restart)",
                inst.name, inst.id
            )),
        ));
    }
    let latest = metrics::tail::last_samples(&metrics::dir_of(home, &inst.id), 1);
    match latest.first().and_then(metrics::Sample::age_seconds) {
        Some(age) if metrics::stale(age, inst.metrics_interval) => Some(finding(
            Level::Warning,
            "monitoring-agent",
            format!(
                "{label}: the latest metrics sample is {age:.0} s old (interval {} s)",
                inst.metrics_interval
            ),
            Some(format!(
                "dbaasctl restart {} (the agent's log: GET /monitoring/{}/agent/logs)",
                inst.name, inst.id
            )),
        )),
        _ => None,
    }
}
