//! The job queue is one table across tenants: workers claim due jobs of any organization,
//! replicas relay each other's events, and `/metrics` counts what waits and runs.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{JobStatus, agent, agent_job, agent_job_event};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::error::AppResult;
use crate::ids::OrgId;
use crate::tenancy::Access;
use crate::tenancy::db::Db;

/// A job claimed by a worker: the job, its RUNNING event, and its agent if the job's
/// organization may still use it (it may have been deleted or unshared since the job queued).
pub struct ClaimedJob {
    pub job: agent_job::Model,
    pub event: agent_job_event::Model,
    pub agent: Option<agent::Model>,
}

/// Claims up to `limit` due jobs of any tenant under the lease token `lease`: queued ones whose
/// time has come, and running ones whose holder stopped renewing its lease. Each claimed job
/// is RUNNING, leased until `lease_until`, one attempt further, and gets its RUNNING event in
/// the same transaction. On PostgreSQL concurrent claimers skip each other's rows
/// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time.
pub async fn claim_jobs(
    db: &Db,
    lease: Uuid,
    limit: u64,
    lease_until: DateTime<Utc>,
) -> AppResult<Vec<ClaimedJob>> {
    use sea_orm::sea_query::{Expr, Func, LockBehavior, LockType};
    use sea_orm::{
        Condition, ConnectionTrait, DbBackend, ExprTrait, FromQueryResult, JoinType, QuerySelect, QueryTrait,
    };

    let backend = db.backend();
    let txn = db.begin(Access::Write).await?;
    if backend == DbBackend::Postgres {
        // Bookkeeping, as `Tenant::write_progress` explains: a claim lost to a database
        // crash is claimed again.
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    let now = Utc::now();
    // Jobs whose holder stopped renewing its lease first (few, and waiting longest), then
    // queued ones in order: two index range scans, where one `OR` of both read and sorted
    // every due job on each claim.
    let lease_expired = Condition::all()
        .add(agent_job::Column::Status.eq(JobStatus::Running))
        .add(agent_job::Column::LeaseExpiresAt.lt(now));
    let queued = Condition::all()
        .add(agent_job::Column::Status.eq(JobStatus::Queued))
        .add(agent_job::Column::RunAfter.lte(now));
    let mut ids: Vec<Uuid> = Vec::new();
    for (due, order) in [
        (lease_expired, agent_job::Column::LeaseExpiresAt),
        (queued, agent_job::Column::RunAfter),
    ] {
        let wanted = limit.saturating_sub(ids.len() as u64);
        if wanted == 0 {
            break;
        }
        let mut candidates = agent_job::Entity::find()
            .select_only()
            .column(agent_job::Column::Id)
            .filter(due)
            .order_by_asc(order)
            .limit(wanted);
        if backend == DbBackend::Postgres {
            candidates = candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        ids.extend(candidates.into_tuple::<Uuid>().all(&txn).await?);
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = agent_job::Entity::update_many()
        .col_expr(agent_job::Column::Status, Expr::value(JobStatus::Running))
        .col_expr(
            agent_job::Column::Attempts,
            Expr::col(agent_job::Column::Attempts).add(1),
        )
        .col_expr(
            agent_job::Column::LastSeq,
            Expr::col(agent_job::Column::LastSeq).add(1),
        )
        .col_expr(agent_job::Column::WorkerId, Expr::value(lease))
        .col_expr(agent_job::Column::LeaseExpiresAt, Expr::value(lease_until))
        .col_expr(
            agent_job::Column::StartedAt,
            Func::coalesce([Expr::col(agent_job::Column::StartedAt), Expr::value(now)]).into(),
        )
        .col_expr(agent_job::Column::UpdatedAt, Expr::value(now))
        .filter(agent_job::Column::Id.is_in(ids.clone()))
        .exec_with_returning(&txn)
        .await?;
    let events: Vec<agent_job_event::ActiveModel> = jobs
        .iter()
        .map(|job| agent_job_event::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(job.organization_id),
            project_id: Set(job.project_id),
            job_id: Set(job.id),
            seq: Set(job.last_seq),
            status: Set(JobStatus::Running),
            progress: Set(job.progress),
            message: Set(Some(format!(
                "attempt {} of {} started",
                job.attempts, job.max_attempts
            ))),
            created_at: Set(now),
        })
        .collect();
    let events = agent_job_event::Entity::insert_many(events)
        .exec_with_returning(&txn)
        .await?;
    // Each job's agent, if its organization may still use it: one statement for the batch.
    let job_agent = agent_job::Entity::belongs_to(agent::Entity)
        .from(agent_job::Column::AgentId)
        .to(agent::Column::Id)
        .into();
    let usable = crate::tenancy::sharing::usable_agents(
        Expr::col((agent_job::Entity, agent_job::Column::OrganizationId)),
        Condition::all(),
    );
    let agents_query = agent::Entity::find()
        .join_rev(JoinType::InnerJoin, job_agent)
        .column_as(agent_job::Column::Id, "claimed_job_id")
        .filter(agent_job::Column::Id.is_in(ids))
        .filter(usable)
        .build(backend);
    let mut agents = HashMap::new();
    for row in txn.query_all_raw(agents_query).await? {
        agents.insert(
            row.try_get::<Uuid>("", "claimed_job_id")?,
            agent::Model::from_query_result(&row, "")?,
        );
    }
    txn.commit().await?;
    let mut events: HashMap<Uuid, agent_job_event::Model> =
        events.into_iter().map(|e| (e.job_id, e)).collect();
    Ok(jobs
        .into_iter()
        .filter_map(|job| {
            let event = events.remove(&job.id)?;
            let agent = agents.remove(&job.id);
            Some(ClaimedJob { job, event, agent })
        })
        .collect())
}

/// Events of one job after `after_seq`, oldest first, at most `limit`, for the replica link:
/// another replica announced them by organization, job and seq, and this one delivers them
/// to its own subscribers, each of whom sees only its organization's events. One statement
/// instead of a tenant transaction's four round trips, since every relayed event waits on it;
/// the organization is matched explicitly as RLS would.
pub async fn relayed_events(
    db: &Db,
    org: OrgId,
    job: Uuid,
    after_seq: i64,
    limit: u64,
) -> AppResult<Vec<agent_job_event::Model>> {
    use sea_orm::QuerySelect;

    Ok(agent_job_event::Entity::find()
        .filter(agent_job_event::Column::OrganizationId.eq(org.0))
        .filter(agent_job_event::Column::JobId.eq(job))
        .filter(agent_job_event::Column::Seq.gt(after_seq))
        .order_by_asc(agent_job_event::Column::Seq)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

/// How many jobs of all tenants wait and run, for the queue-depth metric. Finished jobs are
/// not counted: the claim index covers the two live statuses.
pub async fn jobs_waiting_or_running(db: &Db) -> AppResult<Vec<(&'static str, u64)>> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::Expr;

    let live = [(JobStatus::Queued, "QUEUED"), (JobStatus::Running, "RUNNING")];
    let counted: HashMap<JobStatus, i64> = agent_job::Entity::find()
        .select_only()
        .column(agent_job::Column::Status)
        .column_as(Expr::cust("COUNT(*)"), "jobs")
        .filter(agent_job::Column::Status.is_in(live.map(|(status, _)| status)))
        .group_by(agent_job::Column::Status)
        .into_tuple::<(JobStatus, i64)>()
        .all(&db.conn)
        .await?
        .into_iter()
        .collect();
    // A status with no jobs has no row, and still reads 0.
    Ok(live
        .map(|(status, label)| (label, counted.get(&status).copied().unwrap_or(0).max(0) as u64))
        .to_vec())
}
