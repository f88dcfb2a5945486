//! The SQLite database holds key hashes and sealed secrets beside `master.key`: owner-only.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use store::Database;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn sqlite_files_are_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("payfac.db");
    let db = Database::connect(path.to_str().expect("utf-8"), 2)
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    assert_eq!(mode(&path), 0o600, "database file");
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join(format!("payfac.db{suffix}"));
        if side.exists() {
            assert_eq!(mode(&side), 0o600, "{suffix}");
        }
    }
}

#[tokio::test]
async fn an_existing_world_readable_file_is_tightened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    std::fs::write(&path, b"").expect("create");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let _db = Database::connect(path.to_str().expect("utf-8"), 1)
        .await
        .expect("connect");
    assert_eq!(mode(&path), 0o600);
}
