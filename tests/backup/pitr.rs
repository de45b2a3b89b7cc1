//! Point-in-time recovery to the row, and a clone, under write load.

use super::*;

#[test]
fn point_in_time_recovery_to_the_row_and_a_clone_under_write_load() {
    if !docker_required() {
        return;
    }
    let h = TestHome::new("pitr");
    let (_, src, _) = with_rows(&h, "src", &[], 0);
    let mut sections = Sections::default();

    // Rows 1..=30 committed before T, the rest after.
    let writer = Writer::start(&src, 30);
    writer.wait_for(41);
    let (written, t) = writer.finish();
    let t = t.expect("the writer reached its mark");
    assert!(written > 40, "only {written} rows written");

    sections.run("restore --to at a time: exactly the rows before it", || {
        let v = h
            .run(&["restore", "src", "--to", "pitr", "--time", &t, "--json"])
            .json();
        let url = v["url"].as_str().unwrap();
        assert_eq!(ids(url), (1..=30).collect::<Vec<i64>>(), "restored to {t}");
        // Its own passwords: the source's do not open it.
        let src_pw = src.split(':').nth(2).unwrap().split('@').next().unwrap();
        let foreign = url.replacen(
            url.split(':').nth(2).unwrap().split('@').next().unwrap(),
            src_pw,
            1,
        );
        assert!(try_connect(&foreign).is_err());
        assert_ne!(
            v["instance"]["port"],
            h.run(&["show", "src", "--json"]).json()["port"]
        );
    });

    sections.run("clone while the source takes writes", || {
        let before = ids(&src).len() as i64;
        let writer = Writer::start(&src, 0);
        std::thread::sleep(Duration::from_millis(500));
        let url = h.run(&["clone", "src", "copy", "--json"]).json()["url"]
            .as_str()
            .unwrap()
            .to_string();
        std::thread::sleep(Duration::from_millis(500));
        let (more, _) = writer.finish();
        let got = ids(&url);
        let n = got.len() as i64;
        assert_eq!(
            got,
            (1..=n).collect::<Vec<i64>>(),
            "a prefix of the source's rows"
        );
        assert!(
            n >= before + 5,
            "the clone has {n} rows, {before} before the writes began"
        );
        assert!(
            n <= before + more,
            "the clone cannot have rows the source never wrote"
        );
        assert_eq!(
            ids(&src).len() as i64,
            before + more,
            "the source kept every write"
        );
    });

    sections.run("bad targets change nothing", || {
        let out = h
            .run(&[
                "restore",
                "src",
                "--to",
                "early",
                "--time",
                "2001-01-01T00:00:00Z",
            ])
            .fails_with(2);
        assert!(
            out.contains("outside the recoverable window") && out.contains(" to "),
            "{out}"
        );
        let out = h.run(&["restore", "src", "--to", "copy"]).fails_with(4);
        assert!(out.contains("already exists"), "{out}");
        let out = h
            .run(&["restore", "src", "--to", "x", "--time", "noon"])
            .fails_with(2);
        assert!(out.contains("RFC 3339"), "{out}");
        let out = h
            .run(&[
                "restore",
                "src",
                "--to",
                "x",
                "--backup",
                "20260101-000000F",
            ])
            .fails_with(3);
        assert!(out.contains("backups src"), "{out}");
        let out = h
            .run(&["restore", "src", "--to", "x", "--in-place"])
            .fails_with(2);
        assert!(out.contains("exactly one of"), "{out}");
        let names: Vec<String> = h
            .run(&["list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    });
    sections.finish();
}
