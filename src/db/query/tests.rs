use super::*;
use std::collections::BTreeMap;

fn cols() -> BTreeMap<String, String> {
    [
        ("id", "integer"),
        ("name", "text"),
        ("a\"b", "text"),
        ("at", "timestamp with time zone"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn pairs(q: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(q).unwrap()
}

#[test]
fn parses_every_operator() {
    for (raw, op, negate) in [
        ("eq.1", Op::Eq, false),
        ("neq.1", Op::Neq, false),
        ("gt.1", Op::Gt, false),
        ("gte.1", Op::Gte, false),
        ("lt.1", Op::Lt, false),
        ("lte.1", Op::Lte, false),
        ("like.a*", Op::Like, false),
        ("ilike.*A", Op::Ilike, false),
        ("in.(1,2)", Op::In, false),
        ("is.null", Op::Is, false),
        ("not.eq.1", Op::Eq, true),
        ("not.in.(1)", Op::In, true),
    ] {
        let f = parse_filter("id", raw).unwrap();
        assert_eq!((f.op, f.negate), (op, negate), "{raw}");
    }
    assert_eq!(
        parse_filter("n", "like.a*b").unwrap().value,
        Value::One("a%b".into())
    );
    assert_eq!(
        parse_filter("n", r#"in.(a,"b,c",)"#).unwrap().value,
        Value::List(vec!["a".into(), "b,c".into(), "".into()])
    );
    assert_eq!(
        parse_filter("n", "in.()").unwrap().value,
        Value::List(vec![])
    );
    assert_eq!(
        parse_filter("n", "eq.a.b").unwrap().value,
        Value::One("a.b".into())
    );
    for bad in ["5", "foo.1", "in.1,2", "is.maybe", "not.5"] {
        assert!(parse_filter("id", bad).is_err(), "{bad}");
    }
}

#[test]
fn builds_bound_sql_with_quoted_identifiers() {
    let q = parse_read(
        &pairs("select=id,name&id=gte.10&name=not.ilike.*x*&at=is.not_null&order=id.desc.nullslast,name&limit=5&offset=10"),
        10_000,
    )
    .unwrap();
    let sql = build_select("public", "t", &q, &cols()).unwrap();
    assert_eq!(
        sql.text,
        "SELECT \"id\", \"name\" FROM \"public\".\"t\" WHERE \"id\" >= CAST($1::text AS integer) AND NOT (\"name\"::text ILIKE $2::text) \
         AND \"at\" IS NOT NULL ORDER BY \"id\" DESC NULLS LAST, \"name\" ASC LIMIT 5 OFFSET 10"
    );
    assert_eq!(sql.params, vec!["10".to_string(), "%x%".to_string()]);
}

#[test]
fn values_never_reach_the_sql_text() {
    let evil = "1; DROP TABLE t; --";
    let q = parse_read(
        &[
            ("id".into(), format!("eq.{evil}")),
            ("name".into(), format!("in.({evil},x)")),
        ],
        100,
    )
    .unwrap();
    let sql = build_select("public", "t", &q, &cols()).unwrap();
    assert!(!sql.text.contains("DROP"), "{}", sql.text);
    assert_eq!(sql.params[0], evil);
    // Identifiers with quotes are quoted; unknown ones are rejected by name.
    let q = parse_read(&pairs("select=a\"b"), 100).unwrap();
    assert!(build_select("public", "t", &q, &cols())
        .unwrap()
        .text
        .contains("\"a\"\"b\""));
    for bad in [
        "select=nope",
        "nope=eq.1",
        "order=nope.asc",
        "select=id\"; DROP TABLE t; --",
    ] {
        let q = parse_read(&pairs(bad), 100).unwrap();
        let e = build_select("public", "t", &q, &cols()).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{bad}");
    }
    assert_eq!(
        quote_ident("t\"; DROP TABLE t; --"),
        "\"t\"\"; DROP TABLE t; --\""
    );
}

#[test]
fn writes_bind_one_json_parameter() {
    let keys = vec!["id".to_string(), "name".to_string()];
    let ins = build_insert("public", "t", &keys, &cols(), None, true).unwrap();
    assert_eq!(
        ins,
        "INSERT INTO \"public\".\"t\" (\"id\", \"name\") SELECT x.\"id\", x.\"name\" \
         FROM json_to_recordset($1::text::json) AS x(\"id\" integer, \"name\" text) RETURNING *"
    );
    let up = build_insert(
        "public",
        "t",
        &keys,
        &cols(),
        Some((&["id".to_string()], Resolution::Merge)),
        false,
    )
    .unwrap();
    assert!(up.ends_with(
        "ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\", \"name\" = EXCLUDED.\"name\""
    ));
    assert!(build_insert("public", "t", &["nope".into()], &cols(), None, true).is_err());
    let f = vec![parse_filter("id", "eq.3").unwrap()];
    let u = build_update("public", "t", &keys[1..], &f, &cols(), true).unwrap();
    assert_eq!(u.params, vec!["".to_string(), "3".to_string()]);
    assert!(u
        .text
        .contains("WHERE \"id\" = CAST($2::text AS integer) RETURNING *"));
    let d = build_delete("public", "t", &f, &cols(), false).unwrap();
    assert_eq!(
        d.text,
        "DELETE FROM \"public\".\"t\" WHERE \"id\" = CAST($1::text AS integer)"
    );
}

#[test]
fn limits_and_orders() {
    assert_eq!(parse_read(&[], 10_000).unwrap().limit, DEFAULT_LIMIT);
    assert!(parse_read(&pairs("limit=10001"), 10_000).is_err());
    assert!(parse_read(&pairs("limit=-1"), 10_000).is_err());
    assert!(parse_read(&pairs("offset=x"), 10_000).is_err());
    assert!(parse_order("id.sideways").is_err());
    let o = parse_order("a.desc.nullsfirst,b").unwrap();
    assert_eq!(
        o[0],
        Order {
            column: "a".into(),
            desc: true,
            nulls_first: Some(true)
        }
    );
    assert_eq!(
        o[1],
        Order {
            column: "b".into(),
            desc: false,
            nulls_first: None
        }
    );
    // Empty IN matches nothing rather than being a syntax error.
    let q = parse_read(&pairs("id=in.()"), 100).unwrap();
    assert!(build_select("public", "t", &q, &cols())
        .unwrap()
        .text
        .contains("WHERE FALSE"));
}

proptest::proptest! {
    #[test]
    fn no_query_string_panics_the_parser(
        k in crate::validate::tests::nasty_string(),
        v in crate::validate::tests::nasty_string(),
    ) {
        let mut pairs = vec![(k.clone(), v.clone())];
        for key in ["select", "order", "limit", "offset", "id"] {
            pairs.push((key.to_string(), v.clone()));
            let _ = parse_read(&pairs, 10_000);
            pairs.pop();
        }
        let _ = parse_read(&pairs, 10_000);
    }
}
