//! Agents and their sharing, agent jobs and their ordered events.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{cascade, index, timestamps};
use crate::rls::{CURRENT_ORGANIZATION, add_read_policy, protect_tenant_table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_agent_jobs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("agents")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid_null("project_id"))
                        .col(string_len("name", 100))
                        .col(string_len("kind", 32))
                        .col(json("config"))
                        .col(string_len("sharing", 16))
                        .col(integer("max_attempts"))
                        .foreign_key(&mut cascade("agents", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("agents", "project_id", "projects")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index("agents_org_id", "agents", &["organization_id", "id"]))
            .await?;
        manager
            .create_index(index("agents_sharing", "agents", &["sharing", "id"]))
            .await?;

        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("agent_shares")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("agent_id"))
                        .col(uuid("shared_with_organization_id"))
                        .foreign_key(&mut cascade("agent_shares", "organization_id", "organizations"))
                        .foreign_key(&mut cascade("agent_shares", "agent_id", "agents"))
                        .foreign_key(&mut cascade(
                            "agent_shares",
                            "shared_with_organization_id",
                            "organizations",
                        )),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "agent_shares_org_agent_with",
                    "agent_shares",
                    &["organization_id", "agent_id", "shared_with_organization_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "agent_shares_with_agent",
                "agent_shares",
                &["shared_with_organization_id", "agent_id"],
            ))
            .await?;

        // Agents are written only by their organization, but GLOBAL ones are read by every
        // tenant and SELECTIVE ones by the organizations they are shared with; a share row is
        // readable by the organization it names, so that check can see it.
        protect_tenant_table(manager, "agents", "organization_id").await?;
        add_read_policy(
            manager,
            "agents",
            "shared_read",
            &format!(
                "sharing = 'GLOBAL' OR (sharing = 'SELECTIVE' AND EXISTS (SELECT 1 FROM agent_shares s \
                 WHERE s.agent_id = agents.id AND s.shared_with_organization_id = {CURRENT_ORGANIZATION}))"
            ),
        )
        .await?;
        protect_tenant_table(manager, "agent_shares", "organization_id").await?;
        add_read_policy(
            manager,
            "agent_shares",
            "shared_with_read",
            &format!("shared_with_organization_id = {CURRENT_ORGANIZATION}"),
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("agent_jobs")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(uuid("project_id"))
                    .col(uuid_null("agent_id"))
                    .col(string_len("status", 16))
                    .col(integer("progress"))
                    .col(json("input"))
                    .col(json_null("output"))
                    .col(text_null("error"))
                    .col(integer("attempts"))
                    .col(integer("max_attempts"))
                    .col(big_integer("last_seq"))
                    .col(boolean("cancel_requested"))
                    .col(timestamp_with_time_zone("run_after"))
                    .col(uuid_null("worker_id"))
                    .col(timestamp_with_time_zone_null("lease_expires_at"))
                    .col(uuid("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut cascade("agent_jobs", "organization_id", "organizations"))
                    .foreign_key(&mut cascade("agent_jobs", "project_id", "projects"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("agent_jobs", "agent_id")
                            .to("agents", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "agent_jobs_org_project_id",
                "agent_jobs",
                &["organization_id", "project_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "agent_jobs_org_id",
                "agent_jobs",
                &["organization_id", "id"],
            ))
            .await?;
        // Workers claim across tenants: by status and due time, then expired leases.
        manager
            .create_index(index("agent_jobs_claim", "agent_jobs", &["status", "run_after"]))
            .await?;
        manager
            .create_index(index(
                "agent_jobs_lease",
                "agent_jobs",
                &["status", "lease_expires_at"],
            ))
            .await?;
        protect_tenant_table(manager, "agent_jobs", "organization_id").await?;

        manager
            .create_table(
                Table::create()
                    .table("agent_job_events")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(uuid("project_id"))
                    .col(uuid("job_id"))
                    .col(big_integer("seq"))
                    .col(string_len("status", 16))
                    .col(integer("progress"))
                    .col(text_null("message"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut cascade(
                        "agent_job_events",
                        "organization_id",
                        "organizations",
                    ))
                    .foreign_key(&mut cascade("agent_job_events", "job_id", "agent_jobs"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("agent_job_events_job_seq", "agent_job_events", &["job_id", "seq"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "agent_job_events_org_job_seq",
                "agent_job_events",
                &["organization_id", "job_id", "seq"],
            ))
            .await?;
        protect_tenant_table(manager, "agent_job_events", "organization_id").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["agent_job_events", "agent_jobs", "agent_shares", "agents"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
