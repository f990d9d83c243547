-- Roles for tenantql, created once by the database superuser:
-- tenantql_owner owns the schema and runs migrations and the few cross-tenant steps;
-- tenantql_app owns nothing and cannot bypass RLS: every tenant transaction logs in as it,
-- so every policy applies whatever a statement does. The membership lets the first
-- migration find the owner in tenantql_app; it gives tenantql_app nothing.
CREATE ROLE tenantql_owner LOGIN PASSWORD 'tenantql' NOSUPERUSER BYPASSRLS;
CREATE ROLE tenantql_app LOGIN PASSWORD 'tenantql_app' NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
GRANT tenantql_app TO tenantql_owner;
CREATE DATABASE tenantql OWNER tenantql_owner;
