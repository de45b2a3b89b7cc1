//! An instance's secrets: generated once, kept only in instances/<id>/secrets/
//! (0600/0400), read back for the app user's password.

use super::{read_env, AGENT_UID};
use crate::error::Result;
use std::path::Path;

/// The secrets of one instance, kept only in instances/<id>/secrets/
/// (0600/0400). Debug never shows them.
#[derive(Clone)]
pub struct Credentials {
    pub superuser_password: String,
    pub app_password: String,
    pub monitor_password: String,
    /// The S3 repository (with its keys), when the instance has one.
    pub s3: Option<crate::backups::s3::S3Settings>,
    /// Its server certificate and key (instances made with TLS).
    pub tls: Option<crate::certs::Issued>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { <redacted> }")
    }
}

impl Credentials {
    pub fn generate() -> Credentials {
        Credentials {
            superuser_password: crate::secrets::password(),
            app_password: crate::secrets::password(),
            monitor_password: crate::secrets::password(),
            s3: None,
            tls: None,
        }
    }
}

/// secrets/<file>: (file, password, owner uid, mode). The agent's is its
/// own (read-only, owned by its user); the others are root's.
pub(super) fn secret_files(creds: &Credentials) -> [(&'static str, &str, u32, u32); 3] {
    [
        ("postgres_password", &creds.superuser_password, 0, 0o600),
        ("app_password", &creds.app_password, 0, 0o600),
        (
            "monitor_password",
            &creds.monitor_password,
            AGENT_UID,
            0o400,
        ),
    ]
}

/// The app user's password: secrets/app_password, or `.env` for instances
/// made before the passwords moved to files.
pub fn app_password(dir: &Path) -> Result<String> {
    let file = dir.join("secrets").join("app_password");
    match crate::safe_fs::read_to_string(&file) {
        Ok(p) if !p.trim().is_empty() => return Ok(p.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(crate::error::Error::io(
                format!("reading {}", file.display()),
                e,
            ))
        }
    }
    read_env(dir)?.remove("DBAAS_APP_PASSWORD").ok_or_else(|| {
        crate::error::Error::Failed(format!(
            "{} is missing; the instance directory is damaged",
            file.display()
        ))
    })
}
