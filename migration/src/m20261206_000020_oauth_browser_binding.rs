//! A pending OAuth authorization remembers the browser it is bound to: the SHA-256 of the
//! secret its cookie holds. The callback completes only in that browser.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000020_oauth_browser_binding"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("oauth_states")
                    .add_column(text_null("browser_hash"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("oauth_states")
                    .drop_column("browser_hash")
                    .to_owned(),
            )
            .await
    }
}
