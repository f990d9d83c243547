//! Who is calling: a person with an access token, or a bot with an API key.

use chrono::{DateTime, Utc};
use entity::OrgRole;

use crate::auth::api_key;
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
    pub project: Option<ProjectId>,
    pub role: OrgRole,
    pub created_by: UserId,
}

/// Checks a presented bearer credential. Every failure is the same `UNAUTHENTICATED`, so a
/// caller cannot tell an unknown key from an expired or revoked one.
pub async fn authenticate(db: &Db, jwt: &JwtKeys, credential: &str) -> AppResult<Principal> {
    if !api_key::looks_like_api_key(credential) {
        let claims = jwt.verify(credential)?;
        return Ok(Principal::User(UserPrincipal {
            id: claims.user,
            session_family: claims.session_family,
            expires_at: claims.expires_at,
        }));
    }
    let (prefix, secret_hash) = api_key::parse(credential).ok_or(AppError::Unauthenticated)?;
    let (key, org) = unscoped::find_api_key(db, prefix)
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
        project: key.project_id.map(ProjectId),
        role: key.role,
        created_by: UserId(key.created_by),
    }))
}
