//! PostgreSQL row-level security, the second lock: proven without the application's filter.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use secrecy::ExposeSecret;
use serde_json::json;
use std::collections::BTreeSet;
use tenantql::ids::OrgId;
use tenantql::settings::Environment;
use tenantql::tenancy::Access;
use tenantql::tenancy::scoped::begin_tenant_transaction;
use tenantql::tenancy::tables::tenant_tables;
use uuid::Uuid;

use crate::helpers::{Backend, PG_OWNER_ROLE, TestApp, postgres};

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

    let txn = begin_tenant_transaction(&app.tenant_db, acme_id, Access::Read)
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
    let txn = begin_tenant_transaction(&app.tenant_db, acme_id, Access::Write)
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
    let txn = begin_tenant_transaction(&app.tenant_db, acme_id, Access::Write)
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
    let txn = begin_tenant_transaction(&app.tenant_db, acme_id, Access::Read)
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
    // The tenant pool has one connection: the one every request above used.
    let row = app
        .tenant_db
        .connection_for_checks()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text, coalesce(current_setting('app.organization_id', true), '')",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), migration::APP_ROLE);
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
    let listed: BTreeSet<&str> = tenant_tables().iter().map(|(table, _)| *table).collect();
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
                "{table} has organization_id but is not a tenant table (src/tenancy/tables.rs)"
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
        "src/tenancy/tables.rs names a table that does not exist"
    );
    // Every tenant table has an index leading with its tenant key.
    for (table, column) in tenant_tables() {
        let leading = conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                 WHERE i.indrelid = $1::regclass AND a.attname = $2",
                [table.into(), column.into()],
            ))
            .await
            .unwrap();
        assert!(count(leading) > 0, "{table} has no index leading with {column}");
    }
}

/// What an injected statement could try inside a tenant transaction: leave the role it runs
/// as, then read or write another tenant's rows, or become the owner. The connection's own
/// login role is the RLS-bound one, so `RESET ROLE` leaves it where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_role_inside_a_tenant_transaction_stays_under_every_policy() {
    let Some(app) = postgres_app().await else { return };
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    acme.project("A1").await;
    globex.project("G1").await;
    let acme_id = OrgId(Uuid::parse_str(&acme.id).unwrap());
    let globex_uuid = Uuid::parse_str(&globex.id).unwrap();

    let txn = begin_tenant_transaction(&app.tenant_db, acme_id, Access::Write)
        .await
        .unwrap();
    txn.execute_unprepared("RESET ROLE").await.unwrap();
    for (sql, expected) in [
        ("SELECT count(*) FROM projects", 1),
        ("SELECT count(*) FROM organizations", 1),
        ("SELECT count(*) FROM organization_members", 1),
    ] {
        let rows = txn
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap();
        assert_eq!(count(rows), expected, "{sql} after RESET ROLE");
    }
    let theirs = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) FROM projects WHERE organization_id = $1",
            [globex_uuid.into()],
        ))
        .await
        .unwrap();
    assert_eq!(count(theirs), 0, "another tenant's projects after RESET ROLE");
    let renamed = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE projects SET name = 'taken' WHERE organization_id = $1",
            [globex_uuid.into()],
        ))
        .await
        .unwrap();
    assert_eq!(renamed.rows_affected(), 0, "another tenant's project was updated");
    let become_owner = txn.execute_unprepared("SET ROLE tenantql_owner").await;
    let refusal = become_owner
        .expect_err("SET ROLE to the owner must be refused")
        .to_string();
    assert!(refusal.contains("permission denied"), "{refusal}");
    drop(txn);

    // Nothing of Globex changed, as its owner sees through the API.
    let listed = globex
        .owner
        .gql("{ projects { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(listed.data("projects")["edges"][0]["node"]["name"], "G1");
}

/// The error of a production server whose tenant transactions would log in as `role`.
async fn production_start_as(role: &str) -> Option<String> {
    let started = TestApp::try_spawn_with(Backend::Postgres, |config| {
        config.environment = Environment::Production;
        let tenant_url = config
            .tenant_database_url
            .as_ref()
            .map(|url| url.expose_secret().replacen(migration::APP_ROLE, role, 1))
            .expect("a tenant URL on PostgreSQL");
        config.tenant_database_url = Some(tenant_url.into());
    })
    .await?;
    Some(format!(
        "{:#}",
        started.err().expect("the server must refuse to start")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_tenant_transactions_as_a_role_that_can_bypass_rls() {
    // The owner itself: BYPASSRLS, and the owner of every table.
    let Some(error) = production_start_as(PG_OWNER_ROLE).await else {
        return;
    };
    assert!(error.contains("can bypass row-level security"), "{error}");
    assert!(error.contains("BYPASSRLS"), "{error}");
    assert!(error.contains("owns objects of this database through"), "{error}");
    assert!(error.contains("would run as tenantql_owner"), "{error}");

    // A role with no such attribute of its own that could `SET ROLE` to the owner.
    let member = format!("tenantql_test_{}", Uuid::new_v4().simple());
    postgres::create_login_role(&member, &[migration::APP_ROLE, PG_OWNER_ROLE]).await;
    let error = production_start_as(&member).await;
    postgres::drop_role(&member).await;
    let error = error.expect("PostgreSQL");
    assert!(error.contains(&format!("would run as {member}")), "{error}");
    assert!(error.contains("through tenantql_owner"), "{error}");

    // A role without the app role's privileges would fail every statement: refused too.
    let stranger = format!("tenantql_test_{}", Uuid::new_v4().simple());
    postgres::create_login_role(&stranger, &[]).await;
    let error = production_start_as(&stranger).await;
    postgres::drop_role(&stranger).await;
    let error = error.expect("PostgreSQL");
    assert!(error.contains("lacks the privileges of tenantql_app"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_needs_a_tenant_role_to_serve() {
    let Some(started) = TestApp::try_spawn_with(Backend::Postgres, |config| {
        config.tenant_database_url = None;
    })
    .await
    else {
        return;
    };
    let error = format!("{:#}", started.err().expect("the server must refuse to start"));
    assert!(error.contains("TENANT_DATABASE_URL is required"), "{error}");
}

/// Sharing under RLS alone: an agent offered to an organization is readable there (its admins
/// review it) with its own offer row and no other organization's; the acceptance is the
/// receiver's row, invisible to the author; the receiver may remove an offer made to it and
/// nothing else of the author's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_rows_are_visible_to_their_two_sides_only() {
    let Some(app) = postgres_app().await else { return };
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let initech = app.org("Initech").await;
    let umbrella = app.org("Umbrella").await;
    let share = "mutation($id: ID!, $o: [ID!]!) { shareAgent(agentId: $id, organizationIds: $o) { id } }";
    let to_globex = crate::jobs::echo_agent(&acme.owner, json!({})).await;
    let to_initech = crate::jobs::echo_agent(&acme.owner, json!({})).await;
    acme.owner
        .gql(share, json!({ "id": to_globex, "o": [globex.id] }))
        .await
        .data("shareAgent");
    acme.owner
        .gql(share, json!({ "id": to_initech, "o": [initech.id] }))
        .await
        .data("shareAgent");
    globex
        .owner
        .gql(
            "mutation($id: ID!) { acceptAgentShare(agentId: $id) { id } }",
            json!({ "id": to_globex }),
        )
        .await
        .data("acceptAgentShare");
    let org = |org: &crate::helpers::Org| OrgId(Uuid::parse_str(&org.id).unwrap());
    let uuid = |id: &str| Uuid::parse_str(id).unwrap();

    async fn counts(app: &TestApp, org: OrgId) -> (i64, i64, i64) {
        let txn = begin_tenant_transaction(&app.tenant_db, org, Access::Read)
            .await
            .unwrap();
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM agent_shares), \
                 (SELECT count(*) FROM agent_share_acceptances)",
            ))
            .await
            .unwrap()
            .unwrap();
        (
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
            row.try_get_by_index(2).unwrap(),
        )
    }
    // (agents, offers, acceptances) each organization's transactions see.
    assert_eq!(counts(&app, org(&acme)).await, (2, 2, 0), "the author");
    assert_eq!(
        counts(&app, org(&globex)).await,
        (1, 1, 1),
        "the accepting receiver"
    );
    assert_eq!(
        counts(&app, org(&initech)).await,
        (1, 1, 0),
        "the pending receiver"
    );
    assert_eq!(
        counts(&app, org(&umbrella)).await,
        (0, 0, 0),
        "an organization not offered"
    );

    let txn = begin_tenant_transaction(&app.tenant_db, org(&globex), Access::Write)
        .await
        .unwrap();
    // The receiver cannot redirect the author's offer, nor write offers of the author's agents.
    let redirected = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE agent_shares SET shared_with_organization_id = $1",
            [uuid(&umbrella.id).into()],
        ))
        .await
        .unwrap();
    assert_eq!(redirected.rows_affected(), 0, "an offer was redirected");
    let forged = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO agent_shares (id, organization_id, agent_id, shared_with_organization_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, now(), now())",
            [
                Uuid::now_v7().into(),
                uuid(&acme.id).into(),
                uuid(&to_initech).into(),
                uuid(&globex.id).into(),
            ],
        ))
        .await;
    let forged = forged
        .expect_err("the receiver wrote an offer to itself")
        .to_string();
    assert!(forged.contains("row-level security"), "{forged}");
    drop(txn);
    // Nor accept on another organization's behalf.
    let txn = begin_tenant_transaction(&app.tenant_db, org(&globex), Access::Write)
        .await
        .unwrap();
    let accepted_for_initech = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO agent_share_acceptances (id, organization_id, share_id, agent_id, revision, created_at, updated_at) \
             SELECT $1, $2, s.id, s.agent_id, 1, now(), now() FROM agent_shares s",
            [Uuid::now_v7().into(), uuid(&initech.id).into()],
        ))
        .await;
    let accepted_for_initech = accepted_for_initech
        .expect_err("an acceptance was written for another tenant")
        .to_string();
    assert!(
        accepted_for_initech.contains("row-level security"),
        "{accepted_for_initech}"
    );
    drop(txn);
    // It may remove the offer made to it, and only that one (its acceptance goes with it).
    let txn = begin_tenant_transaction(&app.tenant_db, org(&globex), Access::Write)
        .await
        .unwrap();
    let agents_removed = txn.execute_unprepared("DELETE FROM agents").await.unwrap();
    assert_eq!(
        agents_removed.rows_affected(),
        0,
        "the receiver deleted the author's agent"
    );
    let removed = txn.execute_unprepared("DELETE FROM agent_shares").await.unwrap();
    assert_eq!(removed.rows_affected(), 1);
    let left = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM agent_share_acceptances",
        ))
        .await
        .unwrap();
    assert_eq!(count(left), 0);
    txn.commit().await.unwrap();
    assert_eq!(counts(&app, org(&acme)).await, (2, 1, 0));
    assert_eq!(counts(&app, org(&initech)).await, (1, 1, 0));
    assert_eq!(counts(&app, org(&globex)).await, (0, 0, 0));
}
