//! Trusted documents: what the organization's persisted-only API keys may run.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::trusted_document;

use crate::governance::persisted;
use crate::graphql::arguments::parse_id;
use crate::graphql::context::{ContextExt, tenant_write};
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};

#[derive(SimpleObject)]
pub struct TrustedDocument {
    id: ID,
    name: String,
    /// What clients send as `extensions.persistedQuery.sha256Hash`.
    sha256: String,
    query: String,
    created_at: DateTime<Utc>,
}

impl From<trusted_document::Model> for TrustedDocument {
    fn from(document: trusted_document::Model) -> Self {
        Self {
            id: document.id.into(),
            name: document.name,
            sha256: document.sha256,
            query: document.query,
            created_at: document.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct RegisterTrustedDocumentInput {
    pub name: String,
    /// The document exactly as clients will hash it.
    pub query: String,
}

#[derive(Default)]
pub struct TrustedDocumentQuery;

#[Object]
impl TrustedDocumentQuery {
    /// Documents the organization's persisted-only API keys may run (besides the server's
    /// manifest), newest first.
    #[graphql(
        guard = "OrgRoleGuard(entity::OrgRole::Admin)",
        complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn trusted_documents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<TrustedDocument>> {
        let paging = Paging::new(first, after.as_deref())?;
        paging
            .read(&ctx.tenant()?, |document| document.id, persisted::list)
            .await
    }
}

#[derive(Default)]
pub struct TrustedDocumentMutation;

#[Object]
impl TrustedDocumentMutation {
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn register_trusted_document(
        &self,
        ctx: &Context<'_>,
        input: RegisterTrustedDocumentInput,
    ) -> Result<TrustedDocument> {
        let limits = ctx.services().persisted.limits();
        let document = tenant_write(ctx, async |scoped| {
            persisted::register(scoped, &limits, &input.name, &input.query).await
        })
        .await?;
        Ok(document.into())
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn delete_trusted_document(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let document = parse_id("id", &id)?;
        tenant_write(ctx, async |scoped| persisted::remove(scoped, document).await).await?;
        Ok(id)
    }
}
