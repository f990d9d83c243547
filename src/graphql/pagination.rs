//! Relay connections over keyset pages: opaque cursors wrapping the last row's id.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ID, OutputType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::tenancy::{Page, PageRequest};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

pub type Conn<T> = Connection<String, T>;

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> AppResult<Uuid> {
    let invalid = || AppError::bad_input("after", "not a cursor from this list");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    Uuid::from_slice(&bytes).map_err(|_| invalid())
}

/// A list field's complexity: itself, plus its page size times what each item selects.
/// (async-graphql counts a list's selection once whatever its length.)
pub fn list_cost(first: Option<i32>, default: i32, child_complexity: usize) -> usize {
    let items = first.unwrap_or(default).clamp(1, MAX_PAGE_SIZE);
    1 + usize::try_from(items).unwrap_or(1) * child_complexity
}

/// Checks `first` and `after` as the client sent them.
pub fn page_request(first: Option<i32>, after: Option<&str>) -> AppResult<PageRequest> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(PageRequest {
        first: first as u64,
        after: after.map(decode_cursor).transpose()?,
    })
}

/// A connection from a page, with each node's cursor taken from `id_of`.
pub fn connection<M, T: OutputType>(
    page: Page<M>,
    after_given: bool,
    id_of: impl Fn(&M) -> Uuid,
    mut node: impl FnMut(M) -> T,
) -> Conn<T> {
    let mut connection = Connection::new(after_given, page.has_next_page);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(encode_cursor(id_of(&item)), node(item))),
    );
    connection
}

/// A client-sent `ID` as a UUID, or `BAD_USER_INPUT` naming the argument.
pub fn parse_id(field: &'static str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "not a valid id"))
}

/// An optional client-sent `ID` as a typed id, or `BAD_USER_INPUT` naming the argument.
pub fn parse_opt_id<T: From<Uuid>>(field: &'static str, id: Option<&ID>) -> AppResult<Option<T>> {
    id.map(|id| parse_id(field, id).map(T::from)).transpose()
}
