use super::*;

/// Kept backups of a destroyed instance: its about file alone.
fn kept(home: &Home, id: &str, name: &str) {
    let dir = home.backups_dir().join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let about = serde_json::json!({"id": id, "name": name, "version": 15, "image": "i",
        "database": "app", "user": "app", "memory": 1, "cpus": 1.0});
    std::fs::write(dir.join(provision::BACKUP_ABOUT), about.to_string()).unwrap();
}

#[tokio::test]
async fn a_name_two_destroyed_instances_had_is_refused_with_their_ids() {
    let d = crate::testing::TempDir::new("kept-names");
    let home = Home::new(crate::settings::Settings::with_root(d.path().to_path_buf()));
    kept(&home, "db_00000001", "gone");
    assert_eq!(source(&home, "gone").await.unwrap().id, "db_00000001");
    kept(&home, "db_ffffffff", "gone");
    let e = source(&home, "gone").await.unwrap_err().to_string();
    assert!(
        e.contains("db_00000001") && e.contains("db_ffffffff"),
        "{e}"
    );
    assert_eq!(source(&home, "db_ffffffff").await.unwrap().name, "gone");
}
