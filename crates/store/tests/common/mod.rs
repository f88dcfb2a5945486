//! Test helpers: a fresh database per test on either backend, Redis from the environment.
#![allow(dead_code)]

use store::Database;

/// Runs once per backend: `$name` becomes `sqlite_$name` and `postgres_$name`, each calling
/// `$name(db)` with a fresh, migrated database.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, _dir) = $crate::common::fresh_sqlite().await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::common::fresh_postgres().await;
                    super::$name(db).await;
                }
            )*
        }
    };
}

/// The PostgreSQL admin URL, or a failure telling how to get one.
pub fn pg_admin_url() -> String {
    std::env::var("PAYFAC_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_DATABASE_URL is not set: run `. scripts/test-services.sh` first")
    })
}

/// The Redis URL, or a failure telling how to get one.
pub fn redis_url() -> String {
    std::env::var("PAYFAC_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("PAYFAC_TEST_REDIS_URL is not set: run `. scripts/test-services.sh` first")
    })
}

/// A random lower-case suffix for database names and key prefixes.
pub fn random_suffix() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// Creates an empty PostgreSQL database and returns its URL.
pub fn create_pg_database() -> String {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = pg_admin_url();
    let name = format!("t_{}", random_suffix());
    let mut conn = PgConnection::establish(&admin).expect("connect to the admin database");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("admin url");
    url.set_path(&name);
    url.to_string()
}

/// A fresh, migrated PostgreSQL database.
pub async fn fresh_postgres() -> Database {
    let url = create_pg_database();
    let db = Database::connect(&url, 8).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

/// A fresh, migrated SQLite database in a temporary directory (kept alive by the returned guard).
pub async fn fresh_sqlite() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("payfac.db");
    let db = Database::connect(&format!("sqlite://{}", path.display()), 4)
        .await
        .expect("connect");
    db.migrate().await.expect("migrate");
    (db, dir)
}
