//! One row of the audit trail: who changed what, from where. Append-only.

use sea_orm::entity::prelude::*;

use crate::ActorKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `None` for account events that belong to no organization (login, logout).
    pub organization_id: Option<Uuid>,
    pub actor_kind: ActorKind,
    pub actor_id: Uuid,
    /// The GraphQL operation, e.g. `updateProject`.
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<Uuid>,
    pub before: Option<Json>,
    pub after: Option<Json>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
