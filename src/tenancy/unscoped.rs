//! Operations that must run before a tenant is known or across tenants: signup, login,
//! sessions, credential lookup, and listing a user's own memberships. Each is named for
//! exactly what it does; nothing here takes a caller-chosen filter.
//!
//! On PostgreSQL these run on the owner's pool, as the role that owns the schema and
//! bypasses RLS (ARCHITECTURE.md lists every step); tenant work runs on the tenant pool,
//! logged in as the RLS-bound role, and never reaches this one.

#![expect(clippy::disallowed_methods, reason = "the named cross-tenant operations")]

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    JobStatus, OrgRole, agent, agent_job, agent_job_event, api_key, oauth_state, organization,
    organization_member, persisted_query, session, user,
};
use sea_orm::sea_query::{Alias, Condition, Expr, LikeExpr, Order, Query, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::audit::{self, Change, Origin};
use super::db::Db;
use super::sealed::SealedColumn;
use super::{Access, Actor, Page, PageRequest};
use crate::error::{AppError, AppResult, duplicate_as};
use crate::ids::{OrgId, SessionFamilyId, UserId};

pub async fn find_user(db: &Db, id: UserId) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id.0).one(&db.conn).await?)
}

pub async fn find_user_by_email(db: &Db, email: &str) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .one(&db.conn)
        .await?)
}

/// Users by id, for showing members of the caller's own organization.
pub async fn users_by_ids(db: &Db, ids: Vec<Uuid>) -> AppResult<HashMap<Uuid, user::Model>> {
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(&db.conn)
        .await?;
    Ok(users.into_iter().map(|user| (user.id, user)).collect())
}

pub async fn organization_slug_taken(db: &Db, slug: &str) -> AppResult<bool> {
    let found = organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(&db.conn)
        .await?;
    Ok(found.is_some())
}

/// A user's organizations with the role held in each, oldest membership first.
pub async fn memberships_of(db: &Db, user: UserId) -> AppResult<Vec<(organization::Model, OrgRole)>> {
    let rows = organization_member::Entity::find()
        .filter(organization_member::Column::UserId.eq(user.0))
        .find_also_related(organization::Entity)
        .order_by_asc(organization_member::Column::Id)
        .all(&db.conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(member, org)| org.map(|org| (org, member.role)))
        .collect())
}

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

pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
}

pub struct NewOrganization {
    pub name: String,
    pub slug: String,
    pub kind: entity::OrgKind,
    pub plan: entity::Plan,
    pub monthly_budget_cents: i64,
}

/// A refresh token to store: its hash, in a family (one sign-in).
pub struct NewSession {
    pub family: SessionFamilyId,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// Signup: the user, their organization, their ownership of it, their first refresh token
/// and the audit row, all or nothing.
pub async fn create_account(
    db: &Db,
    new_user: NewUser,
    new_org: NewOrganization,
    first_session: NewSession,
    origin: &Origin,
) -> AppResult<(user::Model, organization::Model)> {
    let txn = db.begin(Access::Write).await?;
    let now = Utc::now();
    let user = user::ActiveModel {
        id: Set(UserId::generate().0),
        email: Set(new_user.email),
        password_hash: Set(new_user.password_hash),
        display_name: Set(new_user.display_name),
        is_platform_admin: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let user = user::Entity::insert(user)
        .exec_with_returning(&txn)
        .await
        .map_err(duplicate_as("email", "an account with this email already exists"))?;
    let owner = UserId(user.id);
    let org = insert_owned_organization(&txn, owner, new_org).await?;
    insert_session_in(&txn, owner, first_session).await?;
    let change = Change::new("User", user.id, None, Some(&user));
    audit::append(&txn, origin, Some(org.id), Actor::User(owner), Some(change)).await?;
    txn.commit().await?;
    Ok((user, org))
}

/// A new organization owned by an existing user.
pub async fn create_organization(
    db: &Db,
    owner: UserId,
    new_org: NewOrganization,
    origin: &Origin,
) -> AppResult<organization::Model> {
    let txn = db.begin(Access::Write).await?;
    let org = insert_owned_organization(&txn, owner, new_org).await?;
    let change = Change::new("Organization", org.id, None, Some(&org));
    audit::append(&txn, origin, Some(org.id), Actor::User(owner), Some(change)).await?;
    txn.commit().await?;
    Ok(org)
}

async fn insert_owned_organization(
    txn: &DatabaseTransaction,
    owner: UserId,
    new_org: NewOrganization,
) -> AppResult<organization::Model> {
    let now = Utc::now();
    let org = organization::ActiveModel {
        id: Set(OrgId::generate().0),
        slug: Set(new_org.slug),
        name: Set(new_org.name),
        kind: Set(new_org.kind),
        plan: Set(new_org.plan),
        monthly_budget_cents: Set(new_org.monthly_budget_cents),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let org = organization::Entity::insert(org)
        .exec_with_returning(txn)
        .await
        .map_err(duplicate_as("slug", "this slug is already taken"))?;
    let membership = organization_member::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org.id),
        user_id: Set(owner.0),
        role: Set(OrgRole::Owner),
        created_at: Set(now),
        updated_at: Set(now),
    };
    organization_member::Entity::insert(membership).exec(txn).await?;
    Ok(org)
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

async fn insert_session_in(txn: &DatabaseTransaction, user: UserId, session: NewSession) -> AppResult<()> {
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

/// Every organization, newest first, for platform admins.
pub async fn all_organizations(db: &Db, page: PageRequest) -> AppResult<Page<organization::Model>> {
    super::page::keyset_page(organization::Entity::find(), page, &db.conn).await
}

/// A platform admin's change of an organization's plan and budget, audited in that
/// organization's trail.
pub async fn set_organization_plan(
    db: &Db,
    org: OrgId,
    plan: entity::Plan,
    monthly_budget_cents: i64,
    admin: UserId,
    origin: &Origin,
) -> AppResult<organization::Model> {
    let txn = db.begin(Access::Write).await?;
    let before = organization::Entity::find_by_id(org.0)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let mut changed: organization::ActiveModel = before.clone().into();
    changed.plan = Set(plan);
    changed.monthly_budget_cents = Set(monthly_budget_cents);
    changed.updated_at = Set(Utc::now());
    let after = organization::Entity::update(changed).exec(&txn).await?;
    let change = Change::new("Organization", org.0, Some(&before), Some(&after));
    audit::append(&txn, origin, Some(org.0), Actor::User(admin), Some(change)).await?;
    txn.commit().await?;
    Ok(after)
}

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

/// Writes the audit row of a change in the change's own transaction. Tenant mutations reach
/// it through [`super::Tenant::write`]; the account events above call it directly.
/// A job claimed by a worker: the job, its RUNNING event, and its agent if the job's
/// organization may still use it (it may have been deleted or unshared since the job queued).
pub struct ClaimedJob {
    pub job: agent_job::Model,
    pub event: agent_job_event::Model,
    pub agent: Option<agent::Model>,
}

/// Claims up to `limit` due jobs of any tenant under the lease token `lease`: queued ones whose
/// time has come, and running ones whose holder stopped renewing its lease. Each claimed job
/// is RUNNING, leased until `lease_until`, one attempt further, and gets its RUNNING event in
/// the same transaction. On PostgreSQL concurrent claimers skip each other's rows
/// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time.
pub async fn claim_jobs(
    db: &Db,
    lease: Uuid,
    limit: u64,
    lease_until: DateTime<Utc>,
) -> AppResult<Vec<ClaimedJob>> {
    use sea_orm::sea_query::{Expr, Func, LockBehavior, LockType};
    use sea_orm::{
        Condition, ConnectionTrait, DbBackend, ExprTrait, FromQueryResult, JoinType, QuerySelect, QueryTrait,
    };

    let backend = db.backend();
    let txn = db.begin(Access::Write).await?;
    if backend == DbBackend::Postgres {
        // Bookkeeping, as `Tenant::write_progress` explains: a claim lost to a database
        // crash is claimed again.
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    let now = Utc::now();
    // Jobs whose holder stopped renewing its lease first (few, and waiting longest), then
    // queued ones in order: two index range scans, where one `OR` of both read and sorted
    // every due job on each claim.
    let lease_expired = Condition::all()
        .add(agent_job::Column::Status.eq(JobStatus::Running))
        .add(agent_job::Column::LeaseExpiresAt.lt(now));
    let queued = Condition::all()
        .add(agent_job::Column::Status.eq(JobStatus::Queued))
        .add(agent_job::Column::RunAfter.lte(now));
    let mut ids: Vec<Uuid> = Vec::new();
    for (due, order) in [
        (lease_expired, agent_job::Column::LeaseExpiresAt),
        (queued, agent_job::Column::RunAfter),
    ] {
        let wanted = limit.saturating_sub(ids.len() as u64);
        if wanted == 0 {
            break;
        }
        let mut candidates = agent_job::Entity::find()
            .select_only()
            .column(agent_job::Column::Id)
            .filter(due)
            .order_by_asc(order)
            .limit(wanted);
        if backend == DbBackend::Postgres {
            candidates = candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        ids.extend(candidates.into_tuple::<Uuid>().all(&txn).await?);
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let jobs = agent_job::Entity::update_many()
        .col_expr(agent_job::Column::Status, Expr::value(JobStatus::Running))
        .col_expr(
            agent_job::Column::Attempts,
            Expr::col(agent_job::Column::Attempts).add(1),
        )
        .col_expr(
            agent_job::Column::LastSeq,
            Expr::col(agent_job::Column::LastSeq).add(1),
        )
        .col_expr(agent_job::Column::WorkerId, Expr::value(lease))
        .col_expr(agent_job::Column::LeaseExpiresAt, Expr::value(lease_until))
        .col_expr(
            agent_job::Column::StartedAt,
            Func::coalesce([Expr::col(agent_job::Column::StartedAt), Expr::value(now)]).into(),
        )
        .col_expr(agent_job::Column::UpdatedAt, Expr::value(now))
        .filter(agent_job::Column::Id.is_in(ids.clone()))
        .exec_with_returning(&txn)
        .await?;
    let events: Vec<agent_job_event::ActiveModel> = jobs
        .iter()
        .map(|job| agent_job_event::ActiveModel {
            id: Set(Uuid::now_v7()),
            organization_id: Set(job.organization_id),
            project_id: Set(job.project_id),
            job_id: Set(job.id),
            seq: Set(job.last_seq),
            status: Set(JobStatus::Running),
            progress: Set(job.progress),
            message: Set(Some(format!(
                "attempt {} of {} started",
                job.attempts, job.max_attempts
            ))),
            created_at: Set(now),
        })
        .collect();
    let events = agent_job_event::Entity::insert_many(events)
        .exec_with_returning(&txn)
        .await?;
    // Each job's agent, if its organization may still use it: one statement for the batch.
    let job_agent = agent_job::Entity::belongs_to(agent::Entity)
        .from(agent_job::Column::AgentId)
        .to(agent::Column::Id)
        .into();
    let usable = super::sharing::usable_agents(
        Expr::col((agent_job::Entity, agent_job::Column::OrganizationId)),
        Condition::all(),
    );
    let agents_query = agent::Entity::find()
        .join_rev(JoinType::InnerJoin, job_agent)
        .column_as(agent_job::Column::Id, "claimed_job_id")
        .filter(agent_job::Column::Id.is_in(ids))
        .filter(usable)
        .build(backend);
    let mut agents = HashMap::new();
    for row in txn.query_all_raw(agents_query).await? {
        agents.insert(
            row.try_get::<Uuid>("", "claimed_job_id")?,
            agent::Model::from_query_result(&row, "")?,
        );
    }
    txn.commit().await?;
    let mut events: HashMap<Uuid, agent_job_event::Model> =
        events.into_iter().map(|e| (e.job_id, e)).collect();
    Ok(jobs
        .into_iter()
        .filter_map(|job| {
            let event = events.remove(&job.id)?;
            let agent = agents.remove(&job.id);
            Some(ClaimedJob { job, event, agent })
        })
        .collect())
}

/// Events of one job after `after_seq`, oldest first, at most `limit`, for the replica link:
/// another replica announced them by organization, job and seq, and this one delivers them
/// to its own subscribers, each of whom sees only its organization's events. One statement
/// instead of a tenant transaction's four round trips, since every relayed event waits on it;
/// the organization is matched explicitly as RLS would.
pub async fn relayed_events(
    db: &Db,
    org: OrgId,
    job: Uuid,
    after_seq: i64,
    limit: u64,
) -> AppResult<Vec<agent_job_event::Model>> {
    use sea_orm::QuerySelect;

    Ok(agent_job_event::Entity::find()
        .filter(agent_job_event::Column::OrganizationId.eq(org.0))
        .filter(agent_job_event::Column::JobId.eq(job))
        .filter(agent_job_event::Column::Seq.gt(after_seq))
        .order_by_asc(agent_job_event::Column::Seq)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

/// How many jobs of all tenants wait and run, for the queue-depth metric. Finished jobs are
/// not counted: the claim index covers the two live statuses.
pub async fn jobs_waiting_or_running(db: &Db) -> AppResult<Vec<(&'static str, u64)>> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::Expr;

    let live = [(JobStatus::Queued, "QUEUED"), (JobStatus::Running, "RUNNING")];
    let counted: HashMap<JobStatus, i64> = agent_job::Entity::find()
        .select_only()
        .column(agent_job::Column::Status)
        .column_as(Expr::cust("COUNT(*)"), "jobs")
        .filter(agent_job::Column::Status.is_in(live.map(|(status, _)| status)))
        .group_by(agent_job::Column::Status)
        .into_tuple::<(JobStatus, i64)>()
        .all(&db.conn)
        .await?
        .into_iter()
        .collect();
    // A status with no jobs has no row, and still reads 0.
    Ok(live
        .map(|(status, label)| (label, counted.get(&status).copied().unwrap_or(0).max(0) as u64))
        .to_vec())
}
