//! Doctor's checks of the host as a whole: the images, the S3 networks,
//! containers and directories that belong to no instance.

use super::{finding, Finding, Fixed, Level};
use crate::engine::{Engine, PsMap};
use crate::home::Home;
use crate::registry::Registry;
use crate::validate::SUPPORTED_VERSIONS;
use std::collections::HashSet;
/// The images of the supported versions: an error if an instance uses a
/// missing one, a warning otherwise.
pub(super) async fn images(home: &Home, engine: &dyn Engine, reg: &Registry) -> Vec<Finding> {
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
pub(super) async fn s3_networks(engine: &dyn Engine, reg: &Registry) -> Vec<Finding> {
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
pub(super) async fn orphan_containers(
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

/// Directories that no registry entry owns (e.g. kept by destroy --keep-data).
pub(super) fn orphan_directories(home: &Home, reg: &Registry) -> Vec<Finding> {
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
