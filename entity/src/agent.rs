//! An AI agent: a runner kind with its configuration, owned by one organization and
//! possibly shared with others.

use sea_orm::entity::prelude::*;

use crate::AgentSharing;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub project_id: Option<Uuid>,
    pub name: String,
    /// The runner that executes its jobs (`echo`, `llm`, …).
    pub kind: String,
    pub config: Json,
    pub sharing: AgentSharing,
    /// How many times a failing job is tried before it is FAILED.
    pub max_attempts: i32,
    /// Bumped when what it runs changes (kind, config, attempts); organizations it is shared
    /// with run it only while they have accepted this revision.
    pub revision: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
