//! The scoped handle: every statement on a tenant table goes through here, filtered to the
//! request's organization (and project, for project-restricted API keys), inside a
//! transaction on the tenant pool, whose PostgreSQL login role is bound by RLS, with the
//! organization set for the policies.

#![expect(
    clippy::disallowed_methods,
    reason = "the one module allowed to build tenant queries"
)]

use std::sync::{Arc, Mutex, PoisonError};

use entity::{ProjectRole, agent, agent_job, agent_share, project, project_member};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend,
    DeleteMany, EntityTrait, IntoActiveModel, JoinType, ModelTrait, PaginatorTrait, QueryFilter, QuerySelect,
    RelationDef, Select, Statement, TryGetableMany, UpdateMany,
};
use uuid::Uuid;

use super::audit::{Change, Origin};
use super::context::{Actor, TenantContext};
use super::db::{Access, TenantDb};
use super::page::{Page, PageRequest, keyset, keyset_page};
use super::sharing::{accepted_by, offered_to, usable_agents};
use super::tables::TenantEntity;
use super::tables::{as_uuid, row_id};
use crate::error::{AppError, AppResult};
use crate::ids::{OrgId, ProjectId};

/// Whether a commit waits until the database has flushed it to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    Wait,
    /// PostgreSQL's `synchronous_commit = off` for this transaction alone: a database crash
    /// can lose its last fraction of a second of such commits, never corrupt or reorder them.
    DontWait,
}

/// Opens a tenant transaction on the tenant pool. On PostgreSQL its connections log in as
/// the RLS-bound role, and the first statement sets the organization for this transaction
/// only, so the database itself refuses other tenants' rows even if an application filter
/// were missing, and even to a statement that resets or switches the role.
pub async fn begin_tenant_transaction(
    db: &TenantDb,
    org: OrgId,
    access: Access,
) -> AppResult<DatabaseTransaction> {
    begin_flushing(db, org, access, Flush::Wait).await
}

async fn begin_flushing(
    db: &TenantDb,
    org: OrgId,
    access: Access,
    flush: Flush,
) -> AppResult<DatabaseTransaction> {
    let backend = db.backend();
    // No `READ ONLY` for reads on PostgreSQL: it costs a round trip of its own, and the
    // tenant role's grants and policies are the lock that matters.
    let txn = db.begin(access).await?;
    if backend == DbBackend::Postgres {
        let settings = match flush {
            Flush::Wait => "SELECT set_config('app.organization_id', $1, true)",
            Flush::DontWait => {
                "SELECT set_config('app.organization_id', $1, true), \
                 set_config('synchronous_commit', 'off', true)"
            }
        };
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            settings,
            [org.to_string().into()],
        ))
        .await?;
    }
    Ok(txn)
}

/// What resolvers hold: the request's tenant context and the tenant pool (never the
/// owner's), offering nothing but scoped transactions.
#[derive(Clone)]
pub struct Tenant {
    db: TenantDb,
    ctx: Arc<TenantContext>,
    /// Set for API operations, whose writes each leave an audit row. Job bookkeeping
    /// (claims, leases, progress) has none: the job's own event log records it.
    origin: Option<Arc<Origin>>,
    /// The read transaction of the operation this handle serves, if it shares one.
    shared: Option<Arc<SharedRead>>,
}

/// One read transaction for every field of an operation: begun by its first read, with
/// the tenant set once, and ended by [`SharedRead::finish`] when the operation is done.
/// A write of the operation ends it too, so that later reads (begun afresh) see the
/// change: on SQLite a read transaction keeps the snapshot of its first read.
#[derive(Default)]
pub struct SharedRead(tokio::sync::Mutex<Option<Arc<Scoped>>>);

impl SharedRead {
    async fn scoped(&self, tenant: &Tenant) -> AppResult<Arc<Scoped>> {
        let mut open = self.0.lock().await;
        if let Some(scoped) = open.as_ref() {
            return Ok(scoped.clone());
        }
        let txn = begin_flushing(&tenant.db, tenant.ctx.org, Access::Read, Flush::Wait).await?;
        let scoped = Arc::new(Scoped::new(txn, tenant.ctx.clone(), false));
        *open = Some(scoped.clone());
        Ok(scoped)
    }

    /// Ends the transaction, if one was begun. A field still holding it (none should, once
    /// the operation is done) rolls it back when it lets go.
    pub async fn finish(&self) -> AppResult<()> {
        let open = self.0.lock().await.take();
        if let Some(scoped) = open.and_then(|scoped| Arc::try_unwrap(scoped).ok()) {
            scoped.txn.commit().await?;
        }
        Ok(())
    }
}

impl Tenant {
    pub fn new(db: TenantDb, ctx: Arc<TenantContext>) -> Self {
        Self {
            db,
            ctx,
            origin: None,
            shared: None,
        }
    }

    /// Reads of this handle go through `shared`, the operation's one read transaction, when
    /// it has one.
    pub fn sharing(self, shared: Option<Arc<SharedRead>>) -> Self {
        Self { shared, ..self }
    }

    /// Every [`Tenant::write`] of this handle records one audit row for `origin`.
    pub fn audited(self, origin: Origin) -> Self {
        Self {
            origin: Some(Arc::new(origin)),
            ..self
        }
    }

    pub fn context(&self) -> &TenantContext {
        &self.ctx
    }

    pub async fn read<T, F>(&self, work: F) -> AppResult<T>
    where
        F: for<'s> AsyncFnOnce(&'s Scoped) -> AppResult<T>,
    {
        match &self.shared {
            Some(shared) => work(&*shared.scoped(self).await?).await,
            None => self.run(Access::Read, Flush::Wait, work).await,
        }
    }

    /// [`Tenant::write`] for a running job's bookkeeping (its progress, its lease), whose
    /// commit does not wait for the disk: the flush's tail latency on a busy disk would
    /// otherwise delay every live event. A database crash can lose the last fraction of a
    /// second of it, and the queue already survives that as it survives a worker crash: the
    /// job is claimed again once its lease expires. Starts, ends, usage, secrets and content
    /// written for a job keep waiting for the flush.
    pub async fn write_progress<T, F>(&self, work: F) -> AppResult<T>
    where
        F: for<'s> AsyncFnOnce(&'s Scoped) -> AppResult<T>,
    {
        self.run(Access::Write, Flush::DontWait, work).await
    }

    /// Runs `work` in one transaction, committed only if it succeeds: a change, everything
    /// written with it and its audit row land together or not at all.
    pub async fn write<T, F>(&self, work: F) -> AppResult<T>
    where
        F: for<'s> AsyncFnOnce(&'s Scoped) -> AppResult<T>,
    {
        self.run(Access::Write, Flush::Wait, work).await
    }

    async fn run<T, F>(&self, access: Access, flush: Flush, work: F) -> AppResult<T>
    where
        F: for<'s> AsyncFnOnce(&'s Scoped) -> AppResult<T>,
    {
        if access == Access::Write
            && let Some(shared) = &self.shared
        {
            shared.finish().await?;
        }
        let txn = begin_flushing(&self.db, self.ctx.org, access, flush).await?;
        let scoped = Scoped::new(
            txn,
            self.ctx.clone(),
            access == Access::Write && self.origin.is_some(),
        );
        let mut result = work(&scoped).await;
        if let (Ok(_), true, Some(origin)) = (&result, scoped.audited, &self.origin)
            && let Err(error) = scoped.append_audit_entry(origin).await
        {
            result = Err(error);
        }
        match result {
            Ok(value) => {
                scoped.txn.commit().await?;
                Ok(value)
            }
            Err(error) => {
                let _ = scoped.txn.rollback().await;
                Err(error)
            }
        }
    }
}

/// One tenant transaction. Every select starts filtered to the tenant; every insert is
/// stamped with it; updates and deletes match only rows inside it.
pub struct Scoped {
    txn: DatabaseTransaction,
    ctx: Arc<TenantContext>,
    /// Whether this transaction ends with an audit row (job bookkeeping does not).
    audited: bool,
    /// What the audit row names: the first row this transaction inserted, updated or deleted.
    first_change: Mutex<Option<Change>>,
    /// What else the change did, shown beside the row's state after it ([`Scoped::note`]).
    notes: Mutex<serde_json::Map<String, serde_json::Value>>,
}

impl Scoped {
    fn new(txn: DatabaseTransaction, ctx: Arc<TenantContext>, audited: bool) -> Self {
        Self {
            txn,
            ctx,
            audited,
            first_change: Mutex::new(None),
            notes: Mutex::default(),
        }
    }

    pub fn context(&self) -> &TenantContext {
        &self.ctx
    }

    fn record(&self, change: impl FnOnce() -> Change) {
        if !self.audited {
            return;
        }
        let mut first = self.first_change.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(change());
        }
    }

    /// Records on the audit row something the change did besides its first row (the API
    /// keys revoked with a member, say), under `name` beside the row's state after it.
    pub fn note(&self, name: &str, value: serde_json::Value) {
        if self.audited {
            let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
            notes.insert(name.to_owned(), value);
        }
    }

    async fn append_audit_entry(&self, origin: &Origin) -> AppResult<()> {
        let mut change = self
            .first_change
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let notes = std::mem::take(&mut *self.notes.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(change) = change.as_mut().filter(|_| !notes.is_empty()) {
            let after = change
                .after
                .get_or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(after) = after {
                after.extend(notes);
            }
        }
        super::audit::append(&self.txn, origin, Some(self.ctx.org.0), self.ctx.actor, change).await
    }

    fn scope<E: TenantEntity, Q: QueryFilter>(&self, query: Q) -> Q {
        let query = query.filter(E::tenant_column().eq(self.ctx.org.0));
        match (E::project_column(), self.ctx.only_project) {
            (Some(column), Some(project)) => query.filter(column.eq(project.0)),
            _ => query,
        }
    }

    /// A select already restricted to the tenant; refine it, then run it with
    /// [`Scoped::one`], [`Scoped::all`] or [`Scoped::page`].
    pub fn select<E: TenantEntity>(&self) -> Select<E> {
        self.scope::<E, _>(E::find())
    }

    pub async fn one<E: TenantEntity>(&self, query: Select<E>) -> AppResult<Option<E::Model>> {
        Ok(query.one(&self.txn).await?)
    }

    /// The tenant's row whose `column` holds `value`, for columns unique within a tenant.
    pub async fn find_by<C>(
        &self,
        column: C,
        value: impl Into<sea_orm::Value>,
    ) -> AppResult<Option<<C::EntityName as EntityTrait>::Model>>
    where
        C: ColumnTrait,
        C::EntityName: TenantEntity,
    {
        self.one(self.select::<C::EntityName>().filter(column.eq(value)))
            .await
    }

    pub async fn all<E: TenantEntity>(&self, query: Select<E>) -> AppResult<Vec<E::Model>> {
        Ok(query.all(&self.txn).await?)
    }

    /// Runs a select of the tenant's rows narrowed to computed columns (sums, counts).
    pub async fn one_tuple<E: TenantEntity, T: TryGetableMany>(
        &self,
        query: Select<E>,
    ) -> AppResult<Option<T>> {
        Ok(query.into_tuple::<T>().one(&self.txn).await?)
    }

    pub async fn count<E: TenantEntity>(&self, query: Select<E>) -> AppResult<u64>
    where
        E::Model: Sync,
    {
        Ok(query.count(&self.txn).await?)
    }

    /// The row with this id, or `NOT_FOUND` naming `what` (also for another tenant's row).
    pub async fn get<E: TenantEntity>(&self, id: Uuid, what: &'static str) -> AppResult<E::Model> {
        self.one(self.select::<E>().filter(E::id_column().eq(id)))
            .await?
            .ok_or(AppError::NotFound(what))
    }

    /// Newest first, by the time-ordered id, continuing after `page.after`.
    pub async fn page<E: TenantEntity>(
        &self,
        query: Select<E>,
        page: PageRequest,
    ) -> AppResult<Page<E::Model>> {
        keyset_page(query, page, &self.txn).await
    }

    /// Inserts a row stamped with the tenant's organization, whatever the model said.
    pub async fn insert<E, A>(&self, mut model: A) -> AppResult<E::Model>
    where
        E: TenantEntity,
        A: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
        E::Model: IntoActiveModel<A>,
    {
        model.set(E::tenant_column(), self.ctx.org.0.into());
        let inserted = E::insert(model).exec_with_returning(&self.txn).await?;
        self.record(|| Change::new(E::RESOURCE, row_id::<E>(&inserted), None, Some(&inserted)));
        Ok(inserted)
    }

    /// Updates the row the model names if it is inside the tenant; `NOT_FOUND` otherwise.
    pub async fn update<E, A>(&self, mut model: A, what: &'static str) -> AppResult<E::Model>
    where
        E: TenantEntity,
        A: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
        E::Model: IntoActiveModel<A>,
    {
        let id = model
            .get(E::id_column())
            .into_value()
            .and_then(as_uuid)
            .ok_or(AppError::NotFound(what))?;
        // The row as it was, for the audit trail (an unaudited write skips the read).
        let before = if self.audited {
            Some(self.get::<E>(id, what).await?)
        } else {
            None
        };
        model.set(E::tenant_column(), self.ctx.org.0.into());
        let update = self.scope::<E, _>(E::update(model).validate()?);
        let after = update
            .exec(&self.txn)
            .await
            .map_err(|error| match AppError::from(error) {
                AppError::NotFound(_) => AppError::NotFound(what),
                other => other,
            })?;
        self.record(|| Change::new(E::RESOURCE, id, before.as_ref(), Some(&after)));
        Ok(after)
    }

    /// Deletes the row with this id if it is inside the tenant; `NOT_FOUND` otherwise.
    pub async fn delete<E: TenantEntity>(&self, id: Uuid, what: &'static str) -> AppResult<()> {
        let before = if self.audited {
            Some(self.get::<E>(id, what).await?)
        } else {
            None
        };
        let deleted = self
            .delete_where::<E>(self.delete_many::<E>().filter(E::id_column().eq(id)))
            .await?;
        if deleted == 0 {
            return Err(AppError::NotFound(what));
        }
        self.record(|| Change::new(E::RESOURCE, id, before.as_ref(), None));
        Ok(())
    }

    /// Runs a scoped update and returns the rows it changed (none if the filter matched none).
    pub async fn update_returning<E: TenantEntity>(&self, update: UpdateMany<E>) -> AppResult<Vec<E::Model>> {
        let updated = update.exec_with_returning(&self.txn).await?;
        if let Some(first) = updated.first() {
            self.record(|| Change::new(E::RESOURCE, row_id::<E>(first), None, Some(first)));
        }
        Ok(updated)
    }

    /// Agents this tenant may read: its own, every GLOBAL one, and SELECTIVE ones offered to
    /// it whose current revision it accepted; for a project-restricted key, of its own only those of its project or of no
    /// project. Writes still go through [`Scoped::update`] and [`Scoped::delete`], which match
    /// only the tenant's own (and, for such a key, its project's).
    pub fn select_readable_agents(&self) -> Select<agent::Entity> {
        agent::Entity::find().filter(self.readable_agents())
    }

    /// The agents this tenant may read: its own (within the project of a project-restricted
    /// key) and those shared with it and accepted.
    fn readable_agents(&self) -> Condition {
        let mut own = Condition::all();
        if let Some(project) = self.ctx.only_project {
            own = own.add(
                Condition::any()
                    .add(agent::Column::ProjectId.eq(project.0))
                    .add(agent::Column::ProjectId.is_null()),
            );
        }
        usable_agents(Expr::value(self.ctx.org.0), own)
    }

    /// A page of one project's jobs, narrowed by `narrow`, each with its agent if this tenant
    /// may read it (the rule of [`Scoped::select_readable_agents`]), in one statement;
    /// `NOT_FOUND` as [`Scoped::page_in_project`].
    pub async fn page_jobs_with_agents(
        &self,
        project: ProjectId,
        narrow: impl FnOnce(Select<agent_job::Entity>) -> Select<agent_job::Entity>,
        page: PageRequest,
    ) -> AppResult<Page<(agent_job::Model, Option<agent::Model>)>> {
        let readable = self.readable_agents();
        let job_agent: RelationDef = agent_job::Entity::belongs_to(agent::Entity)
            .from(agent_job::Column::AgentId)
            .to(agent::Column::Id)
            .on_condition(move |_, _| readable.clone())
            .into();
        let jobs = narrow(
            self.select::<agent_job::Entity>()
                .filter(agent_job::Column::ProjectId.eq(project.0)),
        )
        .join(JoinType::LeftJoin, job_agent)
        .select_also(agent::Entity);
        let rows = keyset::<agent_job::Entity, _>(jobs, page).all(&self.txn).await?;
        self.project_shown(project, Page::of_rows(rows, page)).await
    }

    /// SELECTIVE agents of other organizations offered to this tenant, whether or not it has
    /// accepted them: what its admins review (`agentShareOffers`) before they may be used.
    pub fn select_offered_agents(&self) -> Select<agent::Entity> {
        agent::Entity::find().filter(offered_to(Expr::value(self.ctx.org.0)))
    }

    /// Offered agents whose current revision this tenant has not accepted: new offers, and
    /// accepted ones whose author changed what they run since.
    pub fn select_pending_offers(&self) -> Select<agent::Entity> {
        let org = Expr::value(self.ctx.org.0);
        agent::Entity::find()
            .filter(offered_to(org.clone()).add(agent::Column::Id.not_in_subquery(accepted_by(org))))
    }

    /// The offer of this agent to this tenant, if there is one. The row is the author's; the
    /// tenant reads it as the organization it names (and RLS lets it, by that column).
    pub async fn offer_to_tenant(&self, agent: Uuid) -> AppResult<Option<agent_share::Model>> {
        Ok(agent_share::Entity::find()
            .filter(agent_share::Column::SharedWithOrganizationId.eq(self.ctx.org.0))
            .filter(agent_share::Column::AgentId.eq(agent))
            .one(&self.txn)
            .await?)
    }

    /// Removes the offer of this agent to this tenant (declined or left), and with it the
    /// tenant's acceptance; `NOT_FOUND` when there is none. The one write a tenant makes to
    /// another's row: a delete, which can neither redirect nor widen a share.
    pub async fn remove_offer_to_tenant(&self, agent: Uuid) -> AppResult<agent_share::Model> {
        let offer = self
            .offer_to_tenant(agent)
            .await?
            .ok_or(AppError::NotFound("agent share"))?;
        agent_share::Entity::delete_many()
            .filter(agent_share::Column::SharedWithOrganizationId.eq(self.ctx.org.0))
            .filter(agent_share::Column::Id.eq(offer.id))
            .exec(&self.txn)
            .await?;
        self.record(|| {
            Change::new(
                <agent_share::Entity as TenantEntity>::RESOURCE,
                offer.id,
                Some(&offer),
                None,
            )
        });
        Ok(offer)
    }

    pub fn update_many<E: TenantEntity>(&self) -> UpdateMany<E> {
        self.scope::<E, _>(E::update_many())
    }

    pub async fn update_where<E: TenantEntity>(&self, update: UpdateMany<E>) -> AppResult<u64> {
        Ok(update.exec(&self.txn).await?.rows_affected)
    }

    pub fn delete_many<E: TenantEntity>(&self) -> DeleteMany<E> {
        self.scope::<E, _>(E::delete_many())
    }

    pub async fn delete_where<E: TenantEntity>(&self, delete: DeleteMany<E>) -> AppResult<u64> {
        Ok(delete.exec(&self.txn).await?.rows_affected)
    }

    /// The caller's role in a project of this tenant: implied by the organization role,
    /// or read from the project's members. `NOT_FOUND` if the project is not visible.
    pub async fn project_role(&self, project_id: ProjectId) -> AppResult<(project::Model, ProjectRole)> {
        let project = self.get::<project::Entity>(project_id.0, "project").await?;
        if let Some(role) = self.ctx.implied_project_role() {
            return Ok((project, role));
        }
        let Actor::User(user) = self.ctx.actor else {
            return Ok((project, ProjectRole::Viewer));
        };
        let membership = self
            .one(
                self.select::<project_member::Entity>()
                    .filter(project_member::Column::ProjectId.eq(project_id.0))
                    .filter(project_member::Column::UserId.eq(user.0)),
            )
            .await?;
        // Organization members read every project; writing needs a project role.
        Ok((
            project,
            membership.map_or(ProjectRole::Viewer, |member| member.role),
        ))
    }

    /// The rows of one project the caller may read (`NOT_FOUND` if it may not see the
    /// project), for entities that belong to a project.
    pub async fn select_in_project<E: TenantEntity>(&self, project: ProjectId) -> AppResult<Select<E>> {
        self.project_role(project).await?;
        let column = E::project_column().expect("an entity listed by project has a project column");
        Ok(self.select::<E>().filter(column.eq(project.0)))
    }

    /// A page of one project's rows, narrowed by `narrow`; `NOT_FOUND` if the caller may not
    /// see the project. The project is read only when the page is empty: a row of it, read
    /// under this scope, already shows that the caller may see it.
    pub async fn page_in_project<E: TenantEntity>(
        &self,
        project: ProjectId,
        narrow: impl FnOnce(Select<E>) -> Select<E>,
        page: PageRequest,
    ) -> AppResult<Page<E::Model>> {
        let column = E::project_column().expect("an entity listed by project has a project column");
        let rows = self
            .page(narrow(self.select::<E>().filter(column.eq(project.0))), page)
            .await?;
        self.project_shown(project, rows).await
    }

    /// `page` of `project`'s rows, or `NOT_FOUND` when it is empty because the caller may not
    /// see the project: a row of it, read under this scope, already shows that it may.
    async fn project_shown<T>(&self, project: ProjectId, page: Page<T>) -> AppResult<Page<T>> {
        if page.items.is_empty() {
            self.project_role(project).await?;
        }
        Ok(page)
    }

    /// A row of a project where the caller is an editor: `NOT_FOUND` if it cannot see it,
    /// `FORBIDDEN` if it may only read it.
    pub async fn get_editable_in_project<E: TenantEntity>(
        &self,
        id: Uuid,
        what: &'static str,
    ) -> AppResult<E::Model> {
        let existing = self.get::<E>(id, what).await?;
        let column = E::project_column().expect("an entity edited by project has a project column");
        let project = as_uuid(existing.get(column)).ok_or(AppError::NotFound(what))?;
        self.project_with_role(ProjectId(project), ProjectRole::Editor)
            .await?;
        Ok(existing)
    }

    /// Deletes a row of a project where the caller is an editor.
    pub async fn delete_in_project<E: TenantEntity>(&self, id: Uuid, what: &'static str) -> AppResult<()> {
        self.get_editable_in_project::<E>(id, what).await?;
        self.delete::<E>(id, what).await
    }

    /// The project, if the caller holds at least `needed` in it: `NOT_FOUND` when it is not
    /// visible, `FORBIDDEN` when it is but the role falls short.
    pub async fn project_with_role(
        &self,
        project_id: ProjectId,
        needed: ProjectRole,
    ) -> AppResult<project::Model> {
        let (project, role) = self.project_role(project_id).await?;
        if role < needed {
            return Err(AppError::forbidden(format!(
                "this needs the {needed:?} project role"
            )));
        }
        Ok(project)
    }
}
