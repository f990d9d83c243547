//! The audit trail of the active organization, for its admins.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_entry;
use serde_json::Value;

use crate::governance::audit::{self, AuditFilter};
use crate::graphql::arguments::parse_opt_id;
use crate::graphql::context::ContextExt;
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};
use crate::tenancy::Scoped;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::ActorKind")]
pub enum ActorKind {
    User,
    ApiKey,
    Job,
    /// Someone at the server's command line (`tenantql org delete`).
    Operator,
}

#[derive(SimpleObject)]
pub struct AuditEntry {
    id: ID,
    /// The operation that made the change, e.g. `updateProject`.
    action: String,
    actor_kind: ActorKind,
    /// The user, API key or job that acted.
    actor_id: ID,
    /// The changed resource's type, e.g. `Project`.
    resource_type: Option<String>,
    resource_id: Option<ID>,
    /// The resource before the change (secrets redacted); none for creations.
    before: Option<Json<Value>>,
    /// The resource after the change (secrets redacted); none for deletions.
    after: Option<Json<Value>>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<audit_entry::Model> for AuditEntry {
    fn from(entry: audit_entry::Model) -> Self {
        Self {
            id: entry.id.into(),
            action: entry.action,
            actor_kind: entry.actor_kind.into(),
            actor_id: entry.actor_id.into(),
            resource_type: entry.resource_type,
            resource_id: entry.resource_id.map(ID::from),
            before: entry.before.map(Json),
            after: entry.after.map(Json),
            ip: entry.ip,
            user_agent: entry.user_agent,
            request_id: entry.request_id,
            created_at: entry.created_at,
        }
    }
}

#[derive(InputObject, Default)]
pub struct AuditLogFilter {
    pub action: Option<String>,
    pub actor_id: Option<ID>,
    pub resource_type: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Every change made in the active organization, newest first.
    #[graphql(
        guard = "OrgRoleGuard(entity::OrgRole::Admin)",
        complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditLogFilter>,
    ) -> Result<Conn<AuditEntry>> {
        let paging = Paging::new(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = AuditFilter {
            action: filter.action,
            actor_id: parse_opt_id("actorId", filter.actor_id.as_ref())?,
            resource_type: filter.resource_type,
            since: filter.since,
        };
        let list = async |scoped: &Scoped, page| audit::list(scoped, filter, page).await;
        paging.read(&ctx.tenant()?, |entry| entry.id, list).await
    }
}
