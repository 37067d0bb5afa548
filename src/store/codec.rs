//! Values between the database and the domain: instants as epoch
//! milliseconds, ids, JSON, currencies and the enums stored as text.
//!
//! Decoding is fallible everywhere: a value in the database that the store
//! does not know (an enum's unknown name, an instant out of range, malformed
//! JSON, a bad currency code) is a [`StoreError::BadValue`] naming the table,
//! the column and the value, never a default.
//!
//! Each enum stored as text has one mapping, [`DbText`], implemented once,
//! with the enum's own spelling: its `as_str` where the core has one, else
//! its serde name (the name it has in JSON), read from serde itself; its
//! variants are the core's one list of them ([`Variants`]).

use super::sql::{ColumnIndex, FromValue, Row};
use super::{StoreError, R};
use crate::core::{
    BayState, Currency, EntryReason, EntryVerdict, ExitReason, FlagKind, FlagStatus, PaymentKind,
    PaymentMethod, PaymentStatus, PermitKind, ReservationStatus, SpaceStatus, SpaceType, Variants,
    VehicleType,
};
use crate::events::Role;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Epoch milliseconds of an instant.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of epoch milliseconds (`None` out of chrono's range).
pub fn at_ms(v: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(v).single()
}

/// A new random id (UUID v4, simple form).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// JSON text of a value the store writes.
pub(super) fn to_json(what: &str, v: &impl Serialize) -> R<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Encode(format!("{what} as JSON: {e}")))
}

// ---------------------------------------------------------------- enums ↔ text

/// An enum stored as text: one name per variant, the same both ways. The
/// variants are the core's own list ([`Variants`]).
pub trait DbText: Variants + PartialEq {
    /// What the column holds, for errors ("a space type").
    const WHAT: &'static str;

    /// The stored name.
    fn to_db(&self) -> &'static str;

    /// The variant stored as `s`, if any.
    fn from_db(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.to_db() == s)
    }

    /// The variant stored as `s` in `table.column`, or the error naming them.
    fn decode(table: &'static str, column: &str, s: &str) -> R<Self> {
        Self::from_db(s)
            .ok_or_else(|| StoreError::bad_value(table, column, s, expected(Self::WHAT, Self::ALL)))
    }
}

/// "a space type (motorcycle, compact, …)" for an error message.
fn expected<T: DbText>(what: &str, all: &[T]) -> String {
    let names: Vec<&str> = all.iter().map(DbText::to_db).collect();
    format!("{what} ({})", names.join(", "))
}

/// [`DbText`] for enums with the core's `as_str`.
macro_rules! db_text_as_str {
    ($($t:ident: $what:literal;)+) => {$(
        impl DbText for $t {
            const WHAT: &'static str = $what;
            fn to_db(&self) -> &'static str {
                self.as_str()
            }
        }
    )+};
}

/// [`DbText`] for enums whose only spelling is their serde name.
macro_rules! db_text_serde {
    ($($t:ident: $what:literal;)+) => {$(
        impl DbText for $t {
            const WHAT: &'static str = $what;
            fn to_db(&self) -> &'static str {
                variant_name(self)
            }
        }
    )+};
}

db_text_as_str! {
    SpaceType: "a space type";
    VehicleType: "a vehicle type";
    BayState: "a bay state";
}

db_text_serde! {
    SpaceStatus: "a space status";
    ReservationStatus: "a reservation status";
    PaymentMethod: "a payment method";
    PaymentStatus: "a payment status";
    PaymentKind: "a payment kind";
    EntryVerdict: "an entry verdict";
    EntryReason: "an entry reason";
    ExitReason: "an exit reason";
    FlagKind: "a flag kind";
    FlagStatus: "a flag status";
    PermitKind: "a permit kind";
    Role: "a camera role";
}

/// A currency stored as its ISO code in `table.column`.
pub fn decode_currency(table: &'static str, column: &str, s: &str) -> R<Currency> {
    Currency::new(s)
        .map_err(|_| StoreError::bad_value(table, column, s, "an ISO 4217 currency code"))
}

/// The serde name of a unit variant (`FlagKind::WatchListHit` →
/// `watch_list_hit`), without allocating: serde hands its serializer the
/// variant's name as a `&'static str`.
fn variant_name<T: Serialize>(v: &T) -> &'static str {
    v.serialize(VariantName)
        .expect("a DbText enum serializes as a unit variant")
}

/// A serializer that only accepts a unit variant and returns its name.
struct VariantName;

#[derive(Debug)]
struct NotAUnitVariant;

impl std::fmt::Display for NotAUnitVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a unit variant")
    }
}

impl std::error::Error for NotAUnitVariant {}

impl serde::ser::Error for NotAUnitVariant {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        NotAUnitVariant
    }
}

macro_rules! refuse {
    ($($f:ident($($t:ty),*);)*) => {$(
        fn $f(self, $(_: $t),*) -> Result<&'static str, NotAUnitVariant> {
            Err(NotAUnitVariant)
        }
    )*};
}

impl serde::Serializer for VariantName {
    type Ok = &'static str;
    type Error = NotAUnitVariant;
    type SerializeSeq = serde::ser::Impossible<&'static str, NotAUnitVariant>;
    type SerializeTuple = serde::ser::Impossible<&'static str, NotAUnitVariant>;
    type SerializeTupleStruct = serde::ser::Impossible<&'static str, NotAUnitVariant>;
    type SerializeTupleVariant = serde::ser::Impossible<&'static str, NotAUnitVariant>;
    type SerializeMap = serde::ser::Impossible<&'static str, NotAUnitVariant>;
    type SerializeStruct = serde::ser::Impossible<&'static str, NotAUnitVariant>;
    type SerializeStructVariant = serde::ser::Impossible<&'static str, NotAUnitVariant>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<&'static str, NotAUnitVariant> {
        Ok(variant)
    }

    refuse! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_f32(f32);
        serialize_f64(f64);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(&'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<&'static str, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<&'static str, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAUnitVariant> {
        Err(NotAUnitVariant)
    }
}

// ---------------------------------------------------------------- rows of a table

/// A row read from `table`, whose decoders name the table and the column
/// in their errors.
pub struct TableRow<'r> {
    row: &'r Row,
    table: &'static str,
}

impl Row {
    /// This row as one of `table`'s, for decoding.
    pub fn of(&self, table: &'static str) -> TableRow<'_> {
        TableRow { row: self, table }
    }
}

impl TableRow<'_> {
    /// A plain value.
    pub fn get<T: FromValue>(&self, col: impl ColumnIndex) -> R<T> {
        self.row.try_get(col)
    }

    fn bad(
        &self,
        col: impl ColumnIndex,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> StoreError {
        StoreError::bad_value(self.table, self.row.name_of(col), value, expected)
    }

    /// An enum stored as text.
    pub fn enumeration<T: DbText>(&self, col: impl ColumnIndex) -> R<T> {
        let s: String = self.get(col)?;
        T::from_db(&s).ok_or_else(|| self.bad(col, &s, expected(T::WHAT, T::ALL)))
    }

    /// The text of an enum's name, checked to be one.
    pub fn text<T: DbText>(&self, col: impl ColumnIndex) -> R<String> {
        let s: String = self.get(col)?;
        match T::from_db(&s) {
            Some(_) => Ok(s),
            None => Err(self.bad(col, &s, expected(T::WHAT, T::ALL))),
        }
    }

    /// The text of an enum's name or NULL.
    pub fn opt_text<T: DbText>(&self, col: impl ColumnIndex) -> R<Option<String>> {
        match self.get::<Option<String>>(col)? {
            Some(_) => self.text::<T>(col).map(Some),
            None => Ok(None),
        }
    }

    /// A currency code, checked to be one.
    pub fn currency(&self, col: impl ColumnIndex) -> R<String> {
        let s: String = self.get(col)?;
        match Currency::new(&s) {
            Ok(_) => Ok(s),
            Err(_) => Err(self.bad(col, &s, "an ISO 4217 currency code")),
        }
    }

    /// An instant stored as epoch milliseconds.
    pub fn instant(&self, col: impl ColumnIndex) -> R<DateTime<Utc>> {
        let v: i64 = self.get(col)?;
        at_ms(v).ok_or_else(|| self.bad(col, v, "an instant in epoch milliseconds"))
    }

    /// An instant stored as epoch milliseconds, or NULL.
    pub fn opt_instant(&self, col: impl ColumnIndex) -> R<Option<DateTime<Utc>>> {
        match self.get::<Option<i64>>(col)? {
            Some(_) => self.instant(col).map(Some),
            None => Ok(None),
        }
    }

    /// A value stored as JSON text.
    pub fn json<T: DeserializeOwned>(&self, col: impl ColumnIndex) -> R<T> {
        let s: String = self.get(col)?;
        serde_json::from_str(&s).map_err(|e| self.bad(col, &s, format!("valid JSON ({e})")))
    }

    /// A value stored as JSON text, or NULL.
    pub fn opt_json<T: DeserializeOwned>(&self, col: impl ColumnIndex) -> R<Option<T>> {
        match self.get::<Option<String>>(col)? {
            Some(_) => self.json(col).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::Value;

    fn round_trips<T: DbText + std::fmt::Debug + Serialize>() {
        assert!(!T::ALL.is_empty());
        for v in T::ALL {
            let name = v.to_db();
            assert_eq!(T::from_db(name), Some(*v), "{name}");
            assert_eq!(T::decode("t", "c", name).unwrap(), *v);
            // The one spelling: the enum's serde name, also where it has an `as_str`.
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::String(name.into())
            );
        }
        let mut names: Vec<&str> = T::ALL.iter().map(DbText::to_db).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), T::ALL.len(), "one name per variant");
        match T::decode("some_table", "some_column", "bogus") {
            Err(StoreError::BadValue {
                table,
                column,
                value,
                expected,
            }) => {
                assert_eq!(
                    (table, column.as_str(), value.as_str()),
                    ("some_table", "some_column", "bogus")
                );
                assert!(expected.starts_with(T::WHAT), "{expected}");
                assert!(expected.contains(T::ALL[0].to_db()), "{expected}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_enum_round_trips_and_an_unknown_name_is_an_error() {
        round_trips::<SpaceType>();
        round_trips::<VehicleType>();
        round_trips::<BayState>();
        round_trips::<SpaceStatus>();
        round_trips::<ReservationStatus>();
        round_trips::<PaymentMethod>();
        round_trips::<PaymentStatus>();
        round_trips::<PaymentKind>();
        round_trips::<EntryVerdict>();
        round_trips::<EntryReason>();
        round_trips::<ExitReason>();
        round_trips::<FlagKind>();
        round_trips::<FlagStatus>();
        round_trips::<PermitKind>();
        round_trips::<Role>();
        assert_eq!(<SpaceType as Variants>::ALL, &SpaceType::ALL[..]);
        assert_eq!(FlagKind::WatchListHit.to_db(), "watch_list_hit");
        assert_eq!(ReservationStatus::NoShow.to_db(), "no_show");
        assert_eq!(SpaceStatus::OutOfService.to_db(), "out_of_service");
    }

    fn row(values: Vec<Value>) -> Row {
        let names: Vec<String> = ["space_type", "at_ms", "body", "currency"]
            .iter()
            .take(values.len())
            .map(|s| s.to_string())
            .collect();
        Row::new(names.into(), values)
    }

    fn bad_value(e: StoreError) -> (&'static str, String, String) {
        match e {
            StoreError::BadValue {
                table,
                column,
                value,
                ..
            } => (table, column, value),
            other => panic!("not a BadValue: {other:?}"),
        }
    }

    #[test]
    fn row_decoders_name_the_table_column_and_value() {
        let r = row(vec![
            Value::Text("spaceship".into()),
            Value::Int(i64::MAX),
            Value::Text("{not json".into()),
            Value::Text("euro".into()),
        ]);
        let t = r.of("spaces");
        assert_eq!(
            bad_value(t.enumeration::<SpaceType>(0).unwrap_err()),
            ("spaces", "space_type".into(), "spaceship".into())
        );
        assert_eq!(
            bad_value(t.text::<SpaceType>("space_type").unwrap_err()),
            ("spaces", "space_type".into(), "spaceship".into())
        );
        assert_eq!(
            bad_value(t.instant(1).unwrap_err()),
            ("spaces", "at_ms".into(), i64::MAX.to_string())
        );
        assert_eq!(
            bad_value(t.json::<serde_json::Value>(2).unwrap_err()),
            ("spaces", "body".into(), "{not json".into())
        );
        assert_eq!(
            bad_value(t.currency(3).unwrap_err()),
            ("spaces", "currency".into(), "euro".into())
        );
        let e = t.enumeration::<SpaceType>(0).unwrap_err().to_string();
        assert_eq!(
            e,
            "spaces.space_type holds `spaceship`, which is not a space type (motorcycle, compact, large, handicapped, ev)"
        );
    }

    #[test]
    fn row_decoders_read_good_values_and_nulls() {
        let r = row(vec![
            Value::Text("ev".into()),
            Value::Int(1_700_000_000_123),
            Value::Text(r#"{"a":1}"#.into()),
            Value::Text("RON".into()),
        ]);
        let t = r.of("spaces");
        assert_eq!(t.enumeration::<SpaceType>(0).unwrap(), SpaceType::Ev);
        assert_eq!(t.opt_text::<SpaceType>(0).unwrap().as_deref(), Some("ev"));
        assert_eq!(ms(t.instant(1).unwrap()), 1_700_000_000_123);
        assert_eq!(t.json::<serde_json::Value>(2).unwrap()["a"], 1);
        assert_eq!(t.currency(3).unwrap(), "RON");
        let r = row(vec![
            Value::Null(None),
            Value::Null(None),
            Value::Null(None),
        ]);
        let t = r.of("spaces");
        assert_eq!(t.opt_text::<SpaceType>(0).unwrap(), None);
        assert_eq!(t.opt_instant(1).unwrap(), None);
        assert_eq!(t.opt_json::<serde_json::Value>(2).unwrap(), None);
        assert!(matches!(t.instant(1), Err(StoreError::Column { .. })));
    }

    #[test]
    fn currencies_decode_or_fail() {
        assert_eq!(decode_currency("t", "c", "EUR").unwrap(), Currency::EUR);
        assert_eq!(
            bad_value(decode_currency("payments", "currency", "??").unwrap_err()),
            ("payments", "currency".into(), "??".into())
        );
    }

    #[tokio::test]
    async fn an_unknown_space_type_in_the_database_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/codec.db", dir.path().display());
        let store = crate::store::Store::open(&url, 2).await.unwrap();
        {
            let mut tx = store.write().await.unwrap();
            crate::store::sql::query(
                "INSERT INTO spaces (id, level, zone, space_type, rank, status, sensor_state, in_config, updated_ms) \
                 VALUES ('B1', 'L0', 'Z', 'hovercraft', 1, 'available', 'unknown', 1, 0)",
            )
            .execute(crate::store::StoreConn::ex(&mut tx))
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let mut c = store.read().await.unwrap();
        let e = crate::store::all_spaces(&mut c).await.unwrap_err();
        assert_eq!(
            bad_value(e),
            ("spaces", "space_type".into(), "hovercraft".into())
        );
        let e = crate::store::space(&mut c, "B1").await.unwrap_err();
        assert!(
            e.to_string()
                .contains("spaces.space_type holds `hovercraft`"),
            "{e}"
        );
        drop(c);
        store.close().await;
    }
}
