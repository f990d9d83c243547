//! The platform's own staff act on every tenant: listing organizations and changing one's
//! plan, audited in that organization's trail.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use chrono::Utc;
use entity::organization;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::error::{AppError, AppResult};
use crate::ids::{OrgId, UserId};
use crate::tenancy::audit::{self, Change, Origin};
use crate::tenancy::db::Db;
use crate::tenancy::{Access, Actor, Page, PageRequest};

/// Every organization, newest first, for platform admins.
pub async fn all_organizations(db: &Db, page: PageRequest) -> AppResult<Page<organization::Model>> {
    crate::tenancy::page::keyset_page(organization::Entity::find(), page, &db.conn).await
}

/// A platform admin's change of an organization's plan and budget, audited in that
/// organization's trail.
pub async fn set_organization_plan(
    db: &Db,
    org: OrgId,
    plan: entity::Plan,
    monthly_budget_cents: i64,
    admin: UserId,
    origin: &Origin,
) -> AppResult<organization::Model> {
    let txn = db.begin(Access::Write).await?;
    let before = organization::Entity::find_by_id(org.0)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let mut changed: organization::ActiveModel = before.clone().into();
    changed.plan = Set(plan);
    changed.monthly_budget_cents = Set(monthly_budget_cents);
    changed.updated_at = Set(Utc::now());
    let after = organization::Entity::update(changed).exec(&txn).await?;
    let change = Change::new("Organization", org.0, Some(&before), Some(&after));
    audit::append(&txn, origin, Some(org.0), Actor::User(admin), Some(change)).await?;
    txn.commit().await?;
    Ok(after)
}
