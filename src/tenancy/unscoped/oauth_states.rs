//! The OAuth callback. The provider's redirect carries no credential and names no tenant;
//! the state it returns is the only key to the organization that started the flow.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use chrono::{DateTime, Utc};
use entity::oauth_state;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::error::AppResult;
use crate::tenancy::db::Db;

/// Spends a pending OAuth authorization: the row, if it existed for this provider, was
/// unused and unexpired; it can never be claimed again. The state alone names the tenant
/// here (the provider's redirect carries no credential), hence a cross-tenant step.
pub async fn claim_oauth_state(
    db: &Db,
    state_hash: &str,
    provider: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<oauth_state::Model>> {
    let claimed = oauth_state::Entity::update_many()
        .col_expr(oauth_state::Column::UsedAt, sea_orm::sea_query::Expr::value(now))
        .col_expr(
            oauth_state::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(oauth_state::Column::StateHash.eq(state_hash))
        .filter(oauth_state::Column::Provider.eq(provider))
        .filter(oauth_state::Column::UsedAt.is_null())
        .filter(oauth_state::Column::ExpiresAt.gt(now))
        .exec_with_returning(&db.conn)
        .await?;
    Ok(claimed.into_iter().next())
}
