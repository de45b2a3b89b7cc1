//! The Prometheus text exposition format (0.0.4): one HELP and one TYPE per
//! family, each family's samples together, label values escaped, counters
//! ending in `_total`, base units, no timestamps. Instances are labelled
//! `dbaas_instance` (Prometheus owns `instance`).

use serde_json::Value;
use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One sample: name suffix (`_bucket`...), labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    /// counter, gauge or histogram
    pub kind: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: vec![],
        }
    }

    /// A sample of this family; `suffix` is for histograms (`_bucket`...).
    pub fn add(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.samples.push((
            suffix.to_string(),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        ));
    }
}

pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (suffix, labels, v) in &f.samples {
            out.push_str(f.name);
            out.push_str(suffix);
            if !labels.is_empty() {
                out.push('{');
                let parts: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                out.push_str(&parts.join(","));
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(*v));
        }
    }
    out
}

/// Families for the latest sample of each instance: (id, sample, age in
/// seconds).
pub fn instance_families(latest: &[(String, Value, f64)]) -> Vec<Family> {
    let mut up = Family::new(
        "dbaas_up",
        "gauge",
        "1 when the latest agent sample reached the database",
    );
    let mut age = Family::new(
        "dbaas_sample_age_seconds",
        "gauge",
        "Age of the latest agent sample",
    );
    let mut scrape = Family::new(
        "dbaas_scrape_duration_seconds",
        "gauge",
        "How long the agent's latest sample took",
    );
    let mut start = Family::new(
        "dbaas_postmaster_start_time_seconds",
        "gauge",
        "When the PostgreSQL server started (Unix time)",
    );
    let mut conns = Family::new(
        "dbaas_connections",
        "gauge",
        "Client connections by state (the agent's own excluded)",
    );
    let mut max = Family::new("dbaas_connections_max", "gauge", "max_connections");
    let counters: &[(&str, &'static str, &'static str)] = &[
        (
            "xact_commit",
            "dbaas_transactions_committed_total",
            "Transactions committed",
        ),
        (
            "xact_rollback",
            "dbaas_transactions_rolled_back_total",
            "Transactions rolled back",
        ),
        (
            "blks_hit",
            "dbaas_blocks_hit_total",
            "Block reads served from shared buffers",
        ),
        (
            "blks_read",
            "dbaas_blocks_read_total",
            "Blocks read from disk or the OS cache",
        ),
        (
            "tup_returned",
            "dbaas_rows_returned_total",
            "Rows returned by scans",
        ),
        (
            "tup_fetched",
            "dbaas_rows_fetched_total",
            "Rows fetched by index scans",
        ),
        ("tup_inserted", "dbaas_rows_inserted_total", "Rows inserted"),
        ("tup_updated", "dbaas_rows_updated_total", "Rows updated"),
        ("tup_deleted", "dbaas_rows_deleted_total", "Rows deleted"),
        ("deadlocks", "dbaas_deadlocks_total", "Deadlocks detected"),
        (
            "temp_bytes",
            "dbaas_temp_bytes_total",
            "Bytes written to temporary files",
        ),
    ];
    let mut counter_fams: Vec<Family> = counters
        .iter()
        .map(|(_, name, help)| Family::new(name, "counter", help))
        .collect();
    let mut size = Family::new(
        "dbaas_database_size_bytes",
        "gauge",
        "Size of the app database",
    );
    let mut locks = Family::new("dbaas_locks", "gauge", "Locks held or awaited, by mode");
    let mut waiting = Family::new("dbaas_locks_waiting", "gauge", "Locks not yet granted");
    let mut blocked = Family::new(
        "dbaas_blocked_backends",
        "gauge",
        "Backends waiting for another's lock",
    );
    let mut longest_q = Family::new(
        "dbaas_longest_query_seconds",
        "gauge",
        "Runtime of the longest running query",
    );
    let mut longest_x = Family::new(
        "dbaas_longest_transaction_seconds",
        "gauge",
        "Age of the oldest open transaction",
    );
    let mut t_size = Family::new(
        "dbaas_table_size_bytes",
        "gauge",
        "Total size of a table (with indexes and TOAST)",
    );
    let mut t_live = Family::new(
        "dbaas_table_live_rows",
        "gauge",
        "Estimated live rows of a table",
    );
    let mut t_dead = Family::new(
        "dbaas_table_dead_rows",
        "gauge",
        "Estimated dead rows of a table",
    );
    let mut t_seq = Family::new(
        "dbaas_table_seq_scans_total",
        "counter",
        "Sequential scans of a table",
    );
    let mut t_idx = Family::new(
        "dbaas_table_idx_scans_total",
        "counter",
        "Index scans of a table",
    );
    for (id, s, sample_age) in latest {
        let l = [("dbaas_instance", id.as_str())];
        let is_up = s["up"] == true;
        up.add("", &l, if is_up { 1.0 } else { 0.0 });
        age.add("", &l, *sample_age);
        if let Some(d) = s["scrape_seconds"].as_f64() {
            scrape.add("", &l, d);
        }
        if !is_up {
            continue;
        }
        if let Some(t) = s["postmaster_start"]
            .as_str()
            .and_then(super::summary::epoch)
        {
            start.add("", &l, t);
        }
        for state in ["active", "idle", "idle_in_transaction", "waiting"] {
            if let Some(n) = s["connections"][state].as_f64() {
                conns.add("", &[("dbaas_instance", id), ("state", state)], n);
            }
        }
        if let Some(n) = s["connections"]["max"].as_f64() {
            max.add("", &l, n);
        }
        for ((key, _, _), fam) in counters.iter().zip(counter_fams.iter_mut()) {
            if let Some(n) = s["counters"][key].as_f64() {
                fam.add("", &l, n);
            }
        }
        if let Some(n) = s["db_size_bytes"].as_f64() {
            size.add("", &l, n);
        }
        if let Some(modes) = s["locks"]["by_mode"].as_object() {
            for (mode, n) in modes {
                locks.add(
                    "",
                    &[("dbaas_instance", id), ("mode", mode)],
                    n.as_f64().unwrap_or(0.0),
                );
            }
        }
        if let Some(n) = s["locks"]["waiting"].as_f64() {
            waiting.add("", &l, n);
        }
        if let Some(n) = s["locks"]["blocked_backends"].as_f64() {
            blocked.add("", &l, n);
        }
        if let Some(n) = s["longest_query_seconds"].as_f64() {
            longest_q.add("", &l, n);
        }
        if let Some(n) = s["longest_transaction_seconds"].as_f64() {
            longest_x.add("", &l, n);
        }
        for t in s["tables"].as_array().into_iter().flatten() {
            let (schema, name) = (
                t["schema"].as_str().unwrap_or(""),
                t["name"].as_str().unwrap_or(""),
            );
            let tl = [
                ("dbaas_instance", id.as_str()),
                ("schema", schema),
                ("table", name),
            ];
            for (fam, key) in [
                (&mut t_size, "size_bytes"),
                (&mut t_live, "live_rows"),
                (&mut t_dead, "dead_rows"),
                (&mut t_seq, "seq_scans"),
                (&mut t_idx, "idx_scans"),
            ] {
                if let Some(n) = t[key].as_f64() {
                    fam.add("", &tl, n);
                }
            }
        }
    }
    let mut out = vec![up, age, scrape, start, conns, max];
    out.append(&mut counter_fams);
    out.extend([
        size, locks, waiting, blocked, longest_q, longest_x, t_size, t_live, t_dead, t_seq, t_idx,
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_families_with_escaped_labels() {
        let mut f = Family::new("dbaas_x_total", "counter", "X");
        f.add("", &[("a", "q\"b\\c\nd")], 3.0);
        f.add("", &[("a", "z")], 0.5);
        let empty = Family::new("dbaas_empty", "gauge", "nothing");
        assert_eq!(
            render(&[f, empty]),
            "# HELP dbaas_x_total X\n# TYPE dbaas_x_total counter\ndbaas_x_total{a=\"q\\\"b\\\\c\\nd\"} 3\ndbaas_x_total{a=\"z\"} 0.5\n"
        );
    }

    #[test]
    fn instance_samples_become_labelled_series() {
        let s = json!({"ts": "2026-01-01T00:00:00.000Z", "up": true, "postmaster_start": "2026-01-01T00:00:00.000Z",
            "connections": {"active": 1, "idle": 2, "idle_in_transaction": 0, "waiting": 0, "max": 100},
            "counters": {"xact_commit": 10}, "locks": {"by_mode": {"AccessShareLock": 3}, "waiting": 0, "blocked_backends": 0},
            "tables": [{"schema": "public", "name": "t", "size_bytes": 8192, "live_rows": 1, "dead_rows": 0, "seq_scans": 1, "idx_scans": 0}]});
        let text = render(&instance_families(&[("db_1".into(), s, 2.0)]));
        assert!(text.contains("dbaas_up{dbaas_instance=\"db_1\"} 1\n"));
        assert!(text.contains("dbaas_transactions_committed_total{dbaas_instance=\"db_1\"} 10\n"));
        assert!(text.contains(
            "dbaas_table_size_bytes{dbaas_instance=\"db_1\",schema=\"public\",table=\"t\"} 8192\n"
        ));
        assert!(!text.contains(" instance="));
        assert_eq!(text.matches("# TYPE dbaas_up ").count(), 1);
    }
}
