//! Who is calling: a person with an access token, or a bot with an API key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{OrgRole, Plan, api_key, organization};

use crate::auth::api_key as key_format;
use crate::auth::cache::TtlCache;
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
    /// When the key stops working; its live streams end then too.
    pub expires_at: Option<DateTime<Utc>>,
}

/// How long a looked-up API key (or the absence of one) is reused without asking the
/// database again.
pub const API_KEY_CACHE_TTL: Duration = Duration::from_secs(5);
const API_KEY_CACHE_CAPACITY: usize = 10_000;

/// A key's row, its organization, and its creator's current role there (`None` once they
/// are no longer a member).
type FoundKey = (api_key::Model, organization::Model, Option<OrgRole>);

/// API key rows by prefix for a few seconds, so a busy bot's requests skip a database round
/// trip, and unknown prefixes likewise. Least recently used entries make room, so a flood
/// of made-up prefixes cannot push out the keys in use. Revoking a key forgets it here at
/// once; other replicas stop accepting it within [`API_KEY_CACHE_TTL`], and streams
/// re-check with [`Lookup::Fresh`]. Validity (secret, revocation, expiry) is still checked
/// every time.
pub struct ApiKeyCache(TtlCache<String, Option<FoundKey>>);

impl Default for ApiKeyCache {
    fn default() -> Self {
        Self(TtlCache::new(API_KEY_CACHE_CAPACITY, API_KEY_CACHE_TTL))
    }
}

/// Whether an API key may be taken from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Cached,
    /// From the database: for re-checks after a notice that access changed.
    Fresh,
}

impl ApiKeyCache {
    async fn find(&self, db: &Db, prefix: &str, lookup: Lookup) -> AppResult<Option<FoundKey>> {
        if lookup == Lookup::Cached
            && let Some(found) = self.0.get(prefix)
        {
            return Ok(found);
        }
        self.0
            .read(prefix.to_owned(), unscoped::api_keys::find_api_key(db, prefix))
            .await
    }

    pub fn forget(&self, prefix: &str) {
        self.0.forget_key(prefix);
    }
}

/// Checks a presented bearer credential. Every failure is the same `UNAUTHENTICATED`, so a
/// caller cannot tell an unknown key from an expired or revoked one. A key acts at most
/// with its creator's current role, and not at all once they have left the organization
/// (removing or demoting a member also revokes or caps their keys; this holds for keys
/// made before that rule, too).
pub async fn authenticate(
    db: &Db,
    jwt: &JwtKeys,
    api_keys: &ApiKeyCache,
    credential: &str,
    lookup: Lookup,
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
    let (key, org, creator_role) = api_keys
        .find(db, prefix, lookup)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = Utc::now();
    let usable = constant_time_eq(&key.secret_hash, &secret_hash)
        && key.revoked_at.is_none()
        && key.expires_at.is_none_or(|expires_at| expires_at > now);
    let Some(creator_role) = creator_role.filter(|_| usable) else {
        return Err(AppError::Unauthenticated);
    };
    Ok(Principal::ApiKey(ApiKeyPrincipal {
        id: ApiKeyId(key.id),
        org: OrgId(org.id),
        org_slug: org.slug,
        org_plan: org.plan,
        project: key.project_id.map(ProjectId),
        role: key.role.min(creator_role),
        created_by: UserId(key.created_by),
        persisted_only: key.persisted_only,
        expires_at: key.expires_at,
    }))
}
