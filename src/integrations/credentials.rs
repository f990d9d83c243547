//! Provider credentials: an organization's own secrets for third-party providers (its AI
//! provider's API key), stored encrypted, never readable back through the API.

use chrono::Utc;
use entity::provider_credential;
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use secrecy::SecretString;
use uuid::Uuid;

use super::crypto::{Binding, Keyring};
use crate::error::{AppError, AppResult};
use crate::tenancy::Scoped;

const TABLE: &str = "provider_credentials";
const COLUMN: &str = "secret";
const MAX_SECRET_CHARS: usize = 4_096;

pub fn binding(organization: Uuid) -> Binding<'static> {
    Binding {
        organization,
        table: TABLE,
        column: COLUMN,
    }
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

/// Stores (or replaces) the organization's secret for `provider`.
pub async fn set(
    scoped: &Scoped,
    keyring: &Keyring,
    provider: &str,
    secret: &str,
) -> AppResult<provider_credential::Model> {
    let provider = provider_name(provider)?;
    let secret = secret.trim();
    let length = secret.chars().count();
    if length == 0 || length > MAX_SECRET_CHARS {
        return Err(AppError::bad_input(
            "secret",
            format!("1 to {MAX_SECRET_CHARS} characters"),
        ));
    }
    let org = scoped.context().org.0;
    let sealed = keyring.encrypt(secret, binding(org))?;
    let last_four: String = secret.chars().skip(length.saturating_sub(4)).collect();
    let now = Utc::now();
    match find(scoped, &provider).await? {
        Some(existing) => {
            let mut credential = existing.into_active_model();
            credential.secret = Set(sealed);
            credential.last_four = Set(last_four);
            credential.updated_at = Set(now);
            scoped.update(credential, "provider credential").await
        }
        None => {
            let credential = provider_credential::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(org),
                provider: Set(provider),
                secret: Set(sealed),
                last_four: Set(last_four),
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

/// The organization's secret for `provider`, for a runner about to call it.
pub async fn reveal(scoped: &Scoped, keyring: &Keyring, provider: &str) -> AppResult<Option<SecretString>> {
    let Some(credential) = find(scoped, &provider_name(provider)?).await? else {
        return Ok(None);
    };
    keyring
        .decrypt(&credential.secret, binding(scoped.context().org.0))
        .map(Some)
}

async fn find(scoped: &Scoped, provider: &str) -> AppResult<Option<provider_credential::Model>> {
    scoped
        .one(
            scoped
                .select::<provider_credential::Entity>()
                .filter(provider_credential::Column::Provider.eq(provider)),
        )
        .await
}
