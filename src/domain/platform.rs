//! The platform's own staff: who they are, and what they do across every tenant.

use entity::{Plan, organization};

use crate::auth::Principal;
use crate::domain::accounts::default_budget_cents;
use crate::error::{AppError, AppResult};
use crate::ids::{OrgId, UserId};
use crate::tenancy::audit::Origin;
use crate::tenancy::{Db, Page, PageRequest, unscoped};

/// Whether the caller is a platform admin: read from the database on every request, so
/// taking the flag away takes effect at once. An API key never is.
pub async fn is_platform_admin(db: &Db, caller: &Principal) -> AppResult<bool> {
    let Principal::User(user) = caller else {
        return Ok(false);
    };
    Ok(unscoped::accounts::find_user(db, user.id)
        .await?
        .is_some_and(|user| user.is_platform_admin))
}

/// Every organization, newest first.
pub async fn organizations(db: &Db, page: PageRequest) -> AppResult<Page<organization::Model>> {
    unscoped::platform::all_organizations(db, page).await
}

/// Moves an organization to a plan; its budget becomes `monthly_budget_cents`, or the plan's
/// default. Recorded in that organization's audit trail.
pub async fn set_organization_plan(
    db: &Db,
    org: OrgId,
    plan: Plan,
    monthly_budget_cents: Option<i64>,
    admin: UserId,
    origin: &Origin,
) -> AppResult<organization::Model> {
    let budget = monthly_budget_cents.unwrap_or_else(|| default_budget_cents(plan));
    if budget < 0 {
        return Err(AppError::bad_input("monthlyBudgetCents", "cannot be negative"));
    }
    unscoped::platform::set_organization_plan(db, org, plan, budget, admin, origin).await
}
