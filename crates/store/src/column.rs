//! The one place where a column's text becomes a domain type. Statuses and policies are
//! stored as their names (the domain's `as_str`, which statements bind; read back with the
//! domain's `parse`); lists of strings (redirect URIs, grant types, `amr`, webhook events) as a
//! JSON array, written by [`json_list`] and read by [`JsonList`]. A record names such a field's
//! column type with `#[sqlx(try_from = "crate::column::Stored<Type>")]` (or `JsonList`,
//! `OptionalJsonList`), so the row mapping decodes it; a stored value the type does not know is
//! a decoding error naming the value (a [`crate::StoreError::Backend`] once it leaves this
//! crate), never a panic and never a guess.
//!
//! The decoding is the wrapper's own `Decode`, not the error of a `TryFrom`: sqlx's `FromRow`
//! derive keeps a `Decode` error's message but not a `TryFrom` error's.

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};
use techpass_domain::client::AccessPolicy;
use techpass_domain::device::DeviceStatus;
use techpass_domain::gate::UserStatus;
use techpass_domain::tenancy::{DeliveryStatus, InvitationStatus, TenantStatus};

/// A domain type stored as one of its names.
pub trait Name: Sized {
    /// What the type is, for the error about a value it does not know.
    const KIND: &'static str;

    fn from_name(text: &str) -> Option<Self>;
}

/// A column holding a [`Name`], as the row mapping decodes it.
pub struct Stored<T>(T);

/// A column holding a JSON array of strings (`["a","b"]`), as the row mapping decodes it.
pub struct JsonList(Vec<String>);

/// As [`JsonList`], in a nullable column (`NULL` is `None`).
pub struct OptionalJsonList(Option<Vec<String>>);

/// The column text of a list: a compact JSON array of strings, as [`JsonList`] reads it.
pub(crate) fn json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

/// A stored value that its type does not know (written by a newer version, or by hand).
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?} in the database")]
pub struct Unknown {
    kind: &'static str,
    value: String,
}

impl<DB: Database, T> Type<DB> for Stored<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database, T: Name> Decode<'r, DB> for Stored<T>
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, DB>>::decode(value)?;
        match T::from_name(&text) {
            Some(known) => Ok(Stored(known)),
            None => Err(Box::new(Unknown {
                kind: T::KIND,
                value: text,
            })),
        }
    }
}

/// A list column whose text is not a JSON array of strings.
#[derive(Debug, thiserror::Error)]
#[error("{value:?} in the database is not a JSON list of strings: {error}")]
pub struct NotAList {
    value: String,
    error: serde_json::Error,
}

pub(crate) fn parse_list(text: String) -> Result<Vec<String>, BoxDynError> {
    serde_json::from_str(&text).map_err(|error| Box::new(NotAList { value: text, error }).into())
}

macro_rules! text_column {
    ($($ty:ty),*) => {$(
        impl<DB: Database> Type<DB> for $ty
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }
    )*};
}

text_column!(JsonList, OptionalJsonList);

impl<'r, DB: Database> Decode<'r, DB> for JsonList
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        parse_list(<String as Decode<'r, DB>>::decode(value)?).map(JsonList)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for OptionalJsonList
where
    String: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        match <Option<String> as Decode<'r, DB>>::decode(value)? {
            Some(text) => parse_list(text).map(|list| OptionalJsonList(Some(list))),
            None => Ok(OptionalJsonList(None)),
        }
    }
}

impl From<JsonList> for Vec<String> {
    fn from(list: JsonList) -> Self {
        list.0
    }
}

impl From<OptionalJsonList> for Option<Vec<String>> {
    fn from(list: OptionalJsonList) -> Self {
        list.0
    }
}

macro_rules! named {
    ($($ty:ty => $kind:literal),* $(,)?) => {$(
        impl Name for $ty {
            const KIND: &'static str = $kind;

            fn from_name(text: &str) -> Option<Self> {
                <$ty>::parse(text)
            }
        }

        impl From<Stored<$ty>> for $ty {
            fn from(stored: Stored<$ty>) -> Self {
                stored.0
            }
        }
    )*};
}

named! {
    UserStatus => "user status",
    TenantStatus => "tenant status",
    InvitationStatus => "invitation status",
    DeviceStatus => "device code status",
    DeliveryStatus => "webhook delivery status",
    AccessPolicy => "access policy",
}
