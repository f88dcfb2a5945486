//! A fresh database per test: tests never share rows, so they run in parallel and in any order.

use store::Database;

/// Pool size of [`fresh_sqlite`].
pub const DEFAULT_SQLITE_POOL: u32 = 4;
/// Pool size of [`fresh_postgres`].
pub const DEFAULT_POSTGRES_POOL: u32 = 8;

/// A random lower-case suffix for database names and Redis key prefixes.
pub fn random_suffix() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// Creates an empty PostgreSQL database (`t_<ulid>`) on [`pg_admin_url`](crate::pg_admin_url)'s
/// server and returns its URL; nothing is migrated.
///
/// The databases are not dropped: the test services are throw-away.
pub fn fresh_postgres_url() -> String {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let admin = crate::pg_admin_url();
    let name = format!("t_{}", random_suffix());
    let mut conn = PgConnection::establish(&admin).expect("connect to the admin database");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("admin url");
    url.set_path(&name);
    url.to_string()
}

/// A fresh, migrated PostgreSQL database with a pool of [`DEFAULT_POSTGRES_POOL`].
pub async fn fresh_postgres() -> Database {
    fresh_postgres_sized(DEFAULT_POSTGRES_POOL).await
}

/// A fresh, migrated PostgreSQL database with a pool of `pool` connections.
pub async fn fresh_postgres_sized(pool: u32) -> Database {
    fresh_postgres_with_url(pool).await.0
}

/// A fresh, migrated PostgreSQL database and its URL (for a second pool or process on it).
pub async fn fresh_postgres_with_url(pool: u32) -> (Database, String) {
    let url = fresh_postgres_url();
    let db = Database::connect(&url, pool)
        .await
        .expect("connect postgres");
    db.migrate().await.expect("migrate");
    (db, url)
}

/// A fresh, migrated SQLite database (`payfac.db` in a temporary directory) with a pool of
/// [`DEFAULT_SQLITE_POOL`]. Keep the directory alive as long as the database is used.
pub async fn fresh_sqlite() -> (Database, tempfile::TempDir) {
    fresh_sqlite_sized(DEFAULT_SQLITE_POOL).await
}

/// [`fresh_sqlite`] with a pool of `pool` connections.
pub async fn fresh_sqlite_sized(pool: u32) -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("payfac.db").display());
    let db = Database::connect(&url, pool).await.expect("connect sqlite");
    db.migrate().await.expect("migrate");
    (db, dir)
}

/// Turns `async fn name(db: store::Database)` functions into two tests each: `sqlite::name` and
/// `postgres::name`, each on a fresh, migrated database (multi-thread runtime, 2 workers).
///
/// ```ignore
/// use test_support::on_both_backends;
///
/// on_both_backends!(creates_and_reads, lists_in_order);
/// // or with pool sizes other than the defaults:
/// on_both_backends!(pools(sqlite = 8, postgres = 16): creates_and_reads);
///
/// async fn creates_and_reads(db: store::Database) { /* … */ }
/// ```
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) among its dependencies.
#[macro_export]
macro_rules! on_both_backends {
    (pools(sqlite = $sqlite:expr, postgres = $postgres:expr $(,)?): $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, _dir) = $crate::db::fresh_sqlite_sized($sqlite).await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::db::fresh_postgres_sized($postgres).await;
                    super::$name(db).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(
            pools(
                sqlite = $crate::db::DEFAULT_SQLITE_POOL,
                postgres = $crate::db::DEFAULT_POSTGRES_POOL,
            ): $($name),*
        );
    };
}
