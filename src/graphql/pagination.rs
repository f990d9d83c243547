//! Relay connections over keyset pages: opaque cursors wrapping the last row's id.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::tenancy::{Page, PageRequest, Scoped, Tenant};

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

pub type Conn<T> = Connection<String, T>;

fn encode_cursor(id: Uuid) -> String {
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

/// A page size the client asked for (`default` when it did not), as a row count.
pub fn page_size(first: Option<i32>, default: i32) -> AppResult<u64> {
    let first = first.unwrap_or(default);
    if !(1..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(first as u64)
}

/// A list field's `first` and `after`, checked, and the connection made of the page they
/// asked for.
pub struct Paging {
    pub request: PageRequest,
    after_given: bool,
}

impl Paging {
    pub fn new(first: Option<i32>, after: Option<&str>) -> AppResult<Self> {
        Ok(Self {
            request: PageRequest {
                first: page_size(first, DEFAULT_PAGE_SIZE)?,
                after: after.map(decode_cursor).transpose()?,
            },
            after_given: after.is_some(),
        })
    }

    /// The page's rows as views, each with its id as cursor.
    pub fn connection<M, T: OutputType + From<M>>(
        &self,
        page: Page<M>,
        id_of: impl Fn(&M) -> Uuid,
    ) -> Conn<T> {
        let mut connection = Connection::new(self.after_given, page.has_next_page);
        connection.edges.extend(
            page.items
                .into_iter()
                .map(|item| Edge::new(encode_cursor(id_of(&item)), T::from(item))),
        );
        connection
    }

    /// The page of the tenant's rows that `list` reads, as a connection.
    pub async fn read<M, T: OutputType + From<M>>(
        self,
        tenant: &Tenant,
        id_of: impl Fn(&M) -> Uuid,
        list: impl for<'s> AsyncFnOnce(&'s Scoped, PageRequest) -> AppResult<Page<M>>,
    ) -> Result<Conn<T>> {
        let request = self.request;
        let page = tenant.read(async |scoped| list(scoped, request).await).await?;
        Ok(self.connection(page, id_of))
    }
}
