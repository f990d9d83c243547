//! Keyset pagination on time-ordered ids, newest first: tenant lists and the platform's
//! cross-tenant lists page the same way. Ids are UUIDv7, so `(organization_id, id)` is both
//! the tenant index and the list order; a cursor is an id, never a timestamp, and no page
//! counts the rows of its list.

use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use uuid::Uuid;

use super::tables::TenantEntity;
use crate::error::AppResult;

/// One page of `query`, newest first by the time-ordered id, after `page.after`.
pub(super) async fn keyset_page<E: TenantEntity>(
    query: Select<E>,
    page: PageRequest,
    conn: &impl ConnectionTrait,
) -> AppResult<Page<E::Model>> {
    let rows = keyset::<E, _>(query, page).all(conn).await?;
    Ok(Page::of_rows(rows, page))
}

/// `query` (of `E`'s rows, maybe with others joined) ordered newest first by `E`'s id and
/// bounded to one page after `page.after`, plus one row that tells whether more follow.
pub(super) fn keyset<E: TenantEntity, Q: QueryOrder + QuerySelect + QueryFilter>(
    query: Q,
    page: PageRequest,
) -> Q {
    let query = query.order_by_desc(E::id_column()).limit(page.first + 1);
    match page.after {
        Some(after) => query.filter(E::id_column().lt(after)),
        None => query,
    }
}

/// A page request for keyset pagination, newest first.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub first: u64,
    /// The id of the last row the client has seen.
    pub after: Option<Uuid>,
}

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// The page out of the rows a [`keyset`] query read.
    pub(super) fn of_rows(mut rows: Vec<T>, page: PageRequest) -> Self {
        let has_next_page = rows.len() as u64 > page.first;
        rows.truncate(page.first as usize);
        Page {
            items: rows,
            has_next_page,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
        }
    }
}
