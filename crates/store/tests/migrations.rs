//! Migrations go up, down and up again on both backends, and connection errors read clearly.

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
    let url = test_support::fresh_postgres_url();
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
    test_support::pg_admin_url();
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

/// The lane migration (2026-11-28-000004) gives delivery jobs queued or running before it their
/// endpoint as lane, and leaves finished and non-delivery jobs without one. Runs the embedded
/// migrations directly so that rows can be written under the schema before it.
mod lane_backfill {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

    const PG: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
    const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

    const SEED: &str = "
        INSERT INTO deliveries (id, event_id, endpoint_id, merchant_id, status, created_at, updated_at)
            VALUES ('dlv_1', 'evt_1', 'we_A', 'mer_1', 'pending', 1, 1),
                   ('dlv_2', 'evt_1', 'we_B', 'mer_1', 'succeeded', 1, 1);
        INSERT INTO jobs (id, kind, dedupe_key, payload, run_at, state, created_at, updated_at)
            VALUES ('job_1', 'webhook.deliver', 'dlv_1', '{}', 1, 'queued', 1, 1),
                   ('job_2', 'webhook.deliver', 'dlv_2', '{}', 1, 'done', 1, 1),
                   ('job_3', 'payment.poll', 'pay_1', '{}', 1, 'queued', 1, 1);";

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        lane: Option<String>,
    }

    /// The lane migration's version, dashes dropped (diesel keeps or drops them by version).
    const LANES: &str = "20261128000004";

    /// Migrates to just before the lane migration (reverting any newer ones too), writes the
    /// seed, then applies them again.
    fn seed_before_lanes<C, B>(conn: &mut C, migrations: fn() -> EmbeddedMigrations)
    where
        B: diesel::backend::Backend,
        C: MigrationHarness<B> + SimpleConnection,
    {
        conn.run_pending_migrations(migrations()).expect("up");
        while conn
            .revert_last_migration(migrations())
            .expect("down one")
            .to_string()
            .replace('-', "")
            != LANES
        {}
        conn.batch_execute(SEED).expect("rows under the old schema");
        conn.run_pending_migrations(migrations()).expect("up again");
    }

    fn assert_lanes(rows: Vec<Row>) {
        let lanes: Vec<_> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.lane.as_deref()))
            .collect();
        assert_eq!(
            lanes,
            [("job_1", Some("we_A")), ("job_2", None), ("job_3", None)]
        );
    }

    const JOBS: &str = "SELECT id, lane FROM jobs ORDER BY id";

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = SqliteConnection::establish(&dir.path().join("m.db").display().to_string())
            .expect("sqlite");
        // the seed's deliveries name an event, endpoint and merchant that do not exist
        conn.batch_execute("PRAGMA foreign_keys = OFF")
            .expect("pragma");
        seed_before_lanes(&mut conn, || SQLITE);
        assert_lanes(diesel::sql_query(JOBS).load(&mut conn).expect("jobs"));
    }

    #[test]
    fn postgres() {
        let url = test_support::fresh_postgres_url();
        let mut conn = PgConnection::establish(&url).expect("postgres");
        // the seed's deliveries name an event, endpoint and merchant that do not exist
        conn.batch_execute("SET session_replication_role = replica")
            .expect("no foreign-key triggers");
        seed_before_lanes(&mut conn, || PG);
        assert_lanes(diesel::sql_query(JOBS).load(&mut conn).expect("jobs"));
    }
}
