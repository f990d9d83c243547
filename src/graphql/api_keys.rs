//! API keys of the active organization; the secret is shown once, at creation.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::api_key;

use crate::domain::api_keys::{self, NewApiKey};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::organizations::OrgRole;
use crate::graphql::pagination::{parse_id, parse_opt_id};
use crate::ids::{ApiKeyId, OrgId};

pub struct ApiKey(pub api_key::Model);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The public part of the key (`tql_<prefix>_…`), to tell keys apart.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    async fn role(&self) -> OrgRole {
        self.0.role.into()
    }

    /// The one project this key may reach; none means the whole organization.
    async fn project_id(&self) -> Option<ID> {
        self.0.project_id.map(|id| ID(id.to_string()))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }

    /// Whether the key may run only trusted documents.
    async fn persisted_only(&self) -> bool {
        self.0.persisted_only
    }
}

#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// The full key. It is not stored and cannot be shown again.
    pub key: String,
    pub api_key: ApiKey,
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// Restricts the key to one project.
    pub project_id: Option<ID>,
    /// At most the creator's own role; never OWNER.
    pub role: OrgRole,
    pub expires_at: Option<DateTime<Utc>>,
    /// The key may run only trusted documents, sent by hash.
    #[graphql(default = false)]
    pub persisted_only: bool,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The organization's API keys, newest first; secrets are never returned.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        let keys = ctx
            .tenant()?
            .read(async |scoped| api_keys::list(scoped).await)
            .await?;
        Ok(keys.into_iter().map(ApiKey).collect())
    }
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn create_api_key(&self, ctx: &Context<'_>, input: CreateApiKeyInput) -> Result<CreatedApiKey> {
        let project = parse_opt_id("projectId", input.project_id.as_ref())?;
        let input = NewApiKey {
            name: &input.name,
            project,
            role: input.role.into(),
            expires_at: input.expires_at,
            persisted_only: input.persisted_only,
        };
        let (key, plaintext) = ctx
            .tenant()?
            .write(async |scoped| api_keys::create(scoped, input).await)
            .await?;
        Ok(CreatedApiKey {
            key: plaintext,
            api_key: ApiKey(key),
        })
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let id = ApiKeyId(parse_id("id", &id)?);
        let key = ctx
            .tenant()?
            .write(async |scoped| api_keys::revoke(scoped, id).await)
            .await?;
        ctx.services()
            .access_changed(OrgId(key.organization_id), std::slice::from_ref(&key));
        Ok(ApiKey(key))
    }
}
