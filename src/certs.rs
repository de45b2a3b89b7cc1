//! The home's certificate authority (config/ca/: ca.key 0600, ca.crt for
//! clients) and the server certificates it signs for instances, so that a
//! client verifies it reached the instance (`sslmode=verify-full`). Keys are
//! ECDSA P-256 from OpenSSL's CSPRNG; nothing here is ever logged.

use crate::error::{Error, IoContext, Result};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509NameBuilder, X509};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// The authority lasts ten years; what it signs, one (renewed before).
const CA_DAYS: u32 = 3650;
pub const SERVER_DAYS: u32 = 365;

/// A server certificate and its key, PEM.
#[derive(Clone)]
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued { cert, key: <redacted> }")
    }
}

pub struct Authority {
    cert: X509,
    key: PKey<Private>,
}

fn ssl(what: &str) -> impl Fn(openssl::error::ErrorStack) -> Error + '_ {
    move |e| Error::Failed(format!("{what}: {e}"))
}

fn new_key() -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl("a P-256 group"))?;
    let ec = EcKey::generate(&group).map_err(ssl("a P-256 key"))?;
    PKey::from_ec_key(ec).map_err(ssl("a P-256 key"))
}

fn name(cn: &str) -> Result<X509Name> {
    let mut n = X509NameBuilder::new().map_err(ssl("a name"))?;
    n.append_entry_by_text("O", "dbaas")
        .map_err(ssl("a name"))?;
    n.append_entry_by_text("CN", cn).map_err(ssl("a name"))?;
    Ok(n.build())
}

/// A certificate of `days` from now, with a random 128-bit serial.
fn builder(
    subject: &X509Name,
    key: &PKey<Private>,
    days: u32,
) -> Result<openssl::x509::X509Builder> {
    let f = ssl("a certificate");
    let mut b = X509::builder().map_err(&f)?;
    b.set_version(2).map_err(&f)?;
    let mut serial = BigNum::new().map_err(&f)?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false).map_err(&f)?;
    let serial = serial.to_asn1_integer().map_err(&f)?;
    b.set_serial_number(&serial).map_err(&f)?;
    b.set_subject_name(subject).map_err(&f)?;
    b.set_pubkey(key).map_err(&f)?;
    // An hour back: a client whose clock is a little behind still accepts it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (from, to) = (
        Asn1Time::from_unix(now - 3600).map_err(&f)?,
        Asn1Time::days_from_now(days).map_err(&f)?,
    );
    b.set_not_before(&from).map_err(&f)?;
    b.set_not_after(&to).map_err(&f)?;
    Ok(b)
}

impl Authority {
    /// The authority of `dir` (config/ca/), made the first time it is
    /// needed. `label` names it (the home's tag) for a user who trusts
    /// several homes' authorities.
    pub fn load_or_create(dir: &Path, label: &str) -> Result<Authority> {
        match Authority::load(dir) {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Authority::create(dir, label),
            Err(e) => Err(e),
        }
    }

    /// The authority of `dir`, if it has one.
    pub fn load(dir: &Path) -> Result<Option<Authority>> {
        let key_path = dir.join(CA_KEY);
        let key_pem = match crate::safe_fs::read_to_string(&key_path) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", key_path.display()), e)),
        };
        check_private(&key_path)?;
        let cert_path = dir.join(CA_CERT);
        let cert_pem = crate::safe_fs::read_to_string(&cert_path)
            .ctx(|| format!("reading {}", cert_path.display()))?;
        let broken = |what: &'static str| {
            move |e: openssl::error::ErrorStack| {
                Error::Failed(format!(
                    "{} is not a PEM {what} ({e}); move config/ca/ aside and dbaas makes a new authority (clients must then trust the new ca.crt)",
                    dir.display()
                ))
            }
        };
        let key = PKey::private_key_from_pem(key_pem.as_bytes()).map_err(broken("key"))?;
        let cert = X509::from_pem(cert_pem.as_bytes()).map_err(broken("certificate"))?;
        Ok(Some(Authority { cert, key }))
    }

    /// Made whole in a directory of its own, then renamed into place:
    /// creates running at once (processes, or requests of one server)
    /// never see half an authority, and the first rename stands.
    fn create(dir: &Path, label: &str) -> Result<Authority> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(parent)
            .ctx(|| format!("creating {}", parent.display()))?;
        let tmp = parent.join(format!(
            ".ca.{}.{}",
            std::process::id(),
            crate::secrets::password().get(..12).unwrap_or("x")
        ));
        let made = Authority::make(&tmp, label);
        let placed = made.and_then(|a| match std::fs::rename(&tmp, dir) {
            Ok(()) => Ok(Some(a)),
            // Another create was first (the directory is not empty).
            Err(_) if dir.join(CA_KEY).exists() => Ok(None),
            Err(e) => Err(Error::io(format!("placing {}", dir.display()), e)),
        });
        let _ = std::fs::remove_dir_all(&tmp);
        match placed? {
            Some(a) => Ok(a),
            None => Authority::load(dir)?
                .ok_or_else(|| Error::Failed(format!("{} vanished", dir.display()))),
        }
    }

    /// A new authority, its key (0600) and certificate (0644), in `dir`.
    fn make(dir: &Path, label: &str) -> Result<Authority> {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .ctx(|| format!("creating {}", dir.display()))?;
        let key = new_key()?;
        let subject = name(&format!("dbaas CA {label}"))?;
        let f = ssl("the certificate authority");
        let mut b = builder(&subject, &key, CA_DAYS)?;
        b.set_issuer_name(&subject).map_err(&f)?;
        b.append_extension(
            BasicConstraints::new()
                .critical()
                .ca()
                .pathlen(0)
                .build()
                .map_err(&f)?,
        )
        .map_err(&f)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .map_err(&f)?,
        )
        .map_err(&f)?;
        b.sign(&key, MessageDigest::sha256()).map_err(&f)?;
        let cert = b.build();
        let key_pem = key.private_key_to_pem_pkcs8().map_err(&f)?;
        write_new(&dir.join(CA_KEY), &key_pem, 0o600)
            .map_err(|e| Error::io(format!("writing {}", dir.join(CA_KEY).display()), e))?;
        let cert_pem = cert.to_pem().map_err(&f)?;
        write_new(&dir.join(CA_CERT), &cert_pem, 0o644)
            .map_err(|e| Error::io(format!("writing {}", dir.join(CA_CERT).display()), e))?;
        Ok(Authority { cert, key })
    }

    /// The authority's certificate, PEM: what clients trust.
    pub fn cert_pem(&self) -> Result<String> {
        let pem = self.cert.to_pem().map_err(ssl("the CA certificate"))?;
        Ok(String::from_utf8_lossy(&pem).into_owned())
    }

    /// A server certificate for `cn`, valid for the DNS names and IP
    /// addresses in `names`.
    pub fn issue(&self, cn: &str, names: &[String]) -> Result<Issued> {
        let f = ssl("a server certificate");
        let key = new_key()?;
        let mut b = builder(&name(cn)?, &key, SERVER_DAYS)?;
        b.set_issuer_name(self.cert.subject_name()).map_err(&f)?;
        b.append_extension(BasicConstraints::new().critical().build().map_err(&f)?)
            .map_err(&f)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()
                .map_err(&f)?,
        )
        .map_err(&f)?;
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().map_err(&f)?)
            .map_err(&f)?;
        let mut san = SubjectAlternativeName::new();
        for n in names {
            if n.parse::<std::net::IpAddr>().is_ok() {
                san.ip(n);
            } else {
                san.dns(n);
            }
        }
        let ctx = b.x509v3_context(Some(&self.cert), None);
        let san = san.build(&ctx).map_err(&f)?;
        b.append_extension(san).map_err(&f)?;
        b.sign(&self.key, MessageDigest::sha256()).map_err(&f)?;
        let cert = b.build().to_pem().map_err(&f)?;
        let key = key.private_key_to_pem_pkcs8().map_err(&f)?;
        Ok(Issued {
            cert: String::from_utf8_lossy(&cert).into_owned(),
            key: String::from_utf8_lossy(&key).into_owned(),
        })
    }
}

/// When the certificate in `pem` expires, in seconds since the epoch.
pub fn not_after(pem: &str) -> Result<i64> {
    let f = ssl("reading a certificate");
    let cert = X509::from_pem(pem.as_bytes()).map_err(&f)?;
    let epoch = Asn1Time::from_unix(0).map_err(&f)?;
    let d = epoch.diff(cert.not_after()).map_err(&f)?;
    Ok(i64::from(d.days) * 86400 + i64::from(d.secs))
}

/// The names a server certificate of an instance reached at `address`
/// carries: loopback, localhost, this host's name, and the address itself.
pub fn server_names(address: &str) -> Vec<String> {
    let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    if let Some(h) = host_name() {
        names.push(h);
    }
    let address = address.trim_matches(|c| c == '[' || c == ']');
    let unspecified = address
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !address.is_empty() && !unspecified && !names.iter().any(|n| n == address) {
        names.push(address.to_string());
    }
    names
}

fn host_name() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then(|| h.to_string())
}

/// The CA certificate's path in a home's config directory.
pub fn ca_cert_path(config_dir: &Path) -> PathBuf {
    config_dir.join("ca").join(CA_CERT)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The authority's key: a regular file only its owner reads.
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = path
        .symlink_metadata()
        .ctx(|| format!("reading {}", path.display()))?;
    if !m.file_type().is_file() || m.mode() & 0o077 != 0 {
        return Err(Error::invalid(
            "ca",
            format!(
                "{} must be a regular file that only its owner can read (chmod 600)",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;

    #[test]
    fn an_authority_signs_what_a_client_verifies_and_keeps_its_key_private() {
        let t = crate::testing::TempDir::new("ca");
        let dir = t.path().join("ca");
        let ca = Authority::load_or_create(&dir, "test").unwrap();
        let mode = |f: &str| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(CA_KEY), 0o600);
        assert_eq!(mode(CA_CERT), 0o644);
        // Made once: a second load is the same authority.
        let again = Authority::load_or_create(&dir, "test").unwrap();
        assert_eq!(again.cert_pem().unwrap(), ca.cert_pem().unwrap());
        let issued = ca.issue("db_00000001", &server_names("10.0.0.7")).unwrap();
        assert!(!format!("{issued:?}").contains("PRIVATE"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let left = not_after(&issued.cert).unwrap() - now;
        assert!((364 * 86400..=365 * 86400 + 60).contains(&left), "{left}");
        let cert = X509::from_pem(issued.cert.as_bytes()).unwrap();
        let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
        for san in [
            "IP Address:127.0.0.1",
            "DNS:localhost",
            "IP Address:10.0.0.7",
        ] {
            assert!(text.contains(san), "{san}: {text}");
        }
        // Chains to the authority, and not to another one.
        let verifies = |anchor: &X509| {
            let mut store = X509StoreBuilder::new().unwrap();
            store.add_cert(anchor.clone()).unwrap();
            let store = store.build();
            let chain = openssl::stack::Stack::new().unwrap();
            let mut ctx = X509StoreContext::new().unwrap();
            ctx.init(&store, &cert, &chain, |c| c.verify_cert())
                .unwrap()
        };
        assert!(verifies(&ca.cert));
        let other = Authority::load_or_create(&t.path().join("other"), "x").unwrap();
        assert!(!verifies(&other.cert));
        // A key others can read is refused, naming the fix.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join(CA_KEY), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        let e = Authority::load(&dir).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn creates_at_once_agree_on_one_authority() {
        let t = crate::testing::TempDir::new("ca-race");
        let dir = t.path().join("config").join("ca");
        let pems: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        Authority::load_or_create(&dir, "t")
                            .unwrap()
                            .cert_pem()
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(pems.iter().all(|p| *p == pems[0]));
        let left: Vec<_> = std::fs::read_dir(t.path().join("config"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("ca")],
            "temporary directories left"
        );
    }

    #[test]
    fn server_names_skip_what_is_not_an_address() {
        let n = server_names("0.0.0.0");
        assert_eq!(&n[..2], ["127.0.0.1", "localhost"]);
        assert!(!n.iter().any(|x| x == "0.0.0.0"));
        assert!(
            server_names("127.0.0.1")
                .iter()
                .filter(|x| *x == "127.0.0.1")
                .count()
                == 1
        );
    }
}
