//! dbaasctl: parse arguments, build the runtime, call one `ops` function per
//! command, print the result (print.rs) or the error with its cause chain,
//! and exit with the error kind's code.

mod cli;
mod commands;
mod print;

use cli::{Cli, Command};
use commands::{backup, data, doctor, instances};
use dbaas::error::{Error, Result};
use dbaas::home::Home;
use dbaas::ops;
use std::io::IsTerminal;

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
        Command::Create(c) => return instances::create(home, c).await,
        Command::Up(c) => {
            let v = ops::up(home, &c.name).await?;
            eprintln!("'{}' ({}) is {} on port {}", v.name, v.id, v.status, v.port);
        }
        Command::Down(c) => {
            let v = ops::down(home, &c.name).await?;
            eprintln!("'{}' ({}) is {}; data kept", v.name, v.id, v.status);
        }
        Command::Resize(c) => instances::resize(home, c).await?,
        Command::Move(c) => instances::move_instance(home, c).await?,
        Command::Restart(c) => {
            let v = ops::restart(home, &c.name).await?;
            eprintln!("'{}' ({}) restarted, {}", v.name, v.id, v.status);
        }
        Command::Destroy(c) => instances::destroy(home, c).await?,
        Command::List(c) => instances::list(home, c).await?,
        Command::Show(c) => instances::show(home, c).await?,
        Command::Url(c) => println!("{}", ops::credentials(home, &c.name).await?.url),
        Command::Ca(_) => instances::ca(home).await?,
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
        Command::Sql(c) => data::sql(home, c).await?,
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
        Command::Metrics(c) => data::metrics(home, c).await?,
        Command::Top(c) => {
            let rows = ops::top(home).await?;
            if c.json {
                print::json(&rows);
            } else {
                print::top(&rows);
            }
        }
        Command::Doctor(c) => return doctor::doctor(home, c).await,
        Command::Pool(c) => instances::pool(home, c).await?,
        Command::Init(c) => {
            let kind = ops::nodes::init(home, &c.engine).await?;
            eprintln!(
                "{} is bound to the {} engine",
                home.root.display(),
                kind.as_str()
            );
        }
        Command::Nodes(c) => instances::nodes(home, c).await?,
        Command::Dump(c) => return data::dump(home, c).await,
        Command::Import(c) => {
            ops::dump::import(home, &c.name, &c.file).await?;
            eprintln!("imported {} into '{}'", c.file.display(), c.name);
        }
        Command::Backup(c) => backup::backup(home, c).await?,
        Command::Backups(c) => backup::backups(home, c).await?,
        Command::Restore(c) => return backup::restore(home, c).await,
        Command::Clone(c) => return backup::clone(home, c).await,
    }
    Ok(0)
}
