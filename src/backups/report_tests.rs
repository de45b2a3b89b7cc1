use super::*;

const LOG_TEXT: &str = r#"{"ts":"2020-01-01T00:27:21Z","event":"backup","ok":true,"label":"A","type":"full","reason":"first","start":"2020-01-01T00:27:17Z","stop":"2020-01-01T00:27:21Z","start_lsn":"0/2","stop_lsn":"0/3","size_bytes":30,"repo_size_bytes":3,"duration_s":4}
{"ts":"2020-01-01T00:27:30Z","event":"verify","label":"A","verified":true,"duration_s":6,"restore_s":4,"tables":1,"indexes_checked":164}
{"ts":"2020-01-01T01:00:00Z","event":"backup","ok":false,"type":"full","reason":"scheduled","error":"repo gone"}
{"ts":"2020-01-01T02:00:00Z","event":"backup","ok":true,"label":"B","type":"full","reason":"on-demand","start":"2020-01-01T01:59:00Z","stop":"2020-01-01T02:00:00Z","start_lsn":"0/5","stop_lsn":"0/6","size_bytes":31,"repo_size_bytes":4,"duration_s":5}
{"ts":"2020-01-01T02:00:09Z","event":"verify","label":"B","verified":false,"reason":"the canary row written before the backup is missing","duration_s":6,"restore_s":4,"tables":0,"indexes_checked":0}
{"ts":"2020-01-01T03:00:00Z","event":"backu"#;

#[test]
fn joins_verifications_and_forgets_failures_followed_by_success() {
    let (b, failure) = parse_log(LOG_TEXT, 1);
    assert_eq!(b.len(), 2);
    assert_eq!((b[0].label.as_str(), b[0].verified), ("A", Some(true)));
    assert_eq!((b[1].label.as_str(), b[1].verified), ("B", Some(false)));
    assert!(b[1]
        .verification
        .as_ref()
        .unwrap()
        .reason
        .as_deref()
        .unwrap()
        .contains("canary"));
    assert!(failure.is_none(), "a later success clears the failure");
    let (_, failure) = parse_log(&LOG_TEXT.lines().take(3).collect::<Vec<_>>().join("\n"), 1);
    assert_eq!(failure.unwrap().error, "repo gone");
}

#[test]
fn s3_lines_are_their_own_report_limited_to_what_the_bucket_holds() {
    let t = crate::testing::TempDir::new("s3report");
    let s3 = r#"{"ts":"2020-01-01T00:28:00Z","event":"backup","ok":true,"repo":2,"label":"A","type":"full","reason":"first","start":"x","stop":"2020-01-01T00:28:00Z"}
{"ts":"2020-01-01T00:28:09Z","event":"verify","repo":2,"label":"A","verified":true,"duration_s":6,"restore_s":4,"tables":1,"indexes_checked":1}
{"ts":"2020-01-01T00:29:00Z","event":"backup","ok":true,"repo":2,"label":"C","type":"full","reason":"first","start":"x","stop":"2020-01-01T00:29:00Z"}
{"ts":"2020-01-01T04:00:00Z","event":"backup","ok":false,"repo":2,"type":"full","reason":"scheduled","error":"S3 down"}
"#;
    std::fs::write(t.path().join(LOG), format!("{LOG_TEXT}\n{s3}")).unwrap();
    std::fs::create_dir_all(t.path().join("repo/backup/db_1/B")).unwrap();
    let r = report_brief(t.path(), "db_1").unwrap();
    assert_eq!(r.backups.len(), 1);
    assert!(r.s3.is_none(), "no s3.json: no S3 repository");
    std::fs::write(t.path().join(crate::backups::kept::S3_SETTINGS), "{}").unwrap();
    std::fs::write(t.path().join(S3_LISTING), r#"{"labels":["A"]}"#).unwrap();
    let r = report_brief(t.path(), "db_1").unwrap();
    let s3 = r.s3.as_ref().unwrap();
    assert_eq!(s3.backups.len(), 1, "C is no longer in the bucket");
    assert_eq!(
        (s3.backups[0].label.as_str(), s3.backups[0].verified),
        ("A", Some(true))
    );
    assert_eq!(s3.last_failure.as_ref().unwrap().error, "S3 down");
    let at = |s: &str| humantime::parse_rfc3339(s).unwrap();
    let c = r.concerns(at("2020-01-01T05:00:00Z"), at("2020-01-01T00:00:00Z"));
    assert!(
        c.iter().any(|c| c.to_string()
            == "S3 repository: the backup at 2020-01-01T04:00:00Z failed: S3 down"),
        "{c:?}"
    );
}

#[test]
fn window_runs_from_the_oldest_backup_to_the_newest_segment() {
    let (b, _) = parse_log(LOG_TEXT, 1);
    let w = window(&b, None).unwrap();
    assert_eq!(w.earliest, "2020-01-01T00:27:21Z");
    assert_eq!(w.latest, "2020-01-01T02:00:00Z");
    let later = humantime::parse_rfc3339("2020-01-01T05:00:01Z").unwrap();
    assert_eq!(
        window(&b, Some(later)).unwrap().latest,
        "2020-01-01T05:00:00Z"
    );
    assert!(window(&[], Some(later)).is_none());
}

#[test]
fn concerns_name_the_failed_verification_and_staleness() {
    let (backups, _) = parse_log(LOG_TEXT, 1);
    let r = Report {
        backups,
        ..Default::default()
    };
    let at = |s: &str| humantime::parse_rfc3339(s).unwrap();
    let c = r.concerns(at("2020-01-01T03:00:00Z"), at("2020-01-01T00:00:00Z"));
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].to_string().contains("backup B failed: the canary"));
    let c = r.concerns(at("2020-01-03T00:00:00Z"), at("2020-01-01T00:00:00Z"));
    assert!(c.contains(&Concern::Stale { hours: Some(47) }), "{c:?}");
    let empty = Report::default();
    assert!(empty
        .concerns(at("2020-01-01T03:00:00Z"), at("2020-01-01T00:00:00Z"))
        .is_empty());
    assert_eq!(
        empty.concerns(at("2020-01-03T00:00:00Z"), at("2020-01-01T00:00:00Z")),
        vec![Concern::Stale { hours: None }]
    );
}

#[test]
fn report_keeps_only_backups_still_in_the_repository() {
    let t = crate::testing::TempDir::new("backups");
    std::fs::write(t.path().join(LOG), LOG_TEXT).unwrap();
    std::fs::create_dir_all(t.path().join("repo/backup/db_1/B")).unwrap();
    let seg = t.path().join("repo/archive/db_1/15-1/0000000100000000");
    std::fs::create_dir_all(&seg).unwrap();
    std::fs::write(seg.join("000000010000000000000002-abc.zst"), b"x").unwrap();
    std::fs::write(seg.join("00000002.history"), b"x").unwrap();
    let r = report(t.path(), "db_1").unwrap();
    assert_eq!(r.backups.len(), 1);
    assert_eq!(r.backups[0].label, "B");
    let w = r.window.unwrap();
    assert_eq!(w.earliest, "2020-01-01T02:00:00Z");
    assert!(
        w.latest.as_str() > "2020-01-01T02:00:00Z",
        "the segment written now"
    );
    assert!(report(&t.path().join("none"), "db_1")
        .unwrap()
        .backups
        .is_empty());
}
