//! API keys of the active organization.

use chrono::{DateTime, Utc};
use entity::{OrgRole, api_key};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, IntoActiveModel, Iterable, QueryFilter, UpdateMany};
use uuid::Uuid;

use crate::auth::api_key::{self as key_format};
use crate::error::{AppError, AppResult};
use crate::ids::{ApiKeyId, ProjectId, UserId};
use crate::input::Name;
use crate::tenancy::{Actor, PageRequest, Scoped};

/// At most this many keys are listed; an organization needing more should revoke old ones.
const LIST_LIMIT: u64 = 500;

pub async fn list(scoped: &Scoped) -> AppResult<Vec<api_key::Model>> {
    let page = scoped
        .page(
            scoped.select::<api_key::Entity>(),
            PageRequest {
                first: LIST_LIMIT,
                after: None,
            },
        )
        .await?;
    Ok(page.items)
}

pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub project: Option<ProjectId>,
    pub role: OrgRole,
    pub expires_at: Option<DateTime<Utc>>,
    pub persisted_only: bool,
}

/// Creates a key no stronger than its creator: not above their role, not outside their
/// project. Only people create keys: a key made by a key would outlive the rule that a
/// key ends with its creator's membership. Returns the row and the plaintext key, which is
/// never stored.
pub async fn create(scoped: &Scoped, input: NewApiKey<'_>) -> AppResult<(api_key::Model, String)> {
    let ctx = scoped.context();
    let Actor::User(creator) = ctx.actor else {
        return Err(AppError::forbidden(
            "API keys are created by people, not by API keys",
        ));
    };
    let name = Name::parse("name", input.name)?;
    if input.role > ctx.role {
        return Err(AppError::forbidden("an API key cannot have a role above yours"));
    }
    if input.role == OrgRole::Owner {
        return Err(AppError::bad_input("role", "API keys cannot be owners"));
    }
    if let Some(project) = input.project {
        scoped.project_role(project).await?;
    }
    let now = Utc::now();
    if input.expires_at.is_some_and(|expires_at| expires_at <= now) {
        return Err(AppError::bad_input("expiresAt", "must be in the future"));
    }
    let generated = key_format::generate();
    let key = api_key::ActiveModel {
        id: Set(ApiKeyId::generate().0),
        organization_id: Set(ctx.org.0),
        project_id: Set(input.project.map(|project| project.0)),
        name: Set(name.into_inner()),
        prefix: Set(generated.prefix),
        secret_hash: Set(generated.secret_hash),
        role: Set(input.role),
        persisted_only: Set(input.persisted_only),
        created_by: Set(creator.0),
        expires_at: Set(input.expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok((scoped.insert(key).await?, generated.plaintext))
}

/// Revokes a key at once; revoking a revoked key changes nothing.
pub async fn revoke(scoped: &Scoped, id: ApiKeyId) -> AppResult<api_key::Model> {
    let key = scoped.get::<api_key::Entity>(id.0, "API key").await?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let mut key = key.into_active_model();
    let now = Utc::now();
    key.revoked_at = Set(Some(now));
    key.updated_at = Set(now);
    scoped.update(key, "API key").await
}

/// Applies `change` to the keys `creator` made that are still in use and match `narrow`,
/// in one statement, noting their ids on the audit row under `note`; returns them.
async fn change_keys_of(
    scoped: &Scoped,
    creator: UserId,
    narrow: Condition,
    change: UpdateMany<api_key::Entity>,
    note: &str,
) -> AppResult<Vec<api_key::Model>> {
    let keys = scoped
        .update_returning(
            change
                .col_expr(api_key::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(api_key::Column::CreatedBy.eq(creator.0))
                .filter(api_key::Column::RevokedAt.is_null())
                .filter(narrow),
        )
        .await?;
    if !keys.is_empty() {
        let ids: Vec<Uuid> = keys.iter().map(|key| key.id).collect();
        scoped.note(note, serde_json::json!(ids));
    }
    Ok(keys)
}

/// Revokes every key `creator` made in this organization (they are leaving it); returns
/// them.
pub async fn revoke_keys_of(scoped: &Scoped, creator: UserId) -> AppResult<Vec<api_key::Model>> {
    let revoke = scoped
        .update_many::<api_key::Entity>()
        .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()));
    change_keys_of(scoped, creator, Condition::all(), revoke, "revokedApiKeys").await
}

/// Lowers to `role` every key `creator` made above it (their role became `role`); returns
/// them.
pub async fn cap_keys_of(scoped: &Scoped, creator: UserId, role: OrgRole) -> AppResult<Vec<api_key::Model>> {
    let above = OrgRole::iter().filter(|other| *other > role);
    let cap = scoped
        .update_many::<api_key::Entity>()
        .col_expr(api_key::Column::Role, Expr::value(role));
    let narrow = Condition::all().add(api_key::Column::Role.is_in(above));
    change_keys_of(scoped, creator, narrow, cap, "cappedApiKeys").await
}
