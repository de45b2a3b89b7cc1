use super::*;

const GIB: u64 = 1 << 30;

#[test]
fn names() {
    for ok in ["demo", "a", "my-db-2", "0abc", &"a".repeat(63)] {
        instance_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "",
        "Demo",
        "my db",
        "a'b",
        "a\"b",
        "a/b",
        "..",
        "a..b",
        "a:b",
        "a#b",
        "{a}",
        "a\nb",
        "-a",
        "a-",
        "db_1234",
        "a*b",
        "a&b",
        "[x]",
        "é",
        &"a".repeat(64),
    ] {
        let e = instance_name(bad).unwrap_err();
        assert!(
            matches!(e, Error::Invalid { ref field, .. } if field == "name"),
            "{bad}"
        );
    }
}

#[test]
fn sql_names() {
    sql_name("user", "app").unwrap();
    sql_name("database", "_x1").unwrap();
    for bad in [
        "",
        "App",
        "1abc",
        "a-b",
        "postgres",
        "pg_foo",
        "a;b",
        &"a".repeat(64),
    ] {
        assert!(sql_name("user", bad).is_err(), "{bad}");
    }
}

#[test]
fn versions() {
    assert_eq!(version("15").unwrap(), 15);
    for bad in ["14", "abc", "", "15.1", "-15"] {
        assert!(version(bad).is_err(), "{bad}");
    }
}

#[test]
fn memory_sizes() {
    assert_eq!(memory("512m", 16 * GIB).unwrap(), 512 << 20);
    assert_eq!(memory("1g", 16 * GIB).unwrap(), GIB);
    assert_eq!(memory("1G", 16 * GIB).unwrap(), GIB);
    assert_eq!(memory("256MiB", 16 * GIB).unwrap(), 256 << 20);
    assert_eq!(memory("1.5g", 16 * GIB).unwrap(), 3 * (GIB / 2));
    for bad in [
        "abc", "0", "-1g", "1000000t", "", "1x", "12", "m", "1..2g", "nan",
    ] {
        let e = memory(bad, 16 * GIB).unwrap_err();
        assert!(e.to_string().contains("memory"), "{bad}: {e}");
    }
}

#[test]
fn cpu_counts() {
    assert_eq!(cpus("1.0", 2).unwrap(), 1.0);
    assert_eq!(cpus("0.5", 2).unwrap(), 0.5);
    for bad in ["0", "-1", "99999", "abc", "", "inf", "NaN"] {
        assert!(cpus(bad, 2).is_err(), "{bad}");
    }
}

#[test]
fn ports() {
    assert_eq!(port(5432).unwrap(), 5432);
    for bad in [0, 80, 1023, 65536, 100000] {
        assert!(port(bad).is_err(), "{bad}");
    }
}

#[test]
fn bytes_format() {
    assert_eq!(format_bytes(512 << 20), "512m");
    assert_eq!(format_bytes(1 << 30), "1g");
    assert_eq!(format_bytes(1536 << 20), "1536m");
}

#[test]
fn image_templates() {
    image_template("dbaas/postgres:{version}").unwrap();
    image_template("postgres:{version}").unwrap();
    assert!(image_template("x y").is_err());
    assert!(image_template("a\"b").is_err());
}

/// Strings that have broken validators elsewhere: combining marks,
/// right-to-left marks, NUL, 4-byte characters, and long ones.
pub(crate) fn nasty_string() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let c = prop_oneof![
        Just('\u{301}'),
        Just('\u{200f}'),
        Just('\u{202e}'),
        Just('\0'),
        Just('\u{1f600}'),
        Just('é'),
        Just('-'),
        Just('.'),
        Just('_'),
        proptest::char::range('a', 'z'),
        proptest::char::range('0', '9'),
        any::<char>(),
    ];
    // Long strings repeat a short one: generating 10,000 characters one
    // by one is slow in a debug build.
    (proptest::collection::vec(c, 0..80), any::<bool>()).prop_map(|(v, long)| {
        let short: String = v.into_iter().collect();
        if long && !short.is_empty() {
            short.repeat(10_000 / short.chars().count() + 1)
        } else {
            short
        }
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn no_input_panics_a_validator(s in nasty_string()) {
        for r in [
            instance_name(&s).map(|_| ()),
            sql_name("user", &s),
            version(&s).map(|_| ()),
            memory(&s, 16 * GIB).map(|_| ()),
            cpus(&s, 2).map(|_| ()),
            metrics_interval(&s).map(|_| ()),
            image_template(&s),
        ] {
            if let Err(e) = r {
                // The message is bounded and printable.
                let text = e.to_string();
                proptest::prop_assert!(text.len() < 1000, "{}", text.len());
                proptest::prop_assert!(!text.contains('\0'));
            }
        }
    }

    #[test]
    fn accepted_names_are_plain(s in nasty_string()) {
        if instance_name(&s).is_ok() {
            proptest::prop_assert!(s.len() <= MAX_NAME_LEN && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
        if sql_name("database", &s).is_ok() {
            proptest::prop_assert!(s.len() <= MAX_NAME_LEN && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}

#[test]
fn the_reported_panic_is_an_error() {
    let name = format!("a{}", "é".repeat(63));
    let e = instance_name(&name).unwrap_err().to_string();
    assert!(e.contains("longer than 63"), "{e}");
    for reserved in [
        "none",
        "public",
        "current_user",
        "session_user",
        "pg_x",
        "postgres",
    ] {
        assert!(sql_name("user", reserved).is_err(), "{reserved}");
    }
}
