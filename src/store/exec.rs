//! What the store's functions run their statements on.
//!
//! Every statement is written once (`sql::query`). Most of them run on sqlx
//! connections (PostgreSQL, and SQLite's pooled readers), but SQLite's one
//! writer is a [`DirectConn`]: its statements run on the calling thread
//! instead of a round trip to a connection worker thread (see
//! `sqlite::direct`). [`StoreConn`] is what both kinds offer the store: the
//! connection for the next statement, so a store function neither knows nor
//! cares which one it got.

use super::sqlite::DirectConn;
use sqlx::any::Any;
use sqlx::pool::PoolConnection;
use sqlx::AnyConnection;

/// A connection the store's functions can run statements on.
pub trait StoreConn: Send {
    /// The connection for one statement (borrowed for it).
    fn ex(&mut self) -> Ex<'_>;
}

/// The connection type the store's functions take: `&mut Conn`.
pub type Conn = dyn StoreConn;

/// One statement's connection: an sqlx connection or the direct SQLite writer.
#[derive(Debug)]
pub enum Ex<'c> {
    Any(&'c mut AnyConnection),
    Direct(&'c mut DirectConn),
}

impl StoreConn for AnyConnection {
    fn ex(&mut self) -> Ex<'_> {
        Ex::Any(self)
    }
}

impl StoreConn for PoolConnection<Any> {
    fn ex(&mut self) -> Ex<'_> {
        Ex::Any(self)
    }
}

impl StoreConn for DirectConn {
    fn ex(&mut self) -> Ex<'_> {
        Ex::Direct(self)
    }
}
