//! Another tenant's rows are NOT_FOUND for every operation, never FORBIDDEN, and never listed.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(
    projects_of_another_tenant_are_not_found_for_every_operation,
    members_of_another_tenant_are_not_found_for_every_operation,
    api_keys_of_another_tenant_are_not_found_and_not_listed,
);

async fn projects_of_another_tenant_are_not_found_for_every_operation(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let secret = globex.project("Globex Secret").await;
    let acme_member = acme.member(&app, "MEMBER").await;
    let globex_member = globex.member(&app, "MEMBER").await;

    let operations: [(&str, serde_json::Value); 6] = [
        (
            "query($id: ID!) { project(id: $id) { name } }",
            json!({ "id": secret }),
        ),
        (
            "mutation($id: ID!) { updateProject(id: $id, input: { name: \"pwned\" }) { name } }",
            json!({ "id": secret }),
        ),
        (
            "mutation($id: ID!) { deleteProject(id: $id) }",
            json!({ "id": secret }),
        ),
        (
            "query($id: ID!) { project(id: $id) { members { edges { node { userId } } } } }",
            json!({ "id": secret }),
        ),
        (
            "mutation($p: ID!, $u: ID!) { addProjectMember(projectId: $p, userId: $u, role: ADMIN) { role } }",
            json!({ "p": secret, "u": acme_member.user_id }),
        ),
        (
            "mutation($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) }",
            json!({ "p": secret, "u": globex_member.user_id }),
        ),
    ];
    let acme_key = acme.api_key(&app, "ADMIN", None).await;
    for client in [&acme.owner, &acme_member.client, &acme_key] {
        for (query, variables) in &operations {
            let response = client.gql(query, variables.clone()).await;
            assert_eq!(response.error_code(), "NOT_FOUND", "{query}: {:#}", response.body);
        }
        let listed = client
            .gql("{ projects { edges { node { id } } } }", json!({}))
            .await;
        assert!(!listed.body.to_string().contains(&secret));
    }
    // Globex's project is untouched.
    let seen = globex
        .owner
        .gql(
            "query($id: ID!) { project(id: $id) { name } }",
            json!({ "id": secret }),
        )
        .await;
    assert_eq!(seen.data("project")["name"], "Globex Secret");
}

async fn members_of_another_tenant_are_not_found_for_every_operation(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let globex_member = globex.member(&app, "MEMBER").await;
    let update = acme
        .owner
        .gql(
            "mutation($u: ID!) { updateMemberRole(userId: $u, role: ADMIN) { role } }",
            json!({ "u": globex_member.user_id }),
        )
        .await;
    assert_eq!(update.error_code(), "NOT_FOUND");
    let remove = acme
        .owner
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": globex_member.user_id }),
        )
        .await;
    assert_eq!(remove.error_code(), "NOT_FOUND");
    let listed = acme
        .owner
        .gql(
            "{ organization { members { edges { node { userId email } } } } }",
            json!({}),
        )
        .await;
    let members = listed.data("organization")["members"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(members.len(), 1);
    assert!(!listed.body.to_string().contains(&globex_member.user_id));
    // Globex still has its member with the role it gave.
    let globex_list = globex
        .owner
        .gql(
            "{ organization { members { edges { node { userId role } } } } }",
            json!({}),
        )
        .await;
    assert!(globex_list.body.to_string().contains(&globex_member.user_id));
}

async fn api_keys_of_another_tenant_are_not_found_and_not_listed(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let created = globex
        .owner
        .gql(
            "mutation { createApiKey(input: { name: \"g\", role: VIEWER }) { key apiKey { id } } }",
            json!({}),
        )
        .await;
    let key_id = created.data("createApiKey")["apiKey"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = acme
        .owner
        .gql(
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": key_id }),
        )
        .await;
    assert_eq!(revoke.error_code(), "NOT_FOUND");
    let listed = acme.owner.gql("{ apiKeys { id } }", json!({})).await;
    assert_eq!(listed.data("apiKeys"), &json!([]));
    // Still usable by Globex's bot.
    let bot = app
        .anonymous()
        .header("x-api-key", created.data("createApiKey")["key"].as_str().unwrap());
    assert_eq!(
        bot.gql("{ organization { id } }", json!({}))
            .await
            .data("organization")["id"],
        globex.id.as_str()
    );
    // A project-restricted key pointing at another tenant's project cannot be made.
    let globex_project = globex.project("G").await;
    let cross = acme
        .owner
        .gql(
            "mutation($p: ID!) { createApiKey(input: { name: \"x\", role: VIEWER, projectId: $p }) { key } }",
            json!({ "p": globex_project }),
        )
        .await;
    assert_eq!(cross.error_code(), "NOT_FOUND");
}
