//! Workers: claim a due job, run its agent's runner, record each step, and finish, retry or
//! release it. A worker holds a claimed job by a lease it renews while the job runs; a job
//! whose worker died is claimed again once the lease expires, and every write is
//! conditional on still holding it, so a job finishes exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{JobStatus, OrgRole, PostStatus};
use secrecy::SecretString;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

use super::bus::EventBus;
use crate::domain::content::{self, NewPost};
use crate::domain::jobs as job_rules;
use crate::domain::jobs::{Change, Holder};
use crate::error::AppError;
use crate::governance::budgets::{self, Charge};
use crate::ids::{JobId, OrgId, ProjectId, UserId};
use crate::integrations::credentials;
use crate::runners::{Credential, RunError, RunnerKind, Steps, Stop, Toolbox};
use crate::telemetry::metrics;
use crate::tenancy::audit::Origin;
use crate::tenancy::unscoped::{self, job_queue::ClaimedJob};
use crate::tenancy::{Actor, Db, Tenant, TenantContext, TenantDb};

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// The first retry waits this long; each further one twice as long (at most 5 minutes).
    pub retry_base: Duration,
    /// How often an idle worker looks for due jobs it was not woken for.
    pub poll: Duration,
}

const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Claims and runs up to `slots` jobs at a time until `shutdown` turns true; jobs running
/// then stop at their next step and go back to the queue, and this returns once they have.
/// One claim serves as many jobs as there are free slots, so a busy process claims in
/// batches; each claim has its own lease token, so a job this process lost to an expired
/// lease and claimed again cannot be written by its first run. The claim runs as the owner
/// (across tenants); each job runs in its own tenant's transactions on `tenant_db`.
#[expect(clippy::too_many_arguments, reason = "the worker's whole wiring, passed once")]
pub async fn run(
    db: Db,
    tenant_db: TenantDb,
    bus: Arc<EventBus>,
    wake: Arc<Notify>,
    toolbox: Arc<Toolbox>,
    config: WorkerConfig,
    slots: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running = JoinSet::new();
    while !*shutdown.borrow() {
        while running.try_join_next().is_some() {}
        let free = slots.saturating_sub(running.len());
        if free > 0 {
            let lease = Uuid::now_v7();
            let lease_until = Utc::now() + config.lease;
            match unscoped::job_queue::claim_jobs(&db, lease, free as u64, lease_until).await {
                Ok(claimed) => {
                    for claim in claimed {
                        bus.publish(claim.event.clone());
                        let span = tracing::info_span!(
                            "job",
                            job.id = %claim.job.id,
                            org.id = %claim.job.organization_id,
                            job.attempt = claim.job.attempts,
                        );
                        let job = run_job(
                            tenant_db.clone(),
                            bus.clone(),
                            toolbox.clone(),
                            lease,
                            claim,
                            config,
                            shutdown.clone(),
                        );
                        running.spawn(job.instrument(span));
                    }
                }
                Err(error) => tracing::warn!(error = format!("{error:#}"), "claiming jobs failed"),
            }
        }
        // A free slot waits for a wake-up or the poll; a full house for a job to end.
        tokio::select! {
            () = wake.notified(), if running.len() < slots => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = tokio::time::sleep(config.poll) => {}
            // A dropped sender (the server failed) stops the workers as shutdown does.
            changed = shutdown.changed() => if changed.is_err() { break },
        }
    }
    while running.join_next().await.is_some() {}
}

/// The runner's view of its job: each step is a conditional write of the job and its event.
struct JobRun<'a> {
    tenant: &'a Tenant,
    bus: &'a EventBus,
    toolbox: &'a Toolbox,
    job: JobId,
    project: ProjectId,
    /// The token of the claim holding the job; every write is conditional on it.
    lease: Uuid,
    attempt: i32,
    shutdown: watch::Receiver<bool>,
}

impl Steps for JobRun<'_> {
    async fn progress(&mut self, progress: i32, message: String) -> Result<(), Stop> {
        if *self.shutdown.borrow() {
            return Err(Stop::ShuttingDown);
        }
        let change = Change {
            progress: Some(progress),
            message: Some(message),
            ..Change::default()
        };
        let (job, lease) = (self.job, self.lease);
        match self
            .tenant
            .write_progress(async |scoped| {
                job_rules::advance(scoped, job, Holder::Worker(lease), change).await
            })
            .await
        {
            Ok(Some((job, event))) => {
                self.bus.publish(event);
                if job.cancel_requested {
                    Err(Stop::Cancelled)
                } else {
                    Ok(())
                }
            }
            Ok(None) => Err(Stop::LostLease),
            Err(error) => {
                tracing::warn!(job.id = %self.job, error = format!("{error:#}"), "recording progress failed");
                Err(Stop::LostLease)
            }
        }
    }

    fn attempt(&self) -> i32 {
        self.attempt
    }

    fn tools(&self) -> &Toolbox {
        self.toolbox
    }

    async fn credential(&mut self, provider: &str) -> Result<Option<Credential>, RunError> {
        let (keyring, endpoints) = (&self.toolbox.keyring, &self.toolbox.llm_providers);
        let found = self
            .tenant
            .read(async |scoped| credentials::reveal(scoped, keyring, endpoints, provider).await)
            .await
            .map_err(|error| {
                tracing::warn!(job.id = %self.job, error = format!("{error:#}"), "reading a credential failed");
                RunError::Fatal(format!("the organization's {provider} credential cannot be read"))
            })?;
        let Some((secret, endpoint)) = found else {
            return Ok(None);
        };
        let endpoint = endpoint.ok_or_else(|| {
            RunError::Fatal(format!(
                "the organization's {provider} credential has no endpoint: set it again with its baseUrl"
            ))
        })?;
        Ok(Some(Credential { secret, endpoint }))
    }

    async fn account_token(&mut self, provider: &str) -> Result<Option<SecretString>, RunError> {
        let oauth = &self.toolbox.oauth;
        self.tenant
            .write(async |scoped| oauth.access_token(scoped, provider).await)
            .await
            .map_err(|error| match error {
                AppError::BadUserInput { message, .. } => RunError::Fatal(message.into_owned()),
                other => RunError::Failed(format!(
                    "the {provider} account's token could not be read: {other}"
                )),
            })
    }

    async fn save_artifact(&mut self, name: &str, contents: &[u8]) -> Result<String, RunError> {
        let path = format!("jobs/{}/{name}", self.job);
        self.toolbox
            .workspaces
            .write(self.tenant.context().org.0, &path, contents)
            .await
            .map_err(|error| match error {
                AppError::BadUserInput { message, .. } => RunError::Fatal(message.into_owned()),
                other => RunError::Failed(format!("the artifact could not be saved: {other}")),
            })?;
        Ok(path)
    }

    async fn save_draft_post(&mut self, title: &str, body: &str) -> Result<Uuid, RunError> {
        let draft = NewPost {
            project: self.project,
            campaign: None,
            title,
            body,
            status: PostStatus::Draft,
            job: Some(self.job),
        };
        // A job's own writes to tenant content are audited, with the job as the actor.
        let origin = Origin {
            action: "saveDraftPost".into(),
            client: Default::default(),
        };
        self.tenant
            .clone()
            .audited(origin)
            .write(async |scoped| content::create_post(scoped, draft).await)
            .await
            .map(|post| post.id)
            .map_err(|error| RunError::Failed(format!("the draft post could not be saved: {error}")))
    }

    async fn record_usage(&mut self, service: &str, tokens: i64, cost_cents: i64) -> Result<(), Stop> {
        let charge = Charge {
            job: self.job,
            project: self.project,
            service,
            tokens,
            cost_cents,
        };
        let exhausted = self
            .tenant
            .write(async |scoped| {
                budgets::record(scoped, charge).await?;
                budgets::exhausted(scoped).await
            })
            .await
            .map_err(|error| {
                tracing::warn!(job.id = %self.job, error = format!("{error:#}"), "recording usage failed");
                Stop::LostLease
            })?;
        if exhausted {
            Err(Stop::BudgetExceeded)
        } else {
            Ok(())
        }
    }
}

fn backoff(config: &WorkerConfig, attempt: i32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).clamp(0, 16) as u32);
    config.retry_base.saturating_mul(factor).min(MAX_BACKOFF)
}

async fn run_job(
    db: TenantDb,
    bus: Arc<EventBus>,
    toolbox: Arc<Toolbox>,
    lease: Uuid,
    ClaimedJob { job, agent, .. }: ClaimedJob,
    config: WorkerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let (bus, toolbox) = (&*bus, &*toolbox);
    let started = Instant::now();
    let id = JobId(job.id);
    let tenant = Tenant::new(
        db,
        Arc::new(TenantContext {
            actor: Actor::Job {
                id,
                started_by: UserId(job.created_by),
            },
            org: OrgId(job.organization_id),
            role: OrgRole::Member,
            only_project: None,
        }),
    );
    let outcome = if job.attempts > job.max_attempts {
        Err(RunError::Failed(format!(
            "gave up after {} attempts",
            job.max_attempts
        )))
    } else {
        match agent {
            // Retrying cannot help: the agent returns only by its author, or by an admin
            // of this organization accepting it again.
            None if job.agent_id.is_none() => Err(RunError::Fatal("the agent was deleted".into())),
            None => Err(RunError::Fatal(
                "the agent is no longer shared with this organization, or its changed \
                 configuration awaits this organization's acceptance (acceptAgentShare)"
                    .into(),
            )),
            Some(agent) => {
                // Dropped (and so stopped) with this run, also when the run is aborted.
                let _heartbeat =
                    AbortOnDrop(tokio::spawn(renew_lease(tenant.clone(), id, lease, config.lease)));
                let mut steps = JobRun {
                    tenant: &tenant,
                    bus,
                    toolbox,
                    job: id,
                    project: ProjectId(job.project_id),
                    lease,
                    attempt: job.attempts,
                    shutdown,
                };
                match RunnerKind::parse(&agent.kind) {
                    Some(kind) => kind.run(&agent.config, &job.input, &mut steps).await,
                    None => Err(RunError::Failed(format!("no runner for kind {:?}", agent.kind))),
                }
            }
        }
    };
    let retry = job.attempts < job.max_attempts;
    let kind = match &outcome {
        Ok(_) => "succeeded",
        Err(RunError::Stop(Stop::LostLease)) => "lost_lease",
        Err(RunError::Stop(Stop::Cancelled)) => "cancelled",
        Err(RunError::Stop(Stop::ShuttingDown)) => "released",
        Err(RunError::Failed(_)) if retry => "retried",
        Err(_) => "failed",
    };
    metrics::job_run(kind, started.elapsed());
    let change = match outcome {
        Ok(output) => Change {
            status: Some(JobStatus::Succeeded),
            progress: Some(100),
            output: Some(output),
            message: Some("succeeded".into()),
            finished: true,
            ..Change::default()
        },
        Err(RunError::Stop(Stop::LostLease)) => return,
        Err(RunError::Stop(Stop::Cancelled)) => Change {
            status: Some(JobStatus::Cancelled),
            message: Some("cancelled".into()),
            finished: true,
            ..Change::default()
        },
        Err(RunError::Stop(Stop::BudgetExceeded)) => {
            fail("BUDGET_EXCEEDED: the organization's monthly budget ran out".into())
        }
        Err(RunError::Fatal(error)) => fail(error),
        Err(RunError::Stop(Stop::ShuttingDown)) => Change {
            status: Some(JobStatus::Queued),
            requeue_at: Some(Utc::now()),
            message: Some("released by a stopping worker".into()),
            ..Change::default()
        },
        Err(RunError::Failed(error)) if retry => {
            let wait = backoff(&config, job.attempts);
            Change {
                status: Some(JobStatus::Queued),
                requeue_at: Some(Utc::now() + wait),
                message: Some(format!(
                    "attempt {} failed: {error}; retrying in {} ms",
                    job.attempts,
                    wait.as_millis()
                )),
                error: Some(error),
                ..Change::default()
            }
        }
        Err(RunError::Failed(error)) => fail(error),
    };
    match tenant
        .write(async |scoped| job_rules::advance(scoped, id, Holder::Worker(lease), change).await)
        .await
    {
        Ok(Some((_, event))) => bus.publish(event),
        Ok(None) => {}
        Err(error) => tracing::warn!(job.id = %id, error = format!("{error:#}"), "finishing a job failed"),
    }
}

/// The last change of a job that failed for good.
fn fail(error: String) -> Change {
    Change {
        status: Some(JobStatus::Failed),
        message: Some(format!("failed: {error}")),
        error: Some(error),
        finished: true,
        ..Change::default()
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease at a third of its length until aborted or the job is lost.
async fn renew_lease(tenant: Tenant, job: JobId, token: Uuid, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let until = Utc::now() + lease;
        match tenant
            .write_progress(async |scoped| job_rules::renew_lease(scoped, job, token, until).await)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(job.id = %job, error = format!("{error:#}"), "renewing a lease failed")
            }
        }
    }
}
