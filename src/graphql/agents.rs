//! Agents: the caller's organization's own, plus those shared with it (read-only), and the
//! receiving side of sharing: offers to review, accept, decline or leave.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::agent;
use serde_json::Value;

use crate::domain::agents::{self, AgentChanges, NewAgent, Offer};
use crate::domain::platform::is_platform_admin;
use crate::graphql::arguments::{parse_id, parse_opt_id};
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};
use crate::ids::{AgentId, OrgId};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::AgentSharing")]
pub enum AgentSharing {
    /// Only the owning organization.
    Private,
    /// Every organization may read and run it; only a platform admin makes an agent GLOBAL
    /// or changes what a GLOBAL agent runs.
    Global,
    /// The organizations it is offered to may read and run it once their admin accepted its
    /// current revision.
    Selective,
}

#[derive(SimpleObject)]
pub struct Agent {
    id: ID,
    /// The owner; another organization's id means the agent is shared with yours (read-only).
    organization_id: ID,
    project_id: Option<ID>,
    name: String,
    /// The runner: `echo`, …
    kind: String,
    /// What it runs, shown to every organization that may read the agent: one it is shared
    /// with runs it under its own credentials and budget, so it sees what it accepts. A
    /// config names a provider and a model, never an address or a secret.
    config: Json<Value>,
    /// The revision of what it runs (config, attempts), bumped by each change of them;
    /// organizations it is shared with accept one revision at a time.
    revision: i32,
    sharing: AgentSharing,
    max_attempts: i32,
    created_at: DateTime<Utc>,
}

impl From<agent::Model> for Agent {
    fn from(agent: agent::Model) -> Self {
        Self {
            id: agent.id.into(),
            organization_id: agent.organization_id.into(),
            project_id: agent.project_id.map(ID::from),
            name: agent.name,
            kind: agent.kind,
            config: Json(agent.config),
            revision: agent.revision,
            sharing: agent.sharing.into(),
            max_attempts: agent.max_attempts,
            created_at: agent.created_at,
        }
    }
}

// An agent another organization offers to yours, awaiting your admins' decision.
#[derive(SimpleObject)]
pub struct AgentShareOffer {
    /// The agent as it would run, config included.
    agent: Agent,
    /// The revision your organization accepted before, when the offer is a changed agent
    /// (it does not run for you until you accept the new one); null for a new offer.
    accepted_revision: Option<i32>,
}

impl From<Offer> for AgentShareOffer {
    fn from(offer: Offer) -> Self {
        Self {
            agent: offer.agent.into(),
            accepted_revision: offer.accepted_revision,
        }
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
        let paging = Paging::new(first, after.as_deref())?;
        paging.read(&ctx.tenant()?, |agent| agent.id, agents::list).await
    }

    async fn agent(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Agent>> {
        let id = AgentId(parse_id("id", &id)?);
        let agent = tenant_read(ctx, async |scoped| agents::get_readable(scoped, id).await).await?;
        Ok(Some(agent.into()))
    }

    /// Agents other organizations offer to yours that await acceptance: new offers, and
    /// accepted agents whose author changed what they run. Newest agent first.
    #[graphql(
        guard = "OrgRoleGuard(entity::OrgRole::Admin)",
        complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn agent_share_offers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<AgentShareOffer>> {
        let paging = Paging::new(first, after.as_deref())?;
        let id_of = |offer: &Offer| offer.agent.id;
        paging.read(&ctx.tenant()?, id_of, agents::pending_offers).await
    }
}

#[derive(Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// Sharing other than PRIVATE needs the Admin role.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn create_agent(&self, ctx: &Context<'_>, input: CreateAgentInput) -> Result<Agent> {
        let project = parse_opt_id("projectId", input.project_id.as_ref())?;
        let new = NewAgent {
            name: &input.name,
            kind: &input.kind,
            config: input.config.0,
            project,
            sharing: input.sharing.into(),
            max_attempts: input.max_attempts,
            platform_admin: input.sharing == AgentSharing::Global
                && is_platform_admin(&ctx.services().db, ctx.principal()?).await?,
        };
        let agent = tenant_write(ctx, async |scoped| agents::create(scoped, new).await).await?;
        Ok(agent.into())
    }

    /// A change of config or attempts is a new revision, which organizations the agent is
    /// shared with must accept before it runs for them again.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn update_agent(&self, ctx: &Context<'_>, id: ID, input: UpdateAgentInput) -> Result<Agent> {
        let id = AgentId(parse_id("id", &id)?);
        // Only what could touch a GLOBAL agent asks who the caller is.
        let global_matters = input.sharing == Some(AgentSharing::Global)
            || input.config.is_some()
            || input.max_attempts.is_some();
        let changes = AgentChanges {
            name: input.name.as_deref(),
            config: input.config.map(|config| config.0),
            sharing: input.sharing.map(Into::into),
            max_attempts: input.max_attempts,
            platform_admin: global_matters && is_platform_admin(&ctx.services().db, ctx.principal()?).await?,
        };
        let agent = tenant_write(ctx, async |scoped| agents::update(scoped, id, changes).await).await?;
        Ok(agent.into())
    }

    /// Deletes the agent; its jobs keep their history. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn delete_agent(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let agent = AgentId(parse_id("id", &id)?);
        tenant_write(ctx, async |scoped| agents::delete(scoped, agent).await).await?;
        Ok(id)
    }

    /// Makes the agent SELECTIVE and offers it to exactly these organizations. A new offer
    /// takes effect when the receiving organization's admin accepts it; organizations left
    /// off lose theirs.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn share_agent(&self, ctx: &Context<'_>, agent_id: ID, organization_ids: Vec<ID>) -> Result<Agent> {
        let id = AgentId(parse_id("agentId", &agent_id)?);
        let organizations = organization_ids
            .iter()
            .map(|id| parse_id("organizationIds", id).map(OrgId))
            .collect::<Result<Vec<_>, _>>()?;
        let agent = tenant_write(ctx, async |scoped| {
            agents::share(scoped, id, &organizations).await
        })
        .await?;
        Ok(agent.into())
    }

    /// Accepts an agent offered to your organization, at its current revision (with
    /// `revision`, only if that is still the current one): from now on your organization
    /// sees and runs it, until its author changes what it runs.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn accept_agent_share(
        &self,
        ctx: &Context<'_>,
        agent_id: ID,
        revision: Option<i32>,
    ) -> Result<Agent> {
        let id = AgentId(parse_id("agentId", &agent_id)?);
        let agent = tenant_write(ctx, async |scoped| agents::accept(scoped, id, revision).await).await?;
        Ok(agent.into())
    }

    /// Declines an agent offered to your organization: the offer is removed. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn decline_agent_share(&self, ctx: &Context<'_>, agent_id: ID) -> Result<ID> {
        let id = AgentId(parse_id("agentId", &agent_id)?);
        tenant_write(ctx, async |scoped| agents::decline(scoped, id).await).await?;
        Ok(agent_id)
    }

    /// Leaves an agent your organization accepted: it no longer sees or runs it, and the
    /// offer is removed. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn leave_agent_share(&self, ctx: &Context<'_>, agent_id: ID) -> Result<ID> {
        let id = AgentId(parse_id("agentId", &agent_id)?);
        tenant_write(ctx, async |scoped| agents::leave(scoped, id).await).await?;
        Ok(agent_id)
    }
}
