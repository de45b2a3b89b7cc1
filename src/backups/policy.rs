//! An instance's backup policy (when backups are taken, how long they are
//! kept) and the backup labels a user may name, validated.

use crate::error::{printable, Error, Result};

/// When an instance's backups are taken and how long they are kept, as
/// validated text (it is rendered into the sidecar's environment and
/// pgbackrest.conf).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BackupPolicy {
    /// `6h`, `30m`, `1d`: a full backup that long after the last one;
    /// `daily@HH:MM`: every day at that time (UTC).
    pub schedule: String,
    /// `7d`: keep what recovery to any time of the last 7 days needs;
    /// `3`: keep the last 3 full backups (and the WAL they need).
    pub retention: String,
}

pub const DEFAULT_BACKUP_SCHEDULE: &str = "24h";
pub const DEFAULT_BACKUP_RETENTION: &str = "7d";

impl Default for BackupPolicy {
    fn default() -> BackupPolicy {
        BackupPolicy {
            schedule: DEFAULT_BACKUP_SCHEDULE.into(),
            retention: DEFAULT_BACKUP_RETENTION.into(),
        }
    }
}

/// pgBackRest's retention of full backups: by time (days) or by count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Days(u32),
    Count(u32),
}

impl BackupPolicy {
    /// The retention as pgBackRest takes it (validated before it is kept).
    pub fn retention(&self) -> Retention {
        backup_retention(&self.retention).unwrap_or(Retention::Days(7))
    }
}

/// A backup schedule: `Nm`, `Nh`, `Nd` (at least 1m, at most 30d) or
/// `daily@HH:MM`.
pub fn backup_schedule(s: &str) -> Result<String> {
    let fix = "use an interval such as 24h, 6h or 30m (1m to 30d), or daily@HH:MM (UTC)";
    let s = s.trim();
    if let Some(hm) = s.strip_prefix("daily@") {
        let ok = hm.len() == 5
            && hm.is_ascii()
            && hm.as_bytes()[2] == b':'
            && hm[..2].parse::<u32>().is_ok_and(|h| h < 24)
            && hm[3..].parse::<u32>().is_ok_and(|m| m < 60)
            && hm
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 2 || b.is_ascii_digit());
        if ok {
            return Ok(s.to_string());
        }
        return Err(Error::invalid(
            "backup_schedule",
            format!("'{}' is not a time of day; {fix}", printable(s)),
        ));
    }
    // Split before the last character, not byte: any text may come in.
    let cut = s.char_indices().last().map_or(0, |(i, _)| i);
    let (n, unit) = s.split_at(cut);
    let secs = match (n.parse::<u64>(), unit) {
        (Ok(n), "m") if !n_has_sign(s) => n * 60,
        (Ok(n), "h") if !n_has_sign(s) => n * 3600,
        (Ok(n), "d") if !n_has_sign(s) => n * 86400,
        _ => {
            return Err(Error::invalid(
                "backup_schedule",
                format!("'{}' is not a schedule; {fix}", printable(s)),
            ))
        }
    };
    if !(60..=30 * 86400).contains(&secs) {
        return Err(Error::invalid(
            "backup_schedule",
            format!("'{s}' is out of range; {fix}"),
        ));
    }
    Ok(s.to_string())
}

fn n_has_sign(s: &str) -> bool {
    s.starts_with('+') || s.starts_with('-')
}

/// A retention: `Nd` (1 to 3650 days) or a count of full backups (1 to 100).
pub fn backup_retention(s: &str) -> Result<Retention> {
    let fix = "use a number of days such as 7d (1d to 3650d) or a number of full backups such as 3 (1 to 100)";
    let s = s.trim();
    let bad = || {
        Error::invalid(
            "backup_retention",
            format!("'{}' is not a retention; {fix}", printable(s)),
        )
    };
    if n_has_sign(s) {
        return Err(bad());
    }
    match s.strip_suffix('d') {
        Some(d) => match d.parse::<u32>() {
            Ok(d) if (1..=3650).contains(&d) => Ok(Retention::Days(d)),
            _ => Err(bad()),
        },
        None => match s.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(Retention::Count(n)),
            _ => Err(bad()),
        },
    }
}

/// A pgBackRest backup label: `20261129-002717F`, or a differential or
/// incremental one after its full backup's (`..F_20261129-013000D`).
pub fn backup_label(s: &str) -> Result<()> {
    fn stamp(s: &str) -> bool {
        s.len() == 15
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 8 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    }
    let ok = match s.split_once('_') {
        None => s.len() == 16 && s.ends_with('F') && stamp(&s[..15]),
        Some((full, rest)) => {
            full.len() == 16
                && full.ends_with('F')
                && stamp(&full[..15])
                && rest.len() == 16
                && (rest.ends_with('D') || rest.ends_with('I'))
                && stamp(&rest[..15])
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "backup",
            format!(
                "'{}' is not a backup label (such as 20261129-002717F); `dbaasctl backups NAME` lists them",
                printable(s)
            ),
        ))
    }
}

/// The backup policy of a create request, or none (`no_backups`).
pub fn backup_policy(
    schedule: Option<&str>,
    retention: Option<&str>,
    no_backups: bool,
) -> Result<Option<BackupPolicy>> {
    if no_backups {
        if schedule.is_some() || retention.is_some() {
            return Err(Error::invalid(
                "no_backups",
                "a backup schedule or retention was given together with no backups; drop one of them",
            ));
        }
        return Ok(None);
    }
    let schedule = backup_schedule(schedule.unwrap_or(DEFAULT_BACKUP_SCHEDULE))?;
    let retention = retention.unwrap_or(DEFAULT_BACKUP_RETENTION).trim();
    backup_retention(retention)?;
    Ok(Some(BackupPolicy {
        schedule,
        retention: retention.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_in_any_text_is_an_error_not_a_panic() {
        for bad in [
            "N\u{fbec4}jKn\u{40342}o(\u{e9}",
            "1\u{e9}",
            "daily@1\u{e9}:0",
            "\u{e9}",
            "",
            "24h\u{e9}",
        ] {
            let e = backup_schedule(bad).unwrap_err().to_string();
            assert!(e.contains("backup_schedule"), "{bad}: {e}");
        }
        assert_eq!(backup_schedule("24h").unwrap(), "24h");
        assert_eq!(backup_schedule("daily@03:30").unwrap(), "daily@03:30");
    }
}
