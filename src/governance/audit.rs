//! Reading the audit trail: the organization's rows, filtered and paged. The rows are
//! written by the tenant transaction itself (`tenancy::audit`).

use chrono::{DateTime, Utc};
use entity::audit_entry;
use sea_orm::{ColumnTrait, QueryFilter};
use uuid::Uuid;

use crate::error::AppResult;
use crate::tenancy::{Page, PageRequest, Scoped};

/// What `auditLog` narrows the trail to; every part optional.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub resource_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// The organization's trail, newest first.
pub async fn list(
    scoped: &Scoped,
    filter: AuditFilter,
    page: PageRequest,
) -> AppResult<Page<audit_entry::Model>> {
    let mut query = scoped.select::<audit_entry::Entity>();
    if let Some(action) = filter.action {
        query = query.filter(audit_entry::Column::Action.eq(action));
    }
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_entry::Column::ActorId.eq(actor));
    }
    if let Some(resource_type) = filter.resource_type {
        query = query.filter(audit_entry::Column::ResourceType.eq(resource_type));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_entry::Column::CreatedAt.gte(since));
    }
    scoped.page(query, page).await
}
