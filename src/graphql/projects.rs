//! Projects of the active organization and their members.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use entity::{project, project_member};

use crate::domain::accounts::WithAccount;
use crate::domain::projects::{self, NewProject, ProjectChanges};
use crate::error::AppError;
use crate::graphql::arguments::{nullable_change, parse_id};
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::guards::OrgRoleGuard;
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};
use crate::ids::{ProjectId, UserId};
use crate::tenancy::Tenant;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::ProjectRole")]
pub enum ProjectRole {
    Viewer,
    Editor,
    Admin,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Project {
    id: ID,
    organization_id: ID,
    slug: String,
    name: String,
    description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[graphql(skip)]
    project: ProjectId,
}

impl From<project::Model> for Project {
    fn from(project: project::Model) -> Self {
        Self {
            id: project.id.into(),
            organization_id: project.organization_id.into(),
            slug: project.slug,
            name: project.name,
            description: project.description,
            created_at: project.created_at,
            updated_at: project.updated_at,
            project: ProjectId(project.id),
        }
    }
}

#[ComplexObject]
impl Project {
    /// People with an explicit role in this project. Organization owners and admins act as
    /// project admins without being listed.
    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<ProjectMember>> {
        let paging = Paging::new(first, after.as_deref())?;
        let page =
            projects::members(&ctx.tenant()?, &ctx.services().db, self.project, paging.request).await?;
        Ok(paging.connection(page, |row| row.member.id))
    }
}

#[derive(SimpleObject)]
pub struct ProjectMember {
    user_id: ID,
    project_id: ID,
    email: Option<String>,
    display_name: Option<String>,
    role: ProjectRole,
}

impl From<WithAccount<project_member::Model>> for ProjectMember {
    fn from(WithAccount { member, account }: WithAccount<project_member::Model>) -> Self {
        let (email, display_name) = account.map(|user| (user.email, user.display_name)).unzip();
        Self {
            user_id: member.user_id.into(),
            project_id: member.project_id.into(),
            email,
            display_name,
            role: member.role.into(),
        }
    }
}

#[derive(InputObject)]
pub struct CreateProjectInput {
    pub name: String,
    /// Derived from the name when omitted; unique within the organization.
    pub slug: Option<String>,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateProjectInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// `null` clears it; leaving it out keeps it.
    pub description: MaybeUndefined<String>,
}

/// The tenant's projects as a connection, newest first.
pub async fn project_connection(
    tenant: &Tenant,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<Conn<Project>> {
    let paging = Paging::new(first, after)?;
    paging.read(tenant, |project| project.id, projects::list).await
}

#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// Projects of the active organization, newest first.
    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Project>> {
        project_connection(&ctx.tenant()?, first, after.as_deref()).await
    }

    async fn project(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Project>> {
        let id = ProjectId(parse_id("id", &id)?);
        let project = tenant_read(ctx, async |scoped| projects::find(scoped, id).await).await?;
        Ok(Some(project.ok_or(AppError::NotFound("project"))?.into()))
    }
}

#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn create_project(&self, ctx: &Context<'_>, input: CreateProjectInput) -> Result<Project> {
        let input = NewProject {
            name: &input.name,
            slug: input.slug.as_deref(),
            description: input.description.as_deref(),
        };
        let project = tenant_write(ctx, async |scoped| projects::create(scoped, input).await).await?;
        Ok(project.into())
    }

    /// Needs the project's admin role.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn update_project(&self, ctx: &Context<'_>, id: ID, input: UpdateProjectInput) -> Result<Project> {
        let id = ProjectId(parse_id("id", &id)?);
        let changes = ProjectChanges {
            name: input.name.as_deref(),
            slug: input.slug.as_deref(),
            description: nullable_change(&input.description),
        };
        let project = tenant_write(ctx, async |scoped| projects::update(scoped, id, changes).await).await?;
        Ok(project.into())
    }

    /// Deletes the project with everything in it; needs the project's admin role. Returns its id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn delete_project(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let project = ProjectId(parse_id("id", &id)?);
        tenant_write(ctx, async |scoped| projects::delete(scoped, project).await).await?;
        Ok(id)
    }

    /// Gives an organization member a role in the project (replacing any they had).
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn add_project_member(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        user_id: ID,
        role: ProjectRole,
    ) -> Result<ProjectMember> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let user = UserId(parse_id("userId", &user_id)?);
        let member =
            projects::set_member(&ctx.tenant()?, &ctx.services().db, project, user, role.into()).await?;
        Ok(member.into())
    }

    /// Returns the user's id.
    #[graphql(guard = "OrgRoleGuard(entity::OrgRole::Member)")]
    async fn remove_project_member(&self, ctx: &Context<'_>, project_id: ID, user_id: ID) -> Result<ID> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let user = UserId(parse_id("userId", &user_id)?);
        tenant_write(ctx, async |scoped| {
            projects::remove_member(scoped, project, user).await
        })
        .await?;
        Ok(user_id)
    }
}
