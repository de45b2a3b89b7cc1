//! The optional second backup repository, S3-compatible: the settings file
//! a user writes (`key = value` lines, mode 0600), read and checked. What is
//! not secret goes into the registry and pgbackrest.conf; the keys and the
//! encryption passphrase only into files of mode 0600.
//!
//! ```text
//! endpoint   = s3.example.net      # host name (required)
//! bucket     = db-backups          # (required)
//! region     = eu-west-1           # (required)
//! access_key = AKIA...             # (required)
//! secret_key = ...                 # (required)
//! port       = 443                 # default 443
//! uri_style  = host                # host (default) or path
//! verify_tls = y                   # y (default) or n
//! path       = /dbaas              # prefix in the bucket; each instance gets path/<id>
//! network    = my-net              # a Docker network the containers join to reach it
//! cipher_pass = ...                # default: a random passphrase per instance
//!                                   # (refused in the host-wide DBAAS_S3 file)
//! ```

use crate::error::{Error, IoContext, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where the repository is (nothing secret): kept in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct S3Repo {
    pub endpoint: String,
    pub port: u16,
    pub bucket: String,
    pub region: String,
    /// `host` (bucket.endpoint) or `path` (endpoint/bucket).
    pub uri_style: String,
    pub verify_tls: bool,
    /// The prefix in the bucket; the instance's repository is `path/<id>`.
    pub path: String,
    /// A Docker network the db and backup containers join to reach the
    /// endpoint (none: the default network's route out).
    pub network: Option<String>,
}

/// The keys and the passphrase the repository is encrypted with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Secrets {
    pub access_key: String,
    pub secret_key: String,
    pub cipher_pass: String,
    /// The passphrase came from the settings file (else it was generated
    /// for this instance, and a restore into a new instance generates its
    /// own).
    #[serde(default)]
    pub cipher_pass_given: bool,
}

impl std::fmt::Debug for S3Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Secrets { <redacted> }")
    }
}

/// One instance's S3 repository, as kept in backups/<id>/s3.json (0600).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Settings {
    pub repo: S3Repo,
    pub secrets: S3Secrets,
}

impl S3Settings {
    /// The same repository for another instance: its own passphrase unless
    /// the settings file gave one.
    pub fn for_new_instance(&self) -> S3Settings {
        let mut s = self.clone();
        if !s.secrets.cipher_pass_given {
            s.secrets.cipher_pass = crate::secrets::password();
        }
        s
    }
}

impl S3Settings {
    /// Settings read back from a file dbaas wrote are checked by the rules
    /// of a settings file: written out as one and parsed again, they must
    /// come back the same (a newline in a value, which would add a
    /// pgBackRest option, or a network name that is not a word, does not).
    pub fn checked(self) -> Result<S3Settings> {
        let (r, k) = (&self.repo, &self.secrets);
        let mut text = format!(
            "endpoint={}\nbucket={}\nregion={}\naccess_key={}\nsecret_key={}\nport={}\nuri_style={}\nverify_tls={}\npath={}\ncipher_pass={}\n",
            r.endpoint,
            r.bucket,
            r.region,
            k.access_key,
            k.secret_key,
            r.port,
            r.uri_style,
            if r.verify_tls { "y" } else { "n" },
            r.path,
            k.cipher_pass
        );
        if let Some(n) = &r.network {
            text.push_str(&format!("network={n}\n"));
        }
        let again = parse(&text)?;
        let same = again.repo == self.repo
            && again.secrets.access_key == k.access_key
            && again.secrets.secret_key == k.secret_key
            && again.secrets.cipher_pass == k.cipher_pass;
        if !same {
            return Err(Error::invalid(
                "s3",
                "a value does not read back the same (a newline or a character a settings file refuses)",
            ));
        }
        Ok(self)
    }
}

/// Whether a new instance gets an S3 repository.
#[derive(Debug, Clone, Default)]
pub enum S3Choice {
    /// The host's (DBAAS_S3), if set.
    #[default]
    HostDefault,
    /// This settings file.
    File(std::path::PathBuf),
    /// None (`--no-s3`).
    Off,
    /// The repository of the instance it is restored from.
    Given(Box<S3Settings>),
}

/// Reads a settings file: it must be a regular file that only its owner
/// can read (it holds the keys).
pub fn read(path: &Path) -> Result<S3Settings> {
    let text = read_private(path)?;
    parse(&text).map_err(|e| in_file(e, path))
}

fn in_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Invalid { field, reason } => {
            Error::invalid(field, format!("{reason} (in {})", path.display()))
        }
        e => e,
    }
}

/// A settings or key file's text: a regular file only its owner can read.
fn read_private(path: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::invalid("s3", format!("cannot read {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::invalid("s3", format!("{shown} is not a file")));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::invalid(
            "s3",
            format!("{shown} holds keys but others can read it; run `chmod 600 {shown}`"),
        ));
    }
    crate::safe_fs::read_to_string(path).ctx(|| format!("reading {shown}"))
}

/// The host-wide settings file (DBAAS_S3) for the instance NAME. With
/// `keys_dir = DIR` in it, the instance's keys (and, if given, its own
/// `path` in the bucket) come from DIR/NAME.conf, so that each instance
/// holds a key of its own, which a bucket policy limits to its path; an
/// instance without such a file gets no S3 repository, refused with the
/// file to write.
pub fn read_for_instance(host_file: &Path, name: &str) -> Result<S3Settings> {
    let text = read_private(host_file)?;
    let mut keys_dir = None;
    let mut base = String::new();
    for line in text.lines() {
        match line.split_once('=') {
            Some((k, v)) if k.trim() == "keys_dir" => keys_dir = Some(v.trim().to_string()),
            _ => {
                base.push_str(line);
                base.push('\n');
            }
        }
    }
    let Some(dir) = keys_dir else {
        return parse(&text).map_err(|e| in_file(e, host_file));
    };
    if !dir.starts_with('/') {
        return Err(in_file(
            Error::invalid("s3", "'keys_dir' must be an absolute path"),
            host_file,
        ));
    }
    let file = Path::new(&dir).join(format!("{name}.conf"));
    if !file.exists() {
        return Err(Error::invalid(
            "s3",
            format!(
                "{} names keys_dir = {dir}, and {} does not exist: write it (mode 0600) with this instance's own `access_key = ...` and `secret_key = ...` (and `path = ...`, the prefix its bucket policy allows), or create it with --no-s3",
                host_file.display(),
                file.display()
            ),
        ));
    }
    let own = read_private(&file)?;
    if let Some(k) = key_values(&own)?
        .keys()
        .find(|k| !["access_key", "secret_key", "path"].contains(&k.as_str()))
    {
        return Err(in_file(
            Error::invalid(
                "s3",
                format!("'{k}' is not accepted in an instance's key file: only access_key, secret_key and path"),
            ),
            &file,
        ));
    }
    // The instance's lines come last, and the last of a key wins.
    parse(&format!("{base}{own}")).map_err(|e| in_file(e, &file))
}

/// Parses the `key = value` lines of a settings file.
pub fn parse(text: &str) -> Result<S3Settings> {
    let mut kv = key_values(text)?;
    let mut take = |k: &str| kv.remove(k).filter(|v| !v.is_empty());
    let need = |k: &str, v: Option<String>| {
        v.ok_or_else(|| Error::invalid("s3", format!("'{k}' is missing; add `{k} = ...`")))
    };
    let endpoint = host_name("endpoint", &need("endpoint", take("endpoint"))?)?;
    let bucket = word("bucket", &need("bucket", take("bucket"))?, "a-z 0-9 . -")?;
    let region = word("region", &need("region", take("region"))?, "a-z 0-9 -")?;
    let access_key = secret("access_key", &need("access_key", take("access_key"))?)?;
    let secret_key = secret("secret_key", &need("secret_key", take("secret_key"))?)?;
    let (port, uri_style, verify_tls) =
        connection(take("port"), take("uri_style"), take("verify_tls"))?;
    let path = repo_path(take("path"))?;
    let network = take("network")
        .map(|n| word("network", &n, "letters, digits, _ . -"))
        .transpose()?;
    let (cipher_pass, cipher_pass_given) = cipher(take("cipher_pass"))?;
    Ok(S3Settings {
        repo: S3Repo {
            endpoint,
            port,
            bucket,
            region,
            uri_style,
            verify_tls,
            path,
            network,
        },
        secrets: S3Secrets {
            access_key,
            secret_key,
            cipher_pass,
            cipher_pass_given,
        },
    })
}

fn key_values(text: &str) -> Result<std::collections::BTreeMap<String, String>> {
    let mut kv = std::collections::BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::invalid(
                "s3",
                format!("line {} is not `key = value`", n + 1),
            ));
        };
        let k = k.trim().to_string();
        if !KEYS.contains(&k.as_str()) {
            return Err(Error::invalid(
                "s3",
                format!(
                    "unknown key '{}' on line {}; the keys are {}",
                    crate::error::printable(&k),
                    n + 1,
                    KEYS.join(", ")
                ),
            ));
        }
        kv.insert(k, v.trim().to_string());
    }
    Ok(kv)
}

fn connection(
    port: Option<String>,
    uri_style: Option<String>,
    verify_tls: Option<String>,
) -> Result<(u16, String, bool)> {
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Error::invalid("s3", "'port' must be a number from 1 to 65535"))?,
    };
    let uri_style = match uri_style.as_deref() {
        None | Some("host") => "host",
        Some("path") => "path",
        Some(_) => return Err(Error::invalid("s3", "'uri_style' must be host or path")),
    };
    let verify_tls = match verify_tls.as_deref() {
        None | Some("y") => true,
        Some("n") => false,
        Some(_) => return Err(Error::invalid("s3", "'verify_tls' must be y or n")),
    };
    Ok((port, uri_style.to_string(), verify_tls))
}

fn repo_path(path: Option<String>) -> Result<String> {
    let path = path.unwrap_or_else(|| "/dbaas".into());
    let ok = path.starts_with('/')
        && path.len() <= 200
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b))
        && !path.contains("..");
    if !ok {
        return Err(Error::invalid(
            "s3",
            "'path' must start with / and hold only letters, digits, / _ - .",
        ));
    }
    Ok(path.trim_end_matches('/').to_string())
}

/// The passphrase given (at least 16 characters), or a random one.
fn cipher(given: Option<String>) -> Result<(String, bool)> {
    match given {
        Some(p) if p.len() >= 16 => Ok((secret("cipher_pass", &p)?, true)),
        Some(_) => Err(Error::invalid(
            "s3",
            "'cipher_pass' must be at least 16 characters (or leave it out for a random one)",
        )),
        None => Ok((crate::secrets::password(), false)),
    }
}

const KEYS: &[&str] = &[
    "endpoint",
    "bucket",
    "region",
    "access_key",
    "secret_key",
    "port",
    "uri_style",
    "verify_tls",
    "path",
    "network",
    "cipher_pass",
];

fn host_name(key: &str, v: &str) -> Result<String> {
    let ok = v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        });
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(Error::invalid(
            "s3",
            format!(
                "'{key}' must be a host name such as s3.example.net (no scheme, no port), not '{}'",
                crate::error::printable(v)
            ),
        ))
    }
}

/// A name of letters, digits and `_ . -` (what `allowed` describes).
fn word(key: &str, v: &str, allowed: &str) -> Result<String> {
    let ok = v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !v.starts_with(['-', '.']);
    if ok {
        Ok(v.to_string())
    } else {
        Err(Error::invalid(
            "s3",
            format!("'{key}' may hold only {allowed}"),
        ))
    }
}

/// A key or passphrase: printable ASCII without spaces (it is written into
/// pgBackRest's configuration, one line per value). Never echoed.
fn secret(key: &str, v: &str) -> Result<String> {
    if !v.is_empty() && v.len() <= 1024 && v.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(v.to_string())
    } else {
        Err(Error::invalid(
            "s3",
            format!("'{key}' must be printable ASCII without spaces"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# a comment\nendpoint = S3.Example.net\nbucket = b-1\nregion = us-east-1\n\
        access_key = AKIA1\nsecret_key = s/e+c=r\nuri_style = path\nport = 9443\nverify_tls = n\n\
        network = dbaas-s3\n";

    #[test]
    fn parses_a_settings_file_with_defaults() {
        let s = parse(GOOD).unwrap();
        assert_eq!(s.repo.endpoint, "s3.example.net");
        assert_eq!(s.repo.port, 9443);
        assert_eq!(s.repo.uri_style, "path");
        assert!(!s.repo.verify_tls);
        assert_eq!(s.repo.path, "/dbaas");
        assert_eq!(s.repo.network.as_deref(), Some("dbaas-s3"));
        assert_eq!(s.secrets.secret_key, "s/e+c=r");
        assert!(!s.secrets.cipher_pass_given && s.secrets.cipher_pass.len() == 32);
        let other = s.for_new_instance();
        assert_ne!(other.secrets.cipher_pass, s.secrets.cipher_pass);
        assert!(!format!("{s:?}").contains("AKIA1"));
        let d = parse("endpoint=e\nbucket=b\nregion=r\naccess_key=a\nsecret_key=s\n").unwrap();
        assert_eq!((d.repo.port, d.repo.uri_style.as_str()), (443, "host"));
        assert!(d.repo.verify_tls && d.repo.network.is_none());
    }

    #[test]
    fn refuses_bad_settings_naming_the_key() {
        let base = "endpoint=e\nbucket=b\nregion=r\naccess_key=a\nsecret_key=s\n";
        for (extra, needle) in [
            ("port=0\n", "port"),
            ("uri_style=virtual\n", "uri_style"),
            ("verify_tls=yes\n", "verify_tls"),
            ("path=relative\n", "path"),
            ("path=/a/../b\n", "path"),
            ("network=a b\n", "network"),
            ("cipher_pass=short\n", "cipher_pass"),
            ("colour=blue\n", "unknown key"),
            ("just words\n", "not `key = value`"),
        ] {
            let e = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(e.contains(needle), "{extra}: {e}");
        }
        let e = parse("bucket=b\n").unwrap_err().to_string();
        assert!(e.contains("'endpoint' is missing"), "{e}");
        let e = parse(&base.replace("endpoint=e", "endpoint=https://e:9"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("host name"), "{e}");
        let e = parse(&base.replace("secret_key=s", "secret_key=a b"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret_key") && !e.contains("a b"), "{e}");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = crate::testing::TempDir::new("s3");
        let f = t.path().join("s3.conf");
        std::fs::write(
            &f,
            "endpoint=e\nbucket=b\nregion=r\naccess_key=a\nsecret_key=s\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&f).unwrap_err().to_string().contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&f).unwrap().repo.bucket, "b");
        assert!(read(t.path())
            .unwrap_err()
            .to_string()
            .contains("not a file"));
    }
}
