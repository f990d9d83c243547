//! Automatic persisted queries: registrations are shared by every tenant (a hash names the
//! same text for everyone), so the table is not a tenant table.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use chrono::{DateTime, Utc};
use entity::persisted_query;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::error::AppResult;
use crate::tenancy::db::Db;

/// The text registered under an APQ hash since `since`, if any replica registered it.
pub async fn find_persisted_query(db: &Db, sha256: &str, since: DateTime<Utc>) -> AppResult<Option<String>> {
    Ok(persisted_query::Entity::find_by_id(sha256.to_owned())
        .filter(persisted_query::Column::CreatedAt.gte(since))
        .one(&db.conn)
        .await?
        .map(|row| row.query))
}

/// Registers a query under its hash; registering it again renews it.
pub async fn register_persisted_query(db: &Db, sha256: &str, query: &str) -> AppResult<()> {
    let row = persisted_query::ActiveModel {
        sha256: Set(sha256.to_owned()),
        query: Set(query.to_owned()),
        created_at: Set(Utc::now()),
    };
    persisted_query::Entity::insert(row)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(persisted_query::Column::Sha256)
                .update_column(persisted_query::Column::CreatedAt)
                .to_owned(),
        )
        .exec_without_returning(&db.conn)
        .await?;
    Ok(())
}

/// Deletes APQ registrations not renewed since `since`.
pub async fn purge_persisted_queries(db: &Db, since: DateTime<Utc>) -> AppResult<u64> {
    Ok(persisted_query::Entity::delete_many()
        .filter(persisted_query::Column::CreatedAt.lt(since))
        .exec(&db.conn)
        .await?
        .rows_affected)
}
