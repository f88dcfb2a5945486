//! Connecting, pooling, migrating, and running transactions on either backend.
//!
//! One repository API over PostgreSQL and SQLite: [`DbConnection`] is diesel's
//! `MultiConnection` over both, and every repository function takes `&mut DbConnection`.
//! Repository bodies are written once and type-checked against each backend through
//! [`crate::on_backend!`], because diesel's `MultiBackend` lacks clauses we need (`RETURNING`,
//! `ON CONFLICT`, `FOR UPDATE SKIP LOCKED`); the function a caller sees is the same either way.

use crate::error::{StoreError, StoreResult};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a caller waits for a pooled connection before giving up.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long SQLite waits on a locked database before answering `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL (production).
    Postgresql(PgConnection),
    /// SQLite (embedded mode, single node).
    Sqlite(SqliteConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection, so one query text is compiled for
/// both backends.
#[macro_export]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Postgresql($c) => $body,
            $crate::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Which database engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl DbConnection {
    /// The engine behind this connection.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgresql(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Where a URL points, parsed before connecting so errors keep the driver's real message.
#[derive(Clone)]
enum Target {
    Postgres { url: String, display: String },
    Sqlite { path: String },
}

impl Target {
    fn parse(url: &str) -> StoreResult<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed =
                url::Url::parse(url).map_err(|e| StoreError::InvalidUrl(format!("{e}")))?;
            let host = parsed.host_str().unwrap_or("localhost");
            let port = parsed.port().unwrap_or(5432);
            let db = parsed.path().trim_start_matches('/');
            let user = parsed.username();
            let mut display = format!("PostgreSQL at {host}:{port}/{db}");
            if !user.is_empty() {
                display.push_str(&format!(" as {user}"));
            }
            if parsed.password().is_some() {
                display.push_str(" (password ***)");
            }
            return Ok(Target::Postgres {
                url: url.to_owned(),
                display,
            });
        }
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(StoreError::InvalidUrl(format!(
                "unsupported scheme `{scheme}` (use postgres://, sqlite:// or a file path)"
            )));
        } else {
            url
        };
        if path.is_empty() {
            return Err(StoreError::InvalidUrl("empty SQLite path".into()));
        }
        Ok(Target::Sqlite {
            path: path.to_owned(),
        })
    }

    fn display(&self) -> String {
        match self {
            Target::Postgres { display, .. } => display.clone(),
            Target::Sqlite { path } => format!("SQLite database {path}"),
        }
    }

    fn connect(&self) -> Result<DbConnection, diesel::r2d2::Error> {
        use diesel::r2d2::Error as E;
        match self {
            Target::Postgres { url, .. } => PgConnection::establish(url)
                .map(DbConnection::Postgresql)
                .map_err(E::ConnectionError),
            Target::Sqlite { path } => {
                let mut c = SqliteConnection::establish(path).map_err(E::ConnectionError)?;
                // WAL lets readers run beside the single writer; busy_timeout makes a second
                // writer wait instead of failing; SQLite leaves foreign keys off unless asked.
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(E::QueryError)?;
                Ok(DbConnection::Sqlite(c))
            }
        }
    }
}

struct Manager(Target);

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Called after a write transaction that enqueued at least one job has committed.
pub type EnqueueHook = Arc<dyn Fn() + Send + Sync>;

thread_local! {
    /// Set by [`note_job_enqueued`] while a transaction body runs on this thread. A transaction
    /// body runs synchronously on one blocking thread, so the flag cannot leak between transactions.
    static JOBS_ENQUEUED: Cell<bool> = const { Cell::new(false) };
}

/// Records that the running transaction enqueued a job (called by [`crate::jobs::enqueue`]).
pub(crate) fn note_job_enqueued() {
    JOBS_ENQUEUED.with(|f| f.set(true));
}

thread_local! {
    /// Set by [`note_event_written`] while a transaction body runs on this thread (as
    /// [`JOBS_ENQUEUED`]).
    static EVENTS_WRITTEN: Cell<bool> = const { Cell::new(false) };
}

/// Records that the running transaction wrote an outbox event (called by
/// [`crate::events::insert`]): a payment or refund changed state.
pub(crate) fn note_event_written() {
    EVENTS_WRITTEN.with(|f| f.set(true));
}

/// A pooled database handle; cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Manager>,
    backend: Backend,
    target: Arc<String>,
    on_enqueue: Option<EnqueueHook>,
    on_event: Option<EnqueueHook>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Connects to `url` (`postgres://…`, `postgresql://…`, `sqlite://PATH`, `sqlite:PATH` or a
    /// plain file path) with a pool of `pool_size` connections.
    ///
    /// One connection is made up front so a wrong host, password or path fails here with the
    /// driver's message (password masked), not later as a pool timeout.
    pub async fn connect(url: &str, pool_size: u32) -> StoreResult<Self> {
        let url = url.to_owned();
        blocking(move || Self::connect_blocking(&url, pool_size)).await
    }

    /// [`Database::connect`] for callers that are not async.
    pub fn connect_blocking(url: &str, pool_size: u32) -> StoreResult<Self> {
        let target = Target::parse(url)?;
        let backend = match target {
            Target::Postgres { .. } => Backend::Postgres,
            Target::Sqlite { .. } => Backend::Sqlite,
        };
        let mut pool_size = pool_size.max(1);
        if let Target::Sqlite { path } = &target {
            if path == ":memory:" {
                // every connection to :memory: is a separate database
                pool_size = 1;
            } else if let Some(parent) = PathBuf::from(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                    target: target.display(),
                    reason: format!("cannot create directory {}: {e}", parent.display()),
                })?;
            }
            if path != ":memory:" && !path.starts_with("file:") {
                restrict_sqlite_files(path).map_err(|e| StoreError::Connect {
                    target: target.display(),
                    reason: format!("cannot make {path} private: {e}"),
                })?;
            }
        }
        let display = target.display();
        let first = target.connect().map_err(|e| StoreError::Connect {
            target: display.clone(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        drop(first);
        // No ping on every checkout: it doubled the round trips of short transactions. A
        // connection that died while idle fails its first statement, `has_broken` drops it, and
        // the caller's error path (retry or a 5xx-free storage error) takes it from there.
        let pool = Pool::builder()
            .test_on_check_out(false)
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(POOL_WAIT)
            .build(Manager(target))
            .map_err(|e| StoreError::Connect {
                target: display.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            pool,
            backend,
            target: Arc::new(display),
            on_enqueue: None,
            on_event: None,
        })
    }

    /// This handle (and its clones) calling `hook` after each committed write transaction that
    /// enqueued a job: how a new job wakes runners at once instead of at their next poll. The
    /// hook runs on the blocking thread right after COMMIT, so it must only signal (never block);
    /// it is never called for a rolled-back transaction, so nobody is woken for a job that
    /// does not exist.
    pub fn with_enqueue_hook(mut self, hook: EnqueueHook) -> Self {
        self.on_enqueue = Some(hook);
        self
    }

    /// This handle (and its clones) calling `hook` after each committed write transaction that
    /// wrote an outbox event, i.e. changed a payment or refund: how `?wait=` waiters learn of a
    /// settlement at once instead of polling. Same rules as [`Database::with_enqueue_hook`]:
    /// signal only, never called for a rolled-back transaction.
    pub fn with_event_hook(mut self, hook: EnqueueHook) -> Self {
        self.on_event = Some(hook);
        self
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A printable description of the target (host/port/db; never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> StoreResult<Vec<String>> {
        self.with_conn(|conn| {
            let applied = match conn {
                DbConnection::Postgresql(c) => c.run_pending_migrations(PG_MIGRATIONS),
                DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
            }
            .map_err(|e| StoreError::Migration(e.to_string()))?;
            Ok(applied.into_iter().map(|v| v.to_string()).collect())
        })
        .await
    }

    /// Reverts every applied migration (tests and `payfac migrate --down`): drops all tables.
    pub async fn revert_all(&self) -> StoreResult<Vec<String>> {
        self.with_conn(|conn| {
            let reverted = match conn {
                DbConnection::Postgresql(c) => c.revert_all_migrations(PG_MIGRATIONS),
                DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS),
            }
            .map_err(|e| StoreError::Migration(e.to_string()))?;
            Ok(reverted.into_iter().map(|v| v.to_string()).collect())
        })
        .await
    }

    /// Readiness: a round trip to the database.
    pub async fn ping(&self) -> StoreResult<()> {
        self.with_conn(|conn| conn.ping().map_err(StoreError::from))
            .await
    }

    /// Runs `f` inside a write transaction on the blocking pool.
    ///
    /// On SQLite the transaction starts with `BEGIN IMMEDIATE`, taking the write lock at once, so
    /// two writers queue on `busy_timeout` instead of deadlocking on a read→write upgrade; this
    /// also serialises "read the payment, check refund totals, write" the way
    /// `SELECT … FOR UPDATE` does on PostgreSQL. Returning `Err` rolls back.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        let hooks = (self.on_enqueue.clone(), self.on_event.clone());
        self.with_conn(move |conn| write_transaction(conn, &hooks, f))
            .await
    }

    /// Runs `f` inside a read transaction on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        self.with_conn(move |conn| transaction(conn, false, f))
            .await
    }

    /// Runs `f` on a pooled connection outside any transaction (each statement commits alone).
    pub async fn with_conn<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        crate::waits::timed_database(blocking(move || {
            let mut conn = checkout(&pool)?;
            f(&mut conn)
        }))
        .await
    }

    /// Synchronous write transaction, for code already on a blocking thread.
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = checkout(&self.pool)?;
        let hooks = (self.on_enqueue.clone(), self.on_event.clone());
        write_transaction(&mut conn, &hooks, f)
    }

    /// Synchronous read transaction, for code already on a blocking thread.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = checkout(&self.pool)?;
        transaction(&mut conn, false, f)
    }
}

fn checkout(pool: &Pool<Manager>) -> StoreResult<PooledConnection<Manager>> {
    pool.get().map_err(|e| StoreError::Pool(e.to_string()))
}

async fn blocking<T, F>(f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> StoreResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

/// A write transaction that calls the enqueue hook after a commit that enqueued jobs, and the
/// event hook after one that wrote events.
fn write_transaction<T>(
    conn: &mut DbConnection,
    (on_enqueue, on_event): &(Option<EnqueueHook>, Option<EnqueueHook>),
    f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    JOBS_ENQUEUED.with(|flag| flag.set(false));
    EVENTS_WRITTEN.with(|flag| flag.set(false));
    let result = transaction(conn, true, f);
    let enqueued = JOBS_ENQUEUED.with(|flag| flag.replace(false));
    let evented = EVENTS_WRITTEN.with(|flag| flag.replace(false));
    if result.is_ok() {
        if enqueued && let Some(hook) = on_enqueue {
            hook();
        }
        if evented && let Some(hook) = on_event {
            hook();
        }
    }
    result
}

/// Begin, run, commit or roll back: diesel's `transaction` with a choice of `BEGIN` for SQLite.
fn transaction<T>(
    conn: &mut DbConnection,
    write: bool,
    f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    match conn {
        DbConnection::Sqlite(c) if write => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        _ => <DbConnection as Connection>::TransactionManager::begin_transaction(conn)?,
    }
    let result = f(conn);
    match result {
        Ok(value) => {
            let committed = match conn {
                // PostgreSQL aborts the whole transaction on any failed statement and then turns
                // COMMIT into a silent ROLLBACK; a closure that swallowed such an error would
                // "succeed" while losing every write. A probe sent in the same simple-query
                // message as COMMIT fails first in an aborted transaction, and PostgreSQL skips
                // the rest of the message, so the COMMIT never runs: the failure is reported
                // without a round trip of its own. diesel reads libpq's transaction status after
                // the call, so its transaction bookkeeping stays right either way.
                DbConnection::Postgresql(c) => c.batch_execute("SELECT 1; COMMIT").map_err(|e| {
                    StoreError::Conflict(format!(
                        "transaction aborted by an earlier failed statement: {e}"
                    ))
                }),
                DbConnection::Sqlite(_) => {
                    <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
                        .map_err(StoreError::from)
                }
            };
            match committed {
                Ok(()) => Ok(value),
                Err(commit_error) => {
                    // a failed COMMIT may leave the transaction open; close it before the pool reuses
                    // the connection
                    let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(
                        conn,
                    );
                    Err(commit_error)
                }
            }
        }
        Err(error) => {
            // the caller's error is the one worth reporting; a failed rollback marks the
            // connection broken and r2d2 drops it
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(error)
        }
    }
}

/// Makes the SQLite file (and its `-wal`/`-shm` companions, when present) readable by the owner
/// only. The database holds API key hashes and sealed secrets beside `master.key`, so it must not
/// be world-readable. Creating the file 0600 before SQLite opens it matters most: SQLite gives new
/// `-wal` and `-shm` files the database file's mode. Existing files are tightened too, so an
/// installation created by an older version stops being readable by others at its next start.
pub fn restrict_sqlite_files(path: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for file in [
            path.to_owned(),
            format!("{path}-wal"),
            format!("{path}-shm"),
            format!("{path}-journal"),
        ] {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
