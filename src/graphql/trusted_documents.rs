//! Trusted documents: what the organization's persisted-only API keys may run.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::trusted_document;

use crate::governance::persisted;
use crate::graphql::context::ContextExt;
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, connection, list_cost, page_request, parse_id};

pub struct TrustedDocument(trusted_document::Model);

#[Object]
impl TrustedDocument {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What clients send as `extensions.persistedQuery.sha256Hash`.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }

    async fn query(&self) -> &str {
        &self.0.query
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
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
        let page = page_request(first, after.as_deref())?;
        let page = ctx
            .tenant()?
            .read(async |scoped| persisted::list(scoped, page).await)
            .await?;
        Ok(connection(
            page,
            after.is_some(),
            |document| document.id,
            TrustedDocument,
        ))
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
        let document = ctx
            .tenant()?
            .write(async |scoped| persisted::register(scoped, &limits, &input.name, &input.query).await)
            .await?;
        Ok(TrustedDocument(document))
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn delete_trusted_document(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let document = parse_id("id", &id)?;
        ctx.tenant()?
            .write(async |scoped| persisted::remove(scoped, document).await)
            .await?;
        Ok(id)
    }
}
