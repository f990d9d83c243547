//! Content of a project: campaigns and posts. Reading needs any role in the project,
//! writing the editor role; everything stays inside the project's tenant.

use chrono::Utc;
use entity::{PostStatus, ProjectRole, campaign, post};
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter, QueryTrait, Select};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::ids::{JobId, ProjectId};
use crate::input::{Name, description};
use crate::tenancy::{Page, PageRequest, Scoped};

const MAX_TITLE_CHARS: usize = 200;
const MAX_BODY_CHARS: usize = 100_000;

pub async fn campaigns(
    scoped: &Scoped,
    project: ProjectId,
    page: PageRequest,
) -> AppResult<Page<campaign::Model>> {
    scoped
        .page_in_project::<campaign::Entity>(project, |query| query, page)
        .await
}

/// A campaign, if the caller may read its project.
pub async fn campaign(scoped: &Scoped, id: Uuid) -> AppResult<campaign::Model> {
    let campaign = scoped.get::<campaign::Entity>(id, "campaign").await?;
    scoped.project_role(ProjectId(campaign.project_id)).await?;
    Ok(campaign)
}

pub async fn create_campaign(
    scoped: &Scoped,
    project: ProjectId,
    name: &str,
    about: Option<&str>,
) -> AppResult<campaign::Model> {
    scoped.project_with_role(project, ProjectRole::Editor).await?;
    let now = Utc::now();
    let row = campaign::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(scoped.context().org.0),
        project_id: Set(project.0),
        name: Set(Name::parse("name", name)?.into_inner()),
        description: Set(description(about)?),
        created_by: Set(scoped.context().actor.accountable_user().0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    scoped.insert(row).await
}

pub async fn update_campaign(
    scoped: &Scoped,
    id: Uuid,
    name: Option<&str>,
    about: Option<Option<&str>>,
) -> AppResult<campaign::Model> {
    let existing = scoped
        .get_editable_in_project::<campaign::Entity>(id, "campaign")
        .await?;
    let mut row = existing.into_active_model();
    if let Some(name) = name {
        row.name = Set(Name::parse("name", name)?.into_inner());
    }
    if let Some(about) = about {
        row.description = Set(description(about)?);
    }
    row.updated_at = Set(Utc::now());
    scoped.update(row, "campaign").await
}

/// Deletes a campaign with its posts.
pub async fn delete_campaign(scoped: &Scoped, id: Uuid) -> AppResult<()> {
    scoped.delete_in_project::<campaign::Entity>(id, "campaign").await
}

pub async fn posts(
    scoped: &Scoped,
    project: ProjectId,
    campaign: Option<Uuid>,
    page: PageRequest,
) -> AppResult<Page<post::Model>> {
    let narrow = |query: Select<post::Entity>| {
        query.apply_if(campaign, |query, campaign| {
            query.filter(post::Column::CampaignId.eq(campaign))
        })
    };
    scoped.page_in_project(project, narrow, page).await
}

pub async fn post(scoped: &Scoped, id: Uuid) -> AppResult<post::Model> {
    let post = scoped.get::<post::Entity>(id, "post").await?;
    scoped.project_role(ProjectId(post.project_id)).await?;
    Ok(post)
}

pub struct NewPost<'a> {
    pub project: ProjectId,
    pub campaign: Option<Uuid>,
    pub title: &'a str,
    pub body: &'a str,
    pub status: PostStatus,
    /// The job writing it, when an agent drafts it.
    pub job: Option<JobId>,
}

pub async fn create_post(scoped: &Scoped, new: NewPost<'_>) -> AppResult<post::Model> {
    scoped.project_with_role(new.project, ProjectRole::Editor).await?;
    if let Some(campaign) = new.campaign {
        let campaign = scoped
            .get::<campaign::Entity>(campaign, "campaign")
            .await
            .map_err(|_| AppError::bad_input("campaignId", "no such campaign in this project"))?;
        if campaign.project_id != new.project.0 {
            return Err(AppError::bad_input(
                "campaignId",
                "no such campaign in this project",
            ));
        }
    }
    let now = Utc::now();
    let row = post::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(scoped.context().org.0),
        project_id: Set(new.project.0),
        campaign_id: Set(new.campaign),
        title: Set(title(new.title)?),
        body: Set(body(new.body)?),
        status: Set(new.status),
        job_id: Set(new.job.map(|job| job.0)),
        created_by: Set(scoped.context().actor.accountable_user().0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    scoped.insert(row).await
}

pub struct PostChanges<'a> {
    pub title: Option<&'a str>,
    pub body: Option<&'a str>,
    pub status: Option<PostStatus>,
}

pub async fn update_post(scoped: &Scoped, id: Uuid, changes: PostChanges<'_>) -> AppResult<post::Model> {
    let existing = scoped.get_editable_in_project::<post::Entity>(id, "post").await?;
    let mut row = existing.into_active_model();
    if let Some(text) = changes.title {
        row.title = Set(title(text)?);
    }
    if let Some(text) = changes.body {
        row.body = Set(body(text)?);
    }
    if let Some(status) = changes.status {
        row.status = Set(status);
    }
    row.updated_at = Set(Utc::now());
    scoped.update(row, "post").await
}

pub async fn delete_post(scoped: &Scoped, id: Uuid) -> AppResult<()> {
    scoped.delete_in_project::<post::Entity>(id, "post").await
}

fn title(raw: &str) -> AppResult<String> {
    let title = raw.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS || title.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "title",
            format!("1 to {MAX_TITLE_CHARS} characters, no control characters"),
        ));
    }
    Ok(title.to_owned())
}

fn body(raw: &str) -> AppResult<String> {
    if raw.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::bad_input(
            "body",
            format!("use at most {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}
