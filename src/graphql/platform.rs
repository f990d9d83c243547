//! Operations of the platform's own staff, across every tenant.

use async_graphql::{Context, Guard, ID, Object, Result};

use crate::domain::platform;
use crate::error::AppError;
use crate::graphql::arguments::parse_id;
use crate::graphql::context::ContextExt;
use crate::graphql::organizations::{Organization, Plan};
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};
use crate::ids::OrgId;

/// The caller is a signed-in platform admin ([`platform::is_platform_admin`]).
pub struct PlatformAdminGuard;

impl Guard for PlatformAdminGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        ctx.user()?;
        if !platform::is_platform_admin(&ctx.services().db, ctx.principal()?).await? {
            return Err(AppError::forbidden("this needs a platform admin").into());
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct PlatformQuery;

#[Object]
impl PlatformQuery {
    /// Every organization, newest first.
    #[graphql(
        guard = "PlatformAdminGuard",
        complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn platform_organizations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Organization>> {
        let paging = Paging::new(first, after.as_deref())?;
        let page = platform::organizations(&ctx.services().db, paging.request).await?;
        Ok(paging.connection(page, |org| org.id))
    }
}

#[derive(Default)]
pub struct PlatformMutation;

#[Object]
impl PlatformMutation {
    /// Moves an organization to a plan; its budget becomes `monthlyBudgetCents`, or the
    /// plan's default. Recorded in that organization's audit trail.
    #[graphql(guard = "PlatformAdminGuard")]
    async fn set_organization_plan(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        plan: Plan,
        monthly_budget_cents: Option<i64>,
    ) -> Result<Organization> {
        let org = OrgId(parse_id("organizationId", &organization_id)?);
        let admin = ctx.user()?.id;
        let updated = platform::set_organization_plan(
            &ctx.services().db,
            org,
            plan.into(),
            monthly_budget_cents,
            admin,
            &ctx.origin(),
        )
        .await?;
        // Limits follow the plan from the next request, when the tenant is resolved again.
        ctx.services().organization_changed(org);
        Ok(updated.into())
    }
}
