//! Content produced and managed per project: campaigns and their posts.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index, timestamps};
use crate::rls::protect_tenant_table;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000008_content"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("campaigns")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("project_id"))
                        .col(string_len("name", 100))
                        .col(text_null("description"))
                        .col(uuid("created_by"))
                        .foreign_key(&mut cascade("campaigns", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("campaigns", "project_id", "projects")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "campaigns_org_project_id",
                "campaigns",
                &["organization_id", "project_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "campaigns", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("posts")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("project_id"))
                        .col(uuid_null("campaign_id"))
                        .col(string_len("title", 200))
                        .col(text("body"))
                        .col(string_len("status", 16))
                        // The job that wrote it, if an agent did; the post outlives the job.
                        .col(uuid_null("job_id"))
                        .col(uuid("created_by"))
                        .foreign_key(&mut cascade("posts", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("posts", "project_id", "projects"))
                        .foreign_key(&mut cascade("posts", "campaign_id", "campaigns")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "posts_org_project_id",
                "posts",
                &["organization_id", "project_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "posts", "organization_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["posts", "campaigns"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
