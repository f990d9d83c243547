//! Exporting and erasing one organization: every row of every tenant table, and its files.
//! Nothing of it is left afterwards and nothing of another organization is touched; an
//! interrupted erasure is finished by running it again.

use std::collections::BTreeMap;
use std::process::Command;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use tenantql::tenancy::tables::tenant_tables;

use crate::backend_tests;
use crate::helpers::{ENCRYPTION_KEYS, JWT_SECRET, Org, TestApp};
use crate::jobs::{echo_agent, start_job, terminal, wait_for};

backend_tests!(
    export_writes_every_row_of_one_organization_without_secrets,
    deleting_an_organization_erases_all_of_it_and_nothing_else,
    an_interrupted_erasure_is_finished_by_running_it_again,
);

/// Fills an organization with a row in most tenant tables: members, projects, a key, an
/// agent shared with nobody, a finished job with its events, usage and an artifact, content,
/// a credential, a pairing code, a trusted document, and their audit trail.
async fn populate(app: &TestApp, org: &Org) {
    let owner = &org.owner;
    let project = org.project("Launch").await;
    org.member(app, "MEMBER").await;
    org.api_key(app, "MEMBER", None).await;
    let agent = echo_agent(
        owner,
        json!({ "steps": 2, "costCentsPerStep": 1, "artifact": "out.json" }),
    )
    .await;
    let job = start_job(owner, &agent, &project, json!({})).await;
    assert_eq!(wait_for(owner, &job, terminal).await["status"], "SUCCEEDED");
    for (query, variables) in [
        (
            "mutation($p: ID!) { createCampaign(input: { projectId: $p, name: \"Spring\" }) { id } }",
            json!({ "p": project }),
        ),
        (
            "mutation($p: ID!) { createPost(input: { projectId: $p, title: \"Hello\" }) { id } }",
            json!({ "p": project }),
        ),
        (
            "mutation { setProviderCredential(input: { provider: \"openai\", secret: \"sk-secret-1234\" }) { id } }",
            json!({}),
        ),
        (
            "mutation($p: ID!) { createPairingCode(projectId: $p) { code } }",
            json!({ "p": project }),
        ),
        (
            "mutation { registerTrustedDocument(input: { name: \"me\", query: \"{ me { id } }\" }) { id } }",
            json!({}),
        ),
    ] {
        let response = owner.gql(query, variables).await;
        assert!(response.body["errors"].is_null(), "{query}: {}", response.body);
    }
}

async fn two_populated_organizations(app: &TestApp) -> (Org, Org) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    populate(app, &acme).await;
    populate(app, &globex).await;
    (acme, globex)
}

async fn assert_nothing_left(app: &TestApp, org: &str) {
    let left: BTreeMap<_, _> = rows_by_table(app, org)
        .await
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect();
    assert!(left.is_empty(), "rows left behind: {left:?}");
}

/// Rows of `org` in each tenant table, straight from the database.
async fn rows_by_table(app: &TestApp, org: &str) -> BTreeMap<&'static str, i64> {
    let db = app.owner_connection().await;
    let mut counts = BTreeMap::new();
    for (table, column) in tenant_tables() {
        let sql = match db.get_database_backend() {
            DbBackend::Postgres => format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1::uuid"),
            _ => format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?"),
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                [uuid::Uuid::parse_str(org).unwrap().into()],
            ))
            .await
            .unwrap()
            .unwrap();
        counts.insert(table, row.try_get_by_index::<i64>(0).unwrap());
    }
    counts
}

fn tenantql(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tenantql"))
        .args(args)
        .envs(app.database_env())
        .env("JWT_SECRET", JWT_SECRET)
        .env("ENCRYPTION_KEYS", ENCRYPTION_KEYS)
        .env("WORKSPACES_DIR", &app.workspaces_dir)
        .env("AUTO_MIGRATE", "false")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the command runs")
}

async fn export_writes_every_row_of_one_organization_without_secrets(app: TestApp) {
    let (acme, globex) = two_populated_organizations(&app).await;

    let output = tenantql(&app, &["org", "export", &acme.id]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        !text.contains(&globex.id),
        "another organization's id was exported"
    );
    assert!(!text.contains("sk-secret-1234"), "a secret was exported");
    let tables = tenant_tables();
    let mut exported: BTreeMap<&'static str, i64> = tables.iter().map(|(table, _)| (*table, 0)).collect();
    for line in text.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        let (table, key) = tables
            .iter()
            .find(|(table, _)| line["table"] == *table)
            .unwrap_or_else(|| panic!("unknown table in {line}"));
        assert_eq!(line["row"][key], acme.id.as_str(), "{line}");
        *exported.get_mut(table).unwrap() += 1;
        for secret in [
            "secret_hash",
            "secret",
            "code_hash",
            "access_token",
            "refresh_token",
        ] {
            if let Some(value) = line["row"].get(secret) {
                assert!(
                    value.is_null() || value == "[REDACTED]",
                    "{table}.{secret} exported: {value}"
                );
            }
        }
    }
    // Exactly the rows the database holds for it, table by table.
    assert_eq!(exported, rows_by_table(&app, &acme.id).await);
    for table in [
        "organizations",
        "projects",
        "agent_jobs",
        "agent_job_events",
        "audit_log",
        "api_keys",
        "provider_credentials",
        "usage_records",
        "posts",
    ] {
        assert!(exported[table] > 0, "nothing exported from {table}");
    }

    let unknown = tenantql(&app, &["org", "export", &uuid::Uuid::now_v7().to_string()]);
    assert!(!unknown.status.success());
}

async fn deleting_an_organization_erases_all_of_it_and_nothing_else(app: TestApp) {
    let (acme, globex) = two_populated_organizations(&app).await;
    let globex_before = rows_by_table(&app, &globex.id).await;
    assert!(app.workspaces_dir.join(&acme.id).exists());

    let deleted = acme.owner.gql("mutation { deleteOrganization }", json!({})).await;
    assert_eq!(deleted.data("deleteOrganization"), acme.id.as_str());

    assert_nothing_left(&app, &acme.id).await;
    assert_eq!(rows_by_table(&app, &globex.id).await, globex_before);
    assert!(!app.workspaces_dir.join(&acme.id).exists());
    assert!(app.workspaces_dir.join(&globex.id).exists());

    // Its members are out; the others are untouched.
    let gone = acme.owner.gql("{ organization { id } }", json!({})).await;
    assert!(
        ["NOT_FOUND", "FORBIDDEN"].contains(&gone.error_code()),
        "{}",
        gone.body
    );
    let still = globex.owner.gql("{ organization { id } }", json!({})).await;
    assert_eq!(still.data("organization")["id"], globex.id.as_str());

    // The record of the erasure stays, outside the erased tenant.
    let (completed, requested_by, audit_rows) = erasure_record(&app, &acme.id).await;
    assert!(completed, "the erasure is not marked complete");
    assert_eq!(requested_by.as_deref(), Some(acme.owner_user_id.as_str()));
    assert_eq!(audit_rows, 1, "one audit row of the erasure, outside the tenant");

    // Deleting again finds nothing to delete.
    let again = acme.owner.gql("mutation { deleteOrganization }", json!({})).await;
    assert!(!again.body["errors"].is_null());
}

/// `(completed, requested by, audit rows of it with no organization)`.
async fn erasure_record(app: &TestApp, org: &str) -> (bool, Option<String>, i64) {
    let db = app.owner_connection().await;
    let backend = db.get_database_backend();
    let placeholder = if backend == DbBackend::Postgres {
        "$1::uuid"
    } else {
        "?"
    };
    let org = uuid::Uuid::parse_str(org).unwrap();
    let erasure = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT completed_at IS NOT NULL, requested_by FROM organization_erasures \
                 WHERE erased_organization_id = {placeholder}"
            ),
            [org.into()],
        ))
        .await
        .unwrap()
        .expect("an erasure record");
    let audit = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT COUNT(*) FROM audit_log WHERE organization_id IS NULL \
                 AND action = 'deleteOrganization' AND resource_id = {placeholder}"
            ),
            [org.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    (
        erasure.try_get_by_index::<bool>(0).unwrap(),
        erasure
            .try_get_by_index::<Option<uuid::Uuid>>(1)
            .unwrap()
            .map(|user| user.to_string()),
        audit.try_get_by_index::<i64>(0).unwrap(),
    )
}

async fn an_interrupted_erasure_is_finished_by_running_it_again(app: TestApp) {
    let (acme, globex) = two_populated_organizations(&app).await;
    let globex_before = rows_by_table(&app, &globex.id).await;

    // The database refuses to delete projects, as a lost connection midway would.
    let db = app.owner_connection().await;
    let (refuse, allow) = match db.get_database_backend() {
        DbBackend::Postgres => (
            "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'connection lost'; END $$;
             CREATE TRIGGER refuse_project_delete BEFORE DELETE ON projects
               FOR EACH ROW EXECUTE FUNCTION refuse_delete();",
            "DROP TRIGGER refuse_project_delete ON projects;",
        ),
        _ => (
            "CREATE TRIGGER refuse_project_delete BEFORE DELETE ON projects
             BEGIN SELECT RAISE(ABORT, 'connection lost'); END;",
            "DROP TRIGGER refuse_project_delete;",
        ),
    };
    db.execute_unprepared(refuse).await.unwrap();
    let failed = acme.owner.gql("mutation { deleteOrganization }", json!({})).await;
    assert_eq!(failed.error_code(), "INTERNAL", "{}", failed.body);

    // Half done: nobody acts in it any more, its jobs are gone, its projects are not.
    let midway = rows_by_table(&app, &acme.id).await;
    assert_eq!(midway["organization_members"], 0);
    assert_eq!(midway["api_keys"], 0);
    assert_eq!(midway["agent_jobs"], 0);
    assert!(midway["projects"] > 0);
    let locked_out = acme.owner.gql("{ organization { id } }", json!({})).await;
    assert!(!locked_out.body["errors"].is_null());
    assert!(!erasure_record(&app, &acme.id).await.0);

    db.execute_unprepared(allow).await.unwrap();
    let output = tenantql(&app, &["org", "delete", &acme.id]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_nothing_left(&app, &acme.id).await;
    assert!(!app.workspaces_dir.join(&acme.id).exists());
    assert_eq!(rows_by_table(&app, &globex.id).await, globex_before);
    let (completed, _, audit_rows) = erasure_record(&app, &acme.id).await;
    assert!(completed);
    assert_eq!(audit_rows, 1, "resuming writes no second audit row");
}
