//! Persisted queries: Apollo APQ registrations shared by every replica, each organization's
//! trusted documents, and API keys that may run nothing else.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index, timestamps};
use crate::rls::protect_tenant_table;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000004_persisted_queries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Not a tenant table: a registration maps a hash to the text it is the hash of, which
        // only someone who already has the text can ask for.
        manager
            .create_table(
                Table::create()
                    .table("persisted_queries")
                    .col(string_len("sha256", 64).primary_key())
                    .col(text("query"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("trusted_documents")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(string_len("sha256", 64))
                        .col(string_len("name", 100))
                        .col(text("query"))
                        .col(uuid("created_by"))
                        .foreign_key(&mut cascade(
                            "trusted_documents",
                            "organization_id",
                            "organizations",
                        )),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "trusted_documents_org_sha256",
                    "trusted_documents",
                    &["organization_id", "sha256"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "trusted_documents_org_id",
                "trusted_documents",
                &["organization_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "trusted_documents", "organization_id").await?;

        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .add_column(boolean("persisted_only").default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .drop_column("persisted_only")
                    .to_owned(),
            )
            .await?;
        for table in ["trusted_documents", "persisted_queries"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
