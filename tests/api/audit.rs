//! The audit trail: one row per mutation, in the mutation's own transaction, for admins only.

use sea_orm::{ConnectionTrait, DbBackend};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Client, TestApp};

const AUDIT_LOG: &str = "query($first: Int, $after: String, $filter: AuditLogFilter) {
    auditLog(first: $first, after: $after, filter: $filter) {
        edges { cursor node {
            action actorKind actorId resourceType resourceId before after ip userAgent requestId createdAt
        } }
        pageInfo { hasNextPage }
    }
}";
const CREATE_PROJECT: &str = "mutation($name: String!) { createProject(input: { name: $name }) { id name } }";
const UPDATE_PROJECT: &str =
    "mutation($id: ID!, $name: String!) { updateProject(id: $id, input: { name: $name }) { id name } }";
const DELETE_PROJECT: &str = "mutation($id: ID!) { deleteProject(id: $id) }";
const PROJECT: &str = "query($id: ID!) { project(id: $id) { name } }";

async fn entries(client: &Client, filter: Value) -> Vec<Value> {
    let response = client
        .gql(AUDIT_LOG, json!({ "first": 50, "filter": filter }))
        .await;
    response.data("auditLog")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

async fn every_mutation_leaves_one_row_with_who_what_and_where(app: TestApp) {
    let acme = app.org("Acme").await;
    let owner = acme
        .owner
        .header("user-agent", "audit-test/1.0")
        .header("x-request-id", "req-audit-1")
        .header("x-forwarded-for", "203.0.113.7");
    let created = owner.gql(CREATE_PROJECT, json!({ "name": "Launch" })).await;
    let project = created.data("createProject")["id"].as_str().unwrap().to_owned();
    owner
        .gql(UPDATE_PROJECT, json!({ "id": project, "name": "Relaunch" }))
        .await
        .data("updateProject");
    owner
        .gql(DELETE_PROJECT, json!({ "id": project }))
        .await
        .data("deleteProject");

    let trail = entries(&acme.owner, json!({ "resourceType": "Project" })).await;
    let actions: Vec<&str> = trail.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deleteProject", "updateProject", "createProject"]);
    for entry in &trail {
        assert_eq!(entry["actorKind"], "USER");
        assert_eq!(entry["actorId"], acme.owner_user_id.as_str());
        assert_eq!(entry["resourceId"], project.as_str());
        assert_eq!(entry["ip"], "203.0.113.7");
        assert_eq!(entry["userAgent"], "audit-test/1.0");
        assert_eq!(entry["requestId"], "req-audit-1");
    }
    let (deleted, updated, created) = (&trail[0], &trail[1], &trail[2]);
    assert_eq!(created["before"], Value::Null);
    assert_eq!(created["after"]["name"], "Launch");
    assert_eq!(updated["before"]["name"], "Launch");
    assert_eq!(updated["after"]["name"], "Relaunch");
    assert_eq!(deleted["before"]["name"], "Relaunch");
    assert_eq!(deleted["after"], Value::Null);

    // The signup that made the organization is in its trail too.
    let signup = entries(&acme.owner, json!({ "action": "signup" })).await;
    assert_eq!(signup.len(), 1);
    assert_eq!(signup[0]["resourceType"], "User");
    assert_eq!(signup[0]["after"]["password_hash"], "[REDACTED]");
}

async fn api_keys_are_actors_and_their_secrets_are_redacted(app: TestApp) {
    let acme = app.org("Acme").await;
    let bot = acme.api_key(&app, "MEMBER", None).await;
    let created = bot.gql(CREATE_PROJECT, json!({ "name": "By bot" })).await;
    let project = created.data("createProject")["id"].as_str().unwrap().to_owned();

    let key_created = entries(&acme.owner, json!({ "action": "createApiKey" })).await;
    assert_eq!(key_created.len(), 1);
    assert_eq!(key_created[0]["after"]["secret_hash"], "[REDACTED]");
    let key_id = key_created[0]["resourceId"].as_str().unwrap();

    let by_bot = entries(&acme.owner, json!({ "actorId": key_id })).await;
    assert_eq!(by_bot.len(), 1);
    assert_eq!(by_bot[0]["actorKind"], "API_KEY");
    assert_eq!(by_bot[0]["action"], "createProject");
    assert_eq!(by_bot[0]["resourceId"], project.as_str());
}

async fn the_trail_is_for_admins_of_its_own_organization(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    acme.project("Secret plans").await;
    let admin = acme.member(&app, "ADMIN").await;
    let member = acme.member(&app, "MEMBER").await;

    assert!(
        !entries(&admin.client, json!({ "action": "createProject" }))
            .await
            .is_empty()
    );
    let refused = member.client.gql(AUDIT_LOG, json!({})).await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    let restricted_key = acme.api_key(&app, "ADMIN", Some(&acme.project("P").await)).await;
    assert_eq!(
        restricted_key.gql(AUDIT_LOG, json!({})).await.error_code(),
        "FORBIDDEN"
    );

    // Globex's trail holds Globex's own signup and nothing of Acme's.
    let theirs = entries(&globex.owner, json!({})).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["action"], "signup");
    assert_eq!(theirs[0]["actorId"], globex.owner_user_id.as_str());
}

async fn the_trail_pages_and_filters_by_time(app: TestApp) {
    let acme = app.org("Acme").await;
    for name in ["One", "Two", "Three"] {
        acme.project(name).await;
    }
    let first = acme
        .owner
        .gql(
            AUDIT_LOG,
            json!({ "first": 2, "filter": { "action": "createProject" } }),
        )
        .await;
    let page = first.data("auditLog");
    assert_eq!(page["edges"].as_array().unwrap().len(), 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let cursor = page["edges"][1]["cursor"].as_str().unwrap();
    let rest = acme
        .owner
        .gql(
            AUDIT_LOG,
            json!({ "first": 2, "after": cursor, "filter": { "action": "createProject" } }),
        )
        .await;
    let rest = rest.data("auditLog");
    assert_eq!(rest["edges"].as_array().unwrap().len(), 1);
    assert_eq!(rest["edges"][0]["node"]["after"]["name"], "One");

    let future = entries(&acme.owner, json!({ "since": "2999-01-01T00:00:00Z" })).await;
    assert!(future.is_empty());
}

async fn a_failed_mutation_leaves_no_row(app: TestApp) {
    let acme = app.org("Acme").await;
    let refused = acme.owner.gql(CREATE_PROJECT, json!({ "name": "" })).await;
    assert_eq!(refused.error_code(), "BAD_USER_INPUT");
    assert!(
        entries(&acme.owner, json!({ "action": "createProject" }))
            .await
            .is_empty()
    );
}

/// Makes the database refuse audit rows of one action, as a full disk or a lost connection
/// at the wrong moment would.
async fn refuse_audit_rows_of(app: &TestApp, action: &str) {
    let db = app.owner_connection().await;
    let sql = match app.db.backend() {
        DbBackend::Postgres => format!(
            "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'audit write failed'; END $$;
             CREATE TRIGGER refuse_{action} BEFORE INSERT ON audit_log FOR EACH ROW
               WHEN (NEW.action = '{action}') EXECUTE FUNCTION refuse_audit();"
        ),
        _ => format!(
            "CREATE TRIGGER refuse_{action} BEFORE INSERT ON audit_log WHEN NEW.action = '{action}'
             BEGIN SELECT RAISE(ABORT, 'audit write failed'); END;"
        ),
    };
    db.execute_unprepared(&sql).await.unwrap();
}

async fn a_change_whose_audit_row_fails_does_not_happen(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Original").await;
    refuse_audit_rows_of(&app, "updateProject").await;

    let failed = acme
        .owner
        .gql(UPDATE_PROJECT, json!({ "id": project, "name": "Changed" }))
        .await;
    assert_eq!(failed.error_code(), "INTERNAL");
    let now = acme.owner.gql(PROJECT, json!({ "id": project })).await;
    assert_eq!(now.data("project")["name"], "Original");
    assert!(
        entries(&acme.owner, json!({ "action": "updateProject" }))
            .await
            .is_empty()
    );

    // The same holds for account events written outside any tenant transaction.
    refuse_audit_rows_of(&app, "createOrganization").await;
    let orgs_before = acme.owner.gql("{ me { memberships { role } } }", json!({})).await;
    let failed = acme
        .owner
        .gql(
            "mutation { createOrganization(input: { name: \"Spinoff\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(failed.error_code(), "INTERNAL");
    let orgs_after = acme.owner.gql("{ me { memberships { role } } }", json!({})).await;
    assert_eq!(orgs_before.body, orgs_after.body);
}

async fn the_trail_cannot_be_rewritten_or_erased(app: TestApp) {
    let acme = app.org("Acme").await;
    acme.project("Launch").await;
    let db = app.owner_connection().await;
    let update = db
        .execute_unprepared("UPDATE audit_log SET action = 'nothing'")
        .await;
    assert!(update.is_err(), "an update of the trail must fail");
    let delete = db.execute_unprepared("DELETE FROM audit_log").await;
    assert!(delete.is_err(), "a delete from the trail must fail");
    assert_eq!(
        entries(&acme.owner, json!({ "action": "createProject" }))
            .await
            .len(),
        1
    );
}

/// Runs `query` as `client` and returns the data, failing the test on any error.
async fn run(client: &Client, query: &str, variables: Value) -> Value {
    let response = client.gql(query, variables).await;
    assert!(response.body["errors"].is_null(), "{query}: {}", response.body);
    response.body["data"].clone()
}

/// Runs every mutation of the schema once, then reads the trail straight from the table:
/// each mutation left exactly one row. A mutation added without a line here fails the test.
async fn each_mutation_of_the_schema_is_audited_once(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let anonymous = app.anonymous();
    let owner = &acme.owner;
    let email = format!("pat-{}@example.com", uuid::Uuid::new_v4().simple());
    let pat = run(
        &anonymous,
        "mutation($input: SignupInput!) { signup(input: $input) { refreshToken user { id } } }",
        json!({ "input": { "email": email, "password": crate::helpers::PASSWORD,
                           "displayName": "Pat", "organizationName": "Pat Co" } }),
    )
    .await;
    let pat_id = pat["signup"]["user"]["id"].as_str().unwrap().to_owned();
    let login = run(
        &anonymous,
        "mutation($input: LoginInput!) { login(input: $input) { refreshToken } }",
        json!({ "input": { "email": email, "password": crate::helpers::PASSWORD } }),
    )
    .await;
    let refreshed = run(
        &anonymous,
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
        json!({ "t": login["login"]["refreshToken"] }),
    )
    .await;
    let pat_client = anonymous.bearer(refreshed["refreshSession"]["accessToken"].as_str().unwrap());
    run(&pat_client, "mutation { logout }", json!({})).await;

    run(
        owner,
        "mutation { createOrganization(input: { name: \"Spinoff\" }) { id } }",
        json!({}),
    )
    .await;
    // Erasure removes the organization's own trail (its signup included); the row of the
    // erasure itself stays, outside it.
    let doomed = app.org("Doomed").await;
    run(&doomed.owner, "mutation { deleteOrganization }", json!({})).await;
    run(
        owner,
        "mutation { updateOrganization(input: { name: \"Acme Inc\" }) { id } }",
        json!({}),
    )
    .await;
    run(
        owner,
        "mutation($e: String!) { addMember(input: { email: $e, role: MEMBER }) { userId } }",
        json!({ "e": email }),
    )
    .await;
    run(
        owner,
        "mutation($u: ID!) { updateMemberRole(userId: $u, role: ADMIN) { userId } }",
        json!({ "u": pat_id }),
    )
    .await;
    let project = run(owner, CREATE_PROJECT, json!({ "name": "Launch" })).await;
    let project = project["createProject"]["id"].as_str().unwrap().to_owned();
    run(
        owner,
        UPDATE_PROJECT,
        json!({ "id": project, "name": "Relaunch" }),
    )
    .await;
    run(
        owner,
        "mutation($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u, role: EDITOR) { role } }",
        json!({ "p": project, "u": pat_id }),
    )
    .await;
    run(
        owner,
        "mutation($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) }",
        json!({ "p": project, "u": pat_id }),
    )
    .await;
    run(
        owner,
        "mutation($u: ID!) { removeMember(userId: $u) }",
        json!({ "u": pat_id }),
    )
    .await;
    let key = run(
        owner,
        "mutation { createApiKey(input: { name: \"bot\", role: MEMBER }) { key apiKey { id } } }",
        json!({}),
    )
    .await;
    let code = run(
        owner,
        "mutation($p: ID!) { createPairingCode(projectId: $p) { code } }",
        json!({ "p": project }),
    )
    .await;
    let bot = anonymous.header("x-api-key", key["createApiKey"]["key"].as_str().unwrap());
    run(
        &bot,
        "mutation($code: String!) { pairChat(input: { code: $code, chatId: \"42\", platform: \"slack\" }) { id } }",
        json!({ "code": code["createPairingCode"]["code"] }),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
        json!({ "id": key["createApiKey"]["apiKey"]["id"] }),
    )
    .await;
    let agent = run(
        owner,
        "mutation { createAgent(input: { name: \"Echo\", kind: \"echo\", config: { steps: 1 } }) { id } }",
        json!({}),
    )
    .await;
    let agent = agent["createAgent"]["id"].as_str().unwrap().to_owned();
    run(
        owner,
        "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"Echo 2\" }) { id } }",
        json!({ "id": agent }),
    )
    .await;
    let initech = app.org("Initech").await;
    run(
        owner,
        "mutation($id: ID!, $orgs: [ID!]!) { shareAgent(agentId: $id, organizationIds: $orgs) { id } }",
        json!({ "id": agent, "orgs": [globex.id, initech.id] }),
    )
    .await;
    run(
        &globex.owner,
        "mutation($id: ID!) { acceptAgentShare(agentId: $id) { id } }",
        json!({ "id": agent }),
    )
    .await;
    run(
        &globex.owner,
        "mutation($id: ID!) { leaveAgentShare(agentId: $id) }",
        json!({ "id": agent }),
    )
    .await;
    run(
        &initech.owner,
        "mutation($id: ID!) { declineAgentShare(agentId: $id) }",
        json!({ "id": agent }),
    )
    .await;
    let job = run(
        owner,
        "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id } }",
        json!({ "a": agent, "p": project }),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { cancelAgentJob(id: $id) { id } }",
        json!({ "id": job["startAgentJob"]["id"] }),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { deleteAgent(id: $id) }",
        json!({ "id": agent }),
    )
    .await;
    let document = run(
        owner,
        "mutation { registerTrustedDocument(input: { name: \"me\", query: \"{ me { id } }\" }) { id } }",
        json!({}),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { deleteTrustedDocument(id: $id) }",
        json!({ "id": document["registerTrustedDocument"]["id"] }),
    )
    .await;
    let campaign = run(
        owner,
        "mutation($p: ID!) { createCampaign(input: { projectId: $p, name: \"C\" }) { id } }",
        json!({ "p": project }),
    )
    .await;
    let campaign = campaign["createCampaign"]["id"].clone();
    run(
        owner,
        "mutation($id: ID!) { updateCampaign(id: $id, input: { name: \"D\" }) { id } }",
        json!({ "id": campaign }),
    )
    .await;
    let post = run(
        owner,
        "mutation($p: ID!) { createPost(input: { projectId: $p, title: \"T\" }) { id } }",
        json!({ "p": project }),
    )
    .await;
    let post = post["createPost"]["id"].clone();
    run(
        owner,
        "mutation($id: ID!) { updatePost(id: $id, input: { body: \"B\" }) { id } }",
        json!({ "id": post }),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { deletePost(id: $id) }",
        json!({ "id": post }),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { deleteCampaign(id: $id) }",
        json!({ "id": campaign }),
    )
    .await;
    run(owner, DELETE_PROJECT, json!({ "id": project })).await;
    let credential = run(
        owner,
        "mutation { setProviderCredential(input: { provider: \"openai\", secret: \"sk-1234\" }) { id } }",
        json!({}),
    )
    .await;
    run(
        owner,
        "mutation($id: ID!) { deleteProviderCredential(id: $id) }",
        json!({ "id": credential["setProviderCredential"]["id"] }),
    )
    .await;
    app.make_platform_admin(&acme.owner_user_id).await;
    run(
        owner,
        "mutation($org: ID!) { setOrganizationPlan(organizationId: $org, plan: PRO) { plan } }",
        json!({ "org": globex.id }),
    )
    .await;

    let schema = run(
        &anonymous,
        "{ __schema { mutationType { fields { name } } } }",
        json!({}),
    )
    .await;
    let mutations: std::collections::BTreeSet<String> = schema["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["name"].as_str().unwrap().to_owned())
        .collect();
    let db = app.owner_connection().await;
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            app.db.backend(),
            "SELECT action, COUNT(*) FROM audit_log WHERE action NOT IN ('signup') GROUP BY action",
        ))
        .await
        .unwrap();
    let mut audited = std::collections::BTreeSet::new();
    for row in rows {
        let action: String = row.try_get_by_index(0).unwrap();
        let count: i64 = row.try_get_by_index(1).unwrap();
        assert_eq!(count, 1, "{action} left {count} rows");
        audited.insert(action);
    }
    audited.insert("signup".to_owned());
    // These need a configured OAuth provider; `oauth.rs` checks their rows.
    for elsewhere in ["startOAuth", "disconnectIntegration"] {
        audited.insert(elsewhere.to_owned());
    }
    assert_eq!(audited, mutations);
}

backend_tests!(
    each_mutation_of_the_schema_is_audited_once,
    every_mutation_leaves_one_row_with_who_what_and_where,
    api_keys_are_actors_and_their_secrets_are_redacted,
    the_trail_is_for_admins_of_its_own_organization,
    the_trail_pages_and_filters_by_time,
    a_failed_mutation_leaves_no_row,
    a_change_whose_audit_row_fails_does_not_happen,
    the_trail_cannot_be_rewritten_or_erased,
);
