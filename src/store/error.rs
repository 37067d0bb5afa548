//! The storage layer's one error type.

/// Errors of the storage layer: opening the database, running statements on
/// either kind of connection, and decoding what the database holds.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage url `{0}` is neither sqlite: nor postgres://")]
    BadUrl(String),
    #[error("cannot create the folder for the SQLite file {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A statement or the pool failed on an sqlx connection (PostgreSQL, and
    /// SQLite's pooled readers).
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// A statement failed on SQLite's writer connection (`store::sqlite`),
    /// or a copy of a group COMMIT's failure for each of its members.
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    /// SQLite's writer connection is gone or in doubt (the database counts
    /// as unreachable, as with a dead link).
    #[error("the SQLite writer connection {0}")]
    Writer(&'static str),
    /// A value the store writes could not be encoded.
    #[error("cannot encode {0}")]
    Encode(String),
    /// A statement returned no row where one was expected.
    #[error("the query returned no row")]
    NoRow,
    /// A column is missing from a row or does not hold what was asked for.
    #[error("column `{column}`: {problem}")]
    Column { column: String, problem: String },
    /// The database holds a value the store cannot decode: an enum's
    /// unknown name, an instant out of range, malformed JSON, …
    #[error("{table}.{column} holds `{value}`, which is not {expected}")]
    BadValue {
        table: &'static str,
        column: String,
        value: String,
        expected: String,
    },
}

/// The store's results.
pub type R<T> = Result<T, StoreError>;

impl StoreError {
    /// An undecodable `value` in `table.column`.
    pub fn bad_value(
        table: &'static str,
        column: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> StoreError {
        StoreError::BadValue {
            table,
            column: column.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

/// An error of SQLite itself on the writer connection: its extended result
/// code (as sqlx reports SQLite codes, so the classifiers read both alike)
/// and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteError {
    /// SQLite's extended result code (`None` for a failure of the binding
    /// itself, e.g. an unknown parameter name).
    pub code: Option<i32>,
    pub message: String,
    /// Where a copied error came from (`group commit`), else empty.
    pub note: &'static str,
}

impl std::fmt::Display for SqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.note) {
            (_, note) if !note.is_empty() => write!(f, "{} ({note})", self.message),
            (Some(code), _) => write!(f, "(code: {code}) {}", self.message),
            (None, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SqliteError {}

impl From<rusqlite::Error> for SqliteError {
    fn from(e: rusqlite::Error) -> SqliteError {
        match e {
            rusqlite::Error::SqliteFailure(f, msg) => SqliteError {
                code: Some(f.extended_code),
                message: msg.unwrap_or_else(|| f.to_string()),
                note: "",
            },
            other => SqliteError {
                code: None,
                message: other.to_string(),
                note: "",
            },
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e.into())
    }
}
