//! One organization's rows across every tenant table: exported as JSON lines, or erased in
//! small transactions that can stop anywhere and resume. Operators reach these through
//! `tenantql org export|delete`, owners through `deleteOrganization`. Both run on the
//! owner's pool, across RLS, like `unscoped`, and name exactly one organization.

#![expect(clippy::disallowed_methods, reason = "one organization's rows in every table")]

use std::io::Write;
use std::marker::PhantomData;

use chrono::Utc;
use entity::{api_key, organization, organization_erasure, organization_member};
use futures_util::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    AccessMode, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, ExprTrait,
    IsolationLevel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::audit::{self, Change, Origin};
use super::db::Db;
use super::tables::{TableVisitor, TenantEntity, row_id, visit_tenant_tables};
use super::{Access, Actor};
use crate::error::{AppError, AppResult};
use crate::ids::OrgId;

/// Rows per erasure transaction: small enough not to hold locks for long.
const CHUNK: u64 = 500;

/// What an erasure (or export) does with one tenant table.
trait TenantTable: Send + Sync {
    fn name(&self) -> &'static str;
    fn export<'a>(
        &'a self,
        snapshot: &'a DatabaseTransaction,
        org: OrgId,
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, AppResult<u64>>;
    /// Deletes one chunk of the organization's rows and adds the count to the erasure's
    /// progress in the same transaction; 0 once none are left.
    fn erase_chunk<'a>(&'a self, db: &'a Db, org: OrgId, erasure: Uuid) -> BoxFuture<'a, AppResult<u64>>;
}

struct Table<E>(PhantomData<E>);

/// Every tenant table, children before their parents ([`visit_tenant_tables`]).
fn tenant_tables() -> Vec<Box<dyn TenantTable>> {
    struct Tables(Vec<Box<dyn TenantTable>>);
    impl TableVisitor for Tables {
        fn visit<E: TenantEntity>(&mut self) {
            self.0.push(Box::new(Table::<E>(PhantomData)));
        }
    }
    let mut tables = Tables(Vec::new());
    visit_tenant_tables(&mut tables);
    tables.0
}

impl<E: TenantEntity> TenantTable for Table<E> {
    fn name(&self) -> &'static str {
        E::default().table_name()
    }

    fn export<'a>(
        &'a self,
        snapshot: &'a DatabaseTransaction,
        org: OrgId,
        out: &'a mut (dyn Write + Send),
    ) -> BoxFuture<'a, AppResult<u64>> {
        Box::pin(async move {
            let (mut after, mut written) = (None, 0);
            loop {
                let mut page = E::find()
                    .filter(E::tenant_column().eq(org.0))
                    .order_by_asc(E::id_column())
                    .limit(CHUNK);
                if let Some(after) = after {
                    page = page.filter(E::id_column().gt(after));
                }
                let rows = page.all(snapshot).await?;
                for row in &rows {
                    let line = serde_json::json!({ "table": self.name(), "row": audit::redacted(row) });
                    writeln!(out, "{line}").map_err(AppError::internal)?;
                }
                written += rows.len() as u64;
                match rows.last() {
                    Some(last) if rows.len() as u64 == CHUNK => after = Some(row_id::<E>(last)),
                    _ => return Ok(written),
                }
            }
        })
    }

    fn erase_chunk<'a>(&'a self, db: &'a Db, org: OrgId, erasure: Uuid) -> BoxFuture<'a, AppResult<u64>> {
        Box::pin(async move {
            let txn = db.begin(Access::Write).await?;
            let ids: Vec<Uuid> = E::find()
                .select_only()
                .column(E::id_column())
                .filter(E::tenant_column().eq(org.0))
                .limit(CHUNK)
                .into_tuple()
                .all(&txn)
                .await?;
            if ids.is_empty() {
                return Ok(0);
            }
            let deleted = E::delete_many()
                .filter(E::id_column().is_in(ids))
                .exec(&txn)
                .await?
                .rows_affected;
            organization_erasure::Entity::update_many()
                .col_expr(
                    organization_erasure::Column::RowsDeleted,
                    Expr::col(organization_erasure::Column::RowsDeleted).add(deleted as i64),
                )
                .filter(organization_erasure::Column::Id.eq(erasure))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            Ok(deleted)
        })
    }
}

/// Writes every row of `org` as a JSON line `{"table": …, "row": …}`, parents first, with
/// secret-bearing fields (hashes, tokens, ciphertexts) replaced as in the audit trail.
/// Returns the number of rows.
pub async fn export(db: &Db, org: OrgId, out: &mut (dyn Write + Send)) -> AppResult<u64> {
    // One snapshot for every table, so the lines agree with each other.
    let snapshot = match db.backend() {
        DbBackend::Postgres => {
            db.conn
                .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                .await?
        }
        _ => db.begin(Access::Read).await?,
    };
    if organization::Entity::find_by_id(org.0)
        .one(&snapshot)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound("organization"));
    }
    let mut rows = 0;
    for table in tenant_tables().iter().rev() {
        rows += table.export(&snapshot, org, out).await?;
    }
    snapshot.commit().await?;
    Ok(rows)
}

/// Begins erasing `org`, or finds the erasure already begun. In one transaction it records
/// the erasure outside the tenant, appends its audit row (with no organization, so it
/// survives), and removes the organization's members and API keys, so that nobody acts in
/// it from then on. `NOT_FOUND` if there is no such organization and no erasure of it.
pub async fn begin(
    db: &Db,
    org: OrgId,
    actor: Actor,
    origin: &Origin,
) -> AppResult<organization_erasure::Model> {
    let txn = db.begin(Access::Write).await?;
    let started = organization_erasure::Entity::find()
        .filter(organization_erasure::Column::ErasedOrganizationId.eq(org.0))
        .one(&txn)
        .await?;
    if let Some(erasure) = started {
        return Ok(erasure);
    }
    let organization = organization::Entity::find_by_id(org.0)
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let requested_by = match actor {
        Actor::User(user) => Some(user.0),
        _ => None,
    };
    let erasure = organization_erasure::Model {
        id: Uuid::now_v7(),
        erased_organization_id: org.0,
        organization_name: organization.name.clone(),
        requested_by,
        requested_at: Utc::now(),
        rows_deleted: 0,
        completed_at: None,
    };
    let row = organization_erasure::ActiveModel {
        id: Set(erasure.id),
        erased_organization_id: Set(org.0),
        organization_name: Set(erasure.organization_name.clone()),
        requested_by: Set(requested_by),
        requested_at: Set(erasure.requested_at),
        rows_deleted: Set(0),
        completed_at: Set(None),
    };
    // Two erasures begun at once: the second finds the first's record and works on it.
    let recorded = organization_erasure::Entity::insert(row)
        .on_conflict(
            OnConflict::column(organization_erasure::Column::ErasedOrganizationId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    if recorded == 0 {
        txn.rollback().await?;
        return organization_erasure::Entity::find()
            .filter(organization_erasure::Column::ErasedOrganizationId.eq(org.0))
            .one(&db.conn)
            .await?
            .ok_or(AppError::NotFound("organization"));
    }

    let change = Change::new("Organization", org.0, Some(&organization), None);
    audit::append(&txn, origin, None, actor, Some(change)).await?;
    organization_member::Entity::delete_many()
        .filter(organization_member::Column::OrganizationId.eq(org.0))
        .exec(&txn)
        .await?;
    api_key::Entity::delete_many()
        .filter(api_key::Column::OrganizationId.eq(org.0))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(erasure)
}

/// Deletes every remaining row of the erasure's organization, table by table. Each chunk
/// commits on its own, so an interrupted run loses nothing and a second run finishes it.
pub async fn delete_rows(db: &Db, erasure: &organization_erasure::Model) -> AppResult<u64> {
    let org = OrgId(erasure.erased_organization_id);
    let mut deleted = 0;
    for table in tenant_tables() {
        loop {
            let chunk = table.erase_chunk(db, org, erasure.id).await?;
            if chunk == 0 {
                break;
            }
            deleted += chunk;
        }
    }
    Ok(deleted)
}

/// Marks the erasure complete: its rows and files are gone.
pub async fn complete(db: &Db, erasure: &organization_erasure::Model) -> AppResult<()> {
    organization_erasure::Entity::update_many()
        .col_expr(organization_erasure::Column::CompletedAt, Expr::value(Utc::now()))
        .filter(organization_erasure::Column::Id.eq(erasure.id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Erasures begun and not completed (their process stopped midway).
pub async fn unfinished(db: &Db) -> AppResult<Vec<organization_erasure::Model>> {
    Ok(organization_erasure::Entity::find()
        .filter(organization_erasure::Column::CompletedAt.is_null())
        .all(&db.conn)
        .await?)
}
