//! Projects of the active organization and their members. What also reads members'
//! accounts, which live outside the tenant, takes the `Tenant` and reads them after its
//! transaction.

use chrono::Utc;
use entity::{OrgRole, ProjectRole, project, project_member};
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::domain::accounts::{self, WithAccount};
use crate::domain::organizations;
use crate::error::{AppError, AppResult, duplicate_as};
use crate::ids::{ProjectId, UserId};
use crate::input::{Name, Slug, description};
use crate::tenancy::{Actor, Db, Page, PageRequest, Scoped, Tenant};

const DUPLICATE_SLUG: &str = "a project with this slug already exists in this organization";

pub async fn list(scoped: &Scoped, page: PageRequest) -> AppResult<Page<project::Model>> {
    scoped.page(scoped.select::<project::Entity>(), page).await
}

/// The projects among `ids` the caller may see, in one statement.
pub async fn by_ids(scoped: &Scoped, ids: &[ProjectId]) -> AppResult<Vec<project::Model>> {
    let ids = ids.iter().map(|id| id.0);
    scoped
        .all(
            scoped
                .select::<project::Entity>()
                .filter(project::Column::Id.is_in(ids)),
        )
        .await
}

pub async fn find(scoped: &Scoped, id: ProjectId) -> AppResult<Option<project::Model>> {
    scoped.find_by(project::Column::Id, id.0).await
}

pub struct NewProject<'a> {
    pub name: &'a str,
    pub slug: Option<&'a str>,
    pub description: Option<&'a str>,
}

/// Creates a project; a plain member who creates one becomes its admin.
pub async fn create(scoped: &Scoped, input: NewProject<'_>) -> AppResult<project::Model> {
    if scoped.context().only_project.is_some() {
        return Err(AppError::forbidden("this API key is restricted to one project"));
    }
    let name = Name::parse("name", input.name)?;
    let slug = match input.slug {
        Some(slug) => Slug::parse("slug", slug)?,
        None => Slug::from_name(&name),
    };
    let now = Utc::now();
    let project = project::ActiveModel {
        id: Set(ProjectId::generate().0),
        organization_id: Set(scoped.context().org.0),
        slug: Set(slug.into_inner()),
        name: Set(name.into_inner()),
        description: Set(description(input.description)?),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let project = scoped
        .insert(project)
        .await
        .map_err(duplicate_as("slug", DUPLICATE_SLUG))?;
    if let (Actor::User(user), OrgRole::Member) = (scoped.context().actor, scoped.context().role) {
        insert_member(scoped, ProjectId(project.id), user, ProjectRole::Admin).await?;
    }
    Ok(project)
}

pub struct ProjectChanges<'a> {
    pub name: Option<&'a str>,
    pub slug: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
}

pub async fn update(
    scoped: &Scoped,
    id: ProjectId,
    changes: ProjectChanges<'_>,
) -> AppResult<project::Model> {
    let mut project = scoped
        .project_with_role(id, ProjectRole::Admin)
        .await?
        .into_active_model();
    if let Some(name) = changes.name {
        project.name = Set(Name::parse("name", name)?.into_inner());
    }
    if let Some(slug) = changes.slug {
        project.slug = Set(Slug::parse("slug", slug)?.into_inner());
    }
    if let Some(text) = changes.description {
        project.description = Set(description(text)?);
    }
    project.updated_at = Set(Utc::now());
    scoped
        .update(project, "project")
        .await
        .map_err(duplicate_as("slug", DUPLICATE_SLUG))
}

pub async fn delete(scoped: &Scoped, id: ProjectId) -> AppResult<()> {
    scoped.project_with_role(id, ProjectRole::Admin).await?;
    scoped.delete::<project::Entity>(id.0, "project").await
}

/// A page of the project's members, with their accounts.
pub async fn members(
    tenant: &Tenant,
    db: &Db,
    id: ProjectId,
    page: PageRequest,
) -> AppResult<Page<WithAccount<project_member::Model>>> {
    let page = tenant
        .read(async |scoped| {
            scoped
                .page_in_project::<project_member::Entity>(id, |query| query, page)
                .await
        })
        .await?;
    accounts::with_accounts(db, page).await
}

/// Gives an organization member a role in the project, replacing any role they had there.
pub async fn set_member(
    tenant: &Tenant,
    db: &Db,
    id: ProjectId,
    user: UserId,
    role: ProjectRole,
) -> AppResult<WithAccount<project_member::Model>> {
    let member = tenant
        .write(async |scoped| write_member(scoped, id, user, role).await)
        .await?;
    accounts::with_account(db, member).await
}

async fn write_member(
    scoped: &Scoped,
    id: ProjectId,
    user: UserId,
    role: ProjectRole,
) -> AppResult<project_member::Model> {
    scoped.project_with_role(id, ProjectRole::Admin).await?;
    if organizations::find_member(scoped, user).await?.is_none() {
        return Err(AppError::NotFound("member"));
    }
    match find_member(scoped, id, user).await? {
        Some(existing) => {
            let mut member = existing.into_active_model();
            member.role = Set(role);
            member.updated_at = Set(Utc::now());
            scoped.update(member, "project member").await
        }
        None => insert_member(scoped, id, user, role).await,
    }
}

pub async fn remove_member(scoped: &Scoped, id: ProjectId, user: UserId) -> AppResult<()> {
    scoped.project_with_role(id, ProjectRole::Admin).await?;
    let member = find_member(scoped, id, user)
        .await?
        .ok_or(AppError::NotFound("project member"))?;
    scoped
        .delete::<project_member::Entity>(member.id, "project member")
        .await
}

async fn find_member(
    scoped: &Scoped,
    id: ProjectId,
    user: UserId,
) -> AppResult<Option<project_member::Model>> {
    scoped
        .one(
            scoped
                .select::<project_member::Entity>()
                .filter(project_member::Column::ProjectId.eq(id.0))
                .filter(project_member::Column::UserId.eq(user.0)),
        )
        .await
}

async fn insert_member(
    scoped: &Scoped,
    id: ProjectId,
    user: UserId,
    role: ProjectRole,
) -> AppResult<project_member::Model> {
    let now = Utc::now();
    let member = project_member::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(scoped.context().org.0),
        project_id: Set(id.0),
        user_id: Set(user.0),
        role: Set(role),
        created_at: Set(now),
        updated_at: Set(now),
    };
    scoped.insert(member).await
}
