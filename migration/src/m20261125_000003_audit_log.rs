//! The audit trail: one row per change, written in the change's own transaction.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::index;
use crate::rls::protect_append_only_table;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_audit_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign keys: the trail outlives what it describes, users and organizations
        // included.
        manager
            .create_table(
                Table::create()
                    .table("audit_log")
                    .col(pk_uuid("id"))
                    .col(uuid_null("organization_id"))
                    .col(string_len("actor_kind", 16))
                    .col(uuid("actor_id"))
                    .col(string_len("action", 64))
                    .col(string_len_null("resource_type", 64))
                    .col(uuid_null("resource_id"))
                    .col(json_null("before"))
                    .col(json_null("after"))
                    .col(string_len_null("ip", 64))
                    .col(string_len_null("user_agent", 512))
                    .col(string_len_null("request_id", 128))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("audit_log_org_id", "audit_log", &["organization_id", "id"]))
            .await?;
        protect_append_only_table(manager, "audit_log", "organization_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_log").to_owned())
            .await?;
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
                .await?;
        }
        Ok(())
    }
}
