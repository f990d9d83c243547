-- Roles for tenantql, created once by the database superuser:
-- tenantql_owner owns the schema and runs migrations; it bypasses RLS only outside tenant
-- transactions, which always switch to tenantql_app, the role every policy applies to.
CREATE ROLE tenantql_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
CREATE ROLE tenantql_owner LOGIN PASSWORD 'tenantql' NOSUPERUSER BYPASSRLS;
GRANT tenantql_app TO tenantql_owner;
CREATE DATABASE tenantql OWNER tenantql_owner;
