//! The record of an organization's erasure: kept after every row of the organization is gone,
//! and the progress mark that lets an interrupted erasure resume.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "organization_erasures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub erased_organization_id: Uuid,
    pub organization_name: String,
    pub requested_by: Option<Uuid>,
    pub requested_at: DateTimeUtc,
    pub rows_deleted: i64,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
