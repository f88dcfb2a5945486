//! Migrations go up, down and up again on both backends, and connection errors read clearly.

mod common;

use store::{Backend, Database, StoreError};

/// Every migration folder of the backend, so a new migration is covered without editing this.
fn migrations_on_disk(db: &Database) -> usize {
    let dir = match db.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(dir);
    std::fs::read_dir(path)
        .expect("migrations folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("up.sql").is_file() && e.path().join("down.sql").is_file())
        .count()
}

async fn up_down_up(db: &Database) {
    let expected = migrations_on_disk(db);
    assert!(expected >= 1);
    let applied = db.migrate().await.expect("up");
    assert_eq!(
        applied.len(),
        expected,
        "every migration applied on an empty database"
    );
    assert!(
        db.migrate().await.expect("up again").is_empty(),
        "idempotent"
    );
    table_works(db, true).await;

    let reverted = db.revert_all().await.expect("down");
    assert_eq!(reverted.len(), expected, "every migration reverted");
    table_works(db, false).await;

    assert_eq!(db.migrate().await.expect("up after down").len(), expected);
    table_works(db, true).await;
}

async fn table_works(db: &Database, expect_exists: bool) {
    let result = db
        .read(|conn| store::merchants::list(conn, &store::PageRequest::first(1)))
        .await;
    assert_eq!(
        result.is_ok(),
        expect_exists,
        "merchants table usable: {result:?}"
    );
}

#[tokio::test]
async fn sqlite_migrations_go_up_down_and_up_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::connect(&format!("sqlite:{}", dir.path().join("m.db").display()), 2)
        .await
        .expect("connect");
    assert_eq!(db.backend(), Backend::Sqlite);
    up_down_up(&db).await;
    db.ping().await.expect("ping");
}

#[tokio::test]
async fn postgres_migrations_go_up_down_and_up_again() {
    let url = common::create_pg_database();
    let db = Database::connect(&url, 2).await.expect("connect");
    assert_eq!(db.backend(), Backend::Postgres);
    up_down_up(&db).await;
    db.ping().await.expect("ping");
}

#[tokio::test]
async fn a_plain_path_is_sqlite_and_missing_directories_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/payfac.db");
    let db = Database::connect(path.to_str().expect("utf-8 path"), 2)
        .await
        .expect("connect");
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(path.exists());
}

#[tokio::test]
async fn a_wrong_password_is_one_clear_line_without_the_password() {
    common::pg_admin_url();
    let err = Database::connect("postgres://nobody:hunter2@127.0.0.1:55432/missing_db", 2)
        .await
        .expect_err("must fail");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{text}");
    assert!(!text.contains("hunter2"), "password leaked: {text}");
    assert!(text.contains("127.0.0.1:55432/missing_db"), "{text}");
    assert!(text.contains("password ***"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
}

#[tokio::test]
async fn an_unknown_scheme_is_refused() {
    let err = Database::connect("mysql://x@y/z", 1)
        .await
        .expect_err("refused");
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");
}
