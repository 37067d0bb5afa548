//! What the store's functions run their statements on.
//!
//! Every query is written once against sqlx's `Any` driver. Most of them run
//! on sqlx connections (PostgreSQL, and SQLite's pooled readers), but
//! SQLite's one writer is a [`DirectConn`]: its statements run on the
//! calling thread instead of a round trip to a connection worker thread (see
//! `direct`). [`StoreConn`] is what both kinds offer the store: an executor
//! for the next statement, so a store function neither knows nor cares which
//! one it got.

use super::direct::DirectConn;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::any::{Any, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, Either, Execute, Executor, SqlStr};

/// A connection the store's functions can run statements on.
pub trait StoreConn: Send {
    /// An executor for one statement (borrowing the connection for it).
    fn ex(&mut self) -> Ex<'_>;
}

/// The connection type the store's functions take: `&mut Conn`.
pub type Conn = dyn StoreConn;

/// One statement's executor: a sqlx connection or the direct SQLite writer.
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
        Ex::Any(&mut **self)
    }
}

impl StoreConn for DirectConn {
    fn ex(&mut self) -> Ex<'_> {
        Ex::Direct(self)
    }
}

impl<'c> Executor<'c> for Ex<'c> {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Ex::Any(c) => c.fetch_many(query),
            Ex::Direct(d) => {
                let steps = d.run_query(query, None).unwrap_or_else(|e| vec![Err(e)]);
                Box::pin(futures_util::stream::iter(steps))
            }
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Ex::Any(c) => c.fetch_optional(query),
            Ex::Direct(d) => {
                let first = d.run_query(query, Some(1)).and_then(|steps| {
                    let mut row = None;
                    for s in steps {
                        if let Either::Right(r) = s? {
                            row.get_or_insert(r);
                        }
                    }
                    Ok(row)
                });
                Box::pin(std::future::ready(first))
            }
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, sqlx::Error>>
    where
        'c: 'e,
    {
        match self {
            Ex::Any(c) => c.prepare_with(sql, parameters),
            // The store never prepares explicitly (the direct connection
            // caches its statements itself).
            Ex::Direct(_) => Box::pin(std::future::ready(Err(sqlx::Error::AnyDriverError(
                "the direct SQLite writer does not hand out prepared statements".into(),
            )))),
        }
    }
}
