//! The service's error type.

use thiserror::Error;

/// A storage or queue error.
#[derive(Debug, Error)]
pub enum Error {
    /// The database failed or refused a statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is neither `postgres://` nor `sqlite:`.
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite:PATH")]
    DatabaseUrl(String),
    /// A name or value that must be unique already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// A row that was expected is missing.
    #[error("{0} not found")]
    NotFound(String),
    /// The artifact store failed.
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
    /// A stored blob does not hash to its key.
    #[error("artifact {0} is corrupt (its bytes do not hash to its key)")]
    Corrupt(String),
    /// A setting of the service is unusable.
    #[error("{0}")]
    Config(String),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
