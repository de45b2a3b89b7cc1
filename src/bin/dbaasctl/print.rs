//! What dbaasctl prints: tables for people, JSON with --json. Values that
//! came from a database are escaped, never interpreted by the terminal.

use dbaas::db::exec::ResultSet;
use dbaas::home::Home;
use dbaas::metrics::Sample;
use dbaas::ops::{self, doctor::Finding};

pub fn json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print the result as JSON: {e}"),
    }
}

pub fn findings(findings: &[Finding]) {
    for f in findings {
        println!("[{:7}] {}: {}", f.level, f.check, f.message);
        if let Some(fixed) = &f.fixed {
            println!("          fixed: {fixed}");
        } else if let Some(fix) = &f.fix {
            println!("          fix: {fix}");
        }
    }
}

/// `tables` as a result set, so that it prints like `sql`.
pub fn tables(tables: &[dbaas::db::catalog::TableSummary]) {
    let rs = ResultSet {
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
    rows(&rs);
}

/// Database values on a terminal: control characters (escape sequences,
/// newlines, NUL...) shown escaped, never interpreted.
pub fn escape_controls(s: &str) -> String {
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
pub fn rows(rs: &ResultSet) {
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

pub fn samples(samples: &[Sample]) {
    println!(
        "{:<24} {:<4} {:>6} {:>7} {:>12} {:>8} {:>10}  error",
        "TS", "UP", "CONNS", "WAITING", "COMMITS", "HIT%", "SIZE"
    );
    let dash = || "-".to_string();
    for s in samples {
        let (hit, read) = (s.counter("blks_hit"), s.counter("blks_read"));
        let ratio = if hit + read > 0.0 {
            format!("{:.2}", 100.0 * hit / (hit + read))
        } else {
            dash()
        };
        let waiting = s.connections.as_ref().and_then(|c| c.waiting);
        println!(
            "{:<24} {:<4} {:>6} {:>7} {:>12} {:>8} {:>10}  {}",
            escape_controls(&s.ts),
            if s.up { "yes" } else { "no" },
            s.total_connections().map_or_else(dash, |n| n.to_string()),
            waiting.map_or_else(dash, |n| (n as u64).to_string()),
            s.counters
                .get("xact_commit")
                .map_or_else(dash, |n| (*n as u64).to_string()),
            ratio,
            s.db_size_bytes.map_or_else(dash, |n| human_size(n as u64)),
            escape_controls(s.error.as_deref().unwrap_or(""))
        );
    }
}

pub fn top(rows: &[ops::TopRow]) {
    println!(
        "{:<20} {:<12} {:<11} {:>9} {:>9} {:>7} {:>10} {:>8}  BACKUPS",
        "NAME", "ID", "STATUS", "CONNS", "TPS", "HIT%", "SIZE", "SAMPLE"
    );
    let dash = || "-".to_string();
    for r in rows {
        println!(
            "{:<20} {:<12} {:<11} {:>9} {:>9} {:>7} {:>10} {:>8}  {}",
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
            match &r.backup_concerns {
                None => "off".to_string(),
                Some(c) if c.is_empty() => "ok".to_string(),
                Some(c) => format!("ATTENTION: {}", c.join("; ")),
            },
        );
    }
    if rows.is_empty() {
        println!("(no instances)");
    }
}

/// 7683431 -> "7.3 MiB"
pub fn human_size(b: u64) -> String {
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

pub fn table(views: &[ops::InstanceView]) {
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
                match &v.status_detail {
                    Some(d) => format!("{} ({d})", v.status),
                    None => v.status.to_string(),
                },
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
    aligned(&header, &rows);
}

/// Columns padded to their widest cell, two spaces apart.
fn aligned<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
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
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `dbaasctl nodes`: a line per node, its instances named.
pub fn nodes(nodes: &[ops::nodes::NodeView]) {
    let rows: Vec<[String; 8]> = nodes
        .iter()
        .map(|n| {
            let names: Vec<&str> = n.instances.iter().map(|i| i.name.as_str()).collect();
            [
                n.node.name.clone(),
                n.node.address.clone(),
                n.node.state.clone(),
                n.node.availability.clone(),
                format!(
                    "{}{}",
                    if n.usable { "yes" } else { "no" },
                    if n.node.manager { " (manager)" } else { "" }
                ),
                format!("{} MB of {} MB", n.memory_used >> 20, n.node.memory >> 20),
                n.node.cpus.to_string(),
                if names.is_empty() {
                    "-".into()
                } else {
                    names.join(",")
                },
            ]
        })
        .collect();
    aligned(
        &[
            "NODE",
            "ADDRESS",
            "STATE",
            "AVAILABILITY",
            "FOR DBAAS",
            "MEMORY USED",
            "CPUS",
            "INSTANCES",
        ],
        &rows,
    );
}

pub fn show(home: &Home, v: &ops::InstanceView, creds: Option<&ops::Credentials>) {
    println!("name:       {}", v.name);
    println!("id:         {}", v.id);
    match &v.status_detail {
        Some(d) => println!("status:     {} ({d})", v.status),
        None => println!("status:     {}", v.status),
    }
    println!("version:    {} ({})", v.version, v.image);
    println!("address:    {}:{}", v.bind_address, v.port);
    if let Some(n) = &v.node {
        println!("node:       {n}");
    }
    println!("memory:     {}", v.memory);
    println!("cpus:       {}", v.cpus);
    println!("database:   {}", v.database);
    println!("user:       {}", v.user);
    println!("created:    {}", v.created_at);
    println!("directory:  {}", home.instance_dir(&v.id).display());
    if let Some(e) = &v.error {
        println!("error:      {e}");
    }
    match (&v.backups, &v.backup_health) {
        (None, _) => println!("backups:    off (`dbaasctl backup enable {}`)", v.name),
        (Some(p), h) => {
            println!(
                "backups:    full every {}, kept {}; repository {}",
                p.schedule,
                p.retention,
                home.backup_dir(&v.id).display()
            );
            if let Some(h) = h {
                let dash = || "none yet".to_string();
                println!(
                    "            last {}, last verified {}",
                    h.last_success.clone().unwrap_or_else(dash),
                    h.last_verified.clone().unwrap_or_else(dash)
                );
                for c in &h.concerns {
                    println!("            ATTENTION: {c}");
                }
            }
        }
    }
    match v.tls {
        true => println!(
            "tls:        on, verified against the home's authority (`dbaasctl ca`); certificate until {}",
            v.tls_expires_at.as_deref().unwrap_or("?")
        ),
        false => println!(
            "tls:        off: it gets TLS at its next restart (`dbaasctl restart {}`)",
            v.name
        ),
    }
    if !v.pending_restart.is_empty() {
        println!(
            "pending:    {} (at the next restart)",
            v.pending_restart.join(", ")
        );
    }
    match creds {
        Some(c) => println!("url:        {}", c.url),
        None => println!(
            "url:        postgresql://{}@{}:{}/{} (password: --show-password or `dbaasctl url`)",
            v.user, v.connect_host, v.port, v.database
        ),
    }
}

/// `dbaasctl pool`: what DBAAS_WARM_POOL asks for and the spares there are.
pub fn pool(p: &dbaas::ops::pool::PoolStatus) {
    if p.wanted.is_empty() {
        println!("warm pool: off (DBAAS_WARM_POOL is not set)");
    } else {
        let wanted: Vec<String> = p
            .wanted
            .iter()
            .map(|(v, n)| format!("{n} of PostgreSQL {v}"))
            .collect();
        println!("warm pool: {} wanted", wanted.join(", "));
    }
    for s in &p.spares {
        println!(
            "{:<12} {:>3} {:>6} {:<10} {}",
            s.id,
            s.version,
            s.port,
            format!("{:?}", s.state).to_lowercase(),
            s.created_at
        );
    }
}
