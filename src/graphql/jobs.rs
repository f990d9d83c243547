//! Agent jobs: start, cancel, read, and follow live over subscriptions.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use entity::agent_job;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use crate::domain::jobs::{self, Event};
use crate::error::AppError;
use crate::graphql::agents::Agent;
use crate::graphql::arguments::parse_id;
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::loaders::{items_select, keep_agents, prime_job_projects};
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Paging, list_cost, page_size};
use crate::graphql::projects::Project;
use crate::ids::{AgentId, JobId, ProjectId};
use crate::jobs::stream;
use crate::tenancy::Scoped;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::JobStatus")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// One step of a job; `seq` counts 1, 2, … per job with no gaps.
#[derive(SimpleObject)]
pub struct AgentJobEvent {
    pub job_id: ID,
    pub seq: i64,
    pub status: JobStatus,
    pub progress: i32,
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&Event> for AgentJobEvent {
    fn from(event: &Event) -> Self {
        Self {
            job_id: ID(event.job_id.to_string()),
            seq: event.seq,
            status: event.status.into(),
            progress: event.progress,
            message: event.message.clone(),
            at: event.created_at,
        }
    }
}

pub struct AgentJob(agent_job::Model);

impl From<agent_job::Model> for AgentJob {
    fn from(job: agent_job::Model) -> Self {
        Self(job)
    }
}

#[Object]
impl AgentJob {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The agent it ran; null once that agent was deleted or is no longer shared.
    async fn agent(&self, ctx: &Context<'_>) -> Result<Option<Agent>> {
        let Some(id) = self.0.agent_id.map(AgentId) else {
            return Ok(None);
        };
        let agent = ctx.relations()?.load_one(id).await.map_err(AppError::from)?;
        Ok(agent.flatten().map(Agent::from))
    }

    async fn project(&self, ctx: &Context<'_>) -> Result<Option<Project>> {
        let project = ctx
            .relations()?
            .load_one(ProjectId(self.0.project_id))
            .await
            .map_err(AppError::from)?;
        Ok(project.flatten().map(Project::from))
    }

    async fn status(&self) -> JobStatus {
        self.0.status.into()
    }

    /// 0 to 100.
    async fn progress(&self) -> i32 {
        self.0.progress
    }

    async fn input(&self) -> Json<Value> {
        Json(self.0.input.clone())
    }

    async fn output(&self) -> Option<Json<Value>> {
        self.0.output.clone().map(Json)
    }

    /// The last failure, if any attempt failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Its events in `seq` order; the cursor is the `seq`.
    #[graphql(complexity = "list_cost(first, MAX_PAGE_SIZE, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AgentJobEvent>> {
        let first = page_size(first, MAX_PAGE_SIZE)?;
        let after_seq = match &after {
            Some(cursor) => cursor
                .parse::<i64>()
                .map_err(|_| AppError::bad_input("after", "not a cursor from this list"))?,
            None => 0,
        };
        let job = JobId(self.0.id);
        let mut events = tenant_read(ctx, async |scoped| {
            jobs::events_after(scoped, job, after_seq, first + 1).await
        })
        .await?;
        let has_next = events.len() as u64 > first;
        events.truncate(first as usize);
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(
            events
                .iter()
                .map(|event| Edge::new(event.seq.to_string(), AgentJobEvent::from(event))),
        );
        Ok(connection)
    }
}

#[derive(InputObject)]
pub struct StartAgentJobInput {
    pub agent_id: ID,
    pub project_id: ID,
    #[graphql(default_with = "Json(Value::Object(Default::default()))")]
    pub input: Json<Value>,
}

#[derive(Default)]
pub struct JobQuery;

#[Object]
impl JobQuery {
    /// A project's jobs, newest first, optionally of one status.
    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn agent_jobs(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        status: Option<JobStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<AgentJob>> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let paging = Paging::new(first, after.as_deref())?;
        let (status, request, tenant) = (status.map(Into::into), paging.request, ctx.tenant()?);
        // Each job's agent, when asked for, is read with the page.
        let page = if items_select(ctx, "agent") {
            let list = async |scoped: &Scoped| jobs::list_with_agents(scoped, project, status, request).await;
            let page = tenant.read(list).await?;
            keep_agents(ctx, &page.items).await?;
            page.map(|(job, _)| job)
        } else {
            tenant
                .read(async |scoped| jobs::list(scoped, project, status, request).await)
                .await?
        };
        prime_job_projects(ctx, &page.items).await?;
        Ok(paging.connection(page, |job| job.id))
    }

    async fn agent_job(&self, ctx: &Context<'_>, id: ID) -> Result<Option<AgentJob>> {
        let id = JobId(parse_id("id", &id)?);
        let job = tenant_read(ctx, async |scoped| jobs::get(scoped, id).await).await?;
        Ok(Some(job.into()))
    }
}

#[derive(Default)]
pub struct JobMutation;

#[Object]
impl JobMutation {
    /// Queues a run of an agent (the organization's own or one shared with it) in a project
    /// where the caller may edit.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn start_agent_job(&self, ctx: &Context<'_>, input: StartAgentJobInput) -> Result<AgentJob> {
        let agent = AgentId(parse_id("agentId", &input.agent_id)?);
        let project = ProjectId(parse_id("projectId", &input.project_id)?);
        let job_input = input.input.0;
        ctx.charge_job_start().await?;
        let (job, event) = tenant_write(ctx, async |scoped| {
            jobs::start(scoped, agent, project, job_input).await
        })
        .await?;
        let services = ctx.services();
        services.jobs.bus.publish(event);
        services.jobs.job_queued();
        Ok(job.into())
    }

    /// Cancels a queued job at once, a running one at its next step.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn cancel_agent_job(&self, ctx: &Context<'_>, id: ID) -> Result<AgentJob> {
        let id = JobId(parse_id("id", &id)?);
        let (job, event) = tenant_write(ctx, async |scoped| jobs::cancel(scoped, id).await).await?;
        if let Some(event) = event {
            ctx.services().jobs.bus.publish(event);
        }
        Ok(job.into())
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// A job's events after `afterSeq` (stored ones first, then live), in order, ending after
    /// the terminal one. Ends with an error when the caller's access ends.
    async fn agent_job_progress(
        &self,
        ctx: &Context<'_>,
        job_id: ID,
        #[graphql(desc = "Replay stored events after this seq first (default 0: all of them).")]
        after_seq: Option<i64>,
    ) -> Result<impl Stream<Item = Result<AgentJobEvent>> + use<>> {
        let job = JobId(parse_id("jobId", &job_id)?);
        let tenant = ctx.tenant()?;
        // Boxed, here and below: a resolver's future stays inside its subscription's stream
        // for as long as that lives, and a database read's future is several KiB.
        Box::pin(tenant.read(async |scoped| jobs::get(scoped, job).await)).await?;
        let services = ctx.services();
        let liveness = ctx.request()?.liveness(services.clone())?;
        let events = stream::job_events(
            &services.jobs.bus,
            tenant,
            job,
            after_seq.unwrap_or(0).max(0),
            liveness,
        );
        Ok(events.map(present))
    }

    /// Live events of every job of a project, as they happen.
    async fn project_job_events(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> Result<impl Stream<Item = Result<AgentJobEvent>> + use<>> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let tenant = ctx.tenant()?;
        Box::pin(tenant.read(async |scoped| scoped.project_role(project).await)).await?;
        let services = ctx.services();
        let liveness = ctx.request()?.liveness(services.clone())?;
        let org = tenant.context().org.0;
        Ok(stream::project_events(&services.jobs.bus, org, project.0, liveness).map(present))
    }
}

fn present(item: Result<Arc<Event>, AppError>) -> Result<AgentJobEvent> {
    Ok(AgentJobEvent::from(item?.as_ref()))
}
