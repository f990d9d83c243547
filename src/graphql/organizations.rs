//! Organizations (the tenants) and their members.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{organization, organization_member};

use crate::auth::Principal;
use crate::domain::accounts::{self, WithAccount};
use crate::domain::organizations::{self, OrganizationChanges};
use crate::error::{AppError, AppResult};
use crate::governance::budgets::Period;
use crate::governance::erasure;
use crate::graphql::arguments::parse_id;
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::guards::{OrgRoleGuard, OrganizationWideGuard, UserGuard};
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};
use crate::graphql::projects::{Project, project_connection};
use crate::graphql::usage::{Usage, usage_in};
use crate::ids::{OrgId, UserId};
use crate::tenancy::Tenant;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::OrgRole")]
pub enum OrgRole {
    Viewer,
    Member,
    Admin,
    Owner,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::OrgKind")]
pub enum OrgKind {
    Client,
    Solution,
    Industry,
    Platform,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::Plan")]
pub enum Plan {
    Free,
    Starter,
    Pro,
    Enterprise,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Organization {
    id: ID,
    slug: String,
    name: String,
    kind: OrgKind,
    plan: Plan,
    monthly_budget_cents: i64,
    created_at: DateTime<Utc>,
    #[graphql(skip)]
    org: OrgId,
}

impl From<organization::Model> for Organization {
    fn from(org: organization::Model) -> Self {
        Self {
            id: org.id.into(),
            slug: org.slug,
            name: org.name,
            kind: org.kind.into(),
            plan: org.plan.into(),
            monthly_budget_cents: org.monthly_budget_cents,
            created_at: org.created_at,
            org: OrgId(org.id),
        }
    }
}

impl Organization {
    /// Lists under an organization need it to be the request's active one: rows are only
    /// ever read inside the active tenant's transaction.
    fn active_tenant(&self, ctx: &Context<'_>) -> AppResult<Tenant> {
        let tenant = ctx.tenant()?;
        if tenant.context().org != self.org {
            return Err(AppError::TenantRequired);
        }
        Ok(tenant)
    }
}

#[ComplexObject]
impl Organization {
    #[graphql(
        guard = "OrganizationWideGuard",
        complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Member>> {
        let tenant = self.active_tenant(ctx)?;
        let paging = Paging::new(first, after.as_deref())?;
        let page = organizations::members(&tenant, &ctx.services().db, paging.request).await?;
        Ok(paging.connection(page, |row| row.member.id))
    }

    /// This month's usage against the budget.
    #[graphql(guard = "OrganizationWideGuard")]
    async fn usage(&self, ctx: &Context<'_>) -> Result<Usage> {
        usage_in(&self.active_tenant(ctx)?, Period::current()).await
    }

    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Project>> {
        project_connection(&self.active_tenant(ctx)?, first, after.as_deref()).await
    }
}

// A person's membership in the active organization.
#[derive(SimpleObject)]
pub struct Member {
    user_id: ID,
    email: Option<String>,
    display_name: Option<String>,
    role: OrgRole,
    joined_at: DateTime<Utc>,
}

impl From<WithAccount<organization_member::Model>> for Member {
    fn from(WithAccount { member, account }: WithAccount<organization_member::Model>) -> Self {
        let (email, display_name) = account.map(|user| (user.email, user.display_name)).unzip();
        Self {
            user_id: member.user_id.into(),
            email,
            display_name,
            role: member.role.into(),
            joined_at: member.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateOrganizationInput {
    pub name: String,
    /// Derived from the name when omitted.
    pub slug: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    pub name: Option<String>,
    pub slug: Option<String>,
}

#[derive(InputObject)]
pub struct AddMemberInput {
    /// The email of an existing account.
    pub email: String,
    pub role: OrgRole,
}

#[derive(Default)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// The active organization.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        let org = tenant_read(ctx, async |scoped| organizations::current(scoped).await).await?;
        Ok(org.into())
    }

    /// Every organization the caller belongs to (for an API key, its own).
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        match ctx.principal()? {
            Principal::User(user) => {
                let memberships = accounts::memberships(&ctx.services().db, user.id).await?;
                Ok(memberships.into_iter().map(|(org, _)| org.into()).collect())
            }
            Principal::ApiKey(_) => {
                let org = tenant_read(ctx, async |scoped| organizations::current(scoped).await).await?;
                Ok(vec![org.into()])
            }
        }
    }
}

#[derive(Default)]
pub struct OrganizationMutation;

#[Object]
impl OrganizationMutation {
    /// Creates an organization owned by the caller.
    #[graphql(guard = "UserGuard")]
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> Result<Organization> {
        let owner = ctx.user()?.id;
        let org = accounts::create_organization(
            &ctx.services().db,
            owner,
            &input.name,
            input.slug.as_deref(),
            &ctx.origin(),
        )
        .await?;
        ctx.services().access_gained(owner);
        Ok(org.into())
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> Result<Organization> {
        let changes = OrganizationChanges {
            name: input.name.as_deref(),
            slug: input.slug.as_deref(),
        };
        let org = tenant_write(ctx, async |scoped| organizations::update(scoped, changes).await).await?;
        ctx.services().organization_changed(OrgId(org.id));
        Ok(org.into())
    }

    /// Erases the active organization: every row and workspace file of it. Its members lose
    /// access at once; a record of the erasure stays outside it. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Owner)")]
    async fn delete_organization(&self, ctx: &Context<'_>) -> Result<ID> {
        let tenant = ctx.request()?.tenant_context()?;
        let services = ctx.services();
        let org = tenant.org;
        erasure::erase_organization(
            &services.db,
            &services.workspaces,
            org,
            tenant.actor,
            &ctx.origin(),
            || services.access_changed(org, &[]),
        )
        .await?;
        Ok(ID(tenant.org.to_string()))
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn add_member(&self, ctx: &Context<'_>, input: AddMemberInput) -> Result<Member> {
        let tenant = ctx.tenant()?;
        let member =
            organizations::add_member(&tenant, &ctx.services().db, &input.email, input.role.into()).await?;
        ctx.services().access_gained(UserId(member.member.user_id));
        Ok(member.into())
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn update_member_role(&self, ctx: &Context<'_>, user_id: ID, role: OrgRole) -> Result<Member> {
        let user = UserId(parse_id("userId", &user_id)?);
        let tenant = ctx.tenant()?;
        let services = ctx.services();
        let org = tenant.context().org;
        let member = organizations::update_member_role(&tenant, &services.db, user, role.into(), |keys| {
            services.access_changed(org, keys)
        })
        .await?;
        Ok(member.into())
    }

    /// Removes a member and their project roles. Returns the user's id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn remove_member(&self, ctx: &Context<'_>, user_id: ID) -> Result<ID> {
        let user = UserId(parse_id("userId", &user_id)?);
        let tenant = ctx.tenant()?;
        let org = tenant.context().org;
        organizations::remove_member(&tenant, user, |keys| ctx.services().access_changed(org, keys)).await?;
        Ok(user_id)
    }
}
