//! Agent jobs: starting, cancelling, reading, and every change of state. Each change bumps
//! the job's `last_seq` and writes the event with that `seq` in the same transaction, so
//! events are numbered 1, 2, … with no gap and no duplicate, whoever writes them.

use chrono::{DateTime, Utc};
use entity::{JobStatus, ProjectRole, agent, agent_job, agent_job_event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::agents;
use crate::error::{AppError, AppResult};
use crate::governance::budgets;
use crate::ids::{AgentId, JobId, ProjectId};
use crate::runners::RunnerKind;
use crate::tenancy::{Page, PageRequest, Scoped};

/// Inputs larger than this are refused: jobs are queued rows, not file storage.
const MAX_INPUT_BYTES: usize = 64 * 1024;

pub type Event = agent_job_event::Model;

/// Who may change a job: the claim holding it (by its lease token), or anyone while it still has a given status.
#[derive(Debug, Clone, Copy)]
pub enum Holder {
    Worker(Uuid),
    Status(JobStatus),
}

/// One change of a job's state and the event that records it.
#[derive(Debug, Default)]
pub struct Change {
    pub status: Option<JobStatus>,
    pub progress: Option<i32>,
    pub message: Option<String>,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// Back to the queue, to be claimed again at this time.
    pub requeue_at: Option<DateTime<Utc>>,
    pub finished: bool,
    pub cancel_requested: bool,
}

/// Applies `change` if `holder` still holds the job, and appends its event. `None` when the
/// job has moved on (another worker took it over, it finished, it was cancelled).
pub async fn advance(
    scoped: &Scoped,
    job: JobId,
    holder: Holder,
    change: Change,
) -> AppResult<Option<(agent_job::Model, Event)>> {
    let now = Utc::now();
    let mut update = scoped
        .update_many::<agent_job::Entity>()
        .col_expr(
            agent_job::Column::LastSeq,
            Expr::col(agent_job::Column::LastSeq).add(1),
        )
        .col_expr(agent_job::Column::UpdatedAt, Expr::value(now))
        .filter(agent_job::Column::Id.eq(job.0));
    update = match holder {
        Holder::Worker(worker) => update
            .filter(agent_job::Column::WorkerId.eq(worker))
            .filter(agent_job::Column::Status.eq(JobStatus::Running)),
        Holder::Status(status) => update.filter(agent_job::Column::Status.eq(status)),
    };
    if let Some(status) = change.status {
        update = update.col_expr(agent_job::Column::Status, Expr::value(status));
    }
    if let Some(progress) = change.progress {
        update = update.col_expr(agent_job::Column::Progress, Expr::value(progress.clamp(0, 100)));
    }
    if let Some(output) = change.output {
        update = update.col_expr(agent_job::Column::Output, Expr::value(output));
    }
    if let Some(error) = &change.error {
        update = update.col_expr(agent_job::Column::Error, Expr::value(error.clone()));
    }
    if let Some(at) = change.requeue_at {
        update = update.col_expr(agent_job::Column::RunAfter, Expr::value(at));
    }
    if change.finished {
        update = update.col_expr(agent_job::Column::FinishedAt, Expr::value(now));
    }
    // Requeued or finished, the job is no longer held by any worker.
    if change.requeue_at.is_some() || change.finished {
        update = update
            .col_expr(agent_job::Column::WorkerId, Expr::value(Option::<Uuid>::None))
            .col_expr(
                agent_job::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            );
    }
    if change.cancel_requested {
        update = update.col_expr(agent_job::Column::CancelRequested, Expr::value(true));
    }
    let Some(job) = scoped.update_returning(update).await?.pop() else {
        return Ok(None);
    };
    let event = event_of(&job, change.message.or(change.error), now);
    let event = scoped.insert(event).await?;
    Ok(Some((job, event)))
}

/// Queues a job of an agent this tenant may use (its own or shared with it), in a project
/// where the caller may edit. The job and its first event are written together.
pub async fn start(
    scoped: &Scoped,
    agent_id: AgentId,
    project: ProjectId,
    input: Value,
) -> AppResult<(agent_job::Model, Event)> {
    scoped.project_with_role(project, ProjectRole::Editor).await?;
    let agent = agents::get_readable(scoped, agent_id).await?;
    if serde_json::to_vec(&input).map_or(0, |bytes| bytes.len()) > MAX_INPUT_BYTES {
        return Err(AppError::bad_input("input", "must be at most 64 KiB of JSON"));
    }
    let estimate = RunnerKind::parse(&agent.kind).map_or(0, |kind| kind.estimated_cost_cents(&agent.config));
    budgets::ensure_within_budget(scoped, estimate).await?;
    let now = Utc::now();
    let job = agent_job::ActiveModel {
        id: Set(JobId::generate().0),
        organization_id: Set(scoped.context().org.0),
        project_id: Set(project.0),
        agent_id: Set(Some(agent.id)),
        status: Set(JobStatus::Queued),
        progress: Set(0),
        input: Set(input),
        output: Set(None),
        error: Set(None),
        attempts: Set(0),
        max_attempts: Set(agent.max_attempts),
        last_seq: Set(1),
        cancel_requested: Set(false),
        run_after: Set(now),
        worker_id: Set(None),
        lease_expires_at: Set(None),
        created_by: Set(scoped.context().actor.accountable_user().0),
        created_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
        updated_at: Set(now),
    };
    let job = scoped.insert(job).await?;
    let event = scoped
        .insert(event_of(&job, Some("queued".into()), job.created_at))
        .await?;
    Ok((job, event))
}

/// The event recording the job's state as it is now, numbered with its `last_seq`.
fn event_of(
    job: &agent_job::Model,
    message: Option<String>,
    at: DateTime<Utc>,
) -> agent_job_event::ActiveModel {
    agent_job_event::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(job.organization_id),
        project_id: Set(job.project_id),
        job_id: Set(job.id),
        seq: Set(job.last_seq),
        status: Set(job.status),
        progress: Set(job.progress),
        message: Set(message),
        created_at: Set(at),
    }
}

/// Cancels a job: a queued one at once, a running one at its next step. A finished job is
/// returned as it is. The event, if one was written, is returned for publishing.
pub async fn cancel(scoped: &Scoped, id: JobId) -> AppResult<(agent_job::Model, Option<Event>)> {
    let job = scoped
        .get_editable_in_project::<agent_job::Entity>(id.0, "job")
        .await?;
    let (holder, change) = match job.status {
        JobStatus::Queued => (
            Holder::Status(JobStatus::Queued),
            Change {
                status: Some(JobStatus::Cancelled),
                message: Some("cancelled".into()),
                finished: true,
                ..Change::default()
            },
        ),
        JobStatus::Running if !job.cancel_requested => (
            Holder::Status(JobStatus::Running),
            Change {
                cancel_requested: true,
                message: Some("cancellation requested".into()),
                ..Change::default()
            },
        ),
        _ => return Ok((job, None)),
    };
    match advance(scoped, id, holder, change).await? {
        Some((job, event)) => Ok((job, Some(event))),
        // It changed meanwhile (claimed, or finished): report what it is now.
        None => Ok((get(scoped, id).await?, None)),
    }
}

pub async fn get(scoped: &Scoped, id: JobId) -> AppResult<agent_job::Model> {
    scoped.get::<agent_job::Entity>(id.0, "job").await
}

pub async fn list(
    scoped: &Scoped,
    project: ProjectId,
    status: Option<JobStatus>,
    page: PageRequest,
) -> AppResult<Page<agent_job::Model>> {
    scoped.page_in_project(project, of_status(status), page).await
}

/// Jobs narrowed to `status`, when one is given.
fn of_status(
    status: Option<JobStatus>,
) -> impl FnOnce(Select<agent_job::Entity>) -> Select<agent_job::Entity> {
    move |query| {
        query.apply_if(status, |query, status| {
            query.filter(agent_job::Column::Status.eq(status))
        })
    }
}

/// [`list`], each job with its agent if the tenant may still read it, in one statement.
pub async fn list_with_agents(
    scoped: &Scoped,
    project: ProjectId,
    status: Option<JobStatus>,
    page: PageRequest,
) -> AppResult<Page<(agent_job::Model, Option<agent::Model>)>> {
    scoped
        .page_jobs_with_agents(project, of_status(status), page)
        .await
}

/// Events of a job after `after_seq`, oldest first, at most `limit`.
pub async fn events_after(scoped: &Scoped, job: JobId, after_seq: i64, limit: u64) -> AppResult<Vec<Event>> {
    scoped
        .all(
            scoped
                .select::<agent_job_event::Entity>()
                .filter(agent_job_event::Column::JobId.eq(job.0))
                .filter(agent_job_event::Column::Seq.gt(after_seq))
                .order_by_asc(agent_job_event::Column::Seq)
                .limit(limit),
        )
        .await
}

/// Extends a running job's lease, if the claim `worker` still holds it.
pub async fn renew_lease(scoped: &Scoped, job: JobId, worker: Uuid, until: DateTime<Utc>) -> AppResult<bool> {
    let update = scoped
        .update_many::<agent_job::Entity>()
        .col_expr(agent_job::Column::LeaseExpiresAt, Expr::value(until))
        .filter(agent_job::Column::Id.eq(job.0))
        .filter(agent_job::Column::WorkerId.eq(worker))
        .filter(agent_job::Column::Status.eq(JobStatus::Running));
    Ok(scoped.update_where(update).await? == 1)
}
