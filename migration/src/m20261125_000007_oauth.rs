//! OAuth2 connections of third-party accounts: the pending authorizations (state and PKCE
//! verifier, single use, ten minutes) and the connected accounts' tokens, encrypted.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index, timestamps};
use crate::rls::protect_tenant_table;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000007_oauth"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("oauth_states")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("user_id"))
                        .col(string_len("provider", 64))
                        .col(string_len_uniq("state_hash", 64))
                        .col(text("pkce_verifier"))
                        .col(timestamp_with_time_zone("expires_at"))
                        .col(timestamp_with_time_zone_null("used_at"))
                        .foreign_key(&mut cascade("oauth_states", "organization_id", "organizations")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "oauth_states_org_id",
                "oauth_states",
                &["organization_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "oauth_states", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("integrations")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(string_len("provider", 64))
                        .col(text("access_token"))
                        .col(text_null("refresh_token"))
                        .col(timestamp_with_time_zone_null("expires_at"))
                        .col(string_len("scopes", 1024))
                        .col(uuid("connected_by"))
                        .foreign_key(&mut cascade("integrations", "organization_id", "organizations")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "integrations_org_provider",
                    "integrations",
                    &["organization_id", "provider"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "integrations_org_id",
                "integrations",
                &["organization_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "integrations", "organization_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["integrations", "oauth_states"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
