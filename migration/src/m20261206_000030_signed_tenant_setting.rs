//! The organization a tenant transaction may see is signed. Before, every policy compared
//! rows with the setting `app.organization_id`, which any statement of the transaction
//! could set again (an injected `set_config` would have switched tenant). Now the policies
//! read `tenantql_organization()`, which returns the setting only when
//! `app.organization_proof` is its keyed hash under keys the tenant role cannot read; the
//! server, which reads them through the owner's pool, sets both in one statement.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::rls::APP_ROLE;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000030_signed_tenant_setting"
    }
}

/// The setting as the catalog prints the earlier policies' expression, as a SQL string
/// literal.
const UNSIGNED: &str = "'current_setting(''app.organization_id''::text, true)'";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // Two keys of 32 random bytes each (gen_random_uuid is built in; no extension).
        let random_key = "decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex')";
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE TABLE tenancy_signing_keys (
                   id int PRIMARY KEY CHECK (id = 1),
                   inner_key bytea NOT NULL,
                   outer_key bytea NOT NULL);
                 REVOKE ALL ON tenancy_signing_keys FROM PUBLIC;
                 INSERT INTO tenancy_signing_keys VALUES (1, {random_key}, {random_key});
                 CREATE FUNCTION tenantql_organization() RETURNS text
                   LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
                     SELECT current_setting('app.organization_id', true)
                     FROM public.tenancy_signing_keys keys
                     WHERE current_setting('app.organization_proof', true) = encode(sha256(
                       keys.outer_key || sha256(keys.inner_key
                         || convert_to(current_setting('app.organization_id', true), 'UTF8'))), 'hex')
                   $$;
                 REVOKE ALL ON FUNCTION tenantql_organization() FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION tenantql_organization() TO {APP_ROLE};
                 DO $$
                 DECLARE policy record;
                 BEGIN
                   FOR policy IN
                     SELECT p.polname, c.relname,
                            pg_get_expr(p.polqual, p.polrelid) AS qual,
                            pg_get_expr(p.polwithcheck, p.polrelid) AS checked
                     FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                     WHERE c.relnamespace = 'public'::regnamespace
                   LOOP
                     IF policy.qual LIKE '%app.organization_id%' THEN
                       EXECUTE format('ALTER POLICY %I ON %I USING (%s)', policy.polname, policy.relname,
                         replace(policy.qual, {UNSIGNED}, 'tenantql_organization()'));
                     END IF;
                     IF policy.checked LIKE '%app.organization_id%' THEN
                       EXECUTE format('ALTER POLICY %I ON %I WITH CHECK (%s)', policy.polname, policy.relname,
                         replace(policy.checked, {UNSIGNED}, 'tenantql_organization()'));
                     END IF;
                   END LOOP;
                   IF EXISTS (SELECT 1 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                              WHERE c.relnamespace = 'public'::regnamespace
                                AND (pg_get_expr(p.polqual, p.polrelid) LIKE '%app.organization_id%'
                                  OR pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%app.organization_id%')) THEN
                     RAISE EXCEPTION 'a policy still reads app.organization_id unsigned';
                   END IF;
                 END $$;"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DO $$
                 DECLARE policy record;
                 BEGIN
                   FOR policy IN
                     SELECT p.polname, c.relname,
                            pg_get_expr(p.polqual, p.polrelid) AS qual,
                            pg_get_expr(p.polwithcheck, p.polrelid) AS checked
                     FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                     WHERE c.relnamespace = 'public'::regnamespace
                   LOOP
                     IF policy.qual LIKE '%tenantql_organization()%' THEN
                       EXECUTE format('ALTER POLICY %I ON %I USING (%s)', policy.polname, policy.relname,
                         replace(policy.qual, 'tenantql_organization()', {UNSIGNED}));
                     END IF;
                     IF policy.checked LIKE '%tenantql_organization()%' THEN
                       EXECUTE format('ALTER POLICY %I ON %I WITH CHECK (%s)', policy.polname, policy.relname,
                         replace(policy.checked, 'tenantql_organization()', {UNSIGNED}));
                     END IF;
                   END LOOP;
                 END $$;
                 DROP FUNCTION tenantql_organization();
                 DROP TABLE tenancy_signing_keys;"
            ))
            .await?;
        Ok(())
    }
}
