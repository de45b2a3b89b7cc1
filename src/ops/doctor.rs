//! `dbaasctl doctor`: checks the host and that the registry agrees with the
//! containers and directories; each finding names its fix, and `--fix`
//! repairs what is safe (never deletes a data directory that might matter).

use super::{creator_alive, interrupted, remove_instance, resume};
use crate::backups::Concern;
use crate::engine::{self, Container, ContainerState, Engine, PsMap, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::metrics;
use crate::registry::{self, Instance, Registry, State};
use crate::validate::SUPPORTED_VERSIONS;
use serde::{Serialize, Serializer};
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// What `--fix` did about a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fixed {
    Done(String),
    Failed(String),
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fixed::Done(s) => f.write_str(s),
            Fixed::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

impl Fixed {
    fn from<T>(res: Result<T>, done: impl FnOnce(T) -> String) -> Fixed {
        match res {
            Ok(v) => Fixed::Done(done(v)),
            Err(e) => Fixed::Failed(e.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub level: Level,
    pub check: String,
    pub message: String,
    pub fix: Option<String>,
    /// What `--fix` did, when it acted.
    pub fixed: Option<Fixed>,
}

fn finding(level: Level, check: &str, message: String, fix: Option<String>) -> Finding {
    Finding {
        level,
        check: check.into(),
        message,
        fix,
        fixed: None,
    }
}

pub async fn run(home: &Home, fix: bool) -> Result<Vec<Finding>> {
    let engine = engine::of(home);
    let mut out = vec![finding(Level::Ok, "engine", engine.describe().into(), None)];
    for c in engine.host_checks().await {
        let failed = c.outcome.is_err();
        out.push(match c.outcome {
            Ok(m) => finding(Level::Ok, c.check, m, None),
            Err(m) => finding(Level::Error, c.check, m, Some(c.fix.into())),
        });
        if failed && c.fatal {
            // Nothing else can be checked without it.
            return Ok(out);
        }
    }
    let reg = match registry::load(home) {
        Ok(r) => r,
        Err(e) => {
            out.push(finding(
                Level::Error,
                "registry",
                e.to_string(),
                Some("restore config/instances.json from a backup or fix it by hand".into()),
            ));
            return Ok(out);
        }
    };
    out.push(finding(
        Level::Ok,
        "registry",
        format!(
            "{} readable, {} instance(s)",
            home.registry_path().display(),
            reg.instances.len()
        ),
        None,
    ));
    out.extend(images(home, engine.as_ref(), &reg).await);
    out.extend(s3_networks(engine.as_ref(), &reg).await);
    let ps = engine.ps(None).await?;
    out.extend(orphan_containers(engine.as_ref(), &reg, &ps, fix).await);
    for inst in &reg.instances {
        out.extend(instance(home, engine.as_ref(), inst, ps.get(&inst.id), fix).await);
    }
    out.extend(orphan_directories(home, &reg));
    Ok(out)
}

/// The images of the supported versions: an error if an instance uses a
/// missing one, a warning otherwise.
async fn images(home: &Home, engine: &dyn Engine, reg: &Registry) -> Vec<Finding> {
    let used: HashSet<&str> = reg.instances.iter().map(|i| i.image.as_str()).collect();
    let mut out = vec![];
    for v in SUPPORTED_VERSIONS {
        let image = home.settings.image_for(*v);
        let present = engine.image_present(&image).await;
        let level = match (present, used.contains(image.as_str())) {
            (true, _) => Level::Ok,
            (false, true) => Level::Error,
            (false, false) => Level::Warning,
        };
        out.push(finding(
            level,
            "image",
            format!("{image} {}", if present { "present" } else { "missing" }),
            (!present).then(|| format!("scripts/build-image.sh {v}")),
        ));
    }
    out
}

/// The S3 networks instances joined (made before a create checked them):
/// a warning for one whose containers can reach each other.
async fn s3_networks(engine: &dyn Engine, reg: &Registry) -> Vec<Finding> {
    let mut joined: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for i in reg.instances.iter().filter(|i| i.backups.is_some()) {
        if let Some(n) = i.s3.as_ref().and_then(|s| s.network.as_deref()) {
            joined.entry(n).or_default().push(i.name.as_str());
        }
    }
    let mut out = vec![];
    for (network, names) in joined {
        if let Err(e) = engine.check_s3_network(network).await {
            out.push(finding(
                Level::Warning,
                "s3-network",
                format!("{} joined the S3 network '{network}': {e}", names.join(", ")),
                Some(format!(
                    "`dbaasctl down` each of them, `docker network rm {network}`, `docker network create -o com.docker.network.bridge.enable_icc=false {network}`, then `dbaasctl up` each; an S3 server that was on that network is reached on its gateway instead (docs/backups.md)"
                )),
            ));
        }
    }
    out
}

/// Containers whose instance is not in the registry.
async fn orphan_containers(
    engine: &dyn Engine,
    reg: &Registry,
    ps: &PsMap,
    fix: bool,
) -> Vec<Finding> {
    let mut out = vec![];
    for (id, containers) in ps {
        if reg.find(id).is_some() {
            continue;
        }
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        let mut f = finding(
            Level::Error,
            "orphan-containers",
            format!("containers of unknown instance {id}: {}", names.join(", ")),
            Some(format!(
                "docker compose -p {id} down (or dbaasctl doctor --fix)"
            )),
        );
        if fix {
            f.fixed = Some(Fixed::from(engine.down(id).await, |_| "removed".into()));
        }
        out.push(f);
    }
    out
}

/// One registry entry against its containers and directory.
async fn instance(
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
    let db = containers.and_then(|cs| engine::service_of(cs, &Service::Db));
    if let Some(c) = db.filter(|c| c.state == ContainerState::NodeDown) {
        out.push(node_down(inst, c, &label));
        return out;
    }
    let running = db.is_some_and(Container::running);
    out.push(consistency(inst, running, &label));
    if inst.state == State::Running && running {
        out.extend(agent(home, engine, inst, containers, &label));
    }
    for c in super::backup::protection::concerns(home, inst).0 {
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
            super::destroy::remove_unfinished(home, &inst.id).await,
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
        .and_then(|cs| engine::service_of(cs, &Service::Agent))
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

/// Directories that no registry entry owns (e.g. kept by destroy --keep-data).
fn orphan_directories(home: &Home, reg: &Registry) -> Vec<Finding> {
    let Ok(entries) = std::fs::read_dir(home.instances_dir()) else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("db_") || reg.find(&name).is_some() {
                return None;
            }
            Some(finding(
                Level::Warning,
                "orphan-directory",
                format!("{} belongs to no instance (kept data?)", e.path().display()),
                Some(format!(
                    "remove it by hand when its data is not needed: rm -rf {}",
                    e.path().display()
                )),
            ))
        })
        .collect()
}

/// Exit status of `doctor`: failing when any error is left unfixed.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings
        .iter()
        .any(|f| f.level == Level::Error && !matches!(f.fixed, Some(Fixed::Done(_))))
}

pub fn as_error(findings: &[Finding]) -> Option<Error> {
    has_errors(findings).then(|| Error::Failed("doctor found problems (see above)".into()))
}
