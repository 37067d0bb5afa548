//! The store's statements and rows, the same on every connection.
//!
//! A statement is written once, with `$N` placeholders, as
//! `sql::query(SQL).bind(v)…`; its parameters are the store's own
//! [`Value`]s. On an sqlx connection (PostgreSQL, SQLite's pooled readers)
//! they are bound onto an `sqlx::query` and each returned row is read back
//! through sqlx's public `Row::try_get` by the value's type; on SQLite's
//! writer (`sqlite::DirectConn`) they are bound straight to SQLite. Either
//! way the caller gets the store's own [`Row`]: column names and values.

use super::exec::Ex;
use super::{StoreError, R};
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Row as _, ValueRef as _};
use std::borrow::Cow;
use std::sync::Arc;

/// The type of a value, as far as the store needs one: what a NULL
/// parameter is bound as (PostgreSQL types every parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

/// A value in or out of the database, by SQLite's storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL; as a parameter, with the type it is bound as (`None` in a row).
    Null(Option<Kind>),
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    /// What the value is, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null(_) => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real number",
            Value::Text(_) => "text",
            Value::Blob(_) => "a blob",
        }
    }
}

/// Types that bind as a parameter, and the type their NULL binds as.
pub trait Typed: Into<Value> {
    const KIND: Kind;
}

macro_rules! value_from {
    ($($t:ty => $kind:ident, |$v:ident| $e:expr;)*) => {$(
        impl From<$t> for Value {
            fn from($v: $t) -> Value {
                $e
            }
        }
        impl Typed for $t {
            const KIND: Kind = Kind::$kind;
        }
    )*};
}

value_from! {
    i64 => Int, |v| Value::Int(v);
    i32 => Int, |v| Value::Int(i64::from(v));
    u32 => Int, |v| Value::Int(i64::from(v));
    f64 => Real, |v| Value::Real(v);
    f32 => Real, |v| Value::Real(f64::from(v));
    String => Text, |v| Value::Text(v);
    &str => Text, |v| Value::Text(v.to_owned());
    &String => Text, |v| Value::Text(v.clone());
    &&str => Text, |v| Value::Text((*v).to_owned());
    Vec<u8> => Blob, |v| Value::Blob(v);
    &[u8] => Blob, |v| Value::Blob(v.to_vec());
}

impl<T: Typed> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        match v {
            Some(v) => v.into(),
            None => Value::Null(Some(T::KIND)),
        }
    }
}

impl<'a, T> From<&'a Option<T>> for Value
where
    &'a T: Typed,
{
    fn from(v: &'a Option<T>) -> Value {
        v.as_ref().into()
    }
}

/// Rust types a [`Value`] reads back as; `Err` says what it holds instead.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, String>;
}

fn mismatch(want: &str, v: &Value) -> String {
    format!("expected {want}, found {}", v.describe())
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            other => Err(mismatch("an integer", other)),
        }
    }
}

impl FromValue for i32 {
    fn from_value(v: &Value) -> Result<Self, String> {
        let i = i64::from_value(v)?;
        i32::try_from(i).map_err(|_| format!("{i} is out of range for a 32-bit integer"))
    }
}

/// Booleans are stored as integers (0 or not), as the schema keeps them.
impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Real(x) => Ok(*x),
            Value::Int(i) => Ok(*i as f64),
            other => Err(mismatch("a number", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(mismatch("a blob", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null(_) => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A column of a [`Row`], by position or by name.
pub trait ColumnIndex: Copy {
    fn position(self, columns: &[String]) -> Option<usize>;
    /// How a missing column is named in an error.
    fn describe(self) -> String;
}

impl ColumnIndex for usize {
    fn position(self, columns: &[String]) -> Option<usize> {
        (self < columns.len()).then_some(self)
    }
    fn describe(self) -> String {
        format!("#{self}")
    }
}

impl ColumnIndex for &str {
    fn position(self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
    fn describe(self) -> String {
        self.to_string()
    }
}

/// A row of a result: the column names (shared by the result's rows) and
/// the values.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(super) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Row {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    /// The value of a column.
    pub fn value(&self, col: impl ColumnIndex) -> R<&Value> {
        let i = self.index(col)?;
        Ok(&self.values[i])
    }

    /// The name of the column at `i` (empty past the last one).
    pub fn column_name(&self, i: usize) -> &str {
        self.columns.get(i).map_or("", String::as_str)
    }

    /// A column's value as `T`.
    pub fn try_get<T: FromValue>(&self, col: impl ColumnIndex) -> R<T> {
        let i = self.index(col)?;
        T::from_value(&self.values[i]).map_err(|problem| StoreError::Column {
            column: self.columns[i].clone(),
            problem,
        })
    }

    /// The name of a column (as asked for, if the row has no such column).
    pub fn name_of(&self, col: impl ColumnIndex) -> String {
        match col.position(&self.columns) {
            Some(i) => self.columns[i].clone(),
            None => col.describe(),
        }
    }

    fn index(&self, col: impl ColumnIndex) -> R<usize> {
        col.position(&self.columns)
            .ok_or_else(|| StoreError::Column {
                column: col.describe(),
                problem: "no such column in the result".into(),
            })
    }
}

/// What a statement did: the rows it changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done {
    pub(super) rows_affected: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

/// A statement and its parameters (`$1`, `$2`, … in binding order).
#[derive(Debug, Clone)]
pub struct Query {
    pub(super) sql: Cow<'static, str>,
    pub(super) args: Vec<Value>,
}

/// A statement of the store: SQL text with `$N` placeholders.
pub fn query(sql: impl Into<Cow<'static, str>>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl Query {
    /// Binds the next parameter.
    pub fn bind(mut self, v: impl Into<Value>) -> Query {
        self.args.push(v.into());
        self
    }

    /// Runs the statement for its effect.
    pub async fn execute(self, ex: Ex<'_>) -> R<Done> {
        match ex {
            Ex::Any(c) => {
                let done = self.into_sqlx().execute(&mut *c).await?;
                Ok(Done {
                    rows_affected: done.rows_affected(),
                })
            }
            Ex::Direct(d) => Ok(d.run(&self.sql, &self.args, None)?.done),
        }
    }

    /// Every row of the result.
    pub async fn fetch_all(self, ex: Ex<'_>) -> R<Vec<Row>> {
        match ex {
            Ex::Any(c) => {
                let rows = self.into_sqlx().fetch_all(&mut *c).await?;
                from_any_rows(&rows)
            }
            Ex::Direct(d) => Ok(d.run(&self.sql, &self.args, None)?.rows),
        }
    }

    /// The first row of the result, if any.
    pub async fn fetch_optional(self, ex: Ex<'_>) -> R<Option<Row>> {
        match ex {
            Ex::Any(c) => match self.into_sqlx().fetch_optional(&mut *c).await? {
                Some(r) => Ok(Some(from_any_row(&r, &column_names(&r))?)),
                None => Ok(None),
            },
            Ex::Direct(d) => Ok(d.run(&self.sql, &self.args, Some(1))?.rows.pop()),
        }
    }

    /// The first row of the result; [`StoreError::NoRow`] if there is none.
    pub async fn fetch_one(self, ex: Ex<'_>) -> R<Row> {
        self.fetch_optional(ex).await?.ok_or(StoreError::NoRow)
    }

    /// The same statement as an sqlx query on the `Any` driver.
    fn into_sqlx(self) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
        let mut q = match self.sql {
            Cow::Borrowed(s) => sqlx::query(s),
            Cow::Owned(s) => sqlx::query(sqlx::AssertSqlSafe(s)),
        };
        for v in self.args {
            q = match v {
                Value::Int(i) => q.bind(i),
                Value::Real(x) => q.bind(x),
                Value::Text(s) => q.bind(s),
                Value::Blob(b) => q.bind(b),
                Value::Null(Some(Kind::Int)) => q.bind(None::<i64>),
                Value::Null(Some(Kind::Real)) => q.bind(None::<f64>),
                Value::Null(Some(Kind::Blob)) => q.bind(None::<Vec<u8>>),
                Value::Null(Some(Kind::Text) | None) => q.bind(None::<String>),
            };
        }
        q
    }
}

fn column_names(r: &AnyRow) -> Arc<[String]> {
    use sqlx::Column as _;
    r.columns().iter().map(|c| c.name().to_string()).collect()
}

fn from_any_rows(rows: &[AnyRow]) -> R<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns = column_names(first);
    rows.iter().map(|r| from_any_row(r, &columns)).collect()
}

/// An sqlx row as the store's, each value read by its type through sqlx's
/// public API.
fn from_any_row(r: &AnyRow, columns: &Arc<[String]>) -> R<Row> {
    let mut values = Vec::with_capacity(columns.len());
    for i in 0..columns.len() {
        let raw = r.try_get_raw(i)?;
        let kind = if raw.is_null() {
            AnyTypeInfoKind::Null
        } else {
            raw.type_info().kind()
        };
        let v = match kind {
            AnyTypeInfoKind::Null => Value::Null(None),
            AnyTypeInfoKind::Bool => Value::Int(i64::from(r.try_get::<bool, _>(i)?)),
            AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
                Value::Int(r.try_get::<i64, _>(i)?)
            }
            AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Value::Real(r.try_get::<f64, _>(i)?),
            AnyTypeInfoKind::Text => Value::Text(r.try_get::<String, _>(i)?),
            AnyTypeInfoKind::Blob => Value::Blob(r.try_get::<Vec<u8>, _>(i)?),
        };
        values.push(v);
    }
    Ok(Row::new(columns.clone(), values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row::new(
            vec![
                "id".to_string(),
                "name".into(),
                "score".into(),
                "note".into(),
            ]
            .into(),
            vec![
                Value::Int(7),
                Value::Text("seven".into()),
                Value::Real(0.5),
                Value::Null(None),
            ],
        )
    }

    #[test]
    fn values_read_back_by_position_or_name() {
        let r = row();
        assert_eq!(r.try_get::<i64>("id").unwrap(), 7);
        assert_eq!(r.try_get::<i32>(0).unwrap(), 7);
        assert!(r.try_get::<bool>(0).unwrap());
        assert_eq!(r.try_get::<String>("name").unwrap(), "seven");
        assert_eq!(r.try_get::<f64>(2).unwrap(), 0.5);
        assert_eq!(r.try_get::<f64>(0).unwrap(), 7.0);
        assert_eq!(r.try_get::<Option<String>>("note").unwrap(), None);
        assert_eq!(r.try_get::<Option<i64>>(0).unwrap(), Some(7));
    }

    #[test]
    fn a_missing_column_or_a_wrong_type_is_an_error_naming_the_column() {
        let r = row();
        let e = r.try_get::<String>("missing").unwrap_err();
        assert!(e.to_string().contains("no such column"), "{e}");
        let e = r.try_get::<String>(9).unwrap_err();
        assert!(e.to_string().contains("no such column"), "{e}");
        let e = r.try_get::<i64>("name").unwrap_err();
        assert_eq!(
            e.to_string(),
            "column `name`: expected an integer, found text"
        );
        let e = r.try_get::<String>("note").unwrap_err();
        assert_eq!(e.to_string(), "column `note`: expected text, found NULL");
    }

    #[test]
    fn a_null_parameter_keeps_its_type() {
        assert_eq!(Value::from(None::<i64>), Value::Null(Some(Kind::Int)));
        assert_eq!(Value::from(None::<&str>), Value::Null(Some(Kind::Text)));
        assert_eq!(Value::from(&None::<String>), Value::Null(Some(Kind::Text)));
        assert_eq!(Value::from(&Some("a".to_string())), Value::Text("a".into()));
        assert_eq!(Value::from(Some(2.5_f64)), Value::Real(2.5));
    }
}
