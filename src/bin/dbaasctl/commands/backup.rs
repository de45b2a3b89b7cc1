//! The backup commands: backup, backups, restore, clone. Each parses, makes
//! one `ops` call and prints.

use crate::print;
use argh::FromArgs;
use dbaas::backups::Backup as BackupInfo;
use dbaas::error::{Error, Result};
use dbaas::home::Home;
use dbaas::ops;
use dbaas::ops::backup::restore::{FromRepo, Target};

#[derive(FromArgs, Debug)]
/// Take a backup now and verify it (backup NAME); verify one again (backup
/// verify NAME [LABEL]); turn backups on for an instance made without them
/// (backup enable NAME; restarts it once); change the schedule or retention
/// (backup config NAME).
#[argh(subcommand, name = "backup")]
pub struct Backup {
    /// NAME, verify NAME [LABEL], enable NAME, or config NAME
    #[argh(positional)]
    pub args: Vec<String>,
    /// full (default), diff or incr
    #[argh(option, long = "type", default = "String::from(\"full\")")]
    pub kind: String,
    /// with enable or config: when full backups are taken (24h, 6h, 30m, daily@HH:MM)
    #[argh(option)]
    pub schedule: Option<String>,
    /// with enable or config: how long backups are kept (7d, or a number of full backups)
    #[argh(option)]
    pub retention: Option<String>,
    /// print the result as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// List an instance's backups with their verification and the recoverable
/// window; --all lists every instance's, destroyed ones' included.
#[argh(subcommand, name = "backups")]
pub struct Backups {
    /// instance name or id (or a destroyed instance's)
    #[argh(positional)]
    pub name: Option<String>,
    /// every instance, and the kept backups of destroyed ones
    #[argh(switch)]
    pub all: bool,
    /// print as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Restore from backups: into a new instance (--to NEW; the source keeps
/// running), in place (--in-place; the current data is kept aside), or undo
/// an in-place restore (--undo). Default point: the latest.
#[argh(subcommand, name = "restore")]
pub struct Restore {
    /// instance name or id (or a destroyed instance's)
    #[argh(positional)]
    pub name: String,
    /// name of the new instance to restore into
    #[argh(option)]
    pub to: Option<String>,
    /// stop the instance, keep its data directory aside, recover, start
    #[argh(switch)]
    pub in_place: bool,
    /// put back the data directory an in-place restore kept aside
    #[argh(switch)]
    pub undo: bool,
    /// delete the data directories in-place restores and undos kept aside
    /// (they are never deleted otherwise)
    #[argh(switch)]
    pub prune: bool,
    /// recover to this time, RFC 3339 in UTC (2026-11-29T01:02:03Z)
    #[argh(option)]
    pub time: Option<String>,
    /// recover to the end of this backup (a label from `dbaasctl backups`)
    #[argh(option)]
    pub backup: Option<String>,
    /// recover to this WAL position (0/3000060)
    #[argh(option)]
    pub lsn: Option<String>,
    /// the repository to restore from: local (default) or s3
    #[argh(option)]
    pub from: Option<String>,
    /// swarm homes, with --to: the node to run the new instance on (a
    /// restore from the local repository runs on the source's node; from
    /// s3, on this one or where dbaas places it)
    #[argh(option)]
    pub node: Option<String>,
    /// print the result as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// A new instance from an instance's latest backup plus WAL (or from a point
/// in time), without stopping it; prints the new connection string.
#[argh(subcommand, name = "clone")]
pub struct Clone {
    /// instance name or id to clone
    #[argh(positional)]
    pub name: String,
    /// name of the new instance
    #[argh(positional)]
    pub new: String,
    /// recover to this time, RFC 3339 in UTC (default: the latest)
    #[argh(option)]
    pub time: Option<String>,
    /// the repository to clone from: local (default) or s3
    #[argh(option)]
    pub from: Option<String>,
    /// swarm homes: the node to run the clone on (as for restore)
    #[argh(option)]
    pub node: Option<String>,
    /// print the result as JSON
    #[argh(switch)]
    pub json: bool,
}

pub async fn backup(home: &Home, c: Backup) -> Result<()> {
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [action @ ("enable" | "config"), name] => {
            let r = ops::backup::policy::configure(home, name, c.schedule.as_deref(), c.retention.as_deref()).await?;
            if c.json {
                print::json(&r);
            } else {
                eprintln!(
                    "backups of '{}': full every {}, kept {}{}",
                    r.instance.name,
                    r.schedule,
                    r.retention,
                    if r.restarted { "; restarted once to turn WAL archiving on" } else { "" }
                );
                if *action == "enable" && !r.restarted {
                    eprintln!("(archiving starts with the next `dbaasctl up`)");
                }
            }
            Ok(())
        }
        ["verify", name, rest @ ..] if rest.len() <= 1 => {
            let b = ops::backup::verify(home, name, rest.first().copied()).await?;
            if c.json {
                print::json(&b);
            } else {
                eprintln!("{}", describe(&b));
            }
            match &b.verification {
                Some(v) if !v.verified => Err(Error::Failed(format!(
                    "backup {} of '{name}' failed its verification: {}",
                    b.label,
                    v.reason.as_deref().unwrap_or("no reason given")
                ))),
                _ => Ok(()),
            }
        }
        [name] => {
            if c.schedule.is_some() || c.retention.is_some() {
                return Err(Error::invalid(
                    "schedule",
                    "--schedule and --retention go with `backup config NAME` or `backup enable NAME`",
                ));
            }
            let b = ops::backup::take(home, name, &c.kind).await?;
            if c.json {
                print::json(&b);
            } else {
                eprintln!("{}", describe(&b));
                println!("{}", b.label);
            }
            Ok(())
        }
        _ => Err(Error::invalid(
            "arguments",
            "use `dbaasctl backup NAME`, `backup verify NAME [LABEL]`, `backup enable NAME` or `backup config NAME`",
        )),
    }
}

fn describe(b: &BackupInfo) -> String {
    let verified = match &b.verification {
        Some(v) if v.verified => format!(
            "verified: restored in {} s, {} tables read, {} indexes checked",
            v.restore_s.unwrap_or(0),
            v.tables,
            v.indexes_checked
        ),
        Some(v) => format!(
            "VERIFICATION FAILED: {}",
            v.reason.as_deref().unwrap_or("no reason")
        ),
        None => "not verified yet".into(),
    };
    format!(
        "backup {} ({}, {}, {} in the repository, {} s); {verified}",
        b.label,
        b.kind,
        print::human_size(b.size_bytes),
        print::human_size(b.repo_size_bytes),
        b.duration_s
    )
}

pub async fn backups(home: &Home, c: Backups) -> Result<()> {
    let lists = match (&c.name, c.all) {
        (Some(n), false) => vec![ops::backup::list(home, n).await?],
        (None, true) => ops::backup::list_all(home).await?,
        _ => {
            return Err(Error::invalid(
                "arguments",
                "give an instance name, or --all for every instance's backups",
            ))
        }
    };
    if c.json {
        match (c.all, lists.first()) {
            (false, Some(l)) => print::json(l),
            _ => print::json(&lists),
        }
        return Ok(());
    }
    for l in &lists {
        print_list(l, c.all);
    }
    Ok(())
}

fn print_list(l: &ops::backup::BackupList, header: bool) {
    if header {
        let state = if l.destroyed { " (destroyed)" } else { "" };
        println!("== {} ({}){state}", l.name, l.instance);
    }
    print_table(&l.report);
    if let Some(w) = &l.report.window {
        println!("recoverable: {} to {}", w.earliest, w.latest);
    }
    if let Some(f) = &l.report.last_failure {
        println!("last backup FAILED at {}: {}", f.ts, f.error);
    }
    if let Some(s3) = &l.report.s3 {
        println!("-- in the S3 repository (`--from s3` restores from it)");
        print_table(s3);
        if let Some(f) = &s3.last_failure {
            println!("last S3 backup FAILED at {}: {}", f.ts, f.error);
        }
    }
    if !l.enabled && !l.destroyed {
        println!(
            "backups are off: `dbaasctl backup enable {}` turns them on",
            l.name
        );
    }
}

fn print_table(r: &dbaas::backups::Report) {
    if r.backups.is_empty() {
        println!("no backups");
    } else {
        println!(
            "{:<34} {:<5} {:<21} {:>10} VERIFIED",
            "LABEL", "TYPE", "TAKEN", "SIZE"
        );
        for b in &r.backups {
            let v = match &b.verification {
                Some(v) if v.verified => "yes".to_string(),
                Some(v) => format!("NO: {}", v.reason.as_deref().unwrap_or("")),
                None => "pending".into(),
            };
            println!(
                "{:<34} {:<5} {:<21} {:>10} {v}",
                b.label,
                b.kind,
                b.stop,
                print::human_size(b.size_bytes)
            );
        }
    }
}

pub async fn restore(home: &Home, c: Restore) -> Result<i32> {
    let target = Target::parse(c.time.as_deref(), c.lsn.as_deref(), c.backup.as_deref())?;
    let from = FromRepo::parse(c.from.as_deref())?;
    if c.prune {
        if c.to.is_some() || c.in_place || c.undo || target != Target::Latest || c.from.is_some() {
            return Err(Error::invalid("prune", "--prune takes no other option"));
        }
        let gone = ops::backup::restore::prune(home, &c.name).await?;
        if c.json {
            print::json(&serde_json::json!({ "deleted": gone }));
        } else if gone.is_empty() {
            eprintln!("'{}' has no data directory kept aside", c.name);
        } else {
            for g in &gone {
                eprintln!("deleted {g}");
            }
        }
        return Ok(0);
    }
    match (&c.to, c.in_place, c.undo) {
        (Some(to), false, false) => {
            let pending = ops::backup::restore::restore_begin(
                home,
                &c.name,
                to,
                target,
                from,
                c.node.clone(),
            )
            .await?;
            finish_new(home, pending, c.json).await
        }
        (None, true, false) => {
            let r = ops::backup::restore::restore_in_place(home, &c.name, target, from).await?;
            print_in_place(&r, c.json, "restored");
            Ok(0)
        }
        (None, false, true) => {
            if target != Target::Latest || c.from.is_some() {
                return Err(Error::invalid(
                    "undo",
                    "--undo takes no --time, --lsn, --backup or --from",
                ));
            }
            let r = ops::backup::restore::undo(home, &c.name).await?;
            print_in_place(&r, c.json, "undid the restore of");
            Ok(0)
        }
        _ => Err(Error::invalid(
            "arguments",
            "give exactly one of --to NEW, --in-place, --undo and --prune",
        )),
    }
}

fn print_in_place(r: &ops::backup::restore::InPlace, json: bool, what: &str) {
    if json {
        print::json(r);
    } else {
        eprintln!(
            "{what} '{}' in place; the data directory it replaced is kept in {} (`dbaasctl restore {} --undo` swaps it back)",
            r.instance.name, r.kept_aside, r.instance.name
        );
    }
}

pub async fn clone(home: &Home, c: Clone) -> Result<i32> {
    let target = Target::parse(c.time.as_deref(), None, None)?;
    let from = FromRepo::parse(c.from.as_deref())?;
    let pending =
        ops::backup::restore::restore_begin(home, &c.name, &c.new, target, from, c.node.clone())
            .await?;
    finish_new(home, pending, c.json).await
}

/// The long part of a restore into a new instance; Ctrl-C rolls it back.
async fn finish_new(home: &Home, pending: ops::Pending, json: bool) -> Result<i32> {
    let finish = ops::create_finish(home, pending, ops::OnFailure::RollBack);
    super::created_or_rolled_back(home, finish, json, "restored into").await
}
