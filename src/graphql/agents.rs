//! Agents: the caller's organization's own, plus those shared with it (read-only).

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::agent;
use serde_json::Value;

use crate::domain::agents::{self, AgentChanges, NewAgent};
use crate::graphql::context::ContextExt;
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, connection, list_cost, page_request, parse_id};
use crate::ids::{AgentId, OrgId, ProjectId};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::AgentSharing")]
pub enum AgentSharing {
    /// Only the owning organization.
    Private,
    /// Every organization may read and run it.
    Global,
    /// The organizations it is shared with may read and run it.
    Selective,
}

pub struct Agent(pub agent::Model);

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The owner; another organization's id means the agent is shared with yours (read-only).
    async fn organization_id(&self) -> ID {
        ID(self.0.organization_id.to_string())
    }

    async fn project_id(&self) -> Option<ID> {
        self.0.project_id.map(|id| ID(id.to_string()))
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The runner: `echo`, …
    async fn kind(&self) -> &str {
        &self.0.kind
    }

    /// Shown to the owning organization only: another organization may run a shared agent
    /// but not read its configuration.
    async fn config(&self, ctx: &Context<'_>) -> Result<Option<Json<Value>>> {
        let own = ctx.tenant()?.context().org.0 == self.0.organization_id;
        Ok(own.then(|| Json(self.0.config.clone())))
    }

    async fn sharing(&self) -> AgentSharing {
        self.0.sharing.into()
    }

    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    pub name: String,
    pub kind: String,
    pub config: Json<Value>,
    pub project_id: Option<ID>,
    #[graphql(default_with = "AgentSharing::Private")]
    pub sharing: AgentSharing,
    /// How often a failing job is tried (default 3).
    pub max_attempts: Option<i32>,
}

#[derive(InputObject)]
pub struct UpdateAgentInput {
    pub name: Option<String>,
    pub config: Option<Json<Value>>,
    pub sharing: Option<AgentSharing>,
    pub max_attempts: Option<i32>,
}

#[derive(Default)]
pub struct AgentQuery;

#[Object]
impl AgentQuery {
    /// The organization's agents and those shared with it, newest first.
    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn agents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Agent>> {
        let page = page_request(first, after.as_deref())?;
        let page = ctx
            .tenant()?
            .read(async |scoped| agents::list(scoped, page).await)
            .await?;
        Ok(connection(page, after.is_some(), |agent| agent.id, Agent))
    }

    async fn agent(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Agent>> {
        let id = AgentId(parse_id("id", &id)?);
        let agent = ctx
            .tenant()?
            .read(async |scoped| agents::get_readable(scoped, id).await)
            .await?;
        Ok(Some(Agent(agent)))
    }
}

#[derive(Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// Sharing other than PRIVATE needs the Admin role.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn create_agent(&self, ctx: &Context<'_>, input: CreateAgentInput) -> Result<Agent> {
        let project = input
            .project_id
            .as_ref()
            .map(|id| parse_id("projectId", id))
            .transpose()?
            .map(ProjectId);
        let new = NewAgent {
            name: &input.name,
            kind: &input.kind,
            config: input.config.0,
            project,
            sharing: input.sharing.into(),
            max_attempts: input.max_attempts,
        };
        let agent = ctx
            .tenant()?
            .write(async |scoped| agents::create(scoped, new).await)
            .await?;
        Ok(Agent(agent))
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn update_agent(&self, ctx: &Context<'_>, id: ID, input: UpdateAgentInput) -> Result<Agent> {
        let id = AgentId(parse_id("id", &id)?);
        let changes = AgentChanges {
            name: input.name.as_deref(),
            config: input.config.map(|config| config.0),
            sharing: input.sharing.map(Into::into),
            max_attempts: input.max_attempts,
        };
        let agent = ctx
            .tenant()?
            .write(async |scoped| agents::update(scoped, id, changes).await)
            .await?;
        Ok(Agent(agent))
    }

    /// Deletes the agent; its jobs keep their history. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn delete_agent(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let agent = AgentId(parse_id("id", &id)?);
        ctx.tenant()?
            .write(async |scoped| agents::delete(scoped, agent).await)
            .await?;
        Ok(id)
    }

    /// Makes the agent SELECTIVE, readable and runnable by exactly these organizations.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn share_agent(&self, ctx: &Context<'_>, agent_id: ID, organization_ids: Vec<ID>) -> Result<Agent> {
        let id = AgentId(parse_id("agentId", &agent_id)?);
        let organizations = organization_ids
            .iter()
            .map(|id| parse_id("organizationIds", id).map(OrgId))
            .collect::<Result<Vec<_>, _>>()?;
        let agent = ctx
            .tenant()?
            .write(async |scoped| agents::share(scoped, id, &organizations).await)
            .await?;
        Ok(Agent(agent))
    }
}
