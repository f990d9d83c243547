//! Integrations: organizations' encrypted provider credentials, and chat bots paired to
//! projects through single-use codes.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index, timestamps};
use crate::rls::protect_tenant_table;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000006_integrations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("provider_credentials")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(string_len("provider", 64))
                        // `v1:<key id>:<base64>`: AES-256-GCM, see src/integrations/crypto.rs.
                        .col(text("secret"))
                        .col(string_len("last_four", 4))
                        .col(uuid("created_by"))
                        .foreign_key(&mut cascade(
                            "provider_credentials",
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
                    "provider_credentials_org_provider",
                    "provider_credentials",
                    &["organization_id", "provider"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "provider_credentials_org_id",
                "provider_credentials",
                &["organization_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "provider_credentials", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("pairing_codes")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("project_id"))
                        // SHA-256 of the organization id and the code: six digits are too
                        // few to store bare, and the same code may exist in two tenants.
                        .col(string_len("code_hash", 64))
                        .col(timestamp_with_time_zone("expires_at"))
                        .col(timestamp_with_time_zone_null("used_at"))
                        .col(uuid("created_by"))
                        .foreign_key(&mut cascade("pairing_codes", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("pairing_codes", "project_id", "projects")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "pairing_codes_org_code",
                "pairing_codes",
                &["organization_id", "code_hash"],
            ))
            .await?;
        protect_tenant_table(manager, "pairing_codes", "organization_id").await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("chat_pairings")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("project_id"))
                        .col(string_len("platform", 32))
                        .col(string_len("chat_id", 128))
                        .col(uuid("api_key_id"))
                        .foreign_key(&mut cascade("chat_pairings", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("chat_pairings", "project_id", "projects")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "chat_pairings_org_platform_chat",
                    "chat_pairings",
                    &["organization_id", "platform", "chat_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "chat_pairings_org_id",
                "chat_pairings",
                &["organization_id", "id"],
            ))
            .await?;
        protect_tenant_table(manager, "chat_pairings", "organization_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["chat_pairings", "pairing_codes", "provider_credentials"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
