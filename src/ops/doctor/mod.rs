//! `dbaasctl doctor`: checks the host and that the registry agrees with the
//! containers and directories; each finding names its fix, and `--fix`
//! repairs what is safe (never deletes a data directory that might matter).

use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry;
use serde::{Serialize, Serializer};

mod host;
mod instance;
use host::{images, orphan_containers, orphan_directories, s3_networks};
use instance::instance;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// What `--fix` did about a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fixed {
    Done(String),
    Failed(String),
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fixed::Done(s) => f.write_str(s),
            Fixed::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

impl Fixed {
    fn from<T>(res: Result<T>, done: impl FnOnce(T) -> String) -> Fixed {
        match res {
            Ok(v) => Fixed::Done(done(v)),
            Err(e) => Fixed::Failed(e.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Finding {
    pub level: Level,
    pub check: String,
    pub message: String,
    pub fix: Option<String>,
    /// What `--fix` did, when it acted.
    pub fixed: Option<Fixed>,
}

pub(super) fn finding(level: Level, check: &str, message: String, fix: Option<String>) -> Finding {
    Finding {
        level,
        check: check.into(),
        message,
        fix,
        fixed: None,
    }
}

pub async fn run(home: &Home, fix: bool) -> Result<Vec<Finding>> {
    let engine = engine::of(home);
    let mut out = vec![finding(Level::Ok, "engine", engine.describe().into(), None)];
    for c in engine.host_checks().await {
        let failed = c.outcome.is_err();
        out.push(match c.outcome {
            Ok(m) => finding(Level::Ok, c.check, m, None),
            Err(m) => finding(Level::Error, c.check, m, Some(c.fix.into())),
        });
        if failed && c.fatal {
            // Nothing else can be checked without it.
            return Ok(out);
        }
    }
    let reg = match registry::load(home) {
        Ok(r) => r,
        Err(e) => {
            out.push(finding(
                Level::Error,
                "registry",
                e.to_string(),
                Some("restore config/instances.json from a backup or fix it by hand".into()),
            ));
            return Ok(out);
        }
    };
    out.push(finding(
        Level::Ok,
        "registry",
        format!(
            "{} readable, {} instance(s)",
            home.registry_path().display(),
            reg.instances.len()
        ),
        None,
    ));
    out.extend(images(home, engine.as_ref(), &reg).await);
    out.extend(s3_networks(engine.as_ref(), &reg).await);
    let ps = engine.ps(None).await?;
    out.extend(orphan_containers(engine.as_ref(), &reg, &ps, fix).await);
    for inst in &reg.instances {
        out.extend(instance(home, engine.as_ref(), inst, ps.get(&inst.id), fix).await);
    }
    out.extend(orphan_directories(home, &reg));
    Ok(out)
}

/// Exit status of `doctor`: failing when any error is left unfixed.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings
        .iter()
        .any(|f| f.level == Level::Error && !matches!(f.fixed, Some(Fixed::Done(_))))
}

pub fn as_error(findings: &[Finding]) -> Option<Error> {
    has_errors(findings).then(|| Error::Failed("doctor found problems (see above)".into()))
}
