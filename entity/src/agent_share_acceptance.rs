//! A receiving organization's acceptance of an agent offered to it, naming the revision of
//! the agent's configuration it accepted. Owned by the receiving organization.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "agent_share_acceptances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The receiving organization.
    pub organization_id: Uuid,
    /// The offer (`agent_shares`) accepted; the acceptance goes with it.
    pub share_id: Uuid,
    pub agent_id: Uuid,
    /// The agent's revision when accepted: the share is in effect only while they match.
    pub revision: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
