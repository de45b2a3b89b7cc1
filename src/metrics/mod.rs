//! Monitoring: the agent's metrics.json read from the end (tail.rs), rates
//! from consecutive samples (summary.rs), the Prometheus exposition
//! (prom.rs), and the control plane's own request statistics.

pub mod prom;
pub mod sample;
pub mod series;
pub mod summary;
pub mod tail;

pub use sample::Sample;

use crate::home::Home;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where an instance's agent writes: instances/<id>/logs/.
pub fn dir_of(home: &Home, id: &str) -> PathBuf {
    home.instance_dir(id).join("logs")
}

/// The agent is stale when its newest sample (or, before the first, the
/// instance itself) is older than three intervals: one rule for the API,
/// `doctor` and the CLI.
pub fn stale(age_seconds: f64, interval_seconds: u32) -> bool {
    age_seconds > 3.0 * f64::from(interval_seconds)
}

/// Reads metrics files on a blocking thread; a reader that failed
/// (panicked) is an error, never an empty answer.
pub async fn read_files<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> crate::error::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        log::error!("reading metrics files: {e}");
        crate::error::Error::Failed("reading the metrics files failed (see the server log)".into())
    })
}

/// Upper bounds of the request-duration histogram, in seconds.
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A method as a static label (anything unusual is "other").
pub fn method_name(m: &warp::http::Method) -> &'static str {
    use warp::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// API requests by route template, method and status, and their durations.
/// Keys are static strings: recording allocates nothing.
#[derive(Default)]
pub struct RequestStats {
    counts: Mutex<HashMap<(&'static str, &'static str, u16), u64>>,
    durations: Mutex<HashMap<&'static str, Histogram>>,
}

impl RequestStats {
    pub fn record(&self, route: &'static str, method: &'static str, status: u16, secs: f64) {
        *self
            .counts
            .lock()
            .expect("request counts")
            .entry((route, method, status))
            .or_default() += 1;
        let mut d = self.durations.lock().expect("request durations");
        let h = d.entry(route).or_insert_with(|| Histogram {
            counts: vec![0; BUCKETS.len()],
            ..Default::default()
        });
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn families(&self) -> Vec<prom::Family> {
        let mut req = prom::Family::new(
            "dbaas_http_requests_total",
            "counter",
            "API requests by route, method and status",
        );
        let mut counts: Vec<_> = self
            .counts
            .lock()
            .expect("request counts")
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        counts.sort();
        for ((route, method, status), n) in counts {
            req.add(
                "",
                &[
                    ("route", route),
                    ("method", method),
                    ("status", &status.to_string()),
                ],
                n as f64,
            );
        }
        let mut dur = prom::Family::new(
            "dbaas_http_request_duration_seconds",
            "histogram",
            "API request durations by route",
        );
        let d = self.durations.lock().expect("request durations");
        let mut routes: Vec<&&str> = d.keys().collect();
        routes.sort();
        for route in routes {
            let h = &d[*route];
            for (b, n) in BUCKETS.iter().zip(&h.counts) {
                dur.add(
                    "_bucket",
                    &[("route", route), ("le", &b.to_string())],
                    *n as f64,
                );
            }
            dur.add(
                "_bucket",
                &[("route", route), ("le", "+Inf")],
                h.count as f64,
            );
            dur.add("_sum", &[("route", route)], h.sum);
            dur.add("_count", &[("route", route)], h.count as f64);
        }
        vec![req, dur]
    }
}
