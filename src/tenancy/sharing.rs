//! Which agents an organization may use: the one rule for a tenant's reads, lists and job
//! starts, and for the worker's claim across tenants.

use entity::{AgentSharing, agent, agent_share, agent_share_acceptance};
use sea_orm::sea_query::{Condition, Expr, Query, SelectStatement};
use sea_orm::{ColumnTrait, ExprTrait};

/// Agents the organization `org` may use: its own (narrowed by `own`), every GLOBAL one, and
/// SELECTIVE ones offered to it whose current revision it has accepted. `org` is a value for
/// a tenant's reads, or the column of the row being matched when workers check many jobs'
/// agents at once. The one rule for reads, lists, job starts and the worker's claim.
pub(super) fn usable_agents(org: Expr, own: Condition) -> Condition {
    Condition::any()
        .add(own.add(Expr::col((agent::Entity, agent::Column::OrganizationId)).eq(org.clone())))
        .add(agent::Column::Sharing.eq(AgentSharing::Global))
        .add(offered_to(org.clone()).add(agent::Column::Id.in_subquery(accepted_by(org))))
}

/// Ids of agents whose current revision the organization `org` has accepted.
pub(super) fn accepted_by(org: Expr) -> SelectStatement {
    Query::select()
        .column(agent_share_acceptance::Column::AgentId)
        .from(agent_share_acceptance::Entity)
        .and_where(
            Expr::col((
                agent_share_acceptance::Entity,
                agent_share_acceptance::Column::OrganizationId,
            ))
            .eq(org),
        )
        .and_where(
            Expr::col((
                agent_share_acceptance::Entity,
                agent_share_acceptance::Column::Revision,
            ))
            .equals((agent::Entity, agent::Column::Revision)),
        )
        .to_owned()
}

/// SELECTIVE agents offered to the organization `org`, accepted or not.
pub(super) fn offered_to(org: Expr) -> Condition {
    let offers = Query::select()
        .column(agent_share::Column::AgentId)
        .from(agent_share::Entity)
        .and_where(Expr::col((agent_share::Entity, agent_share::Column::SharedWithOrganizationId)).eq(org))
        .to_owned();
    Condition::all()
        .add(agent::Column::Sharing.eq(AgentSharing::Selective))
        .add(agent::Column::Id.in_subquery(offers))
}
