//! Organization erasure: the record of each erasure, kept outside the erased tenant, and an
//! audit trail that stays append-only while its organization exists.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000009_erasures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key and no `organization_id`: this row outlives the organization, and
        // it is the platform's record, not the tenant's (the app role gets no grant on it).
        manager
            .create_table(
                Table::create()
                    .table("organization_erasures")
                    .col(pk_uuid("id"))
                    .col(uuid_uniq("erased_organization_id"))
                    .col(string("organization_name"))
                    .col(uuid_null("requested_by"))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(big_integer("rows_deleted").default(0))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .to_owned(),
            )
            .await?;
        // An organization's audit rows may be deleted only once the organization is gone,
        // as the last step of its erasure; account events (no organization) never.
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "CREATE FUNCTION audit_log_refuse_live_delete() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                     IF OLD.organization_id IS NULL
                        OR EXISTS (SELECT 1 FROM organizations WHERE id = OLD.organization_id) THEN
                       RAISE EXCEPTION 'audit_log is append-only';
                     END IF;
                     RETURN OLD;
                   END $$;
                 DROP TRIGGER audit_log_append_only ON audit_log;
                 CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
                   FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
                 CREATE TRIGGER audit_log_erased_only BEFORE DELETE ON audit_log
                   FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_live_delete();",
            )
            .await?;
        } else {
            db.execute_unprepared(
                "DROP TRIGGER audit_log_append_only_delete;
                 CREATE TRIGGER audit_log_erased_only BEFORE DELETE ON audit_log
                 WHEN OLD.organization_id IS NULL
                   OR EXISTS (SELECT 1 FROM organizations WHERE id = OLD.organization_id)
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "DROP TRIGGER audit_log_erased_only ON audit_log;
                 DROP TRIGGER audit_log_append_only ON audit_log;
                 DROP FUNCTION audit_log_refuse_live_delete();
                 CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
                   FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();",
            )
            .await?;
        } else {
            db.execute_unprepared(
                "DROP TRIGGER audit_log_erased_only;
                 CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
                 BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;",
            )
            .await?;
        }
        manager
            .drop_table(Table::drop().table("organization_erasures").to_owned())
            .await
    }
}
