//! The audit trail of the active organization, for its admins.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::audit_entry;
use serde_json::Value;

use crate::governance::audit::{self, AuditFilter};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{
    Conn, DEFAULT_PAGE_SIZE, connection, list_cost, page_request, parse_opt_id,
};

pub struct AuditEntry(audit_entry::Model);

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::ActorKind")]
pub enum ActorKind {
    User,
    ApiKey,
    Job,
    /// Someone at the server's command line (`tenantql org delete`).
    Operator,
}

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The operation that made the change, e.g. `updateProject`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    async fn actor_kind(&self) -> ActorKind {
        self.0.actor_kind.into()
    }

    /// The user, API key or job that acted.
    async fn actor_id(&self) -> ID {
        ID(self.0.actor_id.to_string())
    }

    /// The changed resource's type, e.g. `Project`.
    async fn resource_type(&self) -> Option<&str> {
        self.0.resource_type.as_deref()
    }

    async fn resource_id(&self) -> Option<ID> {
        self.0.resource_id.map(|id| ID(id.to_string()))
    }

    /// The resource before the change (secrets redacted); none for creations.
    async fn before(&self) -> Option<Json<Value>> {
        self.0.before.clone().map(Json)
    }

    /// The resource after the change (secrets redacted); none for deletions.
    async fn after(&self) -> Option<Json<Value>> {
        self.0.after.clone().map(Json)
    }

    async fn ip(&self) -> Option<&str> {
        self.0.ip.as_deref()
    }

    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
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
        let page = page_request(first, after.as_deref())?;
        let filter = filter.unwrap_or_default();
        let filter = AuditFilter {
            action: filter.action,
            actor_id: parse_opt_id("actorId", filter.actor_id.as_ref())?,
            resource_type: filter.resource_type,
            since: filter.since,
        };
        let page = ctx
            .tenant()?
            .read(async |scoped| audit::list(scoped, filter, page).await)
            .await?;
        Ok(connection(page, after.is_some(), |entry| entry.id, AuditEntry))
    }
}
