//! The instance commands: create, resize, move, list, show, destroy, nodes and
//! the warm pool.

use crate::cli;
use crate::print;
use dbaas::error::{Error, Result};
use dbaas::home::Home;
use dbaas::ops;
use std::io::{BufRead, IsTerminal, Write};

/// `move`: says first that the instance stops, then where it is.
pub(crate) async fn move_instance(home: &Home, c: cli::Move) -> Result<()> {
    eprintln!("moving '{}' stops it until it runs on {}", c.name, c.to);
    let m = ops::relocate::move_to(home, &c.name, &c.to).await?;
    if let Some(w) = &m.left_behind {
        eprintln!("warning: {w}");
    }
    if c.json {
        print::json(&m);
        return Ok(());
    }
    let v = &m.instance;
    eprintln!(
        "'{}' ({}) moved from {} to {}: {} at {}:{}",
        v.name,
        v.id,
        m.from,
        v.node.as_deref().unwrap_or("?"),
        v.status,
        v.bind_address,
        v.port
    );
    Ok(())
}

/// `resize`: says before a port change that it restarts, and after what is
/// pending.
pub(crate) async fn resize(home: &Home, c: cli::Resize) -> Result<()> {
    let json = c.json;
    if c.port.is_some() {
        eprintln!("a new port recreates the container: PostgreSQL restarts briefly");
    }
    let r = ops::resize::resize(
        home,
        &c.name,
        ops::resize::ResizeRequest {
            memory: c.memory,
            cpus: c.cpus,
            port: c.port,
            restart: c.restart,
        },
    )
    .await?;
    if json {
        print::json(&r);
        return Ok(());
    }
    let v = &r.instance;
    eprintln!(
        "'{}' ({}) now has {} and {} CPUs on port {}{}",
        v.name,
        v.id,
        v.memory,
        v.cpus,
        v.port,
        if r.restarted {
            " (restarted)"
        } else {
            ", without a restart"
        }
    );
    if !r.pending_restart.is_empty() {
        eprintln!(
            "pending until the next restart: {} (`dbaasctl restart {}` applies them)",
            r.pending_restart.join(", "),
            v.name
        );
    }
    Ok(())
}

pub(crate) async fn create(home: &Home, c: cli::Create) -> Result<i32> {
    let json = c.json;
    let create = ops::create(
        home,
        ops::CreateRequest {
            name: c.name,
            version: c.version,
            memory: c.memory,
            cpus: c.cpus,
            port: c.port,
            database: c.database,
            user: c.user,
            keep_on_failure: c.keep_on_failure,
            node: c.node,
            allow_plaintext: c.allow_plaintext,
            metrics_interval: c.metrics_interval,
            backup_schedule: c.backup_schedule,
            backup_retention: c.backup_retention,
            no_backups: c.no_backups,
            s3: match (c.s3, c.no_s3) {
                (Some(f), false) => dbaas::backups::s3::S3Choice::File(f),
                (None, true) => dbaas::backups::s3::S3Choice::Off,
                (None, false) => dbaas::backups::s3::S3Choice::HostDefault,
                (Some(_), true) => {
                    return Err(dbaas::error::Error::invalid(
                        "s3",
                        "--s3 and --no-s3 were both given; drop one",
                    ))
                }
            },
        },
    );
    let create = async {
        let created = create.await?;
        if created.from_pool {
            refill_in_background(home);
        }
        Ok(created)
    };
    super::created_or_rolled_back(home, create, json, "created").await
}

pub(crate) async fn list(home: &Home, c: cli::List) -> Result<()> {
    let views = ops::list(home).await?;
    if c.json {
        print::json(&views);
    } else {
        if home.settings.engine == dbaas::settings::EngineKind::Swarm {
            eprintln!("engine: swarm (`dbaasctl nodes` shows where each instance runs)");
        }
        print::table(&views);
    }
    Ok(())
}

pub(crate) async fn nodes(home: &Home, c: cli::Nodes) -> Result<()> {
    let nodes = ops::nodes::nodes(home).await?;
    if c.json {
        print::json(&nodes);
    } else if nodes.is_empty() {
        println!("this home's engine is compose: one host, no nodes");
    } else {
        print::nodes(&nodes);
    }
    Ok(())
}

/// A create took a spare: `dbaasctl pool fill` makes another, detached
/// (its output in logs/pool.log), so that this command returns at once.
pub(crate) fn refill_in_background(home: &Home) {
    use std::os::unix::process::CommandExt;
    let log = home.logs_dir().join("pool.log");
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
    };
    let spawned = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .args(["pool", "fill"])
            .stdin(std::process::Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .process_group(0)
            .spawn()
    });
    if let Err(e) = spawned {
        log::warn!("could not start `dbaasctl pool fill` to refill the warm pool: {e}");
    }
}

pub(crate) async fn pool(home: &Home, c: cli::Pool) -> Result<()> {
    match c.action.as_deref().unwrap_or("status") {
        "status" => {}
        "fill" => {
            let made = ops::pool::fill(home, true).await?;
            eprintln!(
                "warm pool: made {}",
                if made.is_empty() {
                    "nothing".into()
                } else {
                    made.join(", ")
                }
            );
        }
        "drain" => {
            let gone = ops::pool::drain(home).await?;
            eprintln!(
                "warm pool: destroyed {}",
                if gone.is_empty() {
                    "nothing".into()
                } else {
                    gone.join(", ")
                }
            );
        }
        other => {
            return Err(Error::invalid(
                "pool",
                format!("'{other}' is not status, fill or drain"),
            ))
        }
    }
    let status = ops::pool::status(home).await?;
    if c.json {
        print::json(&status);
    } else {
        print::pool(&status);
    }
    Ok(())
}

pub(crate) async fn destroy(home: &Home, c: cli::Destroy) -> Result<()> {
    let inst = ops::find(home, &c.name).await?;
    if !c.yes {
        confirm_destroy(&inst, c.keep_data)?;
    }
    let inst = ops::destroy(home, &inst.id, c.keep_data, c.delete_backups).await?;
    if c.keep_data {
        eprintln!(
            "destroyed '{}' ({}); data kept in {}",
            inst.name,
            inst.id,
            home.instance_dir(&inst.id).display()
        );
    } else {
        eprintln!("destroyed '{}' ({})", inst.name, inst.id);
    }
    if let Some(note) = ops::destroy::kept_backups_note(home, &inst) {
        eprintln!("{note}");
    }
    Ok(())
}

pub(crate) async fn show(home: &Home, c: cli::Show) -> Result<()> {
    let v = ops::show(home, &c.name).await?;
    let creds = match c.show_password {
        true => Some(ops::credentials(home, &v.id).await?),
        false => None,
    };
    if c.json {
        let mut value = serde_json::to_value(&v)
            .map_err(|e| Error::Failed(format!("cannot print the instance: {e}")))?;
        if let Some(cr) = &creds {
            value["password"] = cr.password.clone().into();
            value["url"] = cr.url.clone().into();
        }
        print::json(&value);
    } else {
        print::show(home, &v, creds.as_ref());
    }
    Ok(())
}

pub(crate) fn confirm_destroy(inst: &dbaas::registry::Instance, keep_data: bool) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            "confirmation",
            "stdin is not a terminal; pass --yes to destroy without asking",
        ));
    }
    let what = if keep_data {
        "its containers (data kept)"
    } else {
        "its containers AND ITS DATA"
    };
    eprint!(
        "Destroy instance '{}' ({}) and {what}? Type the name to confirm: ",
        inst.name, inst.id
    );
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io("reading confirmation", e))?;
    if line.trim() != inst.name {
        return Err(Error::invalid(
            "confirmation",
            "the name did not match; nothing was changed",
        ));
    }
    Ok(())
}

/// The home's certificate authority, for clients on other machines.
pub(crate) async fn ca(home: &Home) -> Result<()> {
    let (path, pem) = ops::access::ca(home).await?;
    eprintln!(
        "{} (the instances' certificates are signed by it)",
        path.display()
    );
    print!("{pem}");
    Ok(())
}
