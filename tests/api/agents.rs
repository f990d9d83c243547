//! Agents and sharing: PRIVATE stays home, GLOBAL is read-only for everyone, SELECTIVE only
//! for the organizations it names; jobs always belong to the organization that starts them.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::TestApp;
use crate::jobs::{echo_agent, start_job};

backend_tests!(
    private_agents_are_invisible_to_other_tenants,
    global_agents_are_readable_and_runnable_but_read_only_elsewhere,
    selective_agents_reach_only_the_listed_organizations,
    agent_input_is_checked,
    project_bounds_apply_to_agents,
);

const AGENT: &str = "query($id: ID!) { agent(id: $id) { id name organizationId sharing } }";
const AGENTS: &str = "{ agents { edges { node { id } } } }";

fn listed(response: &crate::helpers::GqlResponse) -> Vec<String> {
    response.data("agents")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn private_agents_are_invisible_to_other_tenants(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let globex_project = globex.project("G").await;
    let agent = echo_agent(&acme.owner, json!({})).await;
    assert_eq!(
        listed(&acme.owner.gql(AGENTS, json!({})).await),
        vec![agent.clone()]
    );
    assert!(listed(&globex.owner.gql(AGENTS, json!({})).await).is_empty());
    let operations = [
        (AGENT, json!({ "id": agent })),
        (
            "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"x\" }) { id } }",
            json!({ "id": agent }),
        ),
        (
            "mutation($id: ID!) { deleteAgent(id: $id) }",
            json!({ "id": agent }),
        ),
        (
            "mutation($id: ID!, $o: [ID!]!) { shareAgent(agentId: $id, organizationIds: $o) { id } }",
            json!({ "id": agent, "o": [globex.id] }),
        ),
        (
            "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id } }",
            json!({ "a": agent, "p": globex_project }),
        ),
    ];
    for (query, variables) in operations {
        assert_eq!(
            globex.owner.gql(query, variables).await.error_code(),
            "NOT_FOUND",
            "{query}"
        );
    }
    // A viewer at home may read it but not change it.
    let viewer = acme.member(&app, "VIEWER").await;
    assert_eq!(
        viewer
            .client
            .gql(AGENT, json!({ "id": agent }))
            .await
            .data("agent")["id"],
        agent.as_str()
    );
    let rename = viewer
        .client
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"x\" }) { id } }",
            json!({ "id": agent }),
        )
        .await;
    assert_eq!(rename.error_code(), "FORBIDDEN");
}

async fn global_agents_are_readable_and_runnable_but_read_only_elsewhere(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let globex_project = globex.project("G").await;
    let create = "mutation { createAgent(input: { name: \"Shared\", kind: \"echo\", config: { steps: 1 }, sharing: GLOBAL }) { id sharing } }";
    // Sharing beyond the organization is an administrator's call.
    let member = acme.member(&app, "MEMBER").await;
    assert_eq!(
        member.client.gql(create, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    let agent = acme.owner.gql(create, json!({})).await.data("createAgent")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let seen = globex.owner.gql(AGENT, json!({ "id": agent })).await;
    assert_eq!(seen.data("agent")["organizationId"], acme.id.as_str());
    assert!(listed(&globex.owner.gql(AGENTS, json!({})).await).contains(&agent));
    for query in [
        "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"mine now\" }) { id } }",
        "mutation($id: ID!) { deleteAgent(id: $id) }",
    ] {
        assert_eq!(
            globex.owner.gql(query, json!({ "id": agent })).await.error_code(),
            "FORBIDDEN",
            "{query}"
        );
    }
    // Globex runs it; the job is Globex's, invisible to Acme.
    let job = start_job(
        &globex.owner,
        &agent,
        &globex_project,
        json!({ "from": "globex" }),
    )
    .await;
    let read = "query($id: ID!) { agentJob(id: $id) { id agent { id } } }";
    assert_eq!(
        globex
            .owner
            .gql(read, json!({ "id": job }))
            .await
            .data("agentJob")["agent"]["id"],
        agent.as_str()
    );
    assert_eq!(
        acme.owner.gql(read, json!({ "id": job })).await.error_code(),
        "NOT_FOUND"
    );
}

async fn selective_agents_reach_only_the_listed_organizations(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let initech = app.org("Initech").await;
    let agent = echo_agent(&acme.owner, json!({})).await;
    let share =
        "mutation($id: ID!, $o: [ID!]!) { shareAgent(agentId: $id, organizationIds: $o) { sharing } }";
    let shared = acme
        .owner
        .gql(share, json!({ "id": agent, "o": [globex.id, globex.id] }))
        .await;
    assert_eq!(shared.data("shareAgent")["sharing"], "SELECTIVE");
    assert_eq!(
        globex
            .owner
            .gql(AGENT, json!({ "id": agent }))
            .await
            .data("agent")["id"],
        agent.as_str()
    );
    assert_eq!(
        initech
            .owner
            .gql(AGENT, json!({ "id": agent }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    assert!(listed(&initech.owner.gql(AGENTS, json!({})).await).is_empty());

    // Re-sharing replaces the list.
    acme.owner
        .gql(share, json!({ "id": agent, "o": [initech.id] }))
        .await
        .data("shareAgent");
    assert_eq!(
        globex.owner.gql(AGENT, json!({ "id": agent })).await.error_code(),
        "NOT_FOUND"
    );
    assert_eq!(
        initech
            .owner
            .gql(AGENT, json!({ "id": agent }))
            .await
            .data("agent")["id"],
        agent.as_str()
    );

    let unknown = acme
        .owner
        .gql(share, json!({ "id": agent, "o": [uuid::Uuid::now_v7()] }))
        .await;
    assert_eq!(unknown.error_code(), "BAD_USER_INPUT");
    assert_eq!(unknown.error_field(), Some("organizationIds"));
    // The refused share changed nothing.
    assert_eq!(
        initech
            .owner
            .gql(AGENT, json!({ "id": agent }))
            .await
            .data("agent")["id"],
        agent.as_str()
    );
}

async fn agent_input_is_checked(app: TestApp) {
    let acme = app.org("Acme").await;
    let create = "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }";
    let cases = [
        (json!({ "name": "A", "kind": "telepathy", "config": {} }), "kind"),
        (
            json!({ "name": "A", "kind": "echo", "config": { "steps": "many" } }),
            "config",
        ),
        (
            json!({ "name": "A", "kind": "echo", "config": { "steps": 100000 } }),
            "config",
        ),
        (json!({ "name": "A", "kind": "echo", "config": [1, 2] }), "config"),
        (
            json!({ "name": "A", "kind": "echo", "config": {}, "maxAttempts": 0 }),
            "maxAttempts",
        ),
        (json!({ "name": "", "kind": "echo", "config": {} }), "name"),
    ];
    for (input, field) in cases {
        let response = acme.owner.gql(create, json!({ "input": input })).await;
        assert_eq!(response.error_code(), "BAD_USER_INPUT", "{input}");
        assert_eq!(response.error_field(), Some(field), "{input}");
    }
    assert!(listed(&acme.owner.gql(AGENTS, json!({})).await).is_empty());
}

async fn project_bounds_apply_to_agents(app: TestApp) {
    let acme = app.org("Acme").await;
    let alpha = acme.project("Alpha").await;
    let beta = acme.project("Beta").await;
    let create = "mutation($p: ID) { createAgent(input: { name: \"A\", kind: \"echo\", config: {}, projectId: $p }) { id } }";
    let in_beta = acme
        .owner
        .gql(create, json!({ "p": beta }))
        .await
        .data("createAgent")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let org_wide = acme
        .owner
        .gql(create, json!({ "p": null }))
        .await
        .data("createAgent")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A key restricted to Alpha sees Alpha's and organization-wide agents, changes neither Beta's
    // nor organization-wide ones.
    let key = acme.api_key(&app, "MEMBER", Some(&alpha)).await;
    let seen = listed(&key.gql(AGENTS, json!({})).await);
    assert!(seen.contains(&org_wide) && !seen.contains(&in_beta), "{seen:?}");
    let rename = "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"x\" }) { id } }";
    assert_eq!(
        key.gql(rename, json!({ "id": in_beta })).await.error_code(),
        "NOT_FOUND"
    );
    assert_eq!(
        key.gql(rename, json!({ "id": org_wide })).await.error_code(),
        "NOT_FOUND"
    );

    // A member without a role in Beta may not create or change Beta's agents.
    let member = acme.member(&app, "MEMBER").await;
    assert_eq!(
        member.client.gql(create, json!({ "p": beta })).await.error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        member
            .client
            .gql(rename, json!({ "id": in_beta }))
            .await
            .error_code(),
        "FORBIDDEN"
    );

    // Another organization running a shared agent does not see its configuration.
    let globex = app.org("Globex").await;
    acme.owner
        .gql(
            "mutation($id: ID!, $o: [ID!]!) { shareAgent(agentId: $id, organizationIds: $o) { id } }",
            json!({ "id": org_wide, "o": [globex.id] }),
        )
        .await
        .data("shareAgent");
    let config = "query($id: ID!) { agent(id: $id) { config } }";
    assert_eq!(
        globex
            .owner
            .gql(config, json!({ "id": org_wide }))
            .await
            .data("agent")["config"],
        serde_json::Value::Null
    );
    assert_eq!(
        acme.owner
            .gql(config, json!({ "id": org_wide }))
            .await
            .data("agent")["config"],
        json!({})
    );
}
