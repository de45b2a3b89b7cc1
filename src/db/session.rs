//! Keeping pooled sessions clean, and writes honest.
//!
//! A pooled connection serves many requests, so nothing a request does may
//! outlive it: an open transaction would swallow later writes (and lose them
//! at the next error), a `SET` would change every later statement. Three
//! rules keep a connection in the state a fresh one has:
//! - statements that control transactions or only change the session are
//!   refused before they run (`check`), with a pointer to what to use;
//! - everything else runs in a transaction of its own (`in_transaction`,
//!   and `exec::run_sql`);
//! - after free SQL the session is reset (`reset`), which undoes what a
//!   function can change behind a plain `SELECT` (`set_config`, advisory
//!   locks, temp tables).
//!
//! And a write is acknowledged only after its COMMIT returned; a connection
//! lost during COMMIT is reported as an unknown outcome, never retried.

use super::connection_lost;
use super::pool::PgConn;
use super::Failure;
use crate::error::Error;

/// Where a statement is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `POST /sql`: alone, in a transaction of its own.
    Alone,
    /// One statement of `POST /transaction`.
    InTransaction,
}

/// The first `n` keywords of a statement, upper-cased, after comments and
/// opening parentheses.
pub fn keywords(sql: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut s = sql;
    while out.len() < n {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = skip_block_comment(rest);
        } else if let Some(rest) = s.strip_prefix('(') {
            s = rest;
        } else {
            let end = s
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            if end == 0 {
                break;
            }
            out.push(s[..end].to_ascii_uppercase());
            s = &s[end..];
        }
    }
    out
}

/// What follows a `/*` comment; PostgreSQL's block comments nest.
fn skip_block_comment(mut s: &str) -> &str {
    let mut depth = 1;
    while depth > 0 {
        let open = s.find("/*");
        let close = s.find("*/");
        match (open, close) {
            (Some(o), Some(c)) if o < c => {
                depth += 1;
                s = &s[o + 2..];
            }
            (_, Some(c)) => {
                depth -= 1;
                s = &s[c + 2..];
            }
            (_, None) => return "",
        }
    }
    s
}

/// Refuses statements that would leave state behind on a pooled session
/// (or, in a transaction, end it early), before anything runs.
pub fn check(sql: &str, ctx: Context) -> Result<(), Error> {
    let words = keywords(sql, 2);
    let first = words.first().map(String::as_str).unwrap_or("");
    let second = words.get(1).map(String::as_str).unwrap_or("");
    let tx_control = matches!(first, "BEGIN" | "START" | "COMMIT" | "END" | "ABORT")
        || (first == "ROLLBACK" && !(ctx == Context::InTransaction && second == "TO"))
        || (first == "PREPARE" && second == "TRANSACTION");
    let why = if tx_control {
        Some(match ctx {
            Context::Alone => "transaction control is not accepted here: every statement of /sql runs in a transaction of its own; send the statements together to POST /database/{id}/transaction (or use `dbaasctl psql`)",
            Context::InTransaction => "transaction control is not accepted inside /transaction: its statements already run in one transaction, committed when all succeed (SAVEPOINT and ROLLBACK TO SAVEPOINT are accepted)",
        })
    } else {
        match (first, ctx) {
            ("PREPARE" | "EXECUTE" | "DEALLOCATE", _) => Some(
                "prepared statements do not outlive a request: send the statement itself, with $1, $2, ... and \"params\"",
            ),
            ("COPY", _) => Some(
                "COPY is not accepted over the API: insert rows with POST /database/{id}/tables/{table}/rows (an array is one statement), or use `dbaasctl psql`",
            ),
            ("LOAD", _) => Some("LOAD is not accepted over the API"),
            ("SET" | "RESET" | "DISCARD" | "SAVEPOINT" | "RELEASE" | "LISTEN" | "UNLISTEN" | "DECLARE" | "FETCH" | "MOVE" | "CLOSE", Context::Alone) => Some(
                "this statement only changes the session, and a session does not outlive a /sql request: send it with the statements it is for to POST /database/{id}/transaction (SET LOCAL, SAVEPOINT, DECLARE ... work there)",
            ),
            _ => None,
        }
    };
    match why {
        Some(reason) => Err(Error::invalid(
            match ctx {
                Context::Alone => "sql",
                Context::InTransaction => "statements[].sql",
            },
            format!("{first}: {reason}"),
        )),
        None => Ok(()),
    }
}

/// Undoes what a request may have changed in its session, as DISCARD ALL
/// does but keeping the client's own prepared statements (DEALLOCATE ALL
/// would pull them from under the `postgres` crate). One round trip.
const RESET: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// Resets the session after free SQL; a connection that cannot be reset is
/// closed rather than returned to the pool.
pub fn reset(conn: &mut PgConn) {
    if let Err(e) = conn.client.batch_execute(RESET) {
        log::info!("closing a pooled connection that could not be reset: {e}");
        conn.broken = true;
    }
}

/// Runs `f` between BEGIN and COMMIT, so that a lost connection before the
/// COMMIT means nothing was written (and the pool may run `f` again on
/// another connection), and a write is acknowledged only once committed.
/// Just before COMMIT, a request that has already been answered (timed
/// out, client gone: `PgConn::abandoned`) is rolled back instead.
pub fn in_transaction<T>(
    conn: &mut PgConn,
    f: impl FnOnce(&mut PgConn) -> Result<T, Failure>,
) -> Result<T, Failure> {
    conn.client.batch_execute("BEGIN")?;
    let res = f(conn).and_then(|v| {
        if conn.abandoned() {
            Err(Failure::Other(abandoned()))
        } else {
            Ok(v)
        }
    });
    match res {
        Ok(v) => {
            commit_outcome(conn.client.batch_execute("COMMIT"))?;
            Ok(v)
        }
        Err(e) => {
            if conn.client.batch_execute("ROLLBACK").is_err() {
                conn.broken = true;
            }
            Err(e)
        }
    }
}

/// The request was answered before its transaction could commit.
pub fn abandoned() -> Error {
    Error::Unavailable(
        "the request was answered (timed out or the client went away) before its transaction committed: it was rolled back".into(),
    )
}

/// The result of a COMMIT: a connection lost while committing leaves the
/// outcome unknown, which must not be retried (it may have committed) nor
/// reported as a failure (it may not have).
pub fn commit_outcome(res: Result<(), postgres::Error>) -> Result<(), Failure> {
    res.map_err(|e| uncertain(Failure::Pg(e, None)))
}

/// A failure of work that may have committed on its own (a statement run
/// outside a transaction, or a COMMIT): a lost connection then becomes an
/// error that is not retried.
pub fn uncertain(f: Failure) -> Failure {
    match f {
        Failure::Pg(e, _) if connection_lost(&e) => Failure::Other(Error::Unavailable(format!(
            "the connection to PostgreSQL was lost while committing ({e}): the write may or may not have been applied; read it back before retrying"
        ))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_skip_comments_and_parentheses() {
        assert_eq!(
            keywords("  /* a /* nested */ b */ -- x\n ( begin  work", 2),
            ["BEGIN", "WORK"]
        );
        assert_eq!(
            keywords("prepare transaction 'x'", 2),
            ["PREPARE", "TRANSACTION"]
        );
        assert_eq!(keywords("", 2), Vec::<String>::new());
        assert_eq!(keywords("é", 2), Vec::<String>::new());
        assert_eq!(keywords("/* unterminated", 2), Vec::<String>::new());
    }

    #[test]
    fn session_and_transaction_statements_are_refused_alone() {
        for sql in [
            "BEGIN",
            "begin;",
            "START TRANSACTION",
            "COMMIT",
            "END",
            "ROLLBACK",
            "ABORT",
            "SAVEPOINT s",
            "RELEASE s",
            "PREPARE p AS SELECT 1",
            "PREPARE TRANSACTION 'x'",
            "EXECUTE p",
            "DEALLOCATE ALL",
            "SET statement_timeout = 0",
            "SET LOCAL x = 1",
            "RESET ALL",
            "DISCARD ALL",
            "LISTEN c",
            "UNLISTEN *",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "COPY t FROM STDIN",
            "LOAD 'x'",
            "/* hi */ set role x",
        ] {
            assert!(check(sql, Context::Alone).is_err(), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "INSERT INTO t VALUES (1)",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "SELECT set_config('a.b', 'c', false)",
            "CREATE TEMP TABLE x (a int)",
            "VACUUM",
            "settle",
        ] {
            assert!(check(sql, Context::Alone).is_ok(), "{sql}");
        }
    }

    #[test]
    fn a_transaction_may_set_and_use_savepoints_but_not_end() {
        for sql in [
            "SET LOCAL statement_timeout = 0",
            "SET search_path = x",
            "SAVEPOINT a",
            "ROLLBACK TO SAVEPOINT a",
            "ROLLBACK TO a",
            "RELEASE a",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH 1 FROM c",
        ] {
            assert!(check(sql, Context::InTransaction).is_ok(), "{sql}");
        }
        for sql in [
            "COMMIT",
            "ROLLBACK",
            "BEGIN",
            "END",
            "PREPARE TRANSACTION 'x'",
            "ABORT",
            "START TRANSACTION",
        ] {
            let e = check(sql, Context::InTransaction).unwrap_err().to_string();
            assert!(e.contains("statements[].sql"), "{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_statement_text_panics_the_check(s in crate::validate::tests::nasty_string()) {
            let _ = check(&s, Context::Alone);
            let _ = check(&s, Context::InTransaction);
            let _ = keywords(&s, 3);
        }
    }
}
