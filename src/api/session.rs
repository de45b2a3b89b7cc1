//! The console's sessions: signing in with the API token gives a random
//! session id in an `HttpOnly`, `SameSite=Strict` cookie, held only in the
//! server's memory with an expiry (a restarted server signs everyone out),
//! and a second random value, the CSRF token, that the console's pages carry
//! and send back in `X-CSRF-Token` with every request that changes
//! something. The cookie alone never authorises a change: a page of another
//! site can make the browser send the cookie (SameSite aside), but cannot
//! read the CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use warp::http::{HeaderMap, Method};

pub const COOKIE: &str = "dbaas_session";
/// How long a session lasts from sign-in.
pub const TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once; signing in past it ends the oldest (only a holder
/// of the token can sign in, so this bounds memory, not an attacker).
const MAX_SESSIONS: usize = 1000;

#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    pub expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// How a request is authorised.
pub enum Access {
    /// `Authorization: Bearer <token>`.
    Token,
    /// The console's session cookie (and, for a change, its CSRF token).
    Session(Session),
    /// A session cookie on a change without the session's CSRF token, or
    /// from another origin.
    Forged,
    /// A bearer token that is not this server's: a guess, answered after
    /// the shared backoff.
    WrongToken,
    None,
}

/// Every wrong token waits at least this long for its answer.
const WRONG_TOKEN_DELAY: std::time::Duration = std::time::Duration::from_millis(300);
/// Wrong tokens from all clients, on both paths (the bearer header and the
/// console's sign-in), are answered at most one per this: guessing in
/// parallel gains nothing.
const WRONG_TOKEN_SPACING: std::time::Duration = std::time::Duration::from_millis(50);
/// The longest a wrong token waits in that queue.
const WRONG_TOKEN_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The shared backoff of a wrong token: each takes the next free slot.
pub async fn wrong_token_backoff() {
    static NEXT: std::sync::Mutex<Option<tokio::time::Instant>> = std::sync::Mutex::new(None);
    let now = tokio::time::Instant::now();
    let at = {
        let mut next = NEXT.lock().unwrap_or_else(|e| e.into_inner());
        let slot = next
            .map_or(now, |n| n.max(now))
            .min(now + WRONG_TOKEN_MAX_WAIT);
        *next = Some(slot + WRONG_TOKEN_SPACING);
        slot
    };
    tokio::time::sleep_until(at.max(now + WRONG_TOKEN_DELAY)).await;
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// A new session: its id (the cookie) and its CSRF token.
    pub fn create(&self) -> (String, Session) {
        let id = format!(
            "{}{}",
            crate::secrets::password(),
            crate::secrets::password()
        );
        let s = Session {
            csrf: crate::secrets::password(),
            expires: Instant::now() + TTL,
        };
        let mut map = self.by_id.lock().expect("sessions");
        map.retain(|_, v| v.expires > Instant::now());
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, v)| v.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), s.clone());
        (id, s)
    }

    /// The live session of the request's cookie.
    pub fn get(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let mut map = self.by_id.lock().expect("sessions");
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the request's session.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.by_id.lock().expect("sessions").remove(id);
        }
    }

    pub fn count(&self) -> usize {
        self.by_id.lock().expect("sessions").len()
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Whether a method can change something (everything but reads).
pub fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The request comes from a page of this server, as far as the browser
/// says: its `Origin` (sent with every cross-origin request and every
/// POST) names this host, or it has none (not a browser's cross-site
/// request).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|s| s == "same-origin" || s == "none");
    };
    let Some(host) = headers.get("host").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// The access a request has: the token, or a session (with the CSRF token
/// and a same-origin request for a change).
pub fn access(sessions: &Sessions, token: &str, method: &Method, headers: &HeaderMap) -> Access {
    if let Some(given) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return if constant_time_eq(given.trim().as_bytes(), token.as_bytes()) {
            Access::Token
        } else {
            Access::WrongToken
        };
    }
    let Some(s) = sessions.get(headers) else {
        return Access::None;
    };
    if !changes(method) {
        return Access::Session(s);
    }
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if same_origin(headers) && constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) {
        Access::Session(s)
    } else {
        Access::Forged
    }
}

/// The `Set-Cookie` value of a new session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        TTL.as_secs()
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cookies_csrf_and_origin() {
        let s = Sessions::default();
        let (id, sess) = s.create();
        let c = format!("a=b; {COOKIE}={id}");
        let get = headers(&[("cookie", &c)]);
        assert!(matches!(
            access(&s, "tok", &Method::GET, &get),
            Access::Session(_)
        ));
        // A change needs the CSRF token...
        assert!(matches!(
            access(&s, "tok", &Method::POST, &get),
            Access::Forged
        ));
        let ok = headers(&[
            ("cookie", &c),
            ("x-csrf-token", &sess.csrf),
            ("host", "127.0.0.1:8000"),
            ("origin", "http://127.0.0.1:8000"),
        ]);
        assert!(matches!(
            access(&s, "tok", &Method::POST, &ok),
            Access::Session(_)
        ));
        // ...and this origin.
        let other = headers(&[
            ("cookie", &c),
            ("x-csrf-token", &sess.csrf),
            ("host", "127.0.0.1:8000"),
            ("origin", "http://evil.example"),
        ]);
        assert!(matches!(
            access(&s, "tok", &Method::DELETE, &other),
            Access::Forged
        ));
        let cross = headers(&[
            ("cookie", &c),
            ("x-csrf-token", &sess.csrf),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(matches!(
            access(&s, "tok", &Method::POST, &cross),
            Access::Forged
        ));
        // A wrong bearer token is not rescued by a cookie.
        let both = headers(&[("cookie", &c), ("authorization", "Bearer nope")]);
        assert!(matches!(
            access(&s, "tok", &Method::GET, &both),
            Access::WrongToken
        ));
        assert!(matches!(
            access(
                &s,
                "tok",
                &Method::GET,
                &headers(&[("authorization", "Bearer tok")])
            ),
            Access::Token
        ));
        s.end(&get);
        assert!(matches!(
            access(&s, "tok", &Method::GET, &get),
            Access::None
        ));
        let bogus = headers(&[("cookie", "dbaas_session=guess")]);
        assert!(matches!(
            access(&s, "tok", &Method::GET, &bogus),
            Access::None
        ));
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[tokio::test]
    async fn wrong_tokens_share_one_backoff() {
        // Twenty guesses at once: answered one per spacing, not together.
        let t = tokio::time::Instant::now();
        let all: Vec<_> = (0..20)
            .map(|_| tokio::spawn(wrong_token_backoff()))
            .collect();
        for h in all {
            h.await.unwrap();
        }
        let took = t.elapsed();
        assert!(took >= WRONG_TOKEN_SPACING * 19, "{took:?}");
    }

    #[test]
    fn ids_are_long_and_distinct() {
        let s = Sessions::default();
        let (a, sa) = s.create();
        let (b, _) = s.create();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(sa.csrf, a);
        assert_eq!(s.count(), 2);
    }
}
