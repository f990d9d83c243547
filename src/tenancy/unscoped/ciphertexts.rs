//! Stored ciphertexts of every tenant, column by column (`tenancy::sealed`): the start-up
//! check reads the newest of each, key rotation rewrites them all. Neither acts for a tenant.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Condition, Expr, LikeExpr, Order, Query, SelectStatement};
use uuid::Uuid;

use crate::error::AppResult;
use crate::tenancy::db::Db;
use crate::tenancy::sealed::SealedColumn;

/// One stored ciphertext and the row it lives in.
#[derive(Debug, Clone)]
pub struct SealedValue {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub value: String,
}

/// The rows of `column` that hold a value still to be read: all of them, or for a
/// single-use table the pending ones.
fn sealed_values(column: SealedColumn, now: DateTime<Utc>) -> SelectStatement {
    use sea_orm::sea_query::ExprTrait;
    let mut select = Query::select();
    select
        .expr_as(Expr::col(Alias::new(column.id)), Alias::new("id"))
        .expr_as(
            Expr::col(Alias::new(column.organization)),
            Alias::new("organization_id"),
        )
        .expr_as(Expr::col(Alias::new(column.column)), Alias::new("value"))
        .from(Alias::new(column.table))
        .and_where(Expr::col(Alias::new(column.column)).is_not_null());
    if column.single_use {
        select
            .and_where(Expr::col(Alias::new("used_at")).is_null())
            .and_where(Expr::col(Alias::new("expires_at")).gt(now));
    }
    select
}

async fn query_sealed(db: &Db, select: &SelectStatement) -> AppResult<Vec<SealedValue>> {
    let rows = db.conn.query_all(select).await?;
    rows.into_iter()
        .map(|row| {
            Ok(SealedValue {
                id: row.try_get("", "id")?,
                organization_id: row.try_get("", "organization_id")?,
                value: row.try_get("", "value")?,
            })
        })
        .collect()
}

/// The most recently written value of an encrypted column, to check at start that the
/// configured keys can read what is stored.
pub async fn newest_sealed(
    db: &Db,
    column: SealedColumn,
    now: DateTime<Utc>,
) -> AppResult<Option<SealedValue>> {
    let mut select = sealed_values(column, now);
    select.order_by(Alias::new("updated_at"), Order::Desc).limit(1);
    Ok(query_sealed(db, &select).await?.into_iter().next())
}

/// Up to `limit` values of an encrypted column, of any tenant, not starting with
/// `current_prefix` (the current format and key), in id order after `after`, for rotation.
pub async fn sealed_not_under(
    db: &Db,
    column: SealedColumn,
    current_prefix: &str,
    after: Option<Uuid>,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<Vec<SealedValue>> {
    use sea_orm::sea_query::ExprTrait;
    let mut select = sealed_values(column, now);
    select.and_where(Expr::col(Alias::new(column.column)).not_like(like_prefix(current_prefix)));
    if let Some(after) = after {
        select.and_where(Expr::col(Alias::new(column.id)).gt(after));
    }
    select.order_by(Alias::new(column.id), Order::Asc).limit(limit);
    query_sealed(db, &select).await
}

/// `LIKE 'prefix%'` with the prefix taken literally (key ids may hold `_`).
fn like_prefix(prefix: &str) -> LikeExpr {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    LikeExpr::new(escaped).escape('\\')
}

/// Replaces one row's ciphertext if it is still `was` (a concurrent change wins).
pub async fn reseal(
    db: &Db,
    column: SealedColumn,
    id: Uuid,
    was: &str,
    now_sealed: String,
) -> AppResult<bool> {
    use sea_orm::sea_query::ExprTrait;
    let mut update = Query::update();
    update
        .table(Alias::new(column.table))
        .value(Alias::new(column.column), now_sealed)
        .and_where(Expr::col(Alias::new(column.id)).eq(id))
        .and_where(Expr::col(Alias::new(column.column)).eq(was));
    let updated = db.conn.execute(&update).await?;
    Ok(updated.rows_affected() == 1)
}

/// Deletes the spent rows (used, or expired) of a single-use table: their ciphertexts are
/// never read again, so they go rather than being re-encrypted.
pub async fn delete_spent(db: &Db, column: SealedColumn, now: DateTime<Utc>) -> AppResult<u64> {
    use sea_orm::sea_query::ExprTrait;
    let mut delete = Query::delete();
    delete.from_table(Alias::new(column.table)).cond_where(
        Condition::any()
            .add(Expr::col(Alias::new("used_at")).is_not_null())
            .add(Expr::col(Alias::new("expires_at")).lte(now)),
    );
    Ok(db.conn.execute(&delete).await?.rows_affected())
}
