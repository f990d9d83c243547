//! Monthly budgets: what an organization's jobs cost, month by month, against what its plan
//! (or a platform admin) allows. A job that would go over is refused before it is queued:
//! the check runs in the job's own transaction, before its row is inserted, so a refused
//! job leaves nothing.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use entity::{agent_job, organization, usage_record};
use sea_orm::sea_query::{Expr, SubQueryStatement};
use sea_orm::{ActiveValue::Set, ColumnTrait, QueryFilter, QuerySelect, QueryTrait};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::ids::{JobId, ProjectId};
use crate::tenancy::Scoped;

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Period {
    pub fn current() -> Self {
        let now = Utc::now();
        Self::month(now.year(), now.month()).unwrap_or(Self { start: now, end: now })
    }

    /// `YYYY-MM`.
    pub fn parse(text: &str) -> AppResult<Self> {
        let invalid = || AppError::bad_input("period", "a month as YYYY-MM");
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let (year, month) = (
            year.parse().map_err(|_| invalid())?,
            month.parse().map_err(|_| invalid())?,
        );
        Self::month(year, month).ok_or_else(invalid)
    }

    fn month(year: i32, month: u32) -> Option<Self> {
        let first = |year, month| {
            NaiveDate::from_ymd_opt(year, month, 1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|midnight| Utc.from_utc_datetime(&midnight))
        };
        let (next_year, next_month) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        Some(Self {
            start: first(year, month)?,
            end: first(next_year, next_month)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cost_cents: i64,
    pub budget_cents: i64,
    pub tokens: i64,
    pub jobs: u64,
}

/// The organization's usage in `period`.
pub async fn usage(scoped: &Scoped, period: Period) -> AppResult<Usage> {
    let (cost_cents, tokens) = spent(scoped, period).await?;
    let jobs = scoped
        .count(
            scoped
                .select::<agent_job::Entity>()
                .filter(agent_job::Column::CreatedAt.gte(period.start))
                .filter(agent_job::Column::CreatedAt.lt(period.end)),
        )
        .await?;
    Ok(Usage {
        cost_cents,
        budget_cents: budget(scoped).await?,
        tokens,
        jobs,
    })
}

/// Refuses work estimated at `estimate_cents` when it would take this month's cost over the
/// budget, or when the budget is already spent.
pub async fn ensure_within_budget(scoped: &Scoped, estimate_cents: i64) -> AppResult<()> {
    let left = left_this_month(scoped).await?;
    if left <= 0 || estimate_cents > left {
        return Err(AppError::BudgetExceeded);
    }
    Ok(())
}

/// Whether this month's spending has reached the budget.
pub async fn exhausted(scoped: &Scoped) -> AppResult<bool> {
    Ok(left_this_month(scoped).await? <= 0)
}

/// Cents of this month's budget not yet spent (negative once overrun), in one statement: it
/// runs before every job is queued.
async fn left_this_month(scoped: &Scoped) -> AppResult<i64> {
    use sea_orm::ExprTrait;

    let spent = usage_in(scoped, Period::current())
        .column_as(Expr::cust("COALESCE(SUM(cost_cents), 0)"), "cost")
        .into_query();
    // CAST: PostgreSQL sums BIGINT into NUMERIC.
    let left = Expr::col(organization::Column::MonthlyBudgetCents)
        .sub(Expr::SubQuery(
            None,
            Box::new(SubQueryStatement::SelectStatement(spent)),
        ))
        .cast_as("BIGINT");
    let query = scoped
        .select::<organization::Entity>()
        .select_only()
        .column_as(left, "left");
    scoped
        .one_tuple(query)
        .await?
        .ok_or(AppError::NotFound("organization"))
}

/// What a job used, charged to its organization.
pub struct Charge<'a> {
    pub job: JobId,
    pub project: ProjectId,
    pub service: &'a str,
    pub tokens: i64,
    pub cost_cents: i64,
}

pub async fn record(scoped: &Scoped, charge: Charge<'_>) -> AppResult<()> {
    let row = usage_record::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(scoped.context().org.0),
        project_id: Set(Some(charge.project.0)),
        job_id: Set(Some(charge.job.0)),
        service: Set(charge.service.chars().take(64).collect()),
        tokens: Set(charge.tokens.max(0)),
        cost_cents: Set(charge.cost_cents.max(0)),
        created_at: Set(Utc::now()),
    };
    scoped.insert(row).await?;
    Ok(())
}

/// Cents and tokens spent in `period`.
async fn spent(scoped: &Scoped, period: Period) -> AppResult<(i64, i64)> {
    // CAST: PostgreSQL sums BIGINT into NUMERIC.
    let totals = usage_in(scoped, period)
        .column_as(Expr::cust("CAST(COALESCE(SUM(cost_cents), 0) AS BIGINT)"), "cost")
        .column_as(Expr::cust("CAST(COALESCE(SUM(tokens), 0) AS BIGINT)"), "tokens");
    Ok(scoped.one_tuple(totals).await?.unwrap_or((0, 0)))
}

/// The organization's usage rows of `period`, selecting nothing yet: callers add the sums.
fn usage_in(scoped: &Scoped, period: Period) -> sea_orm::Select<usage_record::Entity> {
    scoped
        .select::<usage_record::Entity>()
        .select_only()
        .filter(usage_record::Column::CreatedAt.gte(period.start))
        .filter(usage_record::Column::CreatedAt.lt(period.end))
}

async fn budget(scoped: &Scoped) -> AppResult<i64> {
    let org = scoped
        .get::<organization::Entity>(scoped.context().org.0, "organization")
        .await?;
    Ok(org.monthly_budget_cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_months() {
        let december = Period::parse("2026-12").unwrap();
        assert_eq!(december.start.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(december.end.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", "", "2026-00"] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
