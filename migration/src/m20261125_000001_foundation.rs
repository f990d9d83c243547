//! Users, organizations and their members, projects and their members, API keys, sessions.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index, timestamps};
use crate::rls::{create_app_role, protect_tenant_table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_foundation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_app_role(manager).await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("users")
                        .col(pk_uuid("id"))
                        .col(string_len_uniq("email", 254))
                        .col(string("password_hash"))
                        .col(string_len("display_name", 100))
                        .col(boolean("is_platform_admin").default(false)),
                )
                .to_owned(),
            )
            .await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("organizations")
                        .col(pk_uuid("id"))
                        .col(string_len_uniq("slug", 48))
                        .col(string_len("name", 100))
                        .col(string_len("kind", 16))
                        .col(string_len("plan", 16))
                        .col(big_integer("monthly_budget_cents")),
                )
                .to_owned(),
            )
            .await?;
        protect_tenant_table(manager, "organizations", "id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("organization_members")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("user_id"))
                        .col(string_len("role", 16))
                        .foreign_key(&mut cascade(
                            "organization_members",
                            "organization_id",
                            "organizations",
                        ))
                        .foreign_key(&mut cascade("organization_members", "user_id", "users")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "organization_members_org_user",
                    "organization_members",
                    &["organization_id", "user_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "organization_members_org_id",
                "organization_members",
                &["organization_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "organization_members_user",
                "organization_members",
                &["user_id"],
            ))
            .await?;
        protect_tenant_table(manager, "organization_members", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("projects")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(string_len("slug", 48))
                        .col(string_len("name", 100))
                        .col(text_null("description"))
                        .foreign_key(&mut cascade("projects", "organization_id", "organizations")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("projects_org_slug", "projects", &["organization_id", "slug"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("projects_org_id", "projects", &["organization_id", "id"]))
            .await?;
        protect_tenant_table(manager, "projects", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("project_members")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("project_id"))
                        .col(uuid("user_id"))
                        .col(string_len("role", 16))
                        .foreign_key(&mut cascade(
                            "project_members",
                            "organization_id",
                            "organizations",
                        ))
                        .foreign_key(&mut cascade("project_members", "project_id", "projects"))
                        .foreign_key(&mut cascade("project_members", "user_id", "users")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "project_members_org_project_user",
                    "project_members",
                    &["organization_id", "project_id", "user_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "project_members_org_user",
                "project_members",
                &["organization_id", "user_id"],
            ))
            .await?;
        protect_tenant_table(manager, "project_members", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("api_keys")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid_null("project_id"))
                        .col(string_len("name", 100))
                        .col(string_len_uniq("prefix", 16))
                        .col(string_len("secret_hash", 64))
                        .col(string_len("role", 16))
                        .col(uuid("created_by"))
                        .col(timestamp_with_time_zone_null("expires_at"))
                        .col(timestamp_with_time_zone_null("last_used_at"))
                        .col(timestamp_with_time_zone_null("revoked_at"))
                        .foreign_key(&mut cascade("api_keys", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("api_keys", "project_id", "projects")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index("api_keys_org_id", "api_keys", &["organization_id", "id"]))
            .await?;
        protect_tenant_table(manager, "api_keys", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("sessions")
                        .col(pk_uuid("id"))
                        .col(uuid("user_id"))
                        .col(uuid("family_id"))
                        .col(string_len_uniq("token_hash", 64))
                        .col(timestamp_with_time_zone("expires_at"))
                        .col(timestamp_with_time_zone_null("rotated_at"))
                        .col(timestamp_with_time_zone_null("revoked_at"))
                        .foreign_key(&mut cascade("sessions", "user_id", "users")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index("sessions_family", "sessions", &["family_id"]))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "sessions",
            "api_keys",
            "project_members",
            "projects",
            "organization_members",
            "organizations",
            "users",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
