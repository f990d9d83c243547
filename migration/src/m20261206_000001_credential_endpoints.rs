//! A provider credential carries the endpoint it may be sent to, chosen by the organization
//! that stores it; `NULL` means the operator's endpoint for its provider (`LLM_PROVIDERS`).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000001_credential_endpoints"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("provider_credentials")
                    .add_column(text_null("base_url"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("provider_credentials")
                    .drop_column("base_url")
                    .to_owned(),
            )
            .await
    }
}
