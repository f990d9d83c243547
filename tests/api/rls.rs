//! PostgreSQL row-level security, the second lock: proven without the application's filter.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;
use std::collections::BTreeSet;
use tenantql::ids::OrgId;
use tenantql::tenancy::scoped::{Access, begin_tenant_transaction};
use tenantql::tenancy::tables::TENANT_TABLES;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};

async fn postgres_app() -> Option<TestApp> {
    TestApp::spawn(Backend::Postgres).await
}

fn count(row: Option<sea_orm::QueryResult>) -> i64 {
    row.expect("a row").try_get_by_index::<i64>(0).expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_transaction_sees_only_its_tenant_without_any_application_filter() {
    let Some(app) = postgres_app().await else { return };
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    acme.project("A1").await;
    acme.project("A2").await;
    globex.project("G1").await;
    let acme_id = OrgId(Uuid::parse_str(&acme.id).unwrap());

    let txn = begin_tenant_transaction(&app.db, acme_id, Access::Read)
        .await
        .unwrap();
    for (table, expected) in [("projects", 2), ("organizations", 1), ("organization_members", 1)] {
        let rows = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT count(*) FROM {table}"),
            ))
            .await
            .unwrap();
        assert_eq!(count(rows), expected, "{table}");
    }
    let globex_rows = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM projects WHERE organization_id = $1",
            [Uuid::parse_str(&globex.id).unwrap().into()],
        ))
        .await
        .unwrap();
    assert_eq!(count(globex_rows), 0);
    drop(txn);

    // Writing a row into another tenant is refused by the policy's WITH CHECK.
    let txn = begin_tenant_transaction(&app.db, acme_id, Access::Write)
        .await
        .unwrap();
    let insert = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO projects (id, organization_id, slug, name, created_at, updated_at) VALUES ($1, $2, 'x', 'x', now(), now())",
            [Uuid::now_v7().into(), Uuid::parse_str(&globex.id).unwrap().into()],
        ))
        .await;
    assert!(insert.is_err(), "a row for another tenant was written");
    drop(txn);

    // And moving one of ours there.
    let txn = begin_tenant_transaction(&app.db, acme_id, Access::Write)
        .await
        .unwrap();
    let moved = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE projects SET organization_id = $1",
            [Uuid::parse_str(&globex.id).unwrap().into()],
        ))
        .await;
    assert!(moved.is_err(), "a row was moved to another tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_transactions_run_as_the_app_role_for_the_request_tenant() {
    let Some(app) = postgres_app().await else { return };
    let acme = app.org("Acme").await;
    let acme_id = OrgId(Uuid::parse_str(&acme.id).unwrap());
    let txn = begin_tenant_transaction(&app.db, acme_id, Access::Read)
        .await
        .unwrap();
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text, current_setting('app.organization_id', true), \
             (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), migration::APP_ROLE);
    assert_eq!(row.try_get_by_index::<String>(1).unwrap(), acme.id);
    assert!(
        !row.try_get_by_index::<bool>(2).unwrap(),
        "the app role must not bypass RLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_carries_no_tenant_after_a_request() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |config| config.db_max_connections = 1).await
    else {
        return;
    };
    let acme = app.org("Acme").await;
    acme.project("P").await;
    let listed = acme
        .owner
        .gql("{ projects { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(listed.data("projects")["edges"][0]["node"]["name"], "P");
    // The pool has one connection: the one every request above used.
    let row = app
        .db
        .connection_for_checks()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text, coalesce(current_setting('app.organization_id', true), '')",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "tenantql_owner");
    assert_eq!(row.try_get_by_index::<String>(1).unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_with_organization_id_has_forced_rls_and_is_listed() {
    let Some(app) = postgres_app().await else { return };
    let conn = app.owner_connection().await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped),
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')",
        ))
        .await
        .unwrap();
    let listed: BTreeSet<&str> = TENANT_TABLES.iter().map(|(table, _)| *table).collect();
    let mut seen = BTreeSet::new();
    for row in rows {
        let table: String = row.try_get_by_index(0).unwrap();
        let enabled: bool = row.try_get_by_index(1).unwrap();
        let forced: bool = row.try_get_by_index(2).unwrap();
        let has_org: bool = row.try_get_by_index(3).unwrap();
        let policies: i64 = row.try_get_by_index(4).unwrap();
        if has_org {
            assert!(
                listed.contains(table.as_str()),
                "{table} has organization_id but is not in TENANT_TABLES"
            );
        }
        if listed.contains(table.as_str()) {
            assert!(enabled && forced, "{table} lacks enabled and forced RLS");
            assert!(policies > 0, "{table} has no policy");
            seen.insert(table);
        }
    }
    assert_eq!(
        seen.len(),
        listed.len(),
        "TENANT_TABLES names a table that does not exist"
    );
    // Every tenant table has an index leading with its tenant key.
    for (table, column) in TENANT_TABLES {
        let leading = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = $1::regclass AND a.attname = $2",
                [(*table).into(), (*column).into()],
            ))
            .await
            .unwrap();
        assert!(count(leading) > 0, "{table} has no index leading with {column}");
    }
}
