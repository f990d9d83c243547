//! Provider credentials (write-only secrets) and chat-bot pairing.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{chat_pairing, integration, provider_credential};

use crate::error::AppError;
use crate::graphql::arguments::parse_id;
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::guards::{OrgRoleGuard, OrganizationWideGuard, UserGuard};
use crate::ids::ProjectId;
use crate::integrations::{credentials, oauth, pairing};
use crate::tenancy::Actor;

// An organization's secret for a provider, with the endpoint it is sent to.
#[derive(SimpleObject)]
pub struct ProviderCredential {
    id: ID,
    provider: String,
    /// The secret's last four characters, to tell credentials apart; the rest is never shown.
    last_four: String,
    /// Where the secret is sent: the organization's own `baseUrl`, or the server's endpoint
    /// for the provider; none when the server no longer lists the provider (set it again
    /// with a `baseUrl`).
    base_url: Option<String>,
    /// Whether the endpoint is the organization's own rather than the server's.
    own_endpoint: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ProviderCredential {
    fn new(ctx: &Context<'_>, model: provider_credential::Model) -> Self {
        let endpoint = credentials::endpoint(&model, &ctx.services().jobs.toolbox.llm_providers);
        Self {
            id: model.id.into(),
            provider: model.provider,
            last_four: model.last_four,
            base_url: endpoint,
            own_endpoint: model.base_url.is_some(),
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct SetProviderCredentialInput {
    /// e.g. `openai`.
    pub provider: String,
    pub secret: String,
    /// The OpenAI-compatible endpoint the secret may be sent to, e.g.
    /// `https://api.openai.com/v1`; without it, the server's endpoint for the provider (a
    /// provider the server does not list needs one). Agents cannot choose where it goes.
    pub base_url: Option<String>,
}

#[derive(SimpleObject)]
pub struct PairingCode {
    /// Six digits, shown once; give it to the bot within 15 minutes.
    pub code: String,
    pub project_id: ID,
    pub expires_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct ChatPairing {
    id: ID,
    organization_id: ID,
    project_id: ID,
    platform: String,
    chat_id: String,
    created_at: DateTime<Utc>,
}

impl From<chat_pairing::Model> for ChatPairing {
    fn from(pairing: chat_pairing::Model) -> Self {
        Self {
            id: pairing.id.into(),
            organization_id: pairing.organization_id.into(),
            project_id: pairing.project_id.into(),
            platform: pairing.platform,
            chat_id: pairing.chat_id,
            created_at: pairing.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct PairChatInput {
    pub code: String,
    pub chat_id: String,
    /// telegram, slack, discord, whatsapp, teams or other.
    pub platform: String,
}

#[derive(SimpleObject)]
pub struct OAuthStart {
    /// The provider's authorize URL (state and PKCE): send the browser that called
    /// `startOAuth` there. The provider brings it back to this server's callback, which
    /// completes only with the cookie that call set; a consent given in another browser is
    /// refused.
    pub authorize_url: String,
    pub expires_at: DateTime<Utc>,
}

// A third-party account connected through OAuth2 (its tokens are never shown).
#[derive(SimpleObject)]
pub struct Integration {
    id: ID,
    provider: String,
    /// As granted by the provider, space-separated.
    scopes: String,
    /// When the access token expires (it is refreshed when a job needs it).
    expires_at: Option<DateTime<Utc>>,
    connected_by: ID,
    connected_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<integration::Model> for Integration {
    fn from(integration: integration::Model) -> Self {
        Self {
            id: integration.id.into(),
            provider: integration.provider,
            scopes: integration.scopes,
            expires_at: integration.expires_at,
            connected_by: integration.connected_by.into(),
            connected_at: integration.created_at,
            updated_at: integration.updated_at,
        }
    }
}

/// A file of the organization's workspace.
#[derive(SimpleObject)]
pub struct WorkspaceFile {
    /// Relative to the workspace, e.g. `jobs/<job id>/output.json`.
    pub path: String,
    pub size: u64,
    pub modified_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct IntegrationQuery;

#[Object]
impl IntegrationQuery {
    /// The organization's provider credentials (never their secrets).
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn provider_credentials(&self, ctx: &Context<'_>) -> Result<Vec<ProviderCredential>> {
        let list = tenant_read(ctx, async |scoped| credentials::list(scoped).await).await?;
        Ok(list
            .into_iter()
            .map(|model| ProviderCredential::new(ctx, model))
            .collect())
    }

    /// The organization's connected third-party accounts.
    #[graphql(guard = "OrganizationWideGuard")]
    async fn integrations(&self, ctx: &Context<'_>) -> Result<Vec<Integration>> {
        let list = tenant_read(ctx, async |scoped| oauth::list(scoped).await).await?;
        Ok(list.into_iter().map(Integration::from).collect())
    }

    /// Files of the organization's workspace under `prefix` (all by default), by path.
    #[graphql(guard = "OrganizationWideGuard")]
    async fn workspace_files(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] prefix: String,
    ) -> Result<Vec<WorkspaceFile>> {
        let org = ctx.tenant()?.context().org.0;
        let files = ctx.services().workspaces.list(org, &prefix).await?;
        Ok(files
            .into_iter()
            .map(|file| WorkspaceFile {
                path: file.path,
                size: file.size,
                modified_at: file.modified_at,
            })
            .collect())
    }

    /// A workspace file's contents, base64-encoded.
    #[graphql(guard = "OrganizationWideGuard")]
    async fn workspace_file_base64(&self, ctx: &Context<'_>, path: String) -> Result<String> {
        use base64::Engine;
        let org = ctx.tenant()?.context().org.0;
        let contents = ctx.services().workspaces.read(org, &path).await?;
        Ok(base64::engine::general_purpose::STANDARD.encode(contents))
    }

    /// The chats paired with a project.
    async fn chat_pairings(&self, ctx: &Context<'_>, project_id: ID) -> Result<Vec<ChatPairing>> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let list = tenant_read(ctx, async |scoped| pairing::pairings(scoped, project).await).await?;
        Ok(list.into_iter().map(ChatPairing::from).collect())
    }
}

#[derive(Default)]
pub struct IntegrationMutation;

#[Object]
impl IntegrationMutation {
    /// Stores the organization's secret for a provider, encrypted; replaces any earlier one.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn set_provider_credential(
        &self,
        ctx: &Context<'_>,
        input: SetProviderCredentialInput,
    ) -> Result<ProviderCredential> {
        let keyring = ctx.services().keyring.clone();
        let endpoints = &ctx.services().jobs.toolbox.llm_providers;
        let new = credentials::NewCredential {
            provider: &input.provider,
            secret: &input.secret,
            base_url: input.base_url.as_deref(),
        };
        let credential = tenant_write(ctx, async |scoped| {
            credentials::set(scoped, &keyring, endpoints, new).await
        })
        .await?;
        Ok(ProviderCredential::new(ctx, credential))
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn delete_provider_credential(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let credential = parse_id("id", &id)?;
        tenant_write(ctx, async |scoped| credentials::delete(scoped, credential).await).await?;
        Ok(id)
    }

    /// Starts connecting a third-party account: returns the provider's authorize URL (with
    /// state and PKCE), valid ten minutes and usable once, and sets an HttpOnly cookie that
    /// binds it to the calling browser. Call it over HTTP from that browser (or a server
    /// that passes the `Set-Cookie` on); a websocket carries no cookie.
    #[graphql(
        name = "startOAuth",
        guard = "OrgRoleGuard(entity::OrgRole::Admin).and(UserGuard)"
    )]
    async fn start_oauth(&self, ctx: &Context<'_>, provider: String) -> Result<OAuthStart> {
        let user = ctx.user()?.id;
        let oauth = ctx.services().oauth.clone();
        let started = tenant_write(ctx, async |scoped| oauth.start(scoped, user, &provider).await).await?;
        // The callback completes only in the browser holding this cookie: the caller's, not
        // whoever the authorize URL is sent on to. `http::graphql` passes it to the response.
        ctx.append_http_header("set-cookie", started.cookie);
        Ok(OAuthStart {
            authorize_url: started.authorize_url,
            expires_at: started.expires_at,
        })
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn disconnect_integration(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let integration = parse_id("id", &id)?;
        tenant_write(ctx, async |scoped| oauth::disconnect(scoped, integration).await).await?;
        Ok(id)
    }

    /// A single-use code that pairs a chat with this project, for its bot to present.
    #[graphql(guard = "OrganizationWideGuard")]
    async fn create_pairing_code(&self, ctx: &Context<'_>, project_id: ID) -> Result<PairingCode> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let (row, code) =
            tenant_write(ctx, async |scoped| pairing::create_code(scoped, project).await).await?;
        Ok(PairingCode {
            code,
            project_id: ID(row.project_id.to_string()),
            expires_at: row.expires_at,
        })
    }

    /// Pairs the calling bot's chat with the project of a pairing code. Tries are limited
    /// per API key and per client address.
    async fn pair_chat(&self, ctx: &Context<'_>, input: PairChatInput) -> Result<ChatPairing> {
        let tenant = ctx.tenant()?;
        let Actor::ApiKey { id: key, .. } = tenant.context().actor else {
            return Err(AppError::forbidden("pairing is done by a bot, with its API key").into());
        };
        let ip = ctx.request()?.client().ip.clone();
        ctx.services()
            .rate_limits
            .charge_pairing_attempt(key.0, ip.as_deref())
            .await?;
        let request = pairing::PairRequest {
            code: &input.code,
            chat_id: &input.chat_id,
            platform: &input.platform,
        };
        let paired = tenant
            .write(async |scoped| pairing::pair(scoped, request, Utc::now()).await)
            .await?;
        Ok(paired.into())
    }
}
