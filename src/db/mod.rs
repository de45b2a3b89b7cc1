//! The database service over each instance (tables, rows, SQL): groundwork.
//! So far the PostgREST-style read grammar and SQL builder (query.rs) and the
//! SQLSTATE to HTTP mapping; pools and routes come with the database-service
//! issue.

pub mod query;

/// The HTTP status for a PostgreSQL error code (SQLSTATE).
pub fn http_status_for_sqlstate(code: &str) -> u16 {
    match code {
        "23505" | "23503" => 409,
        "23502" | "22P02" => 400,
        "42P01" => 404,
        "42501" => 403,
        "57014" => 504,
        "40001" | "40P01" => 409,
        c if c.starts_with("22") => 400,
        c if c.starts_with("08") || c.starts_with("53") => 503,
        // Other syntax and access-rule errors are the request's fault.
        c if c.starts_with("42") => 400,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_statuses() {
        for (code, status) in [
            ("23505", 409),
            ("23503", 409),
            ("23502", 400),
            ("22P02", 400),
            ("22012", 400),
            ("42P01", 404),
            ("42501", 403),
            ("57014", 504),
            ("40001", 409),
            ("40P01", 409),
            ("08006", 503),
            ("53300", 503),
            ("42601", 400),
            ("XX000", 500),
        ] {
            assert_eq!(http_status_for_sqlstate(code), status, "{code}");
        }
    }
}
