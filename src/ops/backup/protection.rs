//! How well an instance is protected: the concerns `doctor` and `top` flag
//! about its backups and WAL archiving, and the brief state the summary,
//! `show` and /metrics carry. Files only (the repository's log and the
//! agent's latest sample): no container is asked.

use crate::backups::{self, Report};
use crate::home::Home;
use crate::registry::Instance;

/// The concerns about an instance's backups (none when they are off), and
/// its report: from the repository's files and the agent's latest sample
/// (the archiver's state).
pub fn concerns(home: &Home, inst: &Instance) -> (Vec<backups::Concern>, Report) {
    if inst.backups.is_none() {
        return (vec![], Report::default());
    }
    let report = match backups::report_brief(&home.backup_dir(&inst.id), &inst.id) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("{}: reading its backups: {e}", inst.name);
            return (vec![], Report::default());
        }
    };
    let since = humantime::parse_rfc3339_weak(inst.created_at.trim_end_matches('Z'))
        .unwrap_or(std::time::SystemTime::now());
    let mut out = report.concerns(std::time::SystemTime::now(), since);
    let latest = crate::metrics::tail::last_samples(&crate::metrics::dir_of(home, &inst.id), 1);
    let archiver = latest.last().and_then(|s| Some((s, s.archiver.as_ref()?)));
    if let Some((_, a)) = archiver.filter(|(s, a)| a.on() && a.failing() && !starting_up(s, a)) {
        out.push(backups::Concern::ArchiveFailing {
            wal: a.last_failed_wal.clone().unwrap_or_default(),
            at: a.last_failed_time.clone().unwrap_or_default(),
        });
    }
    (out, report)
}

/// A failure in the server's first 30 s: a segment tried before the
/// sidecar had created the stanza, which the sidecar's first check pushes.
/// A repository that stays dead fails again at the archiver's next retry.
fn starting_up(s: &crate::metrics::Sample, a: &crate::metrics::sample::Archiver) -> bool {
    use crate::metrics::summary::epoch;
    match (
        s.postmaster_start.as_deref().and_then(epoch),
        a.last_failed_time.as_deref().and_then(epoch),
    ) {
        (Some(start), Some(failed)) => failed - start < 30.0,
        _ => false,
    }
}

/// The brief state of an instance's backups (None when they are off).
pub fn health(home: &Home, inst: &Instance) -> Option<backups::BackupHealth> {
    inst.backups.as_ref()?;
    let (concerns, report) = concerns(home, inst);
    Some(report.health(&concerns))
}
