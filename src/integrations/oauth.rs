//! OAuth2 connections of third-party accounts (authorization code with PKCE S256). An admin
//! starts one and gets the provider's authorize URL; the state is stored hashed with the
//! organization, the user and a ten-minute expiry, the PKCE verifier encrypted, and the
//! hash of a fresh browser secret that the `startOAuth` response sets as a cookie in the
//! caller's browser. The provider sends the browser back to `/oauth/{provider}/callback`,
//! where the state is claimed once, the cookie checked (a consent given in a browser that
//! did not start the flow lands nowhere), the code exchanged, and the tokens stored
//! encrypted in `integrations`. Token requests go through the egress gate; access tokens
//! are sent by runners only to the provider's configured `apiUrl`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use entity::{OrgRole, integration, oauth_state};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::crypto::{Binding, Keyring};
use super::egress::Gate;
use super::keys::binding;
use crate::auth::secret_token::{constant_time_eq, random_alphanumeric, sha256_hex};
use crate::error::{AppError, AppResult};
use crate::ids::{OrgId, UserId};
use crate::tenancy::audit::Origin;
use crate::tenancy::sealed::{ACCESS_TOKEN, PKCE_VERIFIER, REFRESH_TOKEN};
use crate::tenancy::{Actor, Db, Scoped, Tenant, TenantContext, TenantDb, unscoped};

const STATE_LIFETIME_MINUTES: i64 = 10;

/// One provider, as configured (`OAUTH_PROVIDERS`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    pub authorize_url: String,
    pub token_url: String,
    /// The provider's API, the only place its access tokens are sent (`publish` posts to
    /// paths under it); without it, no runner uses the connection.
    #[serde(default)]
    pub api_url: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `OAUTH_PROVIDERS`: a JSON array of providers.
pub fn parse_providers(json: &str) -> anyhow::Result<Vec<ProviderConfig>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let providers: Vec<ProviderConfig> =
        serde_json::from_str(json).context("OAUTH_PROVIDERS is not a JSON array of providers")?;
    for provider in &providers {
        AuthUrl::new(provider.authorize_url.clone())
            .with_context(|| format!("OAUTH_PROVIDERS: {} has a bad authorizeUrl", provider.name))?;
        TokenUrl::new(provider.token_url.clone())
            .with_context(|| format!("OAUTH_PROVIDERS: {} has a bad tokenUrl", provider.name))?;
        if let Some(api_url) = &provider.api_url {
            super::credentials::base_url(api_url).map_err(|message| {
                anyhow::anyhow!("OAUTH_PROVIDERS: {} has a bad apiUrl: {message}", provider.name)
            })?;
        }
        if provider.name.is_empty()
            || !provider
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!(
                "OAUTH_PROVIDERS: provider names are lowercase letters, digits and - (got {:?})",
                provider.name
            );
        }
    }
    Ok(providers)
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct OAuth {
    providers: HashMap<String, ProviderConfig>,
    /// Where this server is reached from browsers, for the callback URL.
    public_url: String,
    keyring: Arc<Keyring>,
    gate: Arc<Gate>,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

impl OAuth {
    pub fn new(
        providers: Vec<ProviderConfig>,
        public_url: &str,
        keyring: Arc<Keyring>,
        gate: Arc<Gate>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            providers: providers
                .into_iter()
                .map(|provider| (provider.name.clone(), provider))
                .collect(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            keyring,
            gate,
        })
    }

    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// oauth2's HTTP client: the egress gate. Its futures own the gate, so they hold no
    /// borrow a spawned job's future would have to outlive.
    fn http_client(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, super::egress::EgressError>> + Send>,
    > + use<> {
        let gate = self.gate.clone();
        move |request| {
            let gate = gate.clone();
            Box::pin(async move { gate.exchange(request).await })
        }
    }

    /// Where the provider's access tokens may be sent, as configured.
    pub fn api_url(&self, name: &str) -> Option<&str> {
        self.providers.get(name)?.api_url.as_deref()
    }

    fn client(&self, name: &str) -> AppResult<(Client, &ProviderConfig)> {
        let provider = self
            .providers
            .get(name)
            .ok_or_else(|| AppError::bad_input("provider", "no such OAuth provider is configured"))?;
        let redirect = RedirectUrl::new(format!("{}/oauth/{name}/callback", self.public_url))
            .map_err(AppError::internal)?;
        let mut client = BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_auth_uri(AuthUrl::new(provider.authorize_url.clone()).map_err(AppError::internal)?)
            .set_token_uri(TokenUrl::new(provider.token_url.clone()).map_err(AppError::internal)?)
            .set_redirect_uri(redirect);
        if let Some(secret) = &provider.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok((client, provider))
    }

    /// The authorize URL for the organization's admin `user`, valid ten minutes, and the
    /// `Set-Cookie` that binds the flow to the browser the caller's response goes to.
    pub async fn start(&self, scoped: &Scoped, user: UserId, name: &str) -> AppResult<Started> {
        let (client, provider) = self.client(name)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(provider.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        let browser_secret = random_alphanumeric(43);
        let org = scoped.context().org.0;
        let now = Utc::now();
        let expires_at = now + Duration::minutes(STATE_LIFETIME_MINUTES);
        // The id first: the verifier is sealed to the row it goes into.
        let id = Uuid::now_v7();
        let row = oauth_state::ActiveModel {
            id: Set(id),
            organization_id: Set(org),
            user_id: Set(user.0),
            provider: Set(name.to_owned()),
            state_hash: Set(sha256_hex(state.secret())),
            pkce_verifier: Set(self
                .keyring
                .encrypt(verifier.secret(), verifier_binding(org, id))?),
            browser_hash: Set(Some(sha256_hex(&browser_secret))),
            expires_at: Set(expires_at),
            used_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        };
        scoped.insert(row).await?;
        Ok(Started {
            authorize_url: url.to_string(),
            expires_at,
            cookie: self.cookie(name, state.secret(), &browser_secret),
        })
    }

    /// `Set-Cookie` for a flow's browser secret (see [`browser_cookie`]), Secure when
    /// browsers reach the server over https. An empty secret clears it.
    pub fn cookie(&self, provider: &str, state: &str, secret: &str) -> String {
        browser_cookie(provider, state, secret, self.public_url.starts_with("https://"))
    }

    /// Completes a connection from the provider's callback, in the browser that started it
    /// (`browser_secret`, from its cookie). The state is spent first, so a replayed callback,
    /// or one from another browser, finds nothing afterwards; nothing is stored unless the
    /// browser matches and the exchange succeeds. The state is found
    /// across tenants on `db` (the owner's); the connection is written as its tenant on
    /// `tenant_db`.
    pub async fn finish(
        &self,
        db: &Db,
        tenant_db: &TenantDb,
        name: &str,
        callback: Callback,
        browser_secret: Option<&str>,
        origin: Origin,
    ) -> AppResult<integration::Model> {
        let (client, _) = self.client(name)?;
        let unknown =
            || AppError::bad_input("state", "this authorization is unknown, expired or already used");
        let state = callback.state.ok_or_else(unknown)?;
        let pending = unscoped::oauth_states::claim_oauth_state(db, &sha256_hex(&state), name, Utc::now())
            .await?
            .ok_or_else(unknown)?;
        // A consent given in a browser other than the one that called `startOAuth` (someone
        // else's, sent the provider's URL) must not land in the organization that started it.
        let same_browser = match (&pending.browser_hash, browser_secret) {
            (Some(expected), Some(secret)) => constant_time_eq(expected, &sha256_hex(secret)),
            _ => false,
        };
        if !same_browser {
            return Err(AppError::bad_input(
                "browser",
                "this authorization was started in another browser: nothing was connected; start again from the app in this browser",
            ));
        }
        if let Some(error) = callback.error {
            let error: String = error.chars().take(100).collect();
            return Err(AppError::bad_input(
                "error",
                format!("the provider did not authorize: {error}"),
            ));
        }
        let code = callback
            .code
            .ok_or_else(|| AppError::bad_input("code", "the provider sent no authorization code"))?;
        let org = pending.organization_id;
        let verifier = self
            .keyring
            .decrypt(&pending.pkce_verifier, verifier_binding(org, pending.id))?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()))
            .request_async(&self.http_client())
            .await
            .map_err(|error| {
                tracing::warn!(provider = name, error = %error, "OAuth code exchange failed");
                AppError::bad_input("code", "the provider did not accept the authorization")
            })?;
        // Whoever started it must still be an admin of the organization.
        let role = unscoped::accounts::memberships_of(db, UserId(pending.user_id))
            .await?
            .into_iter()
            .find(|(member_of, _)| member_of.id == org)
            .map(|(_, role)| role)
            .filter(|role| *role >= OrgRole::Admin)
            .ok_or_else(|| AppError::forbidden("you are no longer an admin of the organization"))?;
        let tenant = Tenant::new(
            tenant_db.clone(),
            Arc::new(TenantContext {
                actor: Actor::User(UserId(pending.user_id)),
                org: OrgId(org),
                role,
                only_project: None,
            }),
        )
        .audited(origin);
        let tokens = Tokens {
            access: SecretString::from(token.access_token().secret().as_str()),
            refresh: token
                .refresh_token()
                .map(|refresh| SecretString::from(refresh.secret().as_str())),
            expires_at: token
                .expires_in()
                .and_then(|lifetime| Duration::from_std(lifetime).ok())
                .map(|lifetime| Utc::now() + lifetime),
            scopes: token
                .scopes()
                .map(|scopes| {
                    scopes
                        .iter()
                        .map(|scope| scope.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
        };
        tenant
            .write(async |scoped| save(scoped, &self.keyring, name, pending.user_id, tokens).await)
            .await
    }
}

/// A started connection: where to send the browser, until when, and the cookie that must
/// come back with it.
pub struct Started {
    pub authorize_url: String,
    pub expires_at: DateTime<Utc>,
    /// A `Set-Cookie` value for the response to the browser that started the flow.
    pub cookie: String,
}

/// The cookie of one flow, named after its state so that flows started at once in one
/// browser keep their own (the callback knows the state, hence the name). A prefix of the
/// state's hash, so the state itself stays out of cookie jars.
pub fn cookie_name(state: &str) -> String {
    format!("tql_oauth_{}", &sha256_hex(state)[..8])
}

/// `Set-Cookie` for a flow's browser secret: HttpOnly (no script reads it), SameSite=Lax
/// (sent on the provider's top-level redirect back, not on cross-site subrequests), scoped
/// to the provider's callback path, Secure when asked, and kept as long as the state lives.
/// An empty secret clears it.
fn browser_cookie(provider: &str, state: &str, secret: &str, secure: bool) -> String {
    let max_age = if secret.is_empty() {
        0
    } else {
        STATE_LIFETIME_MINUTES * 60
    };
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{}={secret}; Path=/oauth/{provider}/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        cookie_name(state)
    )
}

fn verifier_binding(organization: Uuid, row: Uuid) -> Binding<'static> {
    binding(PKCE_VERIFIER, organization, row)
}

/// What the provider granted, not yet sealed: the row it goes into is known only inside
/// the transaction that writes it.
struct Tokens {
    access: SecretString,
    refresh: Option<SecretString>,
    expires_at: Option<DateTime<Utc>>,
    scopes: String,
}

/// Connects the provider's account, replacing an earlier connection to the same provider;
/// the tokens are sealed to the row they go into.
async fn save(
    scoped: &Scoped,
    keyring: &Keyring,
    provider: &str,
    user: Uuid,
    tokens: Tokens,
) -> AppResult<integration::Model> {
    let now = Utc::now();
    let org = scoped.context().org.0;
    let seal = |row: Uuid| -> AppResult<(String, Option<String>)> {
        let access = keyring.encrypt(tokens.access.expose_secret(), binding(ACCESS_TOKEN, org, row))?;
        let refresh = tokens
            .refresh
            .as_ref()
            .map(|refresh| keyring.encrypt(refresh.expose_secret(), binding(REFRESH_TOKEN, org, row)))
            .transpose()?;
        Ok((access, refresh))
    };
    match find(scoped, provider).await? {
        Some(existing) => {
            let (access, refresh) = seal(existing.id)?;
            let mut row = existing.into_active_model();
            row.access_token = Set(access);
            row.refresh_token = Set(refresh);
            row.expires_at = Set(tokens.expires_at);
            row.scopes = Set(tokens.scopes);
            row.connected_by = Set(user);
            row.updated_at = Set(now);
            scoped.update(row, "integration").await
        }
        None => {
            let id = Uuid::now_v7();
            let (access, refresh) = seal(id)?;
            let row = integration::ActiveModel {
                id: Set(id),
                organization_id: Set(org),
                provider: Set(provider.to_owned()),
                access_token: Set(access),
                refresh_token: Set(refresh),
                expires_at: Set(tokens.expires_at),
                scopes: Set(tokens.scopes),
                connected_by: Set(user),
                created_at: Set(now),
                updated_at: Set(now),
            };
            scoped.insert(row).await
        }
    }
}

impl OAuth {
    /// A connected account's access token for a job, refreshed first when it expires within
    /// a minute (the new tokens are stored, encrypted, in the same transaction).
    pub async fn access_token(&self, scoped: &Scoped, provider: &str) -> AppResult<Option<SecretString>> {
        let Some(row) = find(scoped, provider).await? else {
            return Ok(None);
        };
        let (org, id) = (row.organization_id, row.id);
        let expiring = row
            .expires_at
            .is_some_and(|expires_at| expires_at <= Utc::now() + Duration::seconds(60));
        let refresh = match (&row.refresh_token, expiring) {
            (Some(refresh), true) => self.keyring.decrypt(refresh, binding(REFRESH_TOKEN, org, id))?,
            _ => {
                return self
                    .keyring
                    .decrypt(&row.access_token, binding(ACCESS_TOKEN, org, id))
                    .map(Some);
            }
        };
        let (client, _) = self.client(provider)?;
        let token = client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose_secret().to_owned()))
            .request_async(&self.http_client())
            .await
            .map_err(|error| {
                tracing::warn!(provider, error = %error, "refreshing an OAuth token failed");
                AppError::bad_input(
                    "provider",
                    "the provider did not renew the connection; connect it again",
                )
            })?;
        let access = token.access_token().secret().clone();
        let mut updated = row.into_active_model();
        updated.access_token = Set(self.keyring.encrypt(&access, binding(ACCESS_TOKEN, org, id))?);
        if let Some(refresh) = token.refresh_token() {
            updated.refresh_token = Set(Some(
                self.keyring
                    .encrypt(refresh.secret(), binding(REFRESH_TOKEN, org, id))?,
            ));
        }
        updated.expires_at = Set(token
            .expires_in()
            .and_then(|lifetime| Duration::from_std(lifetime).ok())
            .map(|lifetime| Utc::now() + lifetime));
        updated.updated_at = Set(Utc::now());
        scoped.update(updated, "integration").await?;
        Ok(Some(SecretString::from(access)))
    }
}

async fn find(scoped: &Scoped, provider: &str) -> AppResult<Option<integration::Model>> {
    scoped.find_by(integration::Column::Provider, provider).await
}

pub async fn list(scoped: &Scoped) -> AppResult<Vec<integration::Model>> {
    scoped.all(scoped.select::<integration::Entity>()).await
}

pub async fn disconnect(scoped: &Scoped, id: Uuid) -> AppResult<()> {
    scoped.delete::<integration::Entity>(id, "integration").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_cookie_is_per_flow_http_only_lax_scoped_and_secure_over_https() {
        let name = cookie_name("state-1");
        assert_eq!(name, format!("tql_oauth_{}", &sha256_hex("state-1")[..8]));
        assert_ne!(name, cookie_name("state-2"));
        assert_eq!(
            browser_cookie("fakebook", "state-1", "s3cret", false),
            format!("{name}=s3cret; Path=/oauth/fakebook/; Max-Age=600; HttpOnly; SameSite=Lax")
        );
        assert!(browser_cookie("fakebook", "state-1", "s3cret", true).ends_with("; SameSite=Lax; Secure"));
        assert!(
            browser_cookie("fakebook", "state-1", "", true)
                .starts_with(&format!("{name}=; Path=/oauth/fakebook/; Max-Age=0;"))
        );
    }
}
