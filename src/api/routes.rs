//! The route table, written once. It decides which routes exist, their
//! methods (a 405 names them in `Allow`), which are public, the label of
//! the request metrics, and it is checked against the OpenAPI document
//! (a unit test below), so that the two cannot drift apart.

use warp::http::Method;

pub struct Route {
    /// The OpenAPI template; `*` at the end matches any rest (the docs'
    /// files).
    pub path: &'static str,
    pub methods: &'static [Method],
    /// Answered without the token.
    pub public: bool,
    /// Described in /openapi.json.
    pub documented: bool,
    /// The handler reads the body as a stream (no size bound; a bound on
    /// the wait for each chunk instead).
    pub streams_body: bool,
}

const fn route(path: &'static str, methods: &'static [Method]) -> Route {
    Route {
        path,
        methods,
        public: false,
        documented: true,
        streams_body: false,
    }
}

const fn public(path: &'static str, documented: bool) -> Route {
    Route {
        path,
        methods: &[Method::GET],
        public: true,
        documented,
        streams_body: false,
    }
}

/// A console page or form: no bearer token (its handler checks the
/// session), not in the API's document.
const fn console(path: &'static str, methods: &'static [Method]) -> Route {
    Route {
        path,
        methods,
        public: true,
        documented: false,
        streams_body: false,
    }
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];

pub const ROUTES: &[Route] = &[
    console("/", GET),
    console("/login", &[Method::GET, Method::POST]),
    console("/logout", POST),
    console("/ui/assets/*", GET),
    console("/ui/instances/{id}", GET),
    console("/ui/instances/{id}/tables", GET),
    console("/ui/instances/{id}/tables/{table}", GET),
    console("/ui/instances/{id}/sql", GET),
    public("/health", true),
    public("/openapi.json", false),
    public("/docs/*", false),
    public("/redoc", false),
    public("/redoc/redoc.standalone.js", false),
    route("/instances", &[Method::GET, Method::POST]),
    route(
        "/instances/{id}",
        &[Method::GET, Method::PATCH, Method::DELETE],
    ),
    route("/instances/{id}/credentials", GET),
    route("/instances/{id}/logs", GET),
    route("/instances/{id}/start", POST),
    route("/instances/{id}/stop", POST),
    route("/instances/{id}/restart", POST),
    route("/instances/{id}/move", POST),
    route("/instances/{id}/dump", GET),
    Route {
        path: "/instances/{id}/import",
        methods: POST,
        public: false,
        documented: true,
        streams_body: true,
    },
    route("/instances/{id}/backups", &[Method::GET, Method::POST]),
    route("/instances/{id}/backups/{label}", GET),
    route("/instances/{id}/restore", POST),
    route("/instances/{id}/clone", POST),
    route("/backups", GET),
    route("/nodes", GET),
    route("/database/{id}/tables", &[Method::GET, Method::POST]),
    route(
        "/database/{id}/tables/{table}",
        &[Method::GET, Method::DELETE],
    ),
    route(
        "/database/{id}/tables/{table}/rows",
        &[Method::GET, Method::POST, Method::PATCH, Method::DELETE],
    ),
    route("/database/{id}/sql", POST),
    route("/database/{id}/transaction", POST),
    route("/monitoring/{id}/metrics", GET),
    route("/monitoring/{id}/metrics/summary", GET),
    route("/monitoring/{id}/metrics/series", GET),
    route("/monitoring/summaries", GET),
    route("/monitoring/{id}/agent", GET),
    route("/monitoring/{id}/agent/logs", GET),
    route("/monitoring/{id}/agent/restart", POST),
    route("/metrics", GET),
    // The tests' fault hook; answers only with DBAAS_TEST_FAULTS=1.
    Route {
        path: "/_test/panic",
        methods: POST,
        public: false,
        documented: false,
        streams_body: false,
    },
];

/// The route of decoded path segments, with its `{…}` parts in order (and,
/// for a `*` route, the segments it matched).
pub fn lookup<'a>(segments: &[&'a str]) -> Option<(&'static Route, Vec<&'a str>)> {
    ROUTES.iter().find_map(|r| {
        let pattern: Vec<&str> = r
            .path
            .trim_start_matches('/')
            .split('/')
            .filter(|p| !p.is_empty())
            .collect();
        let mut params = vec![];
        for (i, p) in pattern.iter().enumerate() {
            if *p == "*" {
                // The rest, segment by segment (the docs' file path).
                params.extend(segments.get(i..).unwrap_or_default());
                return Some((r, params));
            }
            let seg = segments.get(i)?;
            if p.starts_with('{') {
                params.push(*seg);
            } else if p != seg {
                return None;
            }
        }
        (segments.len() == pattern.len()).then_some((r, params))
    })
}

impl Route {
    /// The label of the request metrics: the template, never the values.
    pub fn label(&self) -> &'static str {
        self.path.strip_suffix("/*").unwrap_or(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_templates_and_wildcards() {
        let (r, p) = lookup(&["instances", "web", "start"]).unwrap();
        assert_eq!((r.path, p), ("/instances/{id}/start", vec!["web"]));
        let (r, p) = lookup(&["database", "a", "tables", "t", "rows"]).unwrap();
        assert_eq!(
            (r.label(), p),
            ("/database/{id}/tables/{table}/rows", vec!["a", "t"])
        );
        assert_eq!(lookup(&["docs"]).unwrap().0.label(), "/docs");
        let (r, p) = lookup(&["docs", "a", "b.js"]).unwrap();
        assert_eq!((r.label(), p), ("/docs", vec!["a", "b.js"]));
        assert!(lookup(&["instances", "x", "y", "z"]).is_none());
        assert!(lookup(&["nope"]).is_none());
        assert_eq!(lookup(&[]).unwrap().0.path, "/");
    }

    /// Every documented route and method is in /openapi.json, and every
    /// path and method there is a route.
    #[test]
    fn the_openapi_document_matches_the_table() {
        let doc: serde_json::Value =
            serde_json::from_slice(super::super::docs::openapi_bytes()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut from_table = vec![];
        for r in ROUTES.iter().filter(|r| r.documented) {
            for m in r.methods {
                from_table.push(format!("{} {}", m.as_str().to_lowercase(), r.path));
            }
        }
        let mut from_doc = vec![];
        for (path, item) in paths {
            for m in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                    from_doc.push(format!("{m} {path}"));
                }
            }
        }
        from_table.sort();
        from_doc.sort();
        assert_eq!(from_table, from_doc);
    }
}
