//! What the active organization spent, month by month, against its budget.

use async_graphql::{Context, Object, Result, SimpleObject};

use crate::governance::budgets::{self, Period};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::OrganizationWideGuard;
use crate::tenancy::Tenant;

#[derive(SimpleObject)]
pub struct Usage {
    pub cost_cents: i64,
    pub budget_cents: i64,
    pub tokens: i64,
    /// Jobs started in the period.
    pub jobs: i64,
}

pub async fn usage_in(tenant: &Tenant, period: Period) -> Result<Usage> {
    let usage = tenant
        .read(async |scoped| budgets::usage(scoped, period).await)
        .await?;
    Ok(Usage {
        cost_cents: usage.cost_cents,
        budget_cents: usage.budget_cents,
        tokens: usage.tokens,
        jobs: i64::try_from(usage.jobs).unwrap_or(i64::MAX),
    })
}

#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// The active organization's usage in a month (`YYYY-MM`, UTC; this month by default).
    #[graphql(guard = "OrganizationWideGuard")]
    async fn usage(&self, ctx: &Context<'_>, period: Option<String>) -> Result<Usage> {
        let period = match period {
            Some(period) => Period::parse(&period)?,
            None => Period::current(),
        };
        usage_in(&ctx.tenant()?, period).await
    }
}
