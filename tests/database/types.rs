//! Every PostgreSQL type through the API and back, compared with psql.

use super::*;

#[test]
fn every_type_round_trips_through_the_api_and_psql() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("dbtypes");
    h.create("types", &[]);
    let s = Server::start(&h, &[]);
    // (column, type, JSON value in, JSON value out, the same as a SQL literal)
    let cases: Vec<(&str, &str, Value, Value, &str)> = vec![
        ("b", "bool", json!(true), json!(true), "true"),
        ("i2", "int2", json!(32767), json!(32767), "32767"),
        (
            "i4",
            "int4",
            json!(-2147483648i64),
            json!(-2147483648i64),
            "-2147483648",
        ),
        (
            "i8",
            "int8",
            json!(9007199254740993i64),
            json!(9007199254740993i64),
            "9007199254740993",
        ),
        ("f4", "float4", json!(1.5), json!(1.5), "1.5"),
        (
            "f8",
            "float8",
            json!(1.2345678901234567),
            json!(1.2345678901234567),
            "1.2345678901234567",
        ),
        (
            "num",
            "numeric",
            json!("12345678901234567890.123456789012345678"),
            json!("12345678901234567890.123456789012345678"),
            "12345678901234567890.123456789012345678",
        ),
        (
            "num2",
            "numeric(12,4)",
            json!("-0.0001"),
            json!("-0.0001"),
            "-0.0001",
        ),
        (
            "t",
            "text",
            json!("héllo \"q\" 'single' \\ back ✓"),
            json!("héllo \"q\" 'single' \\ back ✓"),
            "'héllo \"q\" ''single'' \\ back ✓'",
        ),
        (
            "vc",
            "varchar(20)",
            json!("short"),
            json!("short"),
            "'short'",
        ),
        ("ch", "char(5)", json!("abcde"), json!("abcde"), "'abcde'"),
        (
            "u",
            "uuid",
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        ),
        (
            "j",
            "json",
            json!({"a": [1, 2, {"b": null}]}),
            json!({"a": [1, 2, {"b": null}]}),
            "'{\"a\":[1,2,{\"b\":null}]}'",
        ),
        (
            "jb",
            "jsonb",
            json!({"x": "y", "n": 1.5}),
            json!({"x": "y", "n": 1.5}),
            "'{\"x\": \"y\", \"n\": 1.5}'",
        ),
        (
            "js",
            "jsonb",
            json!("just a string"),
            json!("just a string"),
            "'\"just a string\"'",
        ),
        (
            "d",
            "date",
            json!("2024-02-29"),
            json!("2024-02-29"),
            "'2024-02-29'",
        ),
        (
            "tm",
            "time",
            json!("13:45:30.123456"),
            json!("13:45:30.123456"),
            "'13:45:30.123456'",
        ),
        (
            "ts",
            "timestamp",
            json!("2024-02-29T13:45:30.5"),
            json!("2024-02-29T13:45:30.5"),
            "'2024-02-29 13:45:30.5'",
        ),
        (
            "tz",
            "timestamptz",
            json!("2024-02-29T15:45:30.5+02:00"),
            json!("2024-02-29T13:45:30.5Z"),
            "'2024-02-29 13:45:30.5+00'",
        ),
        (
            "by",
            "bytea",
            json!("AAEC//4="),
            json!("AAEC//4="),
            "'\\x000102fffe'::bytea",
        ),
        (
            "ai",
            "int4[]",
            json!([1, null, 3]),
            json!([1, null, 3]),
            "'{1,NULL,3}'",
        ),
        (
            "at",
            "text[]",
            json!(["a", "b,c", "d\"e", null, "NULL", ""]),
            json!(["a", "b,c", "d\"e", null, "NULL", ""]),
            "ARRAY['a', 'b,c', 'd\"e', NULL, 'NULL', '']",
        ),
        (
            "an",
            "numeric[]",
            json!(["1.10", "2.5"]),
            json!(["1.10", "2.5"]),
            "'{1.10,2.5}'",
        ),
        (
            "ab",
            "bool[]",
            json!([true, false]),
            json!([true, false]),
            "'{t,f}'",
        ),
        (
            "af",
            "float8[]",
            json!([0.5, -2.0]),
            json!([0.5, -2.0]),
            "'{0.5,-2}'",
        ),
        (
            "au",
            "uuid[]",
            json!(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
            json!(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
            "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'",
        ),
        (
            "atz",
            "timestamptz[]",
            json!(["2024-01-01T00:00:00Z"]),
            json!(["2024-01-01T00:00:00Z"]),
            "'{2024-01-01 00:00:00+00}'",
        ),
        (
            "ad",
            "date[]",
            json!(["1999-12-31", "2000-01-01"]),
            json!(["1999-12-31", "2000-01-01"]),
            "'{1999-12-31,2000-01-01}'",
        ),
        (
            "aby",
            "bytea[]",
            json!(["AAE=", "/w=="]),
            json!(["AAE=", "/w=="]),
            "ARRAY['\\x0001'::bytea, '\\xff'::bytea]",
        ),
        (
            "ajb",
            "jsonb[]",
            json!([{"a": 1}, [1, 2]]),
            json!([{"a": 1}, [1, 2]]),
            "ARRAY['{\"a\": 1}'::jsonb, '[1, 2]'::jsonb]",
        ),
        ("nul", "text", Value::Null, Value::Null, "NULL"),
    ];
    let mut sections = Sections::default();
    sections.run("Every type round-trips through insert and read", || {
        let mut columns = vec![json!({"name": "id", "type": "int4", "primary_key": true})];
        columns.extend(
            cases
                .iter()
                .map(|(c, ty, ..)| json!({"name": c, "type": ty})),
        );
        let r = s.post(
            "/database/types/tables",
            &json!({"name": "ty", "columns": columns}),
        );
        assert_eq!(r.status, 201, "{}", r.text());

        let mut row = serde_json::Map::new();
        row.insert("id".into(), json!(1));
        for (c, _, v, ..) in &cases {
            row.insert(c.to_string(), v.clone());
        }
        let r = s.post("/database/types/tables/ty/rows", &Value::Object(row));
        assert_eq!(r.status, 201, "{}", r.text());
        let inserted = r.json()[0].clone();
        let read = s.get("/database/types/tables/ty/rows?id=eq.1").json()[0].clone();
        for (c, ty, _, out, _) in &cases {
            assert_eq!(&inserted[c], out, "{c} ({ty}) as returned by the insert");
            assert_eq!(&read[c], out, "{c} ({ty}) as read back");
        }
    });
    sections.run("Filters on typed columns bind correctly too", || {
        // Filters on typed columns bind correctly too.
        for q in [
            "u=eq.a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "tz=eq.2024-02-29T13:45:30.5Z",
            "by=eq.AAEC%2F%2F4%3D",
            "num=gt.1e19",
            "d=lt.2024-03-01",
        ] {
            assert_eq!(
                ids(&s.get(&format!("/database/types/tables/ty/rows?{q}"))),
                vec![1],
                "{q}"
            );
        }
    });
    sections.run(
        "psql, inside the container, finds exactly the intended va...",
        || {
            // psql, inside the container, finds exactly the intended values.
            let checks: Vec<String> = cases
                .iter()
                .map(|(c, ty, _, _, lit)| {
                    // json has no equality operator; compare it as jsonb.
                    let ty = if *ty == "json" { "jsonb" } else { ty };
                    format!("('{c}', \"{c}\"::{ty} IS NOT DISTINCT FROM ({lit})::{ty})")
                })
                .collect();
            let q = format!(
                "SELECT v.name FROM ty, LATERAL (VALUES {}) v(name, ok) WHERE ok IS NOT TRUE",
                checks.join(", ")
            );
            let out = h.run(&["psql", "types", "-c", &q]).ok();
            assert!(
                out.contains("(0 rows)"),
                "columns differing from what was sent:\n{out}"
            );
        },
    );
    sections.run(
        "/sql binds JSON parameters to each inferred type and deco...",
        || {
            // /sql binds JSON parameters to each inferred type and decodes results.
            for (c, ty, v, out, _) in &cases {
                let r = sql(&s, "types", &format!("SELECT $1::{ty} AS v"), json!([v]));
                assert_eq!(r.status, 200, "{c}: {}", r.text());
                assert_eq!(&r.json()["rows"][0]["v"], out, "{c} ({ty}) through /sql");
            }
        },
    );
    sections.run("Any other type comes back as PostgreSQL's text for it", || {
        // Any other type comes back as PostgreSQL's text for it.
        let r = sql(
            &s,
            "types",
            "CREATE TYPE mood AS ENUM ('sad', 'happy')",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = sql(
            &s,
            "types",
            "SELECT interval '1 day 2 hours' AS i, point(1, 2) AS p, inet '10.0.0.1/8' AS n, 12.5::money AS m, \
             'a fat cat'::tsvector AS tv, B'101' AS bits, int4range(1, 5) AS r, '{{1,2},{3,4}}'::int[] AS md, \
             'happy'::mood AS e, ARRAY['sad'::mood] AS ea, '10:00+02'::timetz AS ttz, 'NaN'::float8 AS nan, \
             'infinity'::timestamptz AS inf, '-infinity'::numeric AS ninf",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["rows"][0],
            json!({"i": "1 day 02:00:00", "p": "(1,2)", "n": "10.0.0.1/8", "m": "$12.50",
                   "tv": "'a' 'cat' 'fat'", "bits": "101", "r": "[1,5)", "md": "{{1,2},{3,4}}",
                   "e": "happy", "ea": ["sad"], "ttz": "10:00:00+02", "nan": "NaN", "inf": "infinity", "ninf": "-Infinity"})
        );
        assert_eq!(
            r.json()["columns"][0],
            json!({"name": "i", "type": "interval"})
        );
    });
    sections.run("dump and import carry every type to another instance", || {
        let r = sql(
            &s,
            "types",
            "CREATE TABLE other AS SELECT interval '1 day 2 hours' AS i, point(1, 2) AS p, inet '10.0.0.1/8' AS n, \
             12.5::money AS m, 'a fat cat'::tsvector AS tv, B'101' AS bits, int4range(1, 5) AS r, \
             '{{1,2},{3,4}}'::int[] AS md, 'happy'::mood AS e, ARRAY['sad'::mood] AS ea, '10:00+02'::timetz AS ttz, \
             'NaN'::float8 AS nan, 'infinity'::timestamptz AS inf, '-infinity'::numeric AS ninf",
            json!([]),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let file = h.root.join("types.dump");
        let out = std::fs::File::create(&file).unwrap();
        let st = h
            .command(&["dump", "types"])
            .stdout(std::process::Stdio::from(out))
            .status()
            .unwrap();
        assert!(st.success(), "dump failed: {st}");
        let (_, copy) = h.create("types-copy", &[]);
        h.run(&["import", "types-copy", file.to_str().unwrap()]).ok();
        let original = h.run(&["url", "types"]).ok().trim().to_string();
        let each = |url: &str, table: &str| -> Vec<String> {
            connect(url)
                .query(&format!("SELECT to_jsonb(x)::text FROM {table} x ORDER BY 1"), &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        for table in ["ty", "other"] {
            let want = each(&original, table);
            assert_eq!(want.len(), 1, "{table}");
            assert_eq!(each(&copy, table), want, "{table} differs after dump and import");
        }
    });
    sections.finish();
}
