//! dbaasctl: parse arguments, build the runtime, dispatch, print the result
//! or the error with its cause chain, and exit with the error kind's code.

mod cli;

use cli::{Cli, Command};
use dbaas::error::{Error, Result};
use dbaas::home::Home;
use dbaas::{compose, doctor, ops, provision, registry};
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
    rt.block_on(dispatch(&home, cli.command))
}

fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

async fn dispatch(home: &Home, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Create(c) => {
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
                    metrics_interval: c.metrics_interval,
                },
            );
            let created = tokio::select! {
                r = create => r?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("interrupted: rolling back");
                    let undone = ops::abandon_own_creates(home).await?;
                    eprintln!("rolled back {}", if undone.is_empty() { "nothing".to_string() } else { undone.join(", ") });
                    return Ok(130);
                }
            };
            if json {
                print_json(&created);
            } else {
                let i = &created.instance;
                eprintln!(
                    "created '{}' ({}): PostgreSQL {} on {}:{}",
                    i.name, i.id, i.version, i.bind_address, i.port
                );
                println!("{}", created.url);
            }
        }
        Command::Up(c) => {
            let v = ops::up(home, &c.name).await?;
            eprintln!("'{}' ({}) is {} on port {}", v.name, v.id, v.status, v.port);
        }
        Command::Down(c) => {
            let v = ops::down(home, &c.name).await?;
            eprintln!("'{}' ({}) is {}; data kept", v.name, v.id, v.status);
        }
        Command::Restart(c) => {
            let v = ops::restart(home, &c.name).await?;
            eprintln!("'{}' ({}) restarted, {}", v.name, v.id, v.status);
        }
        Command::Destroy(c) => {
            let inst = ops::find(home, &c.name)?;
            if !c.yes {
                confirm_destroy(&inst, c.keep_data)?;
            }
            let inst = ops::destroy(home, &inst.id, c.keep_data).await?;
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
        }
        Command::List(c) => {
            let views = ops::list(home).await?;
            if c.json {
                print_json(&views);
            } else {
                print_table(&views);
            }
        }
        Command::Show(c) => {
            let v = ops::show(home, &c.name).await?;
            let password = if c.show_password {
                Some(provision::app_password(&home.instance_dir(&v.id))?)
            } else {
                None
            };
            if c.json {
                let mut value = serde_json::to_value(&v).expect("serializable");
                if let Some(pw) = &password {
                    let inst = ops::find(home, &v.id)?;
                    value["password"] = pw.clone().into();
                    value["url"] = ops::connection_url(&inst, pw).into();
                }
                print_json(&value);
            } else {
                print_show(home, &v, password.as_deref())?;
            }
        }
        Command::Url(c) => {
            let inst = ops::find(home, &c.name)?;
            let pw = provision::app_password(&home.instance_dir(&inst.id))?;
            println!("{}", ops::connection_url(&inst, &pw));
        }
        Command::Logs(c) => {
            let inst = ops::find(home, &c.name)?;
            let ps = compose::ps(home, Some(&inst.id)).await?;
            let container = compose::db_container(&ps, &inst.id).ok_or_else(|| {
                Error::Conflict(format!(
                    "'{}' has no container (is it down?); `dbaasctl up {}` starts it",
                    inst.name, inst.name
                ))
            })?;
            let tail = c.tail.to_string();
            let mut args = vec!["logs", "--tail", &tail];
            if c.follow {
                args.push("--follow");
            }
            args.push(&container.name);
            return compose::interactive(home, &args, &home.root);
        }
        Command::Psql(c) => {
            let inst = ops::find(home, &c.name)?;
            let dir = home.instance_dir(&inst.id);
            let file = dir
                .join("docker-compose.yml")
                .to_string_lossy()
                .into_owned();
            let mut args = vec!["compose", "-p", &inst.id, "-f", &file, "exec"];
            if !std::io::stdin().is_terminal() {
                args.push("-T");
            }
            args.extend(["db", "psql", "-U", &inst.user, "-d", &inst.database]);
            if let Some(sql) = &c.command {
                args.extend(["-c", sql.as_str()]);
            }
            return compose::interactive(home, &args, &dir);
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
        Command::Sql(c) => {
            let st = dbaas::db::exec::Statement {
                sql: c.sql,
                params: c.param.into_iter().map(serde_json::Value::String).collect(),
            };
            let json = c.json;
            let opts = dbaas::db::sql_options(&home.settings.db, c.read_only, !json);
            let rs = ops::with_client(home, &c.name, move |client| {
                dbaas::db::exec::run_sql(client, &st, &opts, &|| false)
            })
            .await?;
            if json {
                print_json(&dbaas::db::exec::SqlResult::from_set(rs, false)?);
            } else {
                print_rows(&rs);
            }
        }
        Command::Tables(c) => {
            let schema = c.schema.clone();
            let tables = ops::with_client(home, &c.name, move |client| {
                dbaas::db::catalog::list(client, &schema)
            })
            .await?;
            if c.json {
                print_json(&tables);
            } else {
                let rs = dbaas::db::exec::ResultSet {
                    columns: ["schema", "name", "estimated_rows", "size"]
                        .iter()
                        .map(|n| (n.to_string(), postgres::types::Type::TEXT))
                        .collect(),
                    rows: tables
                        .iter()
                        .map(|t| {
                            vec![
                                t.schema.clone().into(),
                                t.name.clone().into(),
                                t.estimated_rows.into(),
                                human_size(t.total_bytes.max(0) as u64).into(),
                            ]
                        })
                        .collect(),
                    row_count: tables.len() as u64,
                    command: String::new(),
                };
                print_rows(&rs);
            }
        }
        Command::Metrics(c) => {
            let inst = ops::find(home, &c.name)?;
            if c.last == 0 || c.last > 10_000 {
                return Err(Error::invalid("last", "use a number from 1 to 10000"));
            }
            let samples =
                dbaas::metrics::tail::last(&dbaas::metrics::dir_of(home, &inst.id), c.last);
            if c.json {
                print_json(&samples);
            } else if samples.is_empty() {
                println!(
                    "no samples yet for '{}' (the agent writes one every {} s)",
                    inst.name, inst.metrics_interval
                );
            } else {
                print_samples(&samples);
            }
        }
        Command::Top(c) => {
            let rows = top_rows(home).await?;
            if c.json {
                print_json(&rows);
            } else {
                print_top(&rows);
            }
        }
        Command::Doctor(c) => {
            let findings = doctor::run(home, c.fix).await?;
            if c.json {
                print_json(&findings);
            } else {
                for f in &findings {
                    println!("[{:7}] {}: {}", f.level, f.check, f.message);
                    if let Some(fixed) = &f.fixed {
                        println!("          fixed: {fixed}");
                    } else if let Some(fix) = &f.fix {
                        println!("          fix: {fix}");
                    }
                }
            }
            if let Some(e) = doctor::as_error(&findings) {
                if c.json {
                    return Ok(e.exit_code());
                }
                return Err(e);
            }
        }
    }
    Ok(0)
}

fn confirm_destroy(inst: &registry::Instance, keep_data: bool) -> Result<()> {
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

/// Database values on a terminal: control characters (escape sequences,
/// newlines, NUL...) shown escaped, never interpreted.
fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// A result as an aligned text table, like psql's, with the row count.
fn print_rows(rs: &dbaas::db::exec::ResultSet) {
    if rs.columns.is_empty() {
        println!("{} {}", rs.command, rs.row_count);
        return;
    }
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => escape_controls(s),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let cells: Vec<Vec<String>> = rs
        .rows
        .iter()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = rs
        .columns
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([escape_controls(n).chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<&str>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!(" {v:<w$} "))
            .collect::<Vec<_>>()
            .join("|")
            .trim_end()
            .to_string()
    };
    println!(
        "{}",
        line(
            rs.columns
                .iter()
                .map(|(n, _)| escape_controls(n))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect()
        )
    );
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    for r in &cells {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
    println!(
        "({} row{})",
        rs.rows.len(),
        if rs.rows.len() == 1 { "" } else { "s" }
    );
}

fn print_samples(samples: &[serde_json::Value]) {
    println!(
        "{:<24} {:<4} {:>6} {:>7} {:>12} {:>8} {:>10}  error",
        "TS", "UP", "CONNS", "WAITING", "COMMITS", "HIT%", "SIZE"
    );
    for s in samples {
        let c = &s["counters"];
        let hit = c["blks_hit"].as_f64().unwrap_or(0.0);
        let read = c["blks_read"].as_f64().unwrap_or(0.0);
        let ratio = if hit + read > 0.0 {
            format!("{:.2}", 100.0 * hit / (hit + read))
        } else {
            "-".into()
        };
        println!(
            "{:<24} {:<4} {:>6} {:>7} {:>12} {:>8} {:>10}  {}",
            escape_controls(s["ts"].as_str().unwrap_or("")),
            if s["up"] == true { "yes" } else { "no" },
            s["connections"]["total"]
                .as_u64()
                .map_or("-".into(), |n| n.to_string()),
            s["connections"]["waiting"]
                .as_u64()
                .map_or("-".into(), |n| n.to_string()),
            c["xact_commit"]
                .as_u64()
                .map_or("-".into(), |n| n.to_string()),
            ratio,
            s["db_size_bytes"].as_u64().map_or("-".into(), human_size),
            escape_controls(s["error"].as_str().unwrap_or(""))
        );
    }
}

#[derive(serde::Serialize)]
struct TopRow {
    name: String,
    id: String,
    status: String,
    connections: Option<u64>,
    max_connections: Option<u64>,
    tps: Option<f64>,
    cache_hit_ratio: Option<f64>,
    db_size_bytes: Option<u64>,
    sample_age_seconds: Option<f64>,
}

async fn top_rows(home: &Home) -> Result<Vec<TopRow>> {
    let views = ops::list(home).await?;
    Ok(views
        .into_iter()
        .map(|v| {
            let samples = dbaas::metrics::tail::last(&dbaas::metrics::dir_of(home, &v.id), 30);
            let s = dbaas::metrics::summary::summarize(&samples);
            TopRow {
                sample_age_seconds: samples.last().and_then(dbaas::metrics::age_seconds),
                name: v.name,
                id: v.id,
                status: v.status,
                connections: s.connections,
                max_connections: s.max_connections,
                tps: s.tps,
                cache_hit_ratio: s.cache_hit_ratio,
                db_size_bytes: s.db_size_bytes,
            }
        })
        .collect())
}

fn print_top(rows: &[TopRow]) {
    println!(
        "{:<20} {:<12} {:<11} {:>9} {:>9} {:>7} {:>10} {:>8}",
        "NAME", "ID", "STATUS", "CONNS", "TPS", "HIT%", "SIZE", "SAMPLE"
    );
    let dash = || "-".to_string();
    for r in rows {
        println!(
            "{:<20} {:<12} {:<11} {:>9} {:>9} {:>7} {:>10} {:>8}",
            escape_controls(&r.name),
            r.id,
            r.status,
            match (r.connections, r.max_connections) {
                (Some(c), Some(m)) => format!("{c}/{m}"),
                _ => dash(),
            },
            r.tps.map_or_else(dash, |t| format!("{t:.1}")),
            r.cache_hit_ratio
                .map_or_else(dash, |h| format!("{:.2}", 100.0 * h)),
            r.db_size_bytes.map_or_else(dash, human_size),
            r.sample_age_seconds
                .map_or_else(dash, |a| human_age(a as u64)),
        );
    }
    if rows.is_empty() {
        println!("(no instances)");
    }
}

/// 7683431 -> "7.3 MiB"
fn human_size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn human_age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn print_table(views: &[ops::InstanceView]) {
    if views.is_empty() {
        eprintln!("no instances; create one with: dbaasctl create NAME");
        return;
    }
    let rows: Vec<[String; 8]> = views
        .iter()
        .map(|v| {
            [
                v.name.clone(),
                v.id.clone(),
                v.version.to_string(),
                v.status.clone(),
                v.port.to_string(),
                v.memory.clone(),
                v.cpus.to_string(),
                human_age(v.age_seconds),
            ]
        })
        .collect();
    let header = [
        "NAME", "ID", "VERSION", "STATUS", "PORT", "MEMORY", "CPUS", "AGE",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn print_show(home: &Home, v: &ops::InstanceView, password: Option<&str>) -> Result<()> {
    let inst = ops::find(home, &v.id)?;
    println!("name:       {}", v.name);
    println!("id:         {}", v.id);
    println!("status:     {}", v.status);
    println!("version:    {} ({})", v.version, v.image);
    println!("address:    {}:{}", v.bind_address, v.port);
    println!("memory:     {}", v.memory);
    println!("cpus:       {}", v.cpus);
    println!("database:   {}", v.database);
    println!("user:       {}", v.user);
    println!("created:    {}", v.created_at);
    println!("directory:  {}", home.instance_dir(&v.id).display());
    if let Some(e) = &v.error {
        println!("error:      {e}");
    }
    match password {
        Some(pw) => println!("url:        {}", ops::connection_url(&inst, pw)),
        None => println!(
            "url:        postgresql://{}@{}:{}/{} (password: --show-password or `dbaasctl url`)",
            v.user,
            ops::connect_host(&inst),
            v.port,
            v.database
        ),
    }
    Ok(())
}
