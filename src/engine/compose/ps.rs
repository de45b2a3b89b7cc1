//! Containers as `docker ps` (its JSON lines) or the daemon's socket list
//! them, gathered by instance and service.

use crate::engine::{Container, ContainerState, Health, PsMap, Service};
use serde::Deserialize;
use std::collections::HashMap;

pub const PS_FORMAT: &str = r#"{"Names":{{json .Names}},"State":{{json .State}},"Status":{{json .Status}},"Labels":{{json .Labels}}}"#;

#[derive(Deserialize)]
struct PsLine {
    #[serde(rename = "Names")]
    names: String,
    #[serde(rename = "State")]
    state: String,
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Labels")]
    labels: String,
}

/// Docker's status text carries the health check's result.
fn health_of(status: &str) -> Option<Health> {
    if status.contains("(healthy)") {
        Some(Health::Healthy)
    } else if status.contains("(unhealthy)") {
        Some(Health::Unhealthy)
    } else if status.contains("(health: starting)") {
        Some(Health::Starting)
    } else {
        None
    }
}

pub fn parse_ps(stdout: &str) -> PsMap {
    let lines = stdout.lines().filter(|l| !l.trim().is_empty());
    containers_map(lines.filter_map(|line| {
        let Ok(p) = serde_json::from_str::<PsLine>(line) else {
            log::warn!("unexpected docker ps line: {line}");
            return None;
        };
        let labels = p
            .labels
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some((p.names, p.state, p.status, labels))
    }))
}

/// Containers (name, state, status text, labels) by instance; those
/// without an instance label are not dbaas's.
pub fn containers_map(
    list: impl Iterator<Item = (String, String, String, HashMap<String, String>)>,
) -> PsMap {
    let mut map: PsMap = HashMap::new();
    for (name, state, status, labels) in list {
        let Some(instance) = labels.get("dbaas.instance") else {
            continue;
        };
        let service = labels
            .get("com.docker.compose.service")
            .map(String::as_str)
            .unwrap_or("");
        // A one-off (`compose run`, such as a recovery) is not the service.
        let service = if labels.get("com.docker.compose.oneoff").map(String::as_str) == Some("True")
        {
            Service::Other(format!("{service}-run"))
        } else {
            Service::parse(service)
        };
        map.entry(instance.to_string())
            .or_default()
            .push(Container {
                name,
                service,
                state: ContainerState::parse(&state),
                health: health_of(&status),
                status,
            });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ps_json_lines() {
        let out = r#"{"Names":"db_1-db-1","State":"running","Status":"Up 2 seconds (health: starting)","Labels":"com.docker.compose.service=db,dbaas.instance=db_1,dbaas.home=x"}
{"Names":"other","State":"exited","Status":"Exited (0)","Labels":"foo=bar"}
garbage"#;
        let m = parse_ps(out);
        assert_eq!(m.len(), 1);
        let c = &m["db_1"][0];
        assert_eq!(c.service, Service::Db);
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(c.health, Some(Health::Starting));
    }
}
