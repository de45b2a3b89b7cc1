//! `dbaasctl doctor`: checks the host and that the registry agrees with the
//! containers and directories; each finding names its fix, and `--fix`
//! repairs what is safe (never deletes a data directory that might matter).

use crate::compose;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::ops;
use crate::registry::{self, State};
use crate::validate::SUPPORTED_VERSIONS;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Serialize)]
pub struct Finding {
    /// ok, warning or error
    pub level: &'static str,
    pub check: String,
    pub message: String,
    pub fix: Option<String>,
    /// What `--fix` did, when it acted.
    pub fixed: Option<String>,
}

fn finding(level: &'static str, check: &str, message: String, fix: Option<String>) -> Finding {
    Finding {
        level,
        check: check.into(),
        message,
        fix,
        fixed: None,
    }
}

pub async fn run(home: &Home, fix: bool) -> Result<Vec<Finding>> {
    let mut out = vec![];

    // Docker daemon and Compose v2.
    match compose::docker(
        home,
        &["version", "--format", "{{.Server.Version}}"],
        None,
        compose::QUICK_TIMEOUT,
    )
    .await
    {
        Ok(o) => out.push(finding(
            "ok",
            "docker",
            format!("Docker Engine {} reachable", o.stdout.trim()),
            None,
        )),
        Err(e) => {
            out.push(finding(
                "error",
                "docker",
                e.to_string(),
                Some("start the daemon: systemctl start docker (or dockerd &)".into()),
            ));
            // Nothing else can be checked without the daemon.
            return Ok(out);
        }
    }
    match compose::docker(
        home,
        &["compose", "version", "--short"],
        None,
        compose::QUICK_TIMEOUT,
    )
    .await
    {
        Ok(o) if o.stdout.trim().trim_start_matches('v').starts_with('2') => out.push(finding(
            "ok",
            "compose",
            format!("Compose {} present", o.stdout.trim()),
            None,
        )),
        Ok(o) => out.push(finding(
            "error",
            "compose",
            format!("Compose {} is not v2", o.stdout.trim()),
            Some("run scripts/setup-host.sh".into()),
        )),
        Err(e) => out.push(finding(
            "error",
            "compose",
            e.to_string(),
            Some("run scripts/setup-host.sh".into()),
        )),
    }

    // The registry.
    let reg = match registry::load(home) {
        Ok(r) => {
            out.push(finding(
                "ok",
                "registry",
                format!(
                    "{} readable, {} instance(s)",
                    home.registry_path().display(),
                    r.instances.len()
                ),
                None,
            ));
            r
        }
        Err(e) => {
            out.push(finding(
                "error",
                "registry",
                e.to_string(),
                Some("restore config/instances.json from a backup or fix it by hand".into()),
            ));
            return Ok(out);
        }
    };

    // Images: an error if an instance uses a missing one.
    let used: HashSet<&str> = reg.instances.iter().map(|i| i.image.as_str()).collect();
    for v in SUPPORTED_VERSIONS {
        let image = home.settings.image_for(*v);
        let present = compose::docker(
            home,
            &["image", "inspect", "--format", "{{.Id}}", &image],
            None,
            compose::QUICK_TIMEOUT,
        )
        .await
        .is_ok();
        let level = match (present, used.contains(image.as_str())) {
            (true, _) => "ok",
            (false, true) => "error",
            (false, false) => "warning",
        };
        out.push(finding(
            level,
            "image",
            format!("{image} {}", if present { "present" } else { "missing" }),
            (!present).then(|| format!("scripts/build-image.sh {v}")),
        ));
    }

    let ps = compose::ps(home, None).await?;

    // Containers whose instance is not in the registry.
    for (id, containers) in &ps {
        if reg.find(id).is_some() {
            continue;
        }
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        let mut f = finding(
            "error",
            "orphan-containers",
            format!("containers of unknown instance {id}: {}", names.join(", ")),
            Some(format!(
                "docker compose -p {id} down (or dbaasctl doctor --fix)"
            )),
        );
        if fix {
            f.fixed = Some(
                match compose::down(home, id, &home.instance_dir(id)).await {
                    Ok(()) => "removed".into(),
                    Err(e) => format!("failed: {e}"),
                },
            );
        }
        out.push(f);
    }

    // Registry entries against containers and directories.
    for inst in &reg.instances {
        let dir = home.instance_dir(&inst.id);
        let has_dir = dir.join("docker-compose.yml").is_file();
        let containers = ps.get(&inst.id);
        let label = format!("'{}' ({})", inst.name, inst.id);
        if inst.state == State::Creating && !ops::creator_alive(inst) {
            let mut f = finding(
                "error",
                "interrupted-create",
                format!("{label} was being created by a process that is gone"),
                Some(format!(
                    "dbaasctl destroy {} --yes (or dbaasctl doctor --fix)",
                    inst.id
                )),
            );
            if fix {
                f.fixed = Some(match ops::remove_instance(home, &inst.id, false).await {
                    Ok(()) => "removed containers, directory and registry entry".into(),
                    Err(e) => format!("failed: {e}"),
                });
            }
            out.push(f);
            continue;
        }
        if inst.state == State::Creating {
            out.push(finding(
                "ok",
                "instance",
                format!("{label} is being created"),
                None,
            ));
            continue;
        }
        if let Some(what) = ops::interrupted(inst) {
            let mut f = finding(
                "warning",
                "interrupted-operation",
                format!(
                    "{label}: a {what} was cut short (process {} is gone)",
                    inst.intent_pid.unwrap_or(0)
                ),
                Some("dbaasctl doctor --fix (runs it again to its end)".into()),
            );
            if fix {
                f.fixed = Some(match ops::resume(home, &inst.id).await {
                    Ok(Some(done)) => done,
                    Ok(None) => "nothing left to do".into(),
                    Err(e) => format!("failed: {e}"),
                });
                out.push(f);
                continue;
            }
            out.push(f);
        }
        if !has_dir {
            let mut f = finding(
                "error",
                "missing-directory",
                format!("{label}: {} is missing (its data is gone)", dir.display()),
                Some(format!(
                    "dbaasctl destroy {} --yes (or dbaasctl doctor --fix)",
                    inst.id
                )),
            );
            if fix {
                f.fixed = Some(match ops::remove_instance(home, &inst.id, true).await {
                    Ok(()) => "removed containers and registry entry".into(),
                    Err(e) => format!("failed: {e}"),
                });
            }
            out.push(f);
            continue;
        }
        let running = containers
            .and_then(|cs| compose::db_of(cs))
            .is_some_and(|c| c.state == "running");
        match inst.state {
            State::Running if !running => out.push(finding(
                "warning",
                "missing-containers",
                format!("{label} should be running but its PostgreSQL container is not"),
                Some(format!("dbaasctl up {}", inst.name)),
            )),
            State::Stopped if running => out.push(finding(
                "warning",
                "unexpected-containers",
                format!("{label} is recorded as stopped but its container runs"),
                Some(format!(
                    "dbaasctl down {} (or dbaasctl up {} to record it)",
                    inst.name, inst.name
                )),
            )),
            State::Failed => out.push(finding(
                "warning",
                "failed-instance",
                format!(
                    "{label} failed to provision: {}",
                    inst.error.as_deref().unwrap_or("?")
                ),
                Some(format!("dbaasctl destroy {} --yes", inst.id)),
            )),
            _ => out.push(finding(
                "ok",
                "instance",
                format!("{label} consistent"),
                None,
            )),
        }
        if inst.state == State::Running && running {
            if let Some(f) = agent_finding(home, inst, containers, &label) {
                out.push(f);
            }
        }
    }

    // Directories that no registry entry owns (e.g. kept by destroy --keep-data).
    if let Ok(entries) = std::fs::read_dir(home.instances_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("db_") || reg.find(&name).is_some() {
                continue;
            }
            out.push(finding(
                "warning",
                "orphan-directory",
                format!("{} belongs to no instance (kept data?)", e.path().display()),
                Some(format!(
                    "remove it by hand when its data is not needed: rm -rf {}",
                    e.path().display()
                )),
            ));
        }
    }
    Ok(out)
}

/// The monitoring agent of a running instance: its container runs and its
/// latest sample is at most three intervals old. Instances created before
/// the agent existed have no `agent` service and are left alone.
fn agent_finding(
    home: &Home,
    inst: &registry::Instance,
    containers: Option<&Vec<compose::Container>>,
    label: &str,
) -> Option<Finding> {
    let compose_file =
        crate::safe_fs::read_to_string(&home.instance_dir(&inst.id).join("docker-compose.yml"))
            .ok()?;
    if !compose_file.contains("\n  agent:\n") {
        return None;
    }
    let agent_up = containers
        .and_then(|cs| cs.iter().find(|c| c.service == "agent"))
        .is_some_and(|c| c.state == "running");
    if !agent_up {
        return Some(finding(
            "warning",
            "monitoring-agent",
            format!("{label}: the monitoring agent's container is not running"),
            Some(format!(
                "dbaasctl restart {} (or POST /monitoring/{}/agent/restart)",
                inst.name, inst.id
            )),
        ));
    }
    let limit = 3.0 * inst.metrics_interval as f64;
    let latest = crate::metrics::tail::last(&crate::metrics::dir_of(home, &inst.id), 1);
    match latest.first().and_then(crate::metrics::age_seconds) {
        Some(age) if age > limit => Some(finding(
            "warning",
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

/// Exit status of `doctor`: failing when any error is left unfixed.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings
        .iter()
        .any(|f| f.level == "error" && f.fixed.as_deref().is_none_or(|s| s.starts_with("failed")))
}

pub fn as_error(findings: &[Finding]) -> Option<Error> {
    has_errors(findings).then(|| Error::Failed("doctor found problems (see above)".into()))
}
