//! Campaigns and posts of a project.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{campaign, post};

use crate::domain::content::{self, NewPost, PostChanges};
use crate::graphql::arguments::{nullable_change, parse_id, parse_opt_id};
use crate::graphql::context::{ContextExt, tenant_read, tenant_write};
use crate::graphql::pagination::{Conn, DEFAULT_PAGE_SIZE, Paging, list_cost};
use crate::ids::ProjectId;
use crate::tenancy::Scoped;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::PostStatus")]
pub enum PostStatus {
    Draft,
    Approved,
    Published,
}

#[derive(SimpleObject)]
pub struct Campaign {
    id: ID,
    organization_id: ID,
    project_id: ID,
    name: String,
    description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<campaign::Model> for Campaign {
    fn from(campaign: campaign::Model) -> Self {
        Self {
            id: campaign.id.into(),
            organization_id: campaign.organization_id.into(),
            project_id: campaign.project_id.into(),
            name: campaign.name,
            description: campaign.description,
            created_at: campaign.created_at,
            updated_at: campaign.updated_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct Post {
    id: ID,
    organization_id: ID,
    project_id: ID,
    campaign_id: Option<ID>,
    title: String,
    body: String,
    status: PostStatus,
    /// The agent job that drafted it, if one did.
    job_id: Option<ID>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<post::Model> for Post {
    fn from(post: post::Model) -> Self {
        Self {
            id: post.id.into(),
            organization_id: post.organization_id.into(),
            project_id: post.project_id.into(),
            campaign_id: post.campaign_id.map(ID::from),
            title: post.title,
            body: post.body,
            status: post.status.into(),
            job_id: post.job_id.map(ID::from),
            created_at: post.created_at,
            updated_at: post.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct CreateCampaignInput {
    pub project_id: ID,
    pub name: String,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateCampaignInput {
    pub name: Option<String>,
    /// `null` clears it; leaving it out keeps it.
    pub description: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct CreatePostInput {
    pub project_id: ID,
    pub campaign_id: Option<ID>,
    pub title: String,
    #[graphql(default)]
    pub body: String,
    #[graphql(default_with = "PostStatus::Draft")]
    pub status: PostStatus,
}

#[derive(InputObject)]
pub struct UpdatePostInput {
    pub title: Option<String>,
    pub body: Option<String>,
    pub status: Option<PostStatus>,
}

#[derive(Default)]
pub struct ContentQuery;

#[Object]
impl ContentQuery {
    /// A project's campaigns, newest first.
    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Campaign>> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let paging = Paging::new(first, after.as_deref())?;
        let list = async |scoped: &Scoped, page| content::campaigns(scoped, project, page).await;
        paging.read(&ctx.tenant()?, |row| row.id, list).await
    }

    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Campaign> {
        let id = parse_id("id", &id)?;
        let row = tenant_read(ctx, async |scoped| content::campaign(scoped, id).await).await?;
        Ok(row.into())
    }

    /// A project's posts (of one campaign, if given), newest first.
    #[graphql(complexity = "list_cost(first, DEFAULT_PAGE_SIZE, child_complexity)")]
    async fn posts(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        campaign_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<Post>> {
        let project = ProjectId(parse_id("projectId", &project_id)?);
        let campaign = parse_opt_id("campaignId", campaign_id.as_ref())?;
        let paging = Paging::new(first, after.as_deref())?;
        let list = async |scoped: &Scoped, page| content::posts(scoped, project, campaign, page).await;
        paging.read(&ctx.tenant()?, |row| row.id, list).await
    }

    async fn post(&self, ctx: &Context<'_>, id: ID) -> Result<Post> {
        let id = parse_id("id", &id)?;
        let row = tenant_read(ctx, async |scoped| content::post(scoped, id).await).await?;
        Ok(row.into())
    }
}

#[derive(Default)]
pub struct ContentMutation;

#[Object]
impl ContentMutation {
    async fn create_campaign(&self, ctx: &Context<'_>, input: CreateCampaignInput) -> Result<Campaign> {
        let project = ProjectId(parse_id("projectId", &input.project_id)?);
        let row = tenant_write(ctx, async |scoped| {
            content::create_campaign(scoped, project, &input.name, input.description.as_deref()).await
        })
        .await?;
        Ok(row.into())
    }

    async fn update_campaign(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCampaignInput,
    ) -> Result<Campaign> {
        let id = parse_id("id", &id)?;
        let description = nullable_change(&input.description);
        let row = tenant_write(ctx, async |scoped| {
            content::update_campaign(scoped, id, input.name.as_deref(), description).await
        })
        .await?;
        Ok(row.into())
    }

    /// Deletes a campaign and its posts. Returns its id.
    async fn delete_campaign(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let campaign = parse_id("id", &id)?;
        tenant_write(ctx, async |scoped| {
            content::delete_campaign(scoped, campaign).await
        })
        .await?;
        Ok(id)
    }

    async fn create_post(&self, ctx: &Context<'_>, input: CreatePostInput) -> Result<Post> {
        let project = ProjectId(parse_id("projectId", &input.project_id)?);
        let campaign = parse_opt_id("campaignId", input.campaign_id.as_ref())?;
        let new = NewPost {
            project,
            campaign,
            title: &input.title,
            body: &input.body,
            status: input.status.into(),
            job: None,
        };
        let row = tenant_write(ctx, async |scoped| content::create_post(scoped, new).await).await?;
        Ok(row.into())
    }

    async fn update_post(&self, ctx: &Context<'_>, id: ID, input: UpdatePostInput) -> Result<Post> {
        let id = parse_id("id", &id)?;
        let changes = PostChanges {
            title: input.title.as_deref(),
            body: input.body.as_deref(),
            status: input.status.map(Into::into),
        };
        let row = tenant_write(ctx, async |scoped| {
            content::update_post(scoped, id, changes).await
        })
        .await?;
        Ok(row.into())
    }

    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let post = parse_id("id", &id)?;
        tenant_write(ctx, async |scoped| content::delete_post(scoped, post).await).await?;
        Ok(id)
    }
}
