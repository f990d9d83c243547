//! PostgreSQL row-level security: the application role and the per-table tenant policy.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The role every tenant transaction runs as: the server's tenant pool logs in as it
/// (`TENANT_DATABASE_URL`). It owns nothing, is not a superuser and cannot bypass RLS, so
/// the policies below always apply to it.
pub const APP_ROLE: &str = "tenantql_app";

/// The policy predicate: the row's tenant key equals the organization set for this
/// transaction. `(select …)` makes PostgreSQL read the setting once per statement;
/// `NULLIF` turns the empty string left behind by an ended local setting into NULL.
fn tenant_predicate(key_column: &str) -> String {
    format!("{key_column} = {CURRENT_ORGANIZATION}")
}

/// Creates the application role once per cluster and lets the migrating role switch to it.
pub async fn create_app_role(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    // Creating a role needs CREATEROLE; a deployment whose migrating role lacks it creates
    // the role once beforehand (docs/deploying.md) and this step finds it there.
    db.execute_unprepared(&format!(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
             CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
           END IF;
           IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
             GRANT {APP_ROLE} TO CURRENT_USER;
           END IF;
         END $$;
         GRANT USAGE ON SCHEMA public TO {APP_ROLE};"
    ))
    .await?;
    Ok(())
}

/// Enables and forces RLS on a tenant table, with one policy for reads and writes alike
/// (`WITH CHECK` stops a row being written into, or moved to, another tenant).
pub async fn protect_tenant_table(
    manager: &SchemaManager<'_>,
    table: &str,
    key_column: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let predicate = tenant_predicate(key_column);
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate});
             GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE};"
        ))
        .await?;
    Ok(())
}

/// Protects an append-only tenant table: the app role may read and add its tenant's rows and
/// nothing else, and a trigger refuses updates and deletes from every role, owner included.
pub async fn protect_append_only_table(
    manager: &SchemaManager<'_>,
    table: &str,
    key_column: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if manager.get_database_backend() != DbBackend::Postgres {
        for event in ["UPDATE", "DELETE"] {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {table}_append_only_{} BEFORE {event} ON {table}
                 BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;",
                event.to_lowercase()
            ))
            .await?;
        }
        return Ok(());
    }
    let predicate = tenant_predicate(key_column);
    db.execute_unprepared(&format!(
        "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
         ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
         CREATE POLICY tenant_read ON {table} FOR SELECT USING ({predicate});
         CREATE POLICY tenant_append ON {table} FOR INSERT WITH CHECK ({predicate});
         GRANT SELECT, INSERT ON {table} TO {APP_ROLE};
         CREATE FUNCTION {table}_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION '{table} is append-only'; END $$;
         CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
           FOR EACH ROW EXECUTE FUNCTION {table}_refuse_change();
         CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION {table}_refuse_change();"
    ))
    .await?;
    Ok(())
}

/// Adds a read-only policy: rows matching `predicate` become visible to other tenants too
/// (policies of one command are OR-ed), while writes stay bound by `tenant_isolation`.
pub async fn add_read_policy(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    predicate: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "CREATE POLICY {name} ON {table} FOR SELECT USING ({predicate});"
        ))
        .await?;
    Ok(())
}

/// The organization set for the current transaction, as SQL.
pub const CURRENT_ORGANIZATION: &str =
    "(SELECT NULLIF(current_setting('app.organization_id', true), '')::uuid)";
