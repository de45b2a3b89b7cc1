//! A new instance's place, taken under the registry lock: a free name, a
//! free port (the registry's and a real bind), a fresh id, its network and
//! its node; recorded as `creating` before anything else is made.

use super::capacity::Budget;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::oplog::now_rfc3339;
use crate::registry::{self, Instance, Registry, State};
use crate::validate::ValidCreate;
use std::net::{IpAddr, TcpListener};

/// Under the registry lock: the name is free, the port is free (registry and
/// a real bind), a fresh id; records the instance as `creating`.
pub(super) fn allocate(
    home: &Home,
    v: &ValidCreate,
    image: &str,
    budget: &Budget,
    spare: bool,
    nodes: Option<&[crate::engine::NodeInfo]>,
) -> Result<Instance> {
    registry::update(home, |reg| {
        let placement = match nodes {
            Some(ns) => Some(super::placement::choose(
                reg,
                ns,
                v.memory,
                v.node.as_deref(),
            )?),
            None => {
                budget.check_memory(reg, v.memory)?;
                None
            }
        };
        // A swarm instance's port is on its node: only the registry can
        // say whether it is taken there.
        let local = placement.is_none();
        if !spare {
            name_is_free(reg, &v.name)?;
        }
        let port = choose_port(home, reg, v.port, local)?;
        // Swarm makes a stack's networks itself.
        let subnet = match placement {
            None => Some(pick_subnet(home, reg)?.to_string()),
            Some(_) => None,
        };
        let id = loop {
            let id = crate::secrets::instance_id();
            // Nor a destroyed instance's kept backups: the new instance
            // would write into (and restore from) another's repository.
            if reg.find(&id).is_none()
                && !home.instance_dir(&id).exists()
                && std::fs::symlink_metadata(home.backup_dir(&id)).is_err()
            {
                break id;
            }
        };
        let now = now_rfc3339();
        let inst = Instance {
            id,
            name: v.name.clone(),
            version: v.version,
            image: image.to_string(),
            memory: v.memory,
            cpus: v.cpus,
            port,
            bind_address: match &placement {
                Some(p) => p.address.clone(),
                None => home.settings.bind_address.to_string(),
            },
            database: v.database.clone(),
            user: v.user.clone(),
            state: State::Creating,
            created_at: now.clone(),
            updated_at: now,
            creator_pid: Some(std::process::id()),
            intent: None,
            intent_pid: None,
            error: None,
            metrics_interval: v.metrics_interval,
            metrics_max_bytes: home.settings.metrics_max_bytes,
            metrics_keep: home.settings.metrics_keep,
            backups: v.backups.clone(),
            s3: v.s3.clone(),
            pending_restart: vec![],
            subnet,
            spare,
            node: placement.map(|p| p.node),
            tls: true,
            allow_plaintext: v.allow_plaintext,
        };
        reg.instances.push(inst.clone());
        Ok(inst)
    })
}

/// The asked-for port if no instance holds it and (`local`: on this host)
/// it binds, else the lowest free one of the range.
fn choose_port(home: &Home, reg: &Registry, asked: Option<u16>, local: bool) -> Result<u16> {
    let addr = home.settings.bind_address;
    if let Some(p) = asked {
        if let Some(other) = reg.instances.iter().find(|i| i.port == p) {
            return Err(Error::Conflict(format!(
                "port {p} is already used by instance '{}'; choose another --port or omit it",
                other.name
            )));
        }
        if local && !port_is_free(addr, p) {
            return Err(Error::Conflict(format!(
                "port {p} is already in use on {addr}; choose another --port or omit it"
            )));
        }
        return Ok(p);
    }
    let range = home.settings.port_range;
    pick_port(reg, range, |p| !local || port_is_free(addr, p)).ok_or_else(|| {
        Error::Conflict(format!(
            "no free port in {}-{}; destroy unused instances or widen DBAAS_PORT_RANGE",
            range.0, range.1
        ))
    })
}

/// No instance (but a spare) has the name `name`.
pub(super) fn name_is_free(reg: &Registry, name: &str) -> Result<()> {
    if reg.owned().any(|i| i.name == name) {
        return Err(Error::Conflict(format!(
            "an instance named '{name}' already exists; choose another name or `dbaasctl destroy {name}` first"
        )));
    }
    Ok(())
}

/// Under the registry lock: the first block of the subnet pool that no
/// instance of this home holds and no network of the host overlaps.
pub fn pick_subnet(home: &Home, reg: &Registry) -> Result<crate::subnet::Net> {
    let taken: Vec<crate::subnet::Net> = reg
        .instances
        .iter()
        .filter_map(|i| i.subnet.as_deref())
        .filter_map(|s| crate::subnet::Net::parse(s).ok())
        .collect();
    crate::subnet::pick(
        home.settings.subnet_pool,
        home.settings.subnet_prefix,
        &taken,
        &crate::subnet::host_routes(),
    )
}

/// The lowest port of the range that no instance holds and `is_free` accepts.
pub fn pick_port(reg: &Registry, range: (u16, u16), is_free: impl Fn(u16) -> bool) -> Option<u16> {
    let taken: std::collections::HashSet<u16> = reg.instances.iter().map(|i| i.port).collect();
    (range.0..=range.1).find(|p| !taken.contains(p) && is_free(*p))
}

pub fn port_is_free(addr: IpAddr, port: u16) -> bool {
    TcpListener::bind((addr, port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::create::host;
    use crate::validate::CreateRequest;

    fn reg_with_ports(ports: &[u16]) -> Registry {
        let mut r = Registry::default();
        for (n, p) in ports.iter().enumerate() {
            let i = Instance::fixture(&format!("db_{n:08x}"), &format!("n{n}"), *p);
            r.instances.push(i);
        }
        r
    }

    #[test]
    fn picks_lowest_free_port() {
        let r = reg_with_ports(&[5432, 5433, 5435]);
        assert_eq!(pick_port(&r, (5432, 5440), |_| true), Some(5434));
        assert_eq!(pick_port(&r, (5432, 5440), |p| p != 5434), Some(5436));
        assert_eq!(pick_port(&r, (5432, 5433), |_| true), None);
    }

    #[test]
    fn validate_create_defaults_and_errors() {
        let v = crate::validate::create(
            &CreateRequest {
                name: "demo".into(),
                ..Default::default()
            },
            host(),
        )
        .unwrap();
        assert_eq!((v.version, v.memory, v.cpus), (15, 512 << 20, 1.0));
        assert_eq!((v.database.as_str(), v.user.as_str()), ("app", "app"));
        let bad = CreateRequest {
            name: "demo".into(),
            port: Some(80),
            ..Default::default()
        };
        assert!(
            matches!(crate::validate::create(&bad, host()), Err(Error::Invalid { ref field, .. }) if field == "port")
        );
    }
}
