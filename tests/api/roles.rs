//! The role matrix: viewers read, members build, admins manage, owners own; keys stay within bounds.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::TestApp;

backend_tests!(
    viewer_reads_but_cannot_write,
    member_creates_projects_but_cannot_manage_members_or_keys,
    project_admin_role_gates_project_changes,
    admins_cannot_grant_above_themselves_and_owners_are_never_lost,
    api_key_cannot_exceed_its_role_or_project,
    revoked_and_expired_api_keys_are_unauthenticated,
);

const CREATE_PROJECT: &str = "mutation($name: String!) { createProject(input: { name: $name }) { id } }";
const PROJECTS: &str = "{ projects(first: 50) { edges { node { id name } } } }";

fn names(response: &crate::helpers::GqlResponse) -> Vec<String> {
    response.data("projects")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn viewer_reads_but_cannot_write(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Launch").await;
    let viewer = acme.member(&app, "VIEWER").await.client;
    assert_eq!(names(&viewer.gql(PROJECTS, json!({})).await), ["Launch"]);
    let writes = [
        viewer.gql(CREATE_PROJECT, json!({ "name": "Nope" })).await,
        viewer
            .gql(
                "mutation($id: ID!) { updateProject(id: $id, input: { name: \"x\" }) { id } }",
                json!({ "id": project }),
            )
            .await,
        viewer
            .gql(
                "mutation($id: ID!) { deleteProject(id: $id) }",
                json!({ "id": project }),
            )
            .await,
        viewer
            .gql(
                "mutation { updateOrganization(input: { name: \"x\" }) { id } }",
                json!({}),
            )
            .await,
        viewer.gql("mutation { deleteOrganization }", json!({})).await,
    ];
    for response in writes {
        assert_eq!(response.error_code(), "FORBIDDEN", "{:#}", response.body);
    }
    assert_eq!(names(&acme.owner.gql(PROJECTS, json!({})).await), ["Launch"]);
}

async fn member_creates_projects_but_cannot_manage_members_or_keys(app: TestApp) {
    let acme = app.org("Acme").await;
    let member = acme.member(&app, "MEMBER").await;
    let created = member.client.gql(CREATE_PROJECT, json!({ "name": "Mine" })).await;
    let project = created.data("createProject")["id"].as_str().unwrap().to_owned();
    // The creator administers their project.
    let renamed = member
        .client
        .gql(
            "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Mine 2\" }) { name } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(renamed.data("updateProject")["name"], "Mine 2");

    let denied = [
        member
            .client
            .gql(
                "mutation { addMember(input: { email: \"x@example.com\", role: VIEWER }) { userId } }",
                json!({}),
            )
            .await,
        member
            .client
            .gql(
                "mutation($id: ID!) { removeMember(userId: $id) }",
                json!({ "id": acme.owner_user_id }),
            )
            .await,
        member
            .client
            .gql(
                "mutation($id: ID!) { updateMemberRole(userId: $id, role: VIEWER) { role } }",
                json!({ "id": acme.owner_user_id }),
            )
            .await,
        member
            .client
            .gql(
                "mutation { createApiKey(input: { name: \"k\", role: VIEWER }) { key } }",
                json!({}),
            )
            .await,
        member.client.gql("{ apiKeys { id } }", json!({})).await,
    ];
    for response in denied {
        assert_eq!(response.error_code(), "FORBIDDEN", "{:#}", response.body);
    }
}

async fn project_admin_role_gates_project_changes(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Shared").await;
    let member = acme.member(&app, "MEMBER").await;
    let rename = "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Renamed\" }) { name } }";
    // Members read every project but change only where they hold the project admin role.
    assert_eq!(
        member
            .client
            .gql(rename, json!({ "id": project }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    let grant = "mutation($p: ID!, $u: ID!, $r: ProjectRole!) { addProjectMember(projectId: $p, userId: $u, role: $r) { role } }";
    let granted = acme
        .owner
        .gql(grant, json!({ "p": project, "u": member.user_id, "r": "EDITOR" }))
        .await;
    assert_eq!(granted.data("addProjectMember")["role"], "EDITOR");
    assert_eq!(
        member
            .client
            .gql(rename, json!({ "id": project }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    acme.owner
        .gql(grant, json!({ "p": project, "u": member.user_id, "r": "ADMIN" }))
        .await
        .data("addProjectMember");
    assert_eq!(
        member
            .client
            .gql(rename, json!({ "id": project }))
            .await
            .data("updateProject")["name"],
        "Renamed"
    );

    let listed = acme
        .owner
        .gql(
            "query($id: ID!) { project(id: $id) { members { edges { node { userId role } } } } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(
        listed.data("project")["members"]["edges"],
        json!([{ "node": { "userId": member.user_id, "role": "ADMIN" } }])
    );

    let remove = "mutation($p: ID!, $u: ID!) { removeProjectMember(projectId: $p, userId: $u) }";
    acme.owner
        .gql(remove, json!({ "p": project, "u": member.user_id }))
        .await
        .data("removeProjectMember");
    assert_eq!(
        member
            .client
            .gql(rename, json!({ "id": project }))
            .await
            .error_code(),
        "FORBIDDEN"
    );

    // Only members of the organization can be given a project role.
    let outsider = app.org("Outside").await;
    let response = acme
        .owner
        .gql(
            grant,
            json!({ "p": project, "u": outsider.owner_user_id, "r": "VIEWER" }),
        )
        .await;
    assert_eq!(response.error_code(), "NOT_FOUND");
}

async fn admins_cannot_grant_above_themselves_and_owners_are_never_lost(app: TestApp) {
    let acme = app.org("Acme").await;
    let admin = acme.member(&app, "ADMIN").await;
    let member = acme.member(&app, "MEMBER").await;
    let set_role = "mutation($u: ID!, $r: OrgRole!) { updateMemberRole(userId: $u, role: $r) { role } }";

    assert_eq!(
        admin
            .client
            .gql(set_role, json!({ "u": member.user_id, "r": "OWNER" }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        admin
            .client
            .gql(set_role, json!({ "u": acme.owner_user_id, "r": "VIEWER" }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        admin
            .client
            .gql(set_role, json!({ "u": member.user_id, "r": "VIEWER" }))
            .await
            .data("updateMemberRole")["role"],
        "VIEWER"
    );
    // The last owner can neither step down nor be removed.
    let demote_self = acme
        .owner
        .gql(set_role, json!({ "u": acme.owner_user_id, "r": "ADMIN" }))
        .await;
    assert_eq!(demote_self.error_code(), "BAD_USER_INPUT");
    let remove_owner = acme
        .owner
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": acme.owner_user_id }),
        )
        .await;
    assert_eq!(remove_owner.error_code(), "BAD_USER_INPUT");
    // With a second owner, the first may step down.
    acme.owner
        .gql(set_role, json!({ "u": admin.user_id, "r": "OWNER" }))
        .await
        .data("updateMemberRole");
    assert_eq!(
        acme.owner
            .gql(set_role, json!({ "u": acme.owner_user_id, "r": "ADMIN" }))
            .await
            .data("updateMemberRole")["role"],
        "ADMIN"
    );

    // A removed member loses access at once.
    admin
        .client
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": member.user_id }),
        )
        .await
        .data("removeMember");
    assert_eq!(
        member.client.gql(PROJECTS, json!({})).await.error_code(),
        "FORBIDDEN"
    );
}

async fn api_key_cannot_exceed_its_role_or_project(app: TestApp) {
    let acme = app.org("Acme").await;
    let alpha = acme.project("Alpha").await;
    acme.project("Beta").await;

    let scoped_key = acme.api_key(&app, "MEMBER", Some(&alpha)).await;
    assert_eq!(names(&scoped_key.gql(PROJECTS, json!({})).await), ["Alpha"]);
    assert_eq!(
        scoped_key
            .gql(CREATE_PROJECT, json!({ "name": "New" }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    let beta_id = {
        let all = acme.owner.gql(PROJECTS, json!({})).await;
        all.data("projects")["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["name"] == "Beta")
            .unwrap()["node"]["id"]
            .clone()
    };
    let read_beta = scoped_key
        .gql(
            "query($id: ID!) { project(id: $id) { name } }",
            json!({ "id": beta_id }),
        )
        .await;
    assert_eq!(read_beta.error_code(), "NOT_FOUND");

    let viewer_key = acme.api_key(&app, "VIEWER", None).await;
    assert_eq!(
        names(&viewer_key.gql(PROJECTS, json!({})).await),
        ["Beta", "Alpha"]
    );
    assert_eq!(
        viewer_key
            .gql(CREATE_PROJECT, json!({ "name": "New" }))
            .await
            .error_code(),
        "FORBIDDEN"
    );

    // A key is never above the person who makes it.
    let admin = acme.member(&app, "ADMIN").await;
    let above = admin
        .client
        .gql(
            "mutation { createApiKey(input: { name: \"k\", role: OWNER }) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(above.error_code(), "FORBIDDEN");
    let admin_key = acme.api_key(&app, "ADMIN", None).await;
    // Only people make keys, whatever the key's role (see abuse.rs).
    let within = admin_key
        .gql(
            "mutation { createApiKey(input: { name: \"k\", role: MEMBER }) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(within.error_code(), "FORBIDDEN");
    // A key restricted to one project manages nothing organization-wide, whatever its role.
    let project_admin_key = acme.api_key(&app, "ADMIN", Some(&alpha)).await;
    let organization_wide = [
        "mutation { addMember(input: { email: \"x@example.com\", role: ADMIN }) { userId } }",
        "mutation { createApiKey(input: { name: \"k\", role: VIEWER }) { key } }",
        "mutation { updateOrganization(input: { name: \"x\" }) { id } }",
        "{ apiKeys { id } }",
        "{ organization { members { edges { node { email } } } } }",
    ];
    for query in organization_wide {
        assert_eq!(
            project_admin_key.gql(query, json!({})).await.error_code(),
            "FORBIDDEN",
            "{query}"
        );
    }

    // Members cannot hand out keys at all, whatever the role asked for.
    let member = acme.member(&app, "MEMBER").await;
    let from_member = member
        .client
        .gql(
            "mutation { createApiKey(input: { name: \"k\", role: VIEWER }) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(from_member.error_code(), "FORBIDDEN");
}

async fn revoked_and_expired_api_keys_are_unauthenticated(app: TestApp) {
    let acme = app.org("Acme").await;
    let created = acme
        .owner
        .gql(
            "mutation { createApiKey(input: { name: \"bot\", role: MEMBER }) { key apiKey { id prefix } } }",
            json!({}),
        )
        .await;
    let key = created.data("createApiKey")["key"].as_str().unwrap().to_owned();
    let id = created.data("createApiKey")["apiKey"]["id"].clone();
    let bot = app.anonymous().header("x-api-key", &key);
    assert!(bot.gql(PROJECTS, json!({})).await.data("projects").is_object());

    let listed = acme
        .owner
        .gql("{ apiKeys { id prefix revokedAt } }", json!({}))
        .await;
    assert_eq!(
        listed.data("apiKeys")[0]["prefix"],
        created.data("createApiKey")["apiKey"]["prefix"]
    );
    assert!(
        !listed.body.to_string().contains(&key),
        "the secret is never listed"
    );

    acme.owner
        .gql(
            "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
            json!({ "id": id }),
        )
        .await
        .data("revokeApiKey");
    assert_eq!(bot.gql(PROJECTS, json!({})).await.error_code(), "UNAUTHENTICATED");

    // A key whose secret is altered is unknown, even with a valid prefix.
    let tampered = format!("{}X", &key[..key.len() - 1]);
    let tampered_bot = app.anonymous().header("x-api-key", &tampered);
    assert_eq!(
        tampered_bot.gql(PROJECTS, json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );

    // A key is refused like an unknown one once its expiry passes.
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let expiring = acme
        .owner
        .gql(
            "mutation($at: DateTime!) { createApiKey(input: { name: \"soon\", role: MEMBER, expiresAt: $at }) { key } }",
            json!({ "at": expires_at }),
        )
        .await;
    let soon_bot = app.anonymous().header(
        "x-api-key",
        expiring.data("createApiKey")["key"].as_str().unwrap(),
    );
    assert!(
        soon_bot
            .gql(PROJECTS, json!({}))
            .await
            .data("projects")
            .is_object()
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(
        soon_bot.gql(PROJECTS, json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );

    let past = acme
        .owner
        .gql("mutation { createApiKey(input: { name: \"old\", role: MEMBER, expiresAt: \"2020-01-01T00:00:00Z\" }) { key } }", json!({}))
        .await;
    assert_eq!(past.error_code(), "BAD_USER_INPUT");
    assert_eq!(past.error_field(), Some("expiresAt"));
}
