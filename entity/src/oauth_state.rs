//! A pending OAuth2 authorization: who started it, for which organization, and the PKCE
//! verifier (encrypted) its callback needs. Single use, short-lived.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "oauth_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    /// SHA-256 of the `state` parameter.
    #[sea_orm(unique)]
    pub state_hash: String,
    pub pkce_verifier: String,
    /// SHA-256 of the secret in the cookie set, by the `startOAuth` response, in the browser
    /// that started the flow; the callback completes only in that browser. `None` (a row
    /// from before) completes nowhere.
    pub browser_hash: Option<String>,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
