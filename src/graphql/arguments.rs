//! Arguments as clients send them, turned into what the domain takes.

use async_graphql::{ID, MaybeUndefined};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// A client-sent `ID` as a UUID, or `BAD_USER_INPUT` naming the argument.
pub fn parse_id(field: &'static str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "not a valid id"))
}

/// An optional client-sent `ID` as a typed id, or `BAD_USER_INPUT` naming the argument.
pub fn parse_opt_id<T: From<Uuid>>(field: &'static str, id: Option<&ID>) -> AppResult<Option<T>> {
    id.map(|id| parse_id(field, id).map(T::from)).transpose()
}

/// A nullable field of an update: `None` keeps it, `Some(None)` clears it (`null`),
/// `Some(Some(_))` sets it.
pub fn nullable_change(value: &MaybeUndefined<String>) -> Option<Option<&str>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(text) => Some(Some(text.as_str())),
    }
}
