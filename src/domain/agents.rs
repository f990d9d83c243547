//! Agents: owned by one organization, readable by others when shared.

use chrono::Utc;
use entity::{AgentSharing, OrgRole, ProjectRole, agent, agent_share};
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::input::Name;
use crate::error::{AppError, AppResult, missing_reference_as};
use crate::ids::{AgentId, OrgId, ProjectId};
use crate::jobs::runners;
use crate::tenancy::{Page, PageRequest, Scoped};

pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
const MAX_ATTEMPTS_LIMIT: i32 = 10;

pub async fn list(scoped: &Scoped, page: PageRequest) -> AppResult<Page<agent::Model>> {
    scoped.page(scoped.select_readable_agents(), page).await
}

/// An agent this tenant may use: its own or one shared with it.
pub async fn get_readable(scoped: &Scoped, id: AgentId) -> AppResult<agent::Model> {
    scoped
        .one(scoped.select_readable_agents().filter(agent::Column::Id.eq(id.0)))
        .await?
        .ok_or(AppError::NotFound("agent"))
}

/// An agent this tenant owns and the caller may change: `FORBIDDEN` for one merely shared
/// with it (it can see that one exists) or of a project where the caller cannot edit,
/// `NOT_FOUND` for one it cannot see.
async fn get_owned(scoped: &Scoped, id: AgentId) -> AppResult<agent::Model> {
    let agent = get_readable(scoped, id).await?;
    if agent.organization_id != scoped.context().org.0 {
        return Err(AppError::forbidden(
            "agents shared with your organization are read-only",
        ));
    }
    if let Some(project) = agent.project_id {
        scoped
            .project_with_role(ProjectId(project), ProjectRole::Editor)
            .await?;
    }
    Ok(agent)
}

/// Sharing beyond the organization is an administrator's decision.
fn check_sharing(scoped: &Scoped, sharing: AgentSharing) -> AppResult<()> {
    if sharing != AgentSharing::Private && scoped.context().role < OrgRole::Admin {
        return Err(AppError::forbidden(
            "sharing an agent outside the organization needs the Admin role",
        ));
    }
    Ok(())
}

fn parse_config(kind: &str, config: Value) -> AppResult<Value> {
    if !config.is_object() {
        return Err(AppError::bad_input("config", "must be a JSON object"));
    }
    runners::check_config(kind, &config).map_err(|message| AppError::bad_input("config", message))?;
    Ok(config)
}

fn parse_max_attempts(value: Option<i32>) -> AppResult<i32> {
    let attempts = value.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&attempts) {
        return Err(AppError::bad_input(
            "maxAttempts",
            format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
        ));
    }
    Ok(attempts)
}

pub struct NewAgent<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub config: Value,
    pub project: Option<ProjectId>,
    pub sharing: AgentSharing,
    pub max_attempts: Option<i32>,
}

pub async fn create(scoped: &Scoped, input: NewAgent<'_>) -> AppResult<agent::Model> {
    let name = Name::parse("name", input.name)?;
    if !runners::KINDS.contains(&input.kind) {
        return Err(AppError::bad_input(
            "kind",
            format!("must be one of: {}", runners::KINDS.join(", ")),
        ));
    }
    let config = parse_config(input.kind, input.config)?;
    check_sharing(scoped, input.sharing)?;
    if let Some(project) = input.project {
        scoped.project_with_role(project, ProjectRole::Editor).await?;
    }
    let now = Utc::now();
    let agent = agent::ActiveModel {
        id: Set(AgentId::generate().0),
        organization_id: Set(scoped.context().org.0),
        project_id: Set(input.project.map(|project| project.0)),
        name: Set(name.into_inner()),
        kind: Set(input.kind.to_owned()),
        config: Set(config),
        sharing: Set(input.sharing),
        max_attempts: Set(parse_max_attempts(input.max_attempts)?),
        created_at: Set(now),
        updated_at: Set(now),
    };
    scoped.insert(agent).await
}

pub struct AgentChanges<'a> {
    pub name: Option<&'a str>,
    pub config: Option<Value>,
    pub sharing: Option<AgentSharing>,
    pub max_attempts: Option<i32>,
}

pub async fn update(scoped: &Scoped, id: AgentId, changes: AgentChanges<'_>) -> AppResult<agent::Model> {
    let agent = get_owned(scoped, id).await?;
    let kind = agent.kind.clone();
    let mut agent = agent.into_active_model();
    if let Some(name) = changes.name {
        agent.name = Set(Name::parse("name", name)?.into_inner());
    }
    if let Some(config) = changes.config {
        agent.config = Set(parse_config(&kind, config)?);
    }
    if let Some(sharing) = changes.sharing {
        check_sharing(scoped, sharing)?;
        agent.sharing = Set(sharing);
    }
    if changes.max_attempts.is_some() {
        agent.max_attempts = Set(parse_max_attempts(changes.max_attempts)?);
    }
    agent.updated_at = Set(Utc::now());
    scoped.update(agent, "agent").await
}

/// Deletes the agent; jobs that ran it keep their history with no agent.
pub async fn delete(scoped: &Scoped, id: AgentId) -> AppResult<()> {
    get_owned(scoped, id).await?;
    scoped.delete::<agent::Entity>(id.0, "agent").await
}

/// Makes the agent SELECTIVE and readable by exactly these organizations.
pub async fn share(scoped: &Scoped, id: AgentId, organizations: &[OrgId]) -> AppResult<agent::Model> {
    check_sharing(scoped, AgentSharing::Selective)?;
    let agent = get_owned(scoped, id).await?;
    scoped
        .delete_where(
            scoped
                .delete_many::<agent_share::Entity>()
                .filter(agent_share::Column::AgentId.eq(agent.id)),
        )
        .await?;
    let now = Utc::now();
    let organizations: std::collections::BTreeSet<OrgId> = organizations
        .iter()
        .copied()
        .filter(|org| *org != scoped.context().org)
        .collect();
    for org in organizations {
        let share = agent_share::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(scoped.context().org.0),
            agent_id: Set(agent.id),
            shared_with_organization_id: Set(org.0),
            created_at: Set(now),
            updated_at: Set(now),
        };
        scoped
            .insert(share)
            .await
            .map_err(missing_reference_as("organizationIds", "unknown organization"))?;
    }
    let mut agent = agent.into_active_model();
    agent.sharing = Set(AgentSharing::Selective);
    agent.updated_at = Set(now);
    scoped.update(agent, "agent").await
}
