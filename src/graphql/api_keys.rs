//! API keys of the active organization; the secret is shown once, at creation.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::api_key;

use crate::domain::api_keys::{self, NewApiKey};
use crate::graphql::arguments::{parse_id, parse_opt_id};
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::organizations::OrgRole;
use crate::ids::{ApiKeyId, OrgId};

#[derive(SimpleObject)]
pub struct ApiKey {
    id: ID,
    name: String,
    /// The public part of the key (`tql_<prefix>_…`), to tell keys apart.
    prefix: String,
    role: OrgRole,
    /// The one project this key may reach; none means the whole organization.
    project_id: Option<ID>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    /// Whether the key may run only trusted documents.
    persisted_only: bool,
}

impl From<api_key::Model> for ApiKey {
    fn from(key: api_key::Model) -> Self {
        Self {
            id: key.id.into(),
            name: key.name,
            prefix: key.prefix,
            role: key.role.into(),
            project_id: key.project_id.map(ID::from),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            persisted_only: key.persisted_only,
        }
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
        let keys = tenant_read(ctx, async |scoped| api_keys::list(scoped).await).await?;
        Ok(keys.into_iter().map(ApiKey::from).collect())
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
        let (key, plaintext) =
            tenant_write(ctx, async |scoped| api_keys::create(scoped, input).await).await?;
        Ok(CreatedApiKey {
            key: plaintext,
            api_key: key.into(),
        })
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let id = ApiKeyId(parse_id("id", &id)?);
        let key = tenant_write(ctx, async |scoped| api_keys::revoke(scoped, id).await).await?;
        ctx.services()
            .access_changed(OrgId(key.organization_id), std::slice::from_ref(&key));
        Ok(key.into())
    }
}
