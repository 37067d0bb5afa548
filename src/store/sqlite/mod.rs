//! SQLite's one writer: a connection driven on the caller's thread
//! ([`DirectConn`], see `direct`) and the group commit that every write
//! transaction of the process queues for ([`SqliteWriter`], see `writer`).

mod direct;
mod writer;

pub use direct::DirectConn;
pub use writer::{SqliteTx, SqliteWriter, GROUP_MAX_MEMBERS};
