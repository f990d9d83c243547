//! Usage: what each job cost its organization, for monthly budgets.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index};
use crate::rls::protect_tenant_table;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000005_usage_records"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Project and job may be deleted; what they cost stays on the organization's bill.
        manager
            .create_table(
                Table::create()
                    .table("usage_records")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(uuid_null("project_id"))
                    .col(uuid_null("job_id"))
                    .col(string_len("service", 64))
                    .col(big_integer("tokens"))
                    .col(big_integer("cost_cents"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade("usage_records", "organization_id", "organizations"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "usage_records_org_created",
                "usage_records",
                &["organization_id", "created_at"],
            ))
            .await?;
        protect_tenant_table(manager, "usage_records", "organization_id").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_records").to_owned())
            .await
    }
}
