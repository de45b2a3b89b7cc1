use super::*;

fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
    let mut b = vec![];
    for v in [ndigits, weight, sign as i16, dscale as i16] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for d in digits {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b
}

#[test]
fn numerics_render_exactly() {
    assert_eq!(numeric_text(&numeric(0, 0, 0, 0, &[])).unwrap(), "0");
    assert_eq!(numeric_text(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
    // 123.45 = 123 | .4500
    assert_eq!(
        numeric_text(&numeric(2, 0, 0, 2, &[123, 4500])).unwrap(),
        "123.45"
    );
    // -10000.5
    assert_eq!(
        numeric_text(&numeric(3, 1, 0x4000, 1, &[1, 0, 5000])).unwrap(),
        "-10000.5"
    );
    // 0.00012 = weight -1, digits [1, 2000]
    assert_eq!(
        numeric_text(&numeric(2, -1, 0, 5, &[1, 2000])).unwrap(),
        "0.00012"
    );
    // 12345678901234567890.123456789012 keeps every digit
    assert_eq!(
        numeric_text(&numeric(
            8,
            4,
            0,
            12,
            &[1234, 5678, 9012, 3456, 7890, 1234, 5678, 9012]
        ))
        .unwrap(),
        "12345678901234567890.123456789012"
    );
    assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
}

#[test]
fn dates_and_times_are_rfc3339() {
    assert_eq!(date_text(0).unwrap(), "2000-01-01");
    assert_eq!(date_text(-1).unwrap(), "1999-12-31");
    assert_eq!(date_text(366 + 59).unwrap(), "2001-03-01");
    assert_eq!(time_text(3_723_500_000), "01:02:03.5");
    assert_eq!(
        timestamp_text(86_400_000_000 + 1, "Z").unwrap(),
        "2000-01-02T00:00:00.000001Z"
    );
    assert_eq!(
        timestamp_text(-1_000_000, "").unwrap(),
        "1999-12-31T23:59:59"
    );
    assert_eq!(timestamp_text(i64::MAX, "Z").unwrap(), "infinity");
    assert!(date_text(-800_000).is_none(), "BC years fall back to text");
}

#[test]
fn json_params_become_input_syntax() {
    let t = |ty: &Type, v: Value| match param(ty, &v).unwrap() {
        Param::Text(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(t(&Type::INT4, json!(5)), "5");
    assert_eq!(t(&Type::TEXT, json!("a'b")), "a'b");
    assert_eq!(t(&Type::BOOL, json!(true)), "true");
    assert_eq!(t(&Type::JSONB, json!("s")), "\"s\"");
    assert_eq!(t(&Type::JSONB, json!({"a": [1]})), "{\"a\":[1]}");
    assert_eq!(
        t(&Type::TEXT_ARRAY, json!(["a", null, "b\"c\\", "NULL"])),
        r#"{"a",NULL,"b\"c\\","NULL"}"#
    );
    assert_eq!(t(&Type::INT4_ARRAY, json!([1, 2])), r#"{"1","2"}"#);
    assert!(matches!(
        param(&Type::BYTEA, &json!("AAEC")).unwrap(),
        Param::Binary(b) if b == vec![0, 1, 2]
    ));
    assert!(param(&Type::BYTEA, &json!("!!")).is_err());
    assert!(param(&Type::INT4_ARRAY, &json!([[1], [2]])).is_err());
    assert!(matches!(
        param(&Type::INT4, &Value::Null).unwrap(),
        Param::Null
    ));
}
