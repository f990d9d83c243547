//! The API-key lookup. A request with a key names no tenant until its key is read: the
//! key's prefix is the only thing known.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use entity::{OrgRole, api_key, organization, organization_member};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::error::AppResult;
use crate::tenancy::db::Db;

/// The API key with this prefix, revoked or not (the caller decides validity), its
/// organization, and its creator's role there now (`None` once they are no longer a member).
pub async fn find_api_key(
    db: &Db,
    prefix: &str,
) -> AppResult<Option<(api_key::Model, organization::Model, Option<OrgRole>)>> {
    let found = api_key::Entity::find()
        .filter(api_key::Column::Prefix.eq(prefix))
        .find_also_related(organization::Entity)
        .one(&db.conn)
        .await?;
    let Some((key, Some(org))) = found else {
        return Ok(None);
    };
    let creator = organization_member::Entity::find()
        .filter(organization_member::Column::OrganizationId.eq(key.organization_id))
        .filter(organization_member::Column::UserId.eq(key.created_by))
        .one(&db.conn)
        .await?;
    Ok(Some((key, org, creator.map(|member| member.role))))
}
