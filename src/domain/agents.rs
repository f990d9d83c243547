//! Agents: owned by one organization, usable by others when shared on their terms: GLOBAL is
//! a platform admin's act; a SELECTIVE offer takes effect once the receiving organization's
//! admin accepts the agent's current revision, and lapses when what it runs changes.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use entity::{AgentSharing, OrgRole, ProjectRole, agent, agent_share, agent_share_acceptance};
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{AppError, AppResult, missing_reference_as};
use crate::ids::{AgentId, OrgId, ProjectId};
use crate::input::Name;
use crate::runners::RunnerKind;
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

/// The agents among `ids` this tenant may use (the rule of [`get_readable`]), in one
/// statement: the others are missing from the answer.
pub async fn readable_by_ids(scoped: &Scoped, ids: &[AgentId]) -> AppResult<Vec<agent::Model>> {
    let ids = ids.iter().map(|id| id.0);
    scoped
        .all(
            scoped
                .select_readable_agents()
                .filter(agent::Column::Id.is_in(ids)),
        )
        .await
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

/// Sharing beyond the organization is an administrator's decision; sharing with every
/// organization, without their acceptance, is the platform's.
fn check_sharing(scoped: &Scoped, sharing: AgentSharing, platform_admin: bool) -> AppResult<()> {
    if sharing != AgentSharing::Private && scoped.context().role < OrgRole::Admin {
        return Err(AppError::forbidden(
            "sharing an agent outside the organization needs the Admin role",
        ));
    }
    if sharing == AgentSharing::Global && !platform_admin {
        return Err(AppError::forbidden(
            "making an agent GLOBAL needs a platform admin; share it SELECTIVE instead",
        ));
    }
    Ok(())
}

fn parse_kind(kind: &str) -> AppResult<RunnerKind> {
    RunnerKind::parse(kind).ok_or_else(|| {
        let kinds: Vec<_> = RunnerKind::ALL.iter().map(|kind| kind.name()).collect();
        AppError::bad_input("kind", format!("must be one of: {}", kinds.join(", ")))
    })
}

fn parse_config(kind: RunnerKind, config: Value) -> AppResult<Value> {
    if !config.is_object() {
        return Err(AppError::bad_input("config", "must be a JSON object"));
    }
    kind.check_config(&config)
        .map_err(|message| AppError::bad_input("config", message))?;
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
    /// Whether the caller is a platform admin (who alone makes an agent GLOBAL).
    pub platform_admin: bool,
}

pub async fn create(scoped: &Scoped, input: NewAgent<'_>) -> AppResult<agent::Model> {
    let name = Name::parse("name", input.name)?;
    let config = parse_config(parse_kind(input.kind)?, input.config)?;
    check_sharing(scoped, input.sharing, input.platform_admin)?;
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
        revision: Set(1),
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
    /// Whether the caller is a platform admin (who alone changes what a GLOBAL agent runs).
    pub platform_admin: bool,
}

/// Changes the agent. A change of what it runs (config, attempts) is a new revision: every
/// organization it is shared with stops running it until its admin accepts the new one. A
/// GLOBAL agent's runs change only by a platform admin, as nobody accepts them.
pub async fn update(scoped: &Scoped, id: AgentId, changes: AgentChanges<'_>) -> AppResult<agent::Model> {
    let agent = get_owned(scoped, id).await?;
    let was = agent.sharing;
    let sharing = changes.sharing.unwrap_or(was);
    if let Some(sharing) = changes.sharing {
        check_sharing(scoped, sharing, changes.platform_admin)?;
    }
    let config = changes
        .config
        .map(|config| parse_config(parse_kind(&agent.kind)?, config))
        .transpose()?
        .filter(|config| *config != agent.config);
    let max_attempts = changes
        .max_attempts
        .map(|attempts| parse_max_attempts(Some(attempts)))
        .transpose()?
        .filter(|attempts| *attempts != agent.max_attempts);
    let new_revision = config.is_some() || max_attempts.is_some();
    if new_revision && sharing == AgentSharing::Global && !changes.platform_admin {
        return Err(AppError::forbidden(
            "changing what a GLOBAL agent runs needs a platform admin",
        ));
    }
    let revision = agent.revision;
    let mut agent = agent.into_active_model();
    if let Some(name) = changes.name {
        agent.name = Set(Name::parse("name", name)?.into_inner());
    }
    if let Some(config) = config {
        agent.config = Set(config);
    }
    if let Some(attempts) = max_attempts {
        agent.max_attempts = Set(attempts);
    }
    if new_revision {
        agent.revision = Set(revision + 1);
    }
    agent.sharing = Set(sharing);
    agent.updated_at = Set(Utc::now());
    let updated = scoped.update(agent, "agent").await?;
    if was == AgentSharing::Selective && sharing != AgentSharing::Selective {
        // No longer SELECTIVE: every offer is withdrawn (acceptances go with them), so
        // sharing it again asks every organization anew.
        withdraw_offers(scoped, updated.id, &BTreeSet::new()).await?;
    }
    Ok(updated)
}

/// Deletes the agent; jobs that ran it keep their history with no agent.
pub async fn delete(scoped: &Scoped, id: AgentId) -> AppResult<()> {
    get_owned(scoped, id).await?;
    scoped.delete::<agent::Entity>(id.0, "agent").await
}

/// Withdraws the agent's offers to organizations outside `keep`; returns those still offered.
async fn withdraw_offers(scoped: &Scoped, agent: Uuid, keep: &BTreeSet<OrgId>) -> AppResult<BTreeSet<OrgId>> {
    let offers = scoped
        .all(
            scoped
                .select::<agent_share::Entity>()
                .filter(agent_share::Column::AgentId.eq(agent)),
        )
        .await?;
    let (kept, withdrawn): (Vec<_>, Vec<_>) = offers
        .into_iter()
        .partition(|offer| keep.contains(&OrgId(offer.shared_with_organization_id)));
    if !withdrawn.is_empty() {
        scoped
            .delete_where(
                scoped
                    .delete_many::<agent_share::Entity>()
                    .filter(agent_share::Column::Id.is_in(withdrawn.iter().map(|offer| offer.id))),
            )
            .await?;
    }
    Ok(kept
        .into_iter()
        .map(|offer| OrgId(offer.shared_with_organization_id))
        .collect())
}

/// Makes the agent SELECTIVE and offers it to exactly these organizations: new ones get a
/// pending offer, ones left off lose theirs (and their acceptance), ones kept keep theirs.
pub async fn share(scoped: &Scoped, id: AgentId, organizations: &[OrgId]) -> AppResult<agent::Model> {
    // SELECTIVE asks every receiver's consent, so an organization admin may offer it.
    check_sharing(scoped, AgentSharing::Selective, false)?;
    let agent = get_owned(scoped, id).await?;
    let wanted: BTreeSet<OrgId> = organizations
        .iter()
        .copied()
        .filter(|org| *org != scoped.context().org)
        .collect();
    let now = Utc::now();
    let mut agent = agent.into_active_model();
    agent.sharing = Set(AgentSharing::Selective);
    agent.updated_at = Set(now);
    let agent = scoped.update(agent, "agent").await?;
    let kept = withdraw_offers(scoped, agent.id, &wanted).await?;
    for org in wanted.difference(&kept) {
        let offer = agent_share::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(scoped.context().org.0),
            agent_id: Set(agent.id),
            shared_with_organization_id: Set(org.0),
            created_at: Set(now),
            updated_at: Set(now),
        };
        scoped
            .insert(offer)
            .await
            .map_err(missing_reference_as("organizationIds", "unknown organization"))?;
    }
    scoped.note(
        "offeredTo",
        serde_json::json!(wanted.iter().map(|org| org.to_string()).collect::<Vec<_>>()),
    );
    Ok(agent)
}

/// An agent offered to this tenant, awaiting (again, after a change) its acceptance.
pub struct Offer {
    pub agent: agent::Model,
    /// The revision this tenant accepted before, when the offer is a changed agent.
    pub accepted_revision: Option<i32>,
}

/// Offers awaiting this tenant's decision, newest agent first: offered agents whose current
/// revision it has not accepted.
pub async fn pending_offers(scoped: &Scoped, page: PageRequest) -> AppResult<Page<Offer>> {
    let offered = scoped.page(scoped.select_pending_offers(), page).await?;
    let ids: Vec<Uuid> = offered.items.iter().map(|agent| agent.id).collect();
    let accepted: HashMap<Uuid, i32> = scoped
        .all(
            scoped
                .select::<agent_share_acceptance::Entity>()
                .filter(agent_share_acceptance::Column::AgentId.is_in(ids)),
        )
        .await?
        .into_iter()
        .map(|acceptance| (acceptance.agent_id, acceptance.revision))
        .collect();
    Ok(offered.map(|agent| Offer {
        accepted_revision: accepted.get(&agent.id).copied(),
        agent,
    }))
}

/// Accepts the agent offered to this tenant at its current revision; with `revision`, only
/// if that is still the current one (the config reviewed is the config accepted).
/// `NOT_FOUND` when the agent is not offered to this tenant.
pub async fn accept(scoped: &Scoped, id: AgentId, revision: Option<i32>) -> AppResult<agent::Model> {
    let agent = scoped
        .one(scoped.select_offered_agents().filter(agent::Column::Id.eq(id.0)))
        .await?
        .ok_or(AppError::NotFound("agent"))?;
    if revision.is_some_and(|revision| revision != agent.revision) {
        return Err(AppError::bad_input(
            "revision",
            format!(
                "the agent changed since; review revision {} and accept that",
                agent.revision
            ),
        ));
    }
    let offer = scoped
        .offer_to_tenant(agent.id)
        .await?
        .ok_or(AppError::NotFound("agent"))?;
    let now = Utc::now();
    let existing = scoped
        .find_by(agent_share_acceptance::Column::AgentId, agent.id)
        .await?;
    match existing {
        Some(acceptance) => {
            let mut acceptance = acceptance.into_active_model();
            acceptance.share_id = Set(offer.id);
            acceptance.revision = Set(agent.revision);
            acceptance.updated_at = Set(now);
            scoped.update(acceptance, "agent share").await?;
        }
        None => {
            let acceptance = agent_share_acceptance::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(scoped.context().org.0),
                share_id: Set(offer.id),
                agent_id: Set(agent.id),
                revision: Set(agent.revision),
                created_at: Set(now),
                updated_at: Set(now),
            };
            scoped.insert(acceptance).await?;
        }
    }
    Ok(agent)
}

/// Declines the agent offered to this tenant (pending, or changed since it was accepted):
/// the offer is removed, so it neither runs nor asks again until its author offers it anew.
pub async fn decline(scoped: &Scoped, id: AgentId) -> AppResult<()> {
    scoped.remove_offer_to_tenant(id.0).await?;
    Ok(())
}

/// Leaves a share this tenant accepted: its acceptance and the offer are removed.
/// `NOT_FOUND` when it never accepted the agent.
pub async fn leave(scoped: &Scoped, id: AgentId) -> AppResult<()> {
    let acceptance = scoped
        .find_by(agent_share_acceptance::Column::AgentId, id.0)
        .await?
        .ok_or(AppError::NotFound("agent share"))?;
    scoped
        .delete::<agent_share_acceptance::Entity>(acceptance.id, "agent share")
        .await?;
    scoped.remove_offer_to_tenant(id.0).await?;
    Ok(())
}
