//! Sign-ins and refresh tokens. A session belongs to a person, not a tenant, so sign-in,
//! refresh and sign-out read and write it before any organization is chosen.

#![expect(clippy::disallowed_methods, reason = "a named cross-tenant step")]

use chrono::{DateTime, Utc};
use entity::session;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::ids::{SessionFamilyId, UserId};
use crate::tenancy::audit::{self, Change, Origin};
use crate::tenancy::db::Db;
use crate::tenancy::{Access, Actor};

/// A refresh token to store: its hash, in a family (one sign-in).
pub struct NewSession {
    pub family: SessionFamilyId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts a sign-in: its first refresh token, audited as an account event.
pub async fn start_session(db: &Db, user: UserId, session: NewSession, origin: &Origin) -> AppResult<()> {
    let txn = db.begin(Access::Write).await?;
    let family = session.family;
    insert_session_in(&txn, user, session).await?;
    audit_session_event(&txn, origin, user, family).await?;
    txn.commit().await?;
    Ok(())
}

pub(super) async fn insert_session_in(
    txn: &DatabaseTransaction,
    user: UserId,
    session: NewSession,
) -> AppResult<()> {
    let now = Utc::now();
    let row = session::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.0),
        family_id: Set(session.family.0),
        token_hash: Set(session.token_hash),
        expires_at: Set(session.expires_at),
        rotated_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    session::Entity::insert(row).exec(txn).await?;
    Ok(())
}

/// Account events belong to a person, not a tenant, and name the sign-in (the session
/// family), never a token.
async fn audit_session_event(
    txn: &DatabaseTransaction,
    origin: &Origin,
    user: UserId,
    family: SessionFamilyId,
) -> AppResult<()> {
    let change = Change {
        resource_type: "Session",
        resource_id: family.0,
        before: None,
        after: None,
    };
    audit::append(txn, origin, None, Actor::User(user), Some(change)).await
}

/// The sign-in (session family) a refresh token belongs to, if it is one of ours.
pub async fn session_family_of(db: &Db, token_hash: &str) -> AppResult<Option<SessionFamilyId>> {
    Ok(session::Entity::find()
        .filter(session::Column::TokenHash.eq(token_hash))
        .one(&db.conn)
        .await?
        .map(|session| SessionFamilyId(session.family_id)))
}

/// Exchanges a refresh token (by hash) for a new one in the same family. A token that was
/// already exchanged is a sign of theft: the whole family is revoked and the call fails.
pub async fn rotate_session(
    db: &Db,
    presented_hash: &str,
    next_hash: String,
    next_expires_at: DateTime<Utc>,
    origin: &Origin,
) -> AppResult<(UserId, SessionFamilyId)> {
    let txn = db.begin(Access::Write).await?;
    let Some(current) = session::Entity::find()
        .filter(session::Column::TokenHash.eq(presented_hash))
        .one(&txn)
        .await?
    else {
        return Err(AppError::Unauthenticated);
    };
    let now = Utc::now();
    let user = UserId(current.user_id);
    let family = SessionFamilyId(current.family_id);
    if current.revoked_at.is_some() || current.expires_at <= now {
        return Err(AppError::Unauthenticated);
    }
    // Claims the token only if nobody exchanged it first, so two racing refreshes cannot
    // both succeed.
    let claimed = session::Entity::update_many()
        .col_expr(session::Column::RotatedAt, sea_orm::sea_query::Expr::value(now))
        .col_expr(session::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(session::Column::Id.eq(current.id))
        .filter(session::Column::RotatedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    // Either way the family changes (rotated, or revoked for reuse), and the trail says so.
    audit_session_event(&txn, origin, user, family).await?;
    if claimed == 0 {
        revoke_family_in(&txn, family).await?;
        txn.commit().await?;
        return Err(AppError::Unauthenticated);
    }
    let next = NewSession {
        family,
        token_hash: next_hash,
        expires_at: next_expires_at,
    };
    insert_session_in(&txn, user, next).await?;
    txn.commit().await?;
    Ok((user, family))
}

/// Revokes every refresh token of one sign-in (logout).
pub async fn end_session(db: &Db, user: UserId, family: SessionFamilyId, origin: &Origin) -> AppResult<()> {
    let txn = db.begin(Access::Write).await?;
    revoke_family_in(&txn, family).await?;
    audit_session_event(&txn, origin, user, family).await?;
    txn.commit().await?;
    Ok(())
}

async fn revoke_family_in(txn: &DatabaseTransaction, family: SessionFamilyId) -> AppResult<()> {
    let now = Utc::now();
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, sea_orm::sea_query::Expr::value(now))
        .col_expr(session::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(session::Column::FamilyId.eq(family.0))
        .filter(session::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}
