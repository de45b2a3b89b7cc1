//! The shapes a DBAAS_* value may take: numbers in a range, durations,
//! sizes, the warm pool and the port range.

use crate::error::{Error, Result};
use std::time::Duration;

pub(super) fn number<T>(
    name: &str,
    v: &str,
    range: std::ops::RangeInclusive<T>,
    what: &str,
) -> Result<T>
where
    T: std::str::FromStr + PartialOrd,
{
    v.trim()
        .parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| Error::invalid(name, format!("'{v}' is not {what}")))
}

pub(super) fn duration(name: &str, v: &str, example: &str) -> Result<Duration> {
    humantime::parse_duration(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::invalid(name, format!("'{v}' is not a duration such as {example}")))
}

/// A size such as 8g or 512m; "0" turns the check off.
pub(super) fn size(name: &str, v: &str) -> Result<u64> {
    if v.trim() == "0" {
        return Ok(0);
    }
    crate::validate::memory(v, u64::MAX)
        .map_err(|_| Error::invalid(name, format!("'{v}' is not a size such as 8g or 512m")))
}

/// `15=2,17=1` (spares per version), or `0`/`off` for none.
pub fn parse_warm_pool(v: &str) -> Result<Vec<(u32, u32)>> {
    let v = v.trim();
    if v == "0" || v == "off" {
        return Ok(vec![]);
    }
    let bad = |why: String| Error::invalid("DBAAS_WARM_POOL", why);
    let mut out: Vec<(u32, u32)> = vec![];
    for part in v.split(',') {
        let (ver, n) = part.split_once('=').ok_or_else(|| {
            bad(format!(
                "'{part}' is not VERSION=SPARES; write e.g. DBAAS_WARM_POOL=15=2,17=1"
            ))
        })?;
        let ver: u32 = ver
            .trim()
            .parse()
            .ok()
            .filter(|x| crate::validate::SUPPORTED_VERSIONS.contains(x))
            .ok_or_else(|| {
                bad(format!(
                    "'{}' is not a supported PostgreSQL version ({:?})",
                    ver.trim(),
                    crate::validate::SUPPORTED_VERSIONS
                ))
            })?;
        let n = number(
            "DBAAS_WARM_POOL",
            n,
            0..=50,
            "a number of spares from 0 to 50",
        )?;
        if out.iter().any(|(x, _)| *x == ver) {
            return Err(bad(format!("version {ver} is named twice")));
        }
        if n > 0 {
            out.push((ver, n));
        }
    }
    Ok(out)
}

pub fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || {
        Error::invalid(
            "DBAAS_PORT_RANGE",
            format!("'{s}' is not a range like 5432-5999 (ports 1024-65535, low <= high)"),
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = a.trim().parse().map_err(|_| bad())?;
    let hi: u16 = b.trim().parse().map_err(|_| bad())?;
    if lo < 1024 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}
