use super::*;

fn split(text: &str) -> Result<Vec<Piece>, Refusal> {
    // Fed a byte at a time and whole: the same pieces.
    let mut whole = Vec::new();
    let mut s = Splitter::new();
    s.feed(text.as_bytes(), &mut whole)?;
    s.finish(&mut whole)?;
    let mut bytewise = Vec::new();
    let mut s = Splitter::new();
    for b in text.as_bytes() {
        s.feed(std::slice::from_ref(b), &mut bytewise).unwrap();
    }
    s.finish(&mut bytewise).unwrap();
    assert_eq!(whole, bytewise);
    Ok(whole)
}

fn stmts(text: &str) -> Vec<String> {
    split(text)
        .unwrap()
        .into_iter()
        .filter_map(|p| match p {
            Piece::Statement { sql, .. } => Some(sql.trim().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn statements_split_at_semicolons_outside_quotes() {
    assert_eq!(
        stmts("SELECT 'a;b', \"c;\"\"d\"; SELECT $f$ x; $g$ ; $f$;\nSELECT E'\\';' -- ; comment\n, 1 /* ; /* nested; */ ; */;\nSELECT 3"),
        vec![
            "SELECT 'a;b', \"c;\"\"d\";",
            "SELECT $f$ x; $g$ ; $f$;",
            "SELECT E'\\';' \n, 1 /* ; /* nested; */ ; */;",
            "SELECT 3"
        ]
    );
    // $1 and a$b$ are not dollar quotes.
    assert_eq!(stmts("SELECT a$b$ FROM t WHERE x = $1; SELECT 2;").len(), 2);
    assert!(stmts("-- only a comment\n;\n").is_empty());
}

#[test]
fn copy_rows_follow_their_statement_until_the_end_mark() {
    let p =
        split("SET x = 1;\nCOPY public.t (a, \"from\") FROM stdin;\n1\t\\\\!\n\\.\nSELECT 1;\n")
            .unwrap();
    assert_eq!(p.len(), 5);
    assert!(matches!(
        &p[1],
        Piece::Statement {
            copy_in: true,
            line: 2,
            ..
        }
    ));
    assert_eq!(p[2], Piece::CopyRow(b"1\t\\\\!\n".to_vec()));
    assert_eq!(p[3], Piece::CopyEnd);
    assert!(matches!(
        &p[4],
        Piece::Statement {
            copy_in: false,
            line: 5,
            ..
        }
    ));
    let e = split("COPY t FROM stdin;\n1\n").unwrap_err();
    assert!(e.reason.contains("ends inside COPY data"), "{e}");
}

#[test]
fn meta_commands_are_refused_with_their_line() {
    for (text, line, name) in [
        ("SELECT 1;\n\\! id > /tmp/x\n", 2, "\\!"),
        ("\\c - postgres\n", 1, "\\c"),
        ("SELECT 1 \\gexec\n", 1, "\\gexec"),
        ("SELECT '\\';\n\\copy t to program 'id'\n", 2, "\\copy"),
        ("\n\n\\o /tmp/out\n", 3, "\\o"),
        ("\\i /etc/passwd\n", 1, "\\i"),
    ] {
        let e = split(text).unwrap_err();
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.reason.contains(name), "{text}: {e}");
    }
    // pg_dump's own restrict lines are dropped; one with more is not.
    assert_eq!(
        stmts("\\restrict abc123\nSELECT 1;\n\\unrestrict abc123\n").len(),
        1
    );
    assert!(split("\\restrict abc 1\n").is_err());
}

#[test]
fn transaction_control_is_refused() {
    for text in [
        "CREATE TABLE c1(x int); COMMIT; SELECT 1/0;",
        "begin;",
        "/* c */ ROLLBACK;",
        "END;",
        "PREPARE TRANSACTION 'x';",
        "START TRANSACTION;",
    ] {
        let e = split(text).unwrap_err();
        assert!(e.reason.contains("one transaction"), "{text}: {e}");
    }
    assert_eq!(stmts("SAVEPOINT a; ROLLBACK TO a; RELEASE a;").len(), 3);
    assert!(split("SET standard_conforming_strings = off;").is_err());
    assert!(split("COPY t TO PROGRAM 'id';").is_err());
    assert!(split("COPY t TO STDOUT;").is_err());
}

fn run(parts: &[&[u8]]) -> Result<Vec<Piece>, Refusal> {
    let mut out = Vec::new();
    let mut s = Splitter::new();
    for p in parts {
        s.feed(p, &mut out)?;
    }
    s.finish(&mut out)?;
    Ok(out)
}

proptest::proptest! {
    /// Whatever the text and wherever the chunks break, the same
    /// pieces (or the same refusal), and never a panic.
    #[test]
    fn any_text_splits_the_same_in_any_chunks(
        text in r"[ -~\n\t]{0,300}|(SELECT|COPY t FROM stdin|E'|'|\\|\\.|\$\$|\$a\$|/\*|\*/|--|;|\n| |x){0,60}",
        cut in 0usize..300,
    ) {
        let b = text.as_bytes();
        let cut = cut.min(b.len());
        let whole = run(&[b]);
        let halves = run(&[&b[..cut], &b[cut..]]);
        proptest::prop_assert_eq!(whole, halves);
    }
}

#[test]
fn a_dump_of_pg_dump_splits() {
    let dump = "--\n-- PostgreSQL database dump\n--\n\\restrict k9\nSET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\nCREATE FUNCTION public.f() RETURNS int\n    LANGUAGE plpgsql\n    AS $$ BEGIN RETURN 1; END; $$;\nCOPY public.t (id, note) FROM stdin;\n1\tit's;\n\\.\n\n\\unrestrict k9\n";
    let p = split(dump).unwrap();
    assert_eq!(p.len(), 6, "{p:?}");
    assert!(matches!(&p[2], Piece::Statement { line: 7, .. }));
}
