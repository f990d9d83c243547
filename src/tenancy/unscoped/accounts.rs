//! Accounts and the organizations they own. A person exists before any tenant (signup)
//! and across them (their memberships, a member list's names), so these read and write
//! users and the first rows of a new organization outside any one tenant.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use std::collections::HashMap;

use chrono::Utc;
use entity::{OrgRole, organization, organization_member, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::sessions::{NewSession, insert_session_in};
use crate::error::{AppResult, duplicate_as};
use crate::ids::{OrgId, UserId};
use crate::tenancy::audit::{self, Change, Origin};
use crate::tenancy::db::Db;
use crate::tenancy::{Access, Actor};

pub async fn find_user(db: &Db, id: UserId) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id.0).one(&db.conn).await?)
}

pub async fn find_user_by_email(db: &Db, email: &str) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&db.conn)
        .await?)
}

/// Users by id, for showing members of the caller's own organization.
pub async fn users_by_ids(db: &Db, ids: Vec<Uuid>) -> AppResult<HashMap<Uuid, user::Model>> {
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(&db.conn)
        .await?;
    Ok(users.into_iter().map(|user| (user.id, user)).collect())
}

pub async fn organization_slug_taken(db: &Db, slug: &str) -> AppResult<bool> {
    let found = organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(&db.conn)
        .await?;
    Ok(found.is_some())
}

/// A user's organizations with the role held in each, oldest membership first.
pub async fn memberships_of(db: &Db, user: UserId) -> AppResult<Vec<(organization::Model, OrgRole)>> {
    let rows = organization_member::Entity::find()
        .filter(organization_member::Column::UserId.eq(user.0))
        .find_also_related(organization::Entity)
        .order_by_asc(organization_member::Column::Id)
        .all(&db.conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(member, org)| org.map(|org| (org, member.role)))
        .collect())
}

pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
}

pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub kind: entity::OrgKind,
    pub plan: entity::Plan,
    pub monthly_budget_cents: i64,
}

/// Signup: the user, their organization, their ownership of it, their first refresh token
/// and the audit row, all or nothing.
pub async fn create_account(
    db: &Db,
    new_user: NewUser,
    new_org: NewOrganization,
    first_session: NewSession,
    origin: &Origin,
) -> AppResult<(user::Model, organization::Model)> {
    let txn = db.begin(Access::Write).await?;
    let now = Utc::now();
    let user = user::ActiveModel {
        id: Set(UserId::generate().0),
        email: Set(new_user.email),
        password_hash: Set(new_user.password_hash),
        display_name: Set(new_user.display_name),
        is_platform_admin: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let user = user::Entity::insert(user)
        .exec_with_returning(&txn)
        .await
        .map_err(duplicate_as("email", "an account with this email already exists"))?;
    let owner = UserId(user.id);
    let org = insert_owned_organization(&txn, owner, new_org).await?;
    insert_session_in(&txn, owner, first_session).await?;
    let change = Change::new("User", user.id, None, Some(&user));
    audit::append(&txn, origin, Some(org.id), Actor::User(owner), Some(change)).await?;
    txn.commit().await?;
    Ok((user, org))
}

/// A new organization owned by an existing user.
pub async fn create_organization(
    db: &Db,
    owner: UserId,
    new_org: NewOrganization,
    origin: &Origin,
) -> AppResult<organization::Model> {
    let txn = db.begin(Access::Write).await?;
    let org = insert_owned_organization(&txn, owner, new_org).await?;
    let change = Change::new("Organization", org.id, None, Some(&org));
    audit::append(&txn, origin, Some(org.id), Actor::User(owner), Some(change)).await?;
    txn.commit().await?;
    Ok(org)
}

async fn insert_owned_organization(
    txn: &DatabaseTransaction,
    owner: UserId,
    new_org: NewOrganization,
) -> AppResult<organization::Model> {
    let now = Utc::now();
    let org = organization::ActiveModel {
        id: Set(OrgId::generate().0),
        slug: Set(new_org.slug),
        name: Set(new_org.name),
        kind: Set(new_org.kind),
        plan: Set(new_org.plan),
        monthly_budget_cents: Set(new_org.monthly_budget_cents),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let org = organization::Entity::insert(org)
        .exec_with_returning(txn)
        .await
        .map_err(duplicate_as("slug", "this slug is already taken"))?;
    let membership = organization_member::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org.id),
        user_id: Set(owner.0),
        role: Set(OrgRole::Owner),
        created_at: Set(now),
        updated_at: Set(now),
    };
    organization_member::Entity::insert(membership).exec(txn).await?;
    Ok(org)
}
