//! Provider credentials: an organization's own secrets for third-party providers (its AI
//! provider's API key), stored encrypted, never readable back through the API. A credential
//! is sent only to its endpoint: the one its organization gave, or the operator's for its
//! provider (`LLM_PROVIDERS`); never to an address an agent names.

use std::collections::BTreeMap;

use chrono::Utc;
use entity::provider_credential;
use sea_orm::{ActiveValue::Set, IntoActiveModel};
use secrecy::SecretString;
use uuid::Uuid;

use super::crypto::{Binding, Keyring};
use super::keys;
use crate::error::{AppError, AppResult};
use crate::input::setting_entries;
use crate::tenancy::Scoped;
use crate::tenancy::sealed::PROVIDER_SECRET;

const MAX_SECRET_CHARS: usize = 4_096;
const MAX_URL_CHARS: usize = 2_048;

/// The operator's approved providers and their endpoints (`LLM_PROVIDERS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderEndpoints(BTreeMap<String, String>);

impl ProviderEndpoints {
    pub const DEFAULT: &str = "openai=https://api.openai.com/v1,mistral=https://api.mistral.ai/v1,\
groq=https://api.groq.com/openai/v1,openrouter=https://openrouter.ai/api/v1";

    /// `name=base-url[,…]`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut endpoints = BTreeMap::new();
        for (name, url) in setting_entries(spec, '=', "LLM_PROVIDERS entries are name=base-url")? {
            let name = provider_name(name)
                .map_err(|_| anyhow::anyhow!("LLM_PROVIDERS: {name:?} is not a provider name"))?;
            let url = base_url(url).map_err(|message| anyhow::anyhow!("LLM_PROVIDERS: {name}: {message}"))?;
            endpoints.insert(name, url);
        }
        Ok(Self(endpoints))
    }

    pub fn get(&self, provider: &str) -> Option<&str> {
        self.0.get(provider).map(String::as_str)
    }
}

/// Where a credential is sent: its own endpoint, else the operator's for its provider.
pub fn endpoint(credential: &provider_credential::Model, endpoints: &ProviderEndpoints) -> Option<String> {
    credential
        .base_url
        .clone()
        .or_else(|| endpoints.get(&credential.provider).map(str::to_owned))
}

/// An endpoint as stored: an http(s) URL with a host, no user, query or fragment, and no
/// trailing `/`.
pub fn base_url(url: &str) -> Result<String, &'static str> {
    let url = url.trim();
    if url.len() > MAX_URL_CHARS {
        return Err("at most 2048 characters");
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL")?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("must be an http(s) URL such as https://api.openai.com/v1");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user or password");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("must not carry a query or fragment");
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Where a credential's secret belongs: its organization's row `row`.
pub fn binding(organization: Uuid, row: Uuid) -> Binding<'static> {
    keys::binding(PROVIDER_SECRET, organization, row)
}

/// A provider's name as stored: lowercase letters, digits, `-` and `_`.
fn provider_name(provider: &str) -> AppResult<String> {
    let provider = provider.trim().to_ascii_lowercase();
    let valid = (1..=64).contains(&provider.len())
        && provider
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(AppError::bad_input(
            "provider",
            "1 to 64 letters, digits, - or _ (e.g. openai)",
        ));
    }
    Ok(provider)
}

pub async fn list(scoped: &Scoped) -> AppResult<Vec<provider_credential::Model>> {
    scoped.all(scoped.select::<provider_credential::Entity>()).await
}

/// What `setProviderCredential` stores.
pub struct NewCredential<'a> {
    pub provider: &'a str,
    pub secret: &'a str,
    /// Where the secret may be sent; without it, the operator's endpoint for the provider.
    pub base_url: Option<&'a str>,
}

/// Stores (or replaces) the organization's secret for `provider`, with its endpoint.
pub async fn set(
    scoped: &Scoped,
    keyring: &Keyring,
    endpoints: &ProviderEndpoints,
    new: NewCredential<'_>,
) -> AppResult<provider_credential::Model> {
    let provider = provider_name(new.provider)?;
    let secret = new.secret;
    let base_url = new
        .base_url
        .map(|url| base_url(url).map_err(|message| AppError::bad_input("baseUrl", message)))
        .transpose()?;
    if base_url.is_none() && endpoints.get(&provider).is_none() {
        return Err(AppError::bad_input(
            "baseUrl",
            format!(
                "{provider} is not a provider this server knows: give the endpoint its credential is sent to"
            ),
        ));
    }
    let secret = secret.trim();
    let length = secret.chars().count();
    if length == 0 || length > MAX_SECRET_CHARS {
        return Err(AppError::bad_input(
            "secret",
            format!("1 to {MAX_SECRET_CHARS} characters"),
        ));
    }
    let org = scoped.context().org.0;
    let last_four: String = secret.chars().skip(length.saturating_sub(4)).collect();
    let now = Utc::now();
    match find(scoped, &provider).await? {
        Some(existing) => {
            let sealed = keyring.encrypt(secret, binding(org, existing.id))?;
            let mut credential = existing.into_active_model();
            credential.secret = Set(sealed);
            credential.last_four = Set(last_four);
            credential.base_url = Set(base_url);
            credential.updated_at = Set(now);
            scoped.update(credential, "provider credential").await
        }
        None => {
            // The id first: the secret is sealed to the row it goes into.
            let id = Uuid::now_v7();
            let credential = provider_credential::ActiveModel {
                id: Set(id),
                organization_id: Set(org),
                provider: Set(provider),
                secret: Set(keyring.encrypt(secret, binding(org, id))?),
                last_four: Set(last_four),
                base_url: Set(base_url),
                created_by: Set(scoped.context().actor.accountable_user().0),
                created_at: Set(now),
                updated_at: Set(now),
            };
            scoped.insert(credential).await
        }
    }
}

pub async fn delete(scoped: &Scoped, id: Uuid) -> AppResult<()> {
    scoped
        .delete::<provider_credential::Entity>(id, "provider credential")
        .await
}

/// The organization's secret for `provider` and the endpoint it may be sent to (`None`
/// when it has none: the operator no longer lists its provider), for a runner about to
/// call it.
pub async fn reveal(
    scoped: &Scoped,
    keyring: &Keyring,
    endpoints: &ProviderEndpoints,
    provider: &str,
) -> AppResult<Option<(SecretString, Option<String>)>> {
    let Some(credential) = find(scoped, &provider_name(provider)?).await? else {
        return Ok(None);
    };
    let secret = keyring.decrypt(&credential.secret, binding(scoped.context().org.0, credential.id))?;
    Ok(Some((secret, endpoint(&credential, endpoints))))
}

async fn find(scoped: &Scoped, provider: &str) -> AppResult<Option<provider_credential::Model>> {
    scoped
        .find_by(provider_credential::Column::Provider, provider)
        .await
}
