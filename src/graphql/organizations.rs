//! Organizations (the tenants) and their members.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use entity::{organization, organization_member};

use crate::auth::Principal;
use crate::domain::accounts;
use crate::domain::organizations::{self, OrganizationChanges};
use crate::error::{AppError, AppResult};
use crate::governance::budgets::Period;
use crate::governance::erasure;
use crate::graphql::context::ContextExt;
use crate::graphql::guards::{OrgRoleGuard, OrganizationWideGuard, UserGuard};
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, connection, list_cost, page_request, parse_id};
use crate::graphql::projects::{Project, project_connection};
use crate::graphql::usage::{Usage, usage_in};
use crate::ids::UserId;
use crate::input::Email;
use crate::tenancy::{Tenant, unscoped};

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

pub struct Organization(pub organization::Model);

impl Organization {
    /// Lists under an organization need it to be the request's active one: rows are only
    /// ever read inside the active tenant's transaction.
    fn active_tenant(&self, ctx: &Context<'_>) -> AppResult<Tenant> {
        let tenant = ctx.tenant()?;
        if tenant.context().org.0 != self.0.id {
            return Err(AppError::TenantRequired);
        }
        Ok(tenant)
    }
}

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn slug(&self) -> &str {
        &self.0.slug
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn kind(&self) -> OrgKind {
        self.0.kind.into()
    }

    async fn plan(&self) -> Plan {
        self.0.plan.into()
    }

    async fn monthly_budget_cents(&self) -> i64 {
        self.0.monthly_budget_cents
    }

    async fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }

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
        let page = page_request(first, after.as_deref())?;
        let page = tenant
            .read(async |scoped| organizations::members(scoped, page).await)
            .await?;
        let user_ids = page.items.iter().map(|member| member.user_id).collect();
        let mut users = unscoped::accounts::users_by_ids(&ctx.services().db, user_ids).await?;
        Ok(connection(
            page,
            after.is_some(),
            |member| member.id,
            |member| {
                let user = users.remove(&member.user_id);
                Member { member, user }
            },
        ))
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
        project_connection(&self.active_tenant(ctx)?, first, after).await
    }
}

/// A person's membership in the active organization.
pub struct Member {
    member: organization_member::Model,
    user: Option<entity::user::Model>,
}

impl Member {
    pub async fn load(ctx: &Context<'_>, member: organization_member::Model) -> Result<Self> {
        let user = unscoped::accounts::find_user(&ctx.services().db, UserId(member.user_id)).await?;
        Ok(Self { member, user })
    }
}

#[Object]
impl Member {
    async fn user_id(&self) -> ID {
        ID(self.member.user_id.to_string())
    }

    async fn email(&self) -> Option<&str> {
        self.user.as_ref().map(|user| user.email.as_str())
    }

    async fn display_name(&self) -> Option<&str> {
        self.user.as_ref().map(|user| user.display_name.as_str())
    }

    async fn role(&self) -> OrgRole {
        self.member.role.into()
    }

    async fn joined_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.member.created_at
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
        let org = ctx
            .tenant()?
            .read(async |scoped| organizations::current(scoped).await)
            .await?;
        Ok(Organization(org))
    }

    /// Every organization the caller belongs to (for an API key, its own).
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Organization>> {
        match ctx.principal()? {
            Principal::User(user) => {
                let memberships = unscoped::accounts::memberships_of(&ctx.services().db, user.id).await?;
                Ok(memberships
                    .into_iter()
                    .map(|(org, _)| Organization(org))
                    .collect())
            }
            Principal::ApiKey(_) => {
                let org = ctx
                    .tenant()?
                    .read(async |scoped| organizations::current(scoped).await)
                    .await?;
                Ok(vec![Organization(org)])
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
        Ok(Organization(org))
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
        let org = ctx
            .tenant()?
            .write(async |scoped| organizations::update(scoped, changes).await)
            .await?;
        Ok(Organization(org))
    }

    /// Erases the active organization: every row and workspace file of it. Its members lose
    /// access at once; a record of the erasure stays outside it. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Owner)")]
    async fn delete_organization(&self, ctx: &Context<'_>) -> Result<ID> {
        let tenant = ctx.request()?.tenant_context()?;
        let services = ctx.services();
        let bus = &services.jobs.bus;
        let org = tenant.org;
        erasure::erase_organization(
            &services.db,
            &services.workspaces,
            org,
            tenant.actor,
            &ctx.origin(),
            || bus.access_changed(org.0),
        )
        .await?;
        Ok(ID(tenant.org.to_string()))
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn add_member(&self, ctx: &Context<'_>, input: AddMemberInput) -> Result<Member> {
        let email = Email::parse(&input.email)?;
        let user = unscoped::accounts::find_user_by_email(&ctx.services().db, email.as_str())
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let role = input.role.into();
        let member = ctx
            .tenant()?
            .write(async |scoped| organizations::add_member(scoped, UserId(user.id), role).await)
            .await?;
        Ok(Member {
            member,
            user: Some(user),
        })
    }

    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn update_member_role(&self, ctx: &Context<'_>, user_id: ID, role: OrgRole) -> Result<Member> {
        let user = UserId(parse_id("userId", &user_id)?);
        let role = role.into();
        let tenant = ctx.tenant()?;
        let (member, capped_keys) = tenant
            .write(async |scoped| organizations::update_member_role(scoped, user, role).await)
            .await?;
        access_changed(ctx, tenant.context().org.0, &capped_keys);
        Member::load(ctx, member).await
    }

    /// Removes a member and their project roles. Returns the user's id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Admin)")]
    async fn remove_member(&self, ctx: &Context<'_>, user_id: ID) -> Result<ID> {
        let user = UserId(parse_id("userId", &user_id)?);
        let tenant = ctx.tenant()?;
        let revoked_keys = tenant
            .write(async |scoped| organizations::remove_member(scoped, user).await)
            .await?;
        access_changed(ctx, tenant.context().org.0, &revoked_keys);
        Ok(user_id)
    }
}

/// After a member's access changed: their keys are forgotten here at once, and every
/// replica's live streams of the organization re-check their callers.
fn access_changed(ctx: &Context<'_>, org: uuid::Uuid, keys: &[entity::api_key::Model]) {
    let services = ctx.services();
    for key in keys {
        services.api_keys.forget(&key.prefix);
    }
    services.jobs.bus.access_changed(org);
}
