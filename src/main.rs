//! dbaasctl: parse arguments, build the runtime, call one `ops` function per
//! command, print the result (print.rs) or the error with its cause chain,
//! and exit with the error kind's code.

mod backup_cli;
mod cli;
mod print;

use cli::{Cli, Command};
use dbaas::error::{Error, Result};
use dbaas::home::Home;
use dbaas::ops;
use std::io::{BufRead, IsTerminal, Write};

fn main() {
    // Parsing comes first: --help and bad arguments never start a runtime.
    let cli: Cli = argh::from_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,hyper=error"))
        .format_timestamp_millis()
        .init();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                eprintln!("  caused by: {s}");
                src = s.source();
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    let home = Home::from_env()?;
    home.check_private()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(home.settings.server.worker_threads)
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    let result = rt.block_on(dispatch(&home, cli.command));
    // A blocking task still running (a read stuck in a container's file, a
    // query) must not hold the process: `serve` stops within seconds of
    // SIGTERM whatever it is doing.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn dispatch(home: &Home, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Create(c) => return create(home, c).await,
        Command::Up(c) => {
            let v = ops::up(home, &c.name).await?;
            eprintln!("'{}' ({}) is {} on port {}", v.name, v.id, v.status, v.port);
        }
        Command::Down(c) => {
            let v = ops::down(home, &c.name).await?;
            eprintln!("'{}' ({}) is {}; data kept", v.name, v.id, v.status);
        }
        Command::Resize(c) => resize(home, c).await?,
        Command::Move(c) => move_instance(home, c).await?,
        Command::Restart(c) => {
            let v = ops::restart(home, &c.name).await?;
            eprintln!("'{}' ({}) restarted, {}", v.name, v.id, v.status);
        }
        Command::Destroy(c) => destroy(home, c).await?,
        Command::List(c) => list(home, c).await?,
        Command::Show(c) => show(home, c).await?,
        Command::Url(c) => println!("{}", ops::credentials(home, &c.name).await?.url),
        Command::Logs(c) => return ops::attach_logs(home, &c.name, c.tail, c.follow).await,
        Command::Psql(c) => {
            let tty = std::io::stdin().is_terminal();
            return ops::psql(home, &c.name, c.command.as_deref(), tty).await;
        }
        Command::Serve(c) => {
            let addr: std::net::SocketAddr = c.listen.parse().map_err(|_| {
                Error::invalid(
                    "listen",
                    format!("'{}' is not an address like 127.0.0.1:8000", c.listen),
                )
            })?;
            dbaas::api::serve(home.clone(), addr).await?;
        }
        Command::Sql(c) => sql(home, c).await?,
        Command::Tables(c) => {
            let schema = c.schema.clone();
            let tables = ops::with_client(home, &c.name, move |client| {
                dbaas::db::catalog::list(client, &schema)
            })
            .await?;
            if c.json {
                print::json(&tables);
            } else {
                print::tables(&tables);
            }
        }
        Command::Metrics(c) => metrics(home, c).await?,
        Command::Top(c) => {
            let rows = ops::top(home).await?;
            if c.json {
                print::json(&rows);
            } else {
                print::top(&rows);
            }
        }
        Command::Doctor(c) => return doctor(home, c).await,
        Command::Pool(c) => pool(home, c).await?,
        Command::Init(c) => {
            let kind = ops::nodes::init(home, &c.engine).await?;
            eprintln!(
                "{} is bound to the {} engine",
                home.root.display(),
                kind.as_str()
            );
        }
        Command::Nodes(c) => nodes(home, c).await?,
        Command::Dump(c) => return dump(home, c).await,
        Command::Import(c) => {
            ops::dump::import(home, &c.name, &c.file).await?;
            eprintln!("imported {} into '{}'", c.file.display(), c.name);
        }
        Command::Backup(c) => backup_cli::backup(home, c).await?,
        Command::Backups(c) => backup_cli::backups(home, c).await?,
        Command::Restore(c) => return backup_cli::restore(home, c).await,
        Command::Clone(c) => return backup_cli::clone(home, c).await,
    }
    Ok(0)
}

/// `move`: says first that the instance stops, then where it is.
async fn move_instance(home: &Home, c: cli::Move) -> Result<()> {
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
async fn resize(home: &Home, c: cli::Resize) -> Result<()> {
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

async fn create(home: &Home, c: cli::Create) -> Result<i32> {
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
            metrics_interval: c.metrics_interval,
            backup_schedule: c.backup_schedule,
            backup_retention: c.backup_retention,
            no_backups: c.no_backups,
            s3: match (c.s3, c.no_s3) {
                (Some(f), false) => dbaas::s3::S3Choice::File(f),
                (None, true) => dbaas::s3::S3Choice::Off,
                (None, false) => dbaas::s3::S3Choice::HostDefault,
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
    created_or_rolled_back(home, create, json, "created").await
}

async fn list(home: &Home, c: cli::List) -> Result<()> {
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

async fn nodes(home: &Home, c: cli::Nodes) -> Result<()> {
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

async fn dump(home: &Home, c: cli::Dump) -> Result<i32> {
    let format = ops::dump::DumpFormat::parse(&c.format)?;
    if format == ops::dump::DumpFormat::Custom && std::io::stdout().is_terminal() {
        return Err(Error::invalid(
            "output",
            "a custom-format dump is binary: redirect it to a file (dbaasctl dump NAME > app.dump), or use --format plain",
        ));
    }
    ops::dump::dump(home, &c.name, format).await
}

/// A create took a spare: `dbaasctl pool fill` makes another, detached
/// (its output in logs/pool.log), so that this command returns at once.
fn refill_in_background(home: &Home) {
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

async fn pool(home: &Home, c: cli::Pool) -> Result<()> {
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

/// A create (or a restore into a new instance) to its end, printed; Ctrl-C
/// rolls back what this process was creating (exit 130).
pub(crate) async fn created_or_rolled_back(
    home: &Home,
    work: impl std::future::Future<Output = Result<ops::Created>>,
    json: bool,
    verb: &str,
) -> Result<i32> {
    let created = tokio::select! {
        r = work => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: rolling back");
            let undone = ops::abandon_own_creates(home).await?;
            eprintln!("rolled back {}", if undone.is_empty() { "nothing".to_string() } else { undone.join(", ") });
            return Ok(130);
        }
    };
    if json {
        print::json(&created);
    } else {
        let i = &created.instance;
        eprintln!(
            "{verb} '{}' ({}): PostgreSQL {} on {}:{}",
            i.name, i.id, i.version, i.bind_address, i.port
        );
        println!("{}", created.url);
    }
    Ok(0)
}

async fn destroy(home: &Home, c: cli::Destroy) -> Result<()> {
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
    let kept = home.backup_dir(&inst.id);
    if let (Some(node), true) = (&inst.node, kept.is_dir()) {
        eprintln!(
            "its backups are kept in the volume {} on node {node} (their log in {}; `docker volume rm` on that node removes them, as --delete-backups would have)",
            dbaas::engine::swarm::relocate::repo_volume(&inst.id),
            kept.display()
        );
    } else if kept.is_dir() {
        eprintln!(
            "its backups are kept in {} (`dbaasctl restore {} --to NEW` restores them; `dbaasctl destroy` with --delete-backups would have removed them)",
            kept.display(),
            inst.id
        );
    }
    Ok(())
}

async fn show(home: &Home, c: cli::Show) -> Result<()> {
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

async fn sql(home: &Home, c: cli::Sql) -> Result<()> {
    let st = dbaas::db::exec::Statement {
        sql: c.sql,
        params: c.param.into_iter().map(serde_json::Value::String).collect(),
    };
    let json = c.json;
    let opts = dbaas::db::sql_options(&home.settings.db, c.read_only, !json);
    let rs = ops::with_client(home, &c.name, move |client| {
        // A one-off connection: a late cancel has no next statement to hit.
        let cancelled = std::cell::Cell::new(false);
        dbaas::db::exec::run_sql(client, &st, &opts, &|| false, &cancelled)
    })
    .await?;
    if json {
        print::json(&dbaas::db::exec::SqlResult::from_set(rs, false)?);
    } else {
        print::rows(&rs);
    }
    Ok(())
}

async fn metrics(home: &Home, c: cli::Metrics) -> Result<()> {
    let samples = ops::samples(home, &c.name, c.last).await?;
    if c.json {
        print::json(&samples);
    } else if samples.is_empty() {
        let inst = ops::find(home, &c.name).await?;
        println!(
            "no samples yet for '{}' (the agent writes one every {} s)",
            inst.name, inst.metrics_interval
        );
    } else {
        let typed: Vec<_> = samples
            .into_iter()
            .filter_map(dbaas::metrics::Sample::from_value)
            .collect();
        print::samples(&typed);
    }
    Ok(())
}

async fn doctor(home: &Home, c: cli::Doctor) -> Result<i32> {
    let findings = ops::doctor::run(home, c.fix).await?;
    if c.json {
        print::json(&findings);
    } else {
        print::findings(&findings);
    }
    match ops::doctor::as_error(&findings) {
        Some(e) if c.json => Ok(e.exit_code()),
        Some(e) => Err(e),
        None => Ok(0),
    }
}

fn confirm_destroy(inst: &dbaas::registry::Instance, keep_data: bool) -> Result<()> {
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
