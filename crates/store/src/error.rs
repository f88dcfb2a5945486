//! The one error type of the store crate.

use thiserror::Error;

/// Why a storage or coordination call failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database URL could not be understood.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The database could not be reached; `target` names host/port/db with the password masked.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// What we tried to reach (never contains a password).
        target: String,
        /// The driver's message.
        reason: String,
    },
    /// Running or reverting migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// No row matched (a foreign tenant's id reads as this too).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write (duplicate `merchant_order_id`, API key hash, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No pooled connection became free in time.
    #[error("database pool: {0}")]
    Pool(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    /// A stored value could not be read back as a domain value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A blocking task died (panicked or was cancelled).
    #[error("background task failed: {0}")]
    Task(String),
    /// Redis (or the in-process coordinator) failed.
    #[error("coordination: {0}")]
    Coordination(String),
    /// A coordination call did not answer in time.
    #[error("coordination timed out after {0:?}")]
    CoordinationTimeout(std::time::Duration),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => StoreError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => StoreError::Conflict(
                info.constraint_name()
                    .map_or_else(|| info.message().to_owned(), |c| c.to_owned()),
            ),
            other => StoreError::Database(other),
        }
    }
}

impl From<domain::DomainError> for StoreError {
    fn from(e: domain::DomainError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(format!("json: {e}"))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Coordination(e.to_string())
    }
}

impl StoreError {
    /// True when the error is a uniqueness conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }

    /// True when no row matched.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound)
    }
}

/// Result alias for this crate.
pub type StoreResult<T> = Result<T, StoreError>;
