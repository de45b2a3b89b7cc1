//! The privileged SQL channel: the one way dbaas runs SQL as the superuser
//! (today through `psql` on the instance's socket, inside its db
//! container; the sidecar's scripts hold the same options).
//!
//! The tenant owns its database and `public`, so any privileged statement
//! that resolves a name through the search path could run the tenant's
//! code as the superuser (CVE-2018-1058). The session's settings are
//! therefore fixed at startup, where they beat `ALTER DATABASE/ROLE ...
//! SET`: the search path is the catalog alone, and the owner's timeouts or
//! read-only default cannot fail our statements. Statements sent here name
//! their functions with their schema as well.

/// The startup options of every privileged session (PGOPTIONS). The
/// sidecar's scripts (agent/backup.sh, agent/recover.sh) export the same
/// string; a test holds them equal.
pub const PGOPTIONS: &str = "-c search_path=pg_catalog,pg_temp -c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c default_transaction_read_only=off";

/// The superuser of every instance (the image's POSTGRES_USER).
pub const SUPERUSER: &str = "postgres";

/// The command that runs `sql` as the superuser in `database`, unaligned
/// and without headers, stopping at the first error: run it in the db
/// container (its socket; peer authentication as root).
pub fn psql_argv(database: &str, sql: &str) -> Vec<String> {
    [
        "env",
        &format!("PGOPTIONS={PGOPTIONS}"),
        "psql",
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        SUPERUSER,
        "-d",
        database,
        "-c",
        sql,
    ]
    .map(String::from)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_scripts_pin_the_same_options() {
        let line = format!("export PGOPTIONS='{PGOPTIONS}'");
        for (name, text) in [
            ("agent/backup.sh", include_str!("../../agent/backup.sh")),
            ("agent/recover.sh", include_str!("../../agent/recover.sh")),
        ] {
            assert!(text.contains(&line), "{name} must say: {line}");
        }
    }

    #[test]
    fn the_search_path_is_pinned_in_every_command() {
        let argv = psql_argv("postgres", "SELECT 1");
        assert_eq!(argv[1], format!("PGOPTIONS={PGOPTIONS}"));
        assert!(PGOPTIONS.contains("search_path=pg_catalog,pg_temp"));
        assert_eq!(argv.last().unwrap(), "SELECT 1");
    }
}
