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
    let mut query = query.order_by_desc(E::id_column()).limit(page.first + 1);
    if let Some(after) = page.after {
        query = query.filter(E::id_column().lt(after));
    }
    let mut items = query.all(conn).await?;
    let has_next_page = items.len() as u64 > page.first;
    items.truncate(page.first as usize);
    Ok(Page { items, has_next_page })
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
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
        }
    }
}
