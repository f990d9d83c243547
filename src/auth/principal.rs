//! Who is calling: a person with an access token, or a bot with an API key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{OrgRole, Plan, api_key, organization};

use crate::auth::api_key as key_format;
use crate::auth::jwt::JwtKeys;
use crate::auth::secret_token::constant_time_eq;
use crate::error::{AppError, AppResult};
use crate::ids::{ApiKeyId, OrgId, ProjectId, SessionFamilyId, UserId};
use crate::tenancy::{Db, unscoped};

#[derive(Debug, Clone)]
pub enum Principal {
    User(UserPrincipal),
    ApiKey(ApiKeyPrincipal),
}

#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub id: UserId,
    pub session_family: SessionFamilyId,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyPrincipal {
    pub id: ApiKeyId,
    pub org: OrgId,
    pub org_slug: String,
    pub org_plan: Plan,
    pub project: Option<ProjectId>,
    pub role: OrgRole,
    pub created_by: UserId,
    /// May run only trusted documents.
    pub persisted_only: bool,
}

/// How long a looked-up API key is reused without asking the database again.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(5);
const API_KEY_CACHE_CAPACITY: usize = 10_000;

type CachedKey = (Instant, api_key::Model, organization::Model);

/// API key rows by prefix for a few seconds, so a busy bot's requests skip a database round
/// trip. Revoking a key forgets it here at once; other replicas stop accepting it within
/// [`API_KEY_CACHE_TTL`]. Validity (secret, revocation, expiry) is still checked every time.
#[derive(Default)]
pub struct ApiKeyCache {
    entries: Mutex<HashMap<String, CachedKey>>,
}

impl ApiKeyCache {
    async fn find(&self, db: &Db, prefix: &str) -> AppResult<Option<(api_key::Model, organization::Model)>> {
        if let Some((at, key, org)) = self.lock().get(prefix)
            && at.elapsed() < API_KEY_CACHE_TTL
        {
            return Ok(Some((key.clone(), org.clone())));
        }
        let found = unscoped::find_api_key(db, prefix).await?;
        if let Some((key, org)) = &found {
            let mut entries = self.lock();
            if entries.len() >= API_KEY_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(prefix.to_owned(), (Instant::now(), key.clone(), org.clone()));
        }
        Ok(found)
    }

    pub fn forget(&self, prefix: &str) {
        self.lock().remove(prefix);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedKey>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Checks a presented bearer credential. Every failure is the same `UNAUTHENTICATED`, so a
/// caller cannot tell an unknown key from an expired or revoked one.
pub async fn authenticate(
    db: &Db,
    jwt: &JwtKeys,
    api_keys: &ApiKeyCache,
    credential: &str,
) -> AppResult<Principal> {
    if !key_format::looks_like_api_key(credential) {
        let claims = jwt.verify(credential)?;
        return Ok(Principal::User(UserPrincipal {
            id: claims.user,
            session_family: claims.session_family,
            expires_at: claims.expires_at,
        }));
    }
    let (prefix, secret_hash) = key_format::parse(credential).ok_or(AppError::Unauthenticated)?;
    let (key, org) = api_keys
        .find(db, prefix)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = Utc::now();
    let usable = constant_time_eq(&key.secret_hash, &secret_hash)
        && key.revoked_at.is_none()
        && key.expires_at.is_none_or(|expires_at| expires_at > now);
    if !usable {
        return Err(AppError::Unauthenticated);
    }
    Ok(Principal::ApiKey(ApiKeyPrincipal {
        id: ApiKeyId(key.id),
        org: OrgId(org.id),
        org_slug: org.slug,
        org_plan: org.plan,
        project: key.project_id.map(ProjectId),
        role: key.role,
        created_by: UserId(key.created_by),
        persisted_only: key.persisted_only,
    }))
}
