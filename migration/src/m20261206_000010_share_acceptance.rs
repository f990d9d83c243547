//! Sharing on the receiving organization's terms: an agent's configuration has a revision,
//! and a SELECTIVE share takes effect only while the receiving organization has accepted the
//! agent's current revision. Existing GLOBAL agents become SELECTIVE, offered to the
//! organizations that ran them.

use sea_orm_migration::sea_orm::prelude::ChronoUtc;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::{prelude::*, schema::*};
use uuid::Uuid;

use crate::helpers::{cascade, index, timestamps};
use crate::rls::{CURRENT_ORGANIZATION, protect_tenant_table};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000010_share_acceptance"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Bumped whenever what the agent runs changes (kind, config, attempts): an acceptance
        // names the revision it accepted.
        manager
            .alter_table(
                Table::alter()
                    .table("agents")
                    .add_column(integer("revision").default(1))
                    .to_owned(),
            )
            .await?;

        // The receiving organization's acceptance of one offer: its own row, written only by
        // it. It goes with the offer (withdrawn by the author, declined or left by the
        // receiver) and with the agent.
        manager
            .create_table(
                timestamps(
                    Table::create()
                        .table("agent_share_acceptances")
                        .col(pk_uuid("id"))
                        .col(uuid("organization_id"))
                        .col(uuid("share_id"))
                        .col(uuid("agent_id"))
                        .col(integer("revision"))
                        .foreign_key(&mut cascade(
                            "agent_share_acceptances",
                            "organization_id",
                            "organizations",
                        ))
                        .foreign_key(&mut cascade(
                            "agent_share_acceptances",
                            "share_id",
                            "agent_shares",
                        ))
                        .foreign_key(&mut cascade("agent_share_acceptances", "agent_id", "agents")),
                )
                .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "agent_share_acceptances_org_agent",
                    "agent_share_acceptances",
                    &["organization_id", "agent_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "agent_share_acceptances_share",
                "agent_share_acceptances",
                &["share_id"],
            ))
            .await?;
        // Read and written by the receiving organization alone: the author learns nothing of
        // it, and no other tenant can accept on the receiver's behalf.
        protect_tenant_table(manager, "agent_share_acceptances", "organization_id").await?;

        if manager.get_database_backend() == DbBackend::Postgres {
            // An offer is the author's row, but the organization it is made to may remove it
            // (decline, leave). Deleting cannot redirect or widen a share, so no column
            // privilege is needed; updates stay the author's alone.
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "CREATE POLICY shared_with_delete ON agent_shares FOR DELETE
                       USING (shared_with_organization_id = {CURRENT_ORGANIZATION});"
                ))
                .await?;
        }

        demote_global_agents(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP POLICY IF EXISTS shared_with_delete ON agent_shares;")
                .await?;
        }
        manager
            .drop_table(Table::drop().table("agent_share_acceptances").to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table("agents").drop_column("revision").to_owned())
            .await
    }
}

/// Until now any organization admin could make an agent GLOBAL, so a GLOBAL agent says
/// nothing about who vetted it. Each becomes SELECTIVE, offered (pending) to every other
/// organization that has run it: they keep finding it and decide whether to accept it; a
/// platform admin makes the ones the platform vouches for GLOBAL again.
async fn demote_global_agents(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let users = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT DISTINCT a.id, a.organization_id, j.organization_id
             FROM agents a JOIN agent_jobs j ON j.agent_id = a.id
             WHERE a.sharing = 'GLOBAL' AND j.organization_id <> a.organization_id",
        ))
        .await?;
    let now = ChronoUtc::now();
    for row in users {
        let agent: Uuid = row.try_get_by_index(0)?;
        let owner: Uuid = row.try_get_by_index(1)?;
        let user: Uuid = row.try_get_by_index(2)?;
        let offer = Query::insert()
            .into_table("agent_shares")
            .columns([
                "id",
                "organization_id",
                "agent_id",
                "shared_with_organization_id",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                Uuid::now_v7().into(),
                owner.into(),
                agent.into(),
                user.into(),
                now.into(),
                now.into(),
            ])
            // An offer left from when the agent was SELECTIVE stands as it is.
            .on_conflict(
                OnConflict::columns(["organization_id", "agent_id", "shared_with_organization_id"])
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        manager.exec_stmt(offer).await?;
    }
    manager
        .exec_stmt(
            Query::update()
                .table("agents")
                .value("sharing", "SELECTIVE")
                .and_where(Expr::col("sharing").eq("GLOBAL"))
                .to_owned(),
        )
        .await
}
