//! An organization's secret for a third-party provider (an AI provider's API key), stored
//! encrypted; only its last four characters are ever shown.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "provider_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub provider: String,
    /// AES-256-GCM ciphertext bound to the organization, this table and column.
    pub secret: String,
    pub last_four: String,
    /// Where the secret may be sent; `None`: the operator's endpoint for the provider.
    pub base_url: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
