//! dump and import (issue 12, first part): pg_dump and pg_restore/psql inside
//! the containers, streamed through the CLI; the data round-trips between
//! two instances in both formats, and a failed import changes nothing.

mod common;
use common::*;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

const SCHEMA: &str = "CREATE TABLE t (
    id bigserial PRIMARY KEY, name text NOT NULL, score numeric(10,2), flag bool,
    at timestamptz, doc jsonb, raw bytea, u uuid, tags text[]);
CREATE INDEX t_name ON t (name);
INSERT INTO t (name, score, flag, at, doc, raw, u, tags) VALUES
 ('it''s \"quoted\"', 12.50, true, '2024-02-29 13:45:30.5+00', '{\"a\": [1, 2]}', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{a,b}'),
 (E'two\\nlines', NULL, false, NULL, 'null', '', NULL, '{}'),
 ('ünïcödé ✓', -0.01, NULL, 'infinity', '[]', NULL, NULL, NULL);
INSERT INTO t (name) SELECT 'row ' || g FROM generate_series(1, 5000) g;";

fn rows(url: &str) -> Vec<String> {
    connect(url)
        .query("SELECT to_jsonb(t)::text FROM t ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `dbaasctl dump NAME ARGS > file`.
fn dump_to(h: &TestHome, name: &str, args: &[&str], file: &std::path::Path) -> i32 {
    let mut all = vec!["dump", name];
    all.extend_from_slice(args);
    let out = std::fs::File::create(file).unwrap();
    let st = h
        .command(&all)
        .stdout(Stdio::from(out))
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    st.code().unwrap_or(-1)
}

#[test]
fn dumps_round_trip_between_instances_in_both_formats() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dump");
    let (_, src) = h.create("src", &[]);
    let (_, dst) = h.create("dst", &[]);
    connect(&src).batch_execute(SCHEMA).unwrap();
    let want = rows(&src);
    assert_eq!(want.len(), 5003);
    let mut sections = Sections::default();

    sections.run("custom format", || {
        let file = h.root.join("app.dump");
        assert_eq!(dump_to(&h, "src", &[], &file), 0);
        assert!(std::fs::read(&file).unwrap().starts_with(b"PGDMP"));
        h.run(&["import", "dst", file.to_str().unwrap()]).ok();
        assert_eq!(rows(&dst), want);
        // The sequence and the index came along.
        let mut c = connect(&dst);
        let next: i64 = c
            .query_one("SELECT nextval('t_id_seq')", &[])
            .unwrap()
            .get(0);
        assert_eq!(next, 5004);
        let idx: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 't_name'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(idx, 1);
    });

    sections.run("plain format", || {
        let file = h.root.join("app.sql");
        assert_eq!(dump_to(&h, "src", &["--format", "plain"], &file), 0);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("CREATE TABLE public.t"),
            "{}",
            &text[..text.len().min(500)]
        );
        connect(&dst).batch_execute("DROP TABLE t").unwrap();
        h.run(&["import", "dst", file.to_str().unwrap()]).ok();
        assert_eq!(rows(&dst), want);
    });

    sections.run("the API streams a dump out and in", || {
        let s = Server::start(&h, &[]);
        let get = |path: &str| http::request(s.port, "GET", path, Some(&s.token), None, "");
        let r = get("/instances/src/dump");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body.starts_with(b"PGDMP"));
        assert!(r
            .header("content-disposition")
            .unwrap()
            .contains("src.dump"));
        let plain = get("/instances/src/dump?format=plain");
        assert!(plain.text().contains("CREATE TABLE public.t"));
        connect(&dst).batch_execute("DROP TABLE t").unwrap();
        let post = |body: &[u8]| {
            http::request(
                s.port,
                "POST",
                "/instances/dst/import",
                Some(&s.token),
                Some(body),
                "application/octet-stream",
            )
        };
        let ok = post(&r.body);
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(ok.json()["format"], "custom");
        assert_eq!(ok.json()["bytes"], r.body.len());
        assert_eq!(rows(&dst), want);
        // A bad dump: 400 with PostgreSQL's words and the line, nothing
        // changed.
        let bad = post(b"CREATE TABLE junk (x int);\nTHIS IS NOT SQL;\n");
        assert_eq!(bad.status, 400, "{}", bad.text());
        assert!(
            bad.text().contains("line 2") && bad.text().contains("syntax error"),
            "{}",
            bad.text()
        );
        assert_eq!(rows(&dst), want);
        assert_eq!(post(b"").status, 400);
        // A client that leaves part-way through a plain dump: nothing of it
        // is committed.
        connect(&dst).batch_execute("DROP TABLE t").unwrap();
        // Cut where a statement ends (before the table's data), so that what
        // arrived is valid SQL that would create the table if committed.
        let text = plain.text();
        let cut = text.find("COPY public.t ").expect("the dump copies t");
        let half = &plain.body[..cut];
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let head = format!(
            "POST /instances/dst/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/sql\r\nContent-Length: {}\r\n\r\n",
            s.token,
            plain.body.len()
        );
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(half).unwrap();
        // The import's transaction is open (it waits for the rest) ...
        let busy = ["active", "idle in transaction"];
        wait_until("the import began", Duration::from_secs(60), || {
            other_backends(&dst, &busy) > 0
        });
        drop(c);
        // ... and ends with the client.
        wait_until("the import ended", Duration::from_secs(60), || {
            other_backends(&dst, &busy) == 0
        });
        let t: Option<String> = connect(&dst)
            .query_one("SELECT to_regclass('t')::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(t, None, "half a dump was committed");
        let ok = post(&plain.body);
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(ok.json()["format"], "plain");
        assert_eq!(rows(&dst), want);
        assert_eq!(get("/instances/src/dump?format=tar").status, 400);
        assert_eq!(get("/instances/nosuch/dump").status, 404);
    });

    sections.run("an upgrade: PostgreSQL 13 to 17", || {
        let (_, old) = h.create("old", &["--version", "13", "--memory", "256m"]);
        let (_, new) = h.create("new", &["--version", "17", "--memory", "256m"]);
        connect(&old).batch_execute(SCHEMA).unwrap();
        let file = h.root.join("old.dump");
        assert_eq!(dump_to(&h, "old", &[], &file), 0);
        h.run(&["import", "new", file.to_str().unwrap()]).ok();
        assert_eq!(rows(&new), rows(&old));
    });

    sections.run("a failed import changes nothing", || {
        let bad = h.root.join("bad.sql");
        std::fs::write(&bad, "CREATE TABLE junk (x int);\nTHIS IS NOT SQL;\n").unwrap();
        let r = h.run(&["import", "dst", bad.to_str().unwrap()]);
        assert_ne!(r.code(), 0, "{}", r.stderr());
        let junk: Option<String> = connect(&dst)
            .query_one("SELECT to_regclass('junk')::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(junk, None, "the failed import left a table behind");
        assert_eq!(rows(&dst), want);
    });

    sections.run("bad input is a clear error", || {
        let e = h
            .run(&["import", "dst", "/nonexistent/app.dump"])
            .fails_with(2);
        assert!(e.contains("/nonexistent/app.dump"), "{e}");
        let e = h.run(&["dump", "dst", "--format", "tar"]).fails_with(2);
        assert!(e.contains("format"), "{e}");
        h.run(&["dump", "nosuch"]).fails_with(3);
        h.run(&["down", "dst"]).ok();
        let e = h.run(&["dump", "dst", "--format", "plain"]).fails_with(4);
        assert!(e.contains("dbaasctl up dst"), "{e}");
    });
    sections.finish();
}
