//! What dbaas says of an instance's TLS: when its certificate expires,
//! read from instances/<id>/tls/ (for `show`, `/metrics` and `doctor`).

use crate::home::Home;
use crate::registry::Instance;

/// Doctor warns this long before a certificate expires.
pub const WARN_BEFORE_SECS: i64 = 30 * 86400;

/// When the server certificate of `inst` expires (seconds since the
/// epoch); None without TLS, or when the file cannot be read.
pub fn expiry(home: &Home, inst: &Instance) -> Option<i64> {
    if !inst.tls {
        return None;
    }
    let path = home
        .instance_dir(&inst.id)
        .join(crate::provision::TLS_DIR)
        .join("server.crt");
    // Parsed once per version of the file: OpenSSL's decoding costs more
    // than a request of `GET /instances/{id}` may (it cut that route to a
    // fifth before this cache).
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(&path).ok()?;
    let key = (m.ino(), m.mtime(), m.mtime_nsec(), m.len());
    static SEEN: std::sync::OnceLock<Seen> = std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some((k, at)) = seen.lock().ok()?.get(&path) {
        if *k == key {
            return Some(*at);
        }
    }
    let pem = crate::safe_fs::read_to_string(&path).ok()?;
    let at = crate::certs::not_after(&pem).ok()?;
    let mut seen = seen.lock().ok()?;
    if seen.len() > 4096 {
        seen.clear();
    }
    seen.insert(path, (key, at));
    Some(at)
}

/// Expiries already read, by file, with the file's identity then.
type Seen =
    std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, ((u64, i64, i64, u64), i64)>>;

/// `expiry` as RFC 3339 (UTC), for people.
pub fn expiry_text(home: &Home, inst: &Instance) -> Option<String> {
    let secs = u64::try_from(expiry(home, inst)?).ok()?;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The addresses of the nodes a swarm instance may move to, which its
/// certificate names too (a move keeps it valid); none for one host.
pub async fn node_addresses(home: &Home, inst: &Instance) -> crate::error::Result<Vec<String>> {
    if inst.node.is_none() {
        return Ok(vec![]);
    }
    let engine = crate::engine::of(home);
    let nodes = crate::engine::nodes_of(engine.as_ref()).await?;
    Ok(nodes.into_iter().map(|n| n.address).collect())
}
