//! Relation fields read in batches, by the same visibility rule as a single read, in the
//! operation's tenant and read transaction. A list resolver that knows its items' relations
//! are selected reads them with its page (the jobs' agents, joined) or right after it in one
//! statement ([`prime_job_projects`]); any other `agent` (or `project`) field waits a moment
//! for its siblings and is read with them. What an operation read, found or not, it keeps
//! until it ends. No relation costs a statement per parent.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{agent, agent_job, project};

use crate::domain::{agents, projects};
use crate::error::{AppError, AppResult};
use crate::graphql::context::ContextExt;
use crate::ids::{AgentId, ProjectId};
use crate::tenancy::Tenant;

/// The operation's batched relations, scoped by its tenant.
pub type Relations = DataLoader<TenantRelations, HashMapCache>;

pub struct TenantRelations(Tenant);

impl TenantRelations {
    pub fn loader(tenant: Tenant) -> Relations {
        DataLoader::with_cache(Self(tenant), tokio::spawn, HashMapCache::default())
    }
}

/// Whether the operation selects `field` of the items of the connection being resolved
/// (`nodes { field }` or `edges { node { field } }`).
pub fn items_select(ctx: &Context<'_>, field: &str) -> bool {
    let look_ahead = ctx.look_ahead();
    look_ahead.field("nodes").field(field).exists()
        || look_ahead.field("edges").field("node").field(field).exists()
}

/// Keeps the agents read with their jobs (`None` for one the tenant may not read) for the
/// jobs' `agent` fields.
pub async fn keep_agents(
    ctx: &Context<'_>,
    jobs: &[(agent_job::Model, Option<agent::Model>)],
) -> AppResult<()> {
    let agents = jobs
        .iter()
        .filter_map(|(job, agent)| Some((AgentId(job.agent_id?), agent.clone())));
    ctx.relations()?.feed_many(agents).await;
    Ok(())
}

/// Reads the projects of a page of jobs in one statement, when the operation selects them,
/// so that each job's `project` field finds its own already read.
pub async fn prime_job_projects(ctx: &Context<'_>, jobs: &[agent_job::Model]) -> AppResult<()> {
    if items_select(ctx, "project") {
        let projects = jobs.iter().map(|job| ProjectId(job.project_id));
        ctx.relations()?.load_many(projects).await?;
    }
    Ok(())
}

/// A batch's failure, shared by every field that waited on the batch.
#[derive(Clone)]
pub struct BatchError(Arc<AppError>);

impl fmt::Debug for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

/// A failed batch is a server error in each field that waited on it, never a `null`.
impl From<BatchError> for AppError {
    fn from(error: BatchError) -> Self {
        AppError::Internal(anyhow::Error::new(error))
    }
}

/// Every key asked for gets an answer, `None` for a row the tenant may not see, so that
/// misses are kept like finds.
fn answer_each<K: Copy + Eq + std::hash::Hash, M>(
    keys: &[K],
    rows: Vec<M>,
    key_of: impl Fn(&M) -> K,
) -> HashMap<K, Option<M>> {
    let mut found: HashMap<K, M> = rows.into_iter().map(|row| (key_of(&row), row)).collect();
    keys.iter().map(|key| (*key, found.remove(key))).collect()
}

impl Loader<AgentId> for TenantRelations {
    type Value = Option<agent::Model>;
    type Error = BatchError;

    async fn load(&self, ids: &[AgentId]) -> Result<HashMap<AgentId, Option<agent::Model>>, BatchError> {
        let agents = self
            .0
            .read(async |scoped| agents::readable_by_ids(scoped, ids).await)
            .await
            .map_err(|error| BatchError(Arc::new(error)))?;
        Ok(answer_each(ids, agents, |agent| AgentId(agent.id)))
    }
}

impl Loader<ProjectId> for TenantRelations {
    type Value = Option<project::Model>;
    type Error = BatchError;

    async fn load(
        &self,
        ids: &[ProjectId],
    ) -> Result<HashMap<ProjectId, Option<project::Model>>, BatchError> {
        let projects = self
            .0
            .read(async |scoped| projects::by_ids(scoped, ids).await)
            .await
            .map_err(|error| BatchError(Arc::new(error)))?;
        Ok(answer_each(ids, projects, |project| ProjectId(project.id)))
    }
}
