//! Agents and sharing: PRIVATE stays home, GLOBAL (a platform admin's act) is read-only for
//! everyone, SELECTIVE only for the organizations it is offered to, once their admin accepted
//! its current revision; jobs always belong to the organization that starts them.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Client, GqlResponse, Org, TestApp};
use crate::jobs::{echo_agent, start_job};

backend_tests!(
    private_agents_are_invisible_to_other_tenants,
    global_agents_are_readable_and_runnable_but_read_only_elsewhere,
    only_a_platform_admin_makes_or_changes_a_global_agent,
    a_selective_share_takes_effect_when_the_receiving_admin_accepts_it,
    a_change_of_what_a_shared_agent_runs_is_accepted_again,
    declining_leaving_and_withdrawing_end_a_share,
    global_agents_made_before_become_offers_to_those_that_ran_them,
    selective_agents_reach_only_the_listed_organizations,
    agent_input_is_checked,
    project_bounds_apply_to_agents,
);

pub const SHARE: &str =
    "mutation($id: ID!, $o: [ID!]!) { shareAgent(agentId: $id, organizationIds: $o) { sharing } }";
const ACCEPT: &str =
    "mutation($id: ID!, $r: Int) { acceptAgentShare(agentId: $id, revision: $r) { id revision } }";
const DECLINE: &str = "mutation($id: ID!) { declineAgentShare(agentId: $id) }";
const LEAVE: &str = "mutation($id: ID!) { leaveAgentShare(agentId: $id) }";
const OFFERS: &str = "{ agentShareOffers { edges { node { acceptedRevision
    agent { id organizationId name kind config revision sharing } } } } }";
const START: &str =
    "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id status } }";
const UPDATE_CONFIG: &str =
    "mutation($id: ID!, $c: JSON!) { updateAgent(id: $id, input: { config: $c }) { revision } }";

/// Offers `agent` to `receiver` and has its owner accept it: the agent is usable there.
pub async fn share_and_accept(author: &Client, agent: &str, receiver: &Org) {
    author
        .gql(SHARE, json!({ "id": agent, "o": [receiver.id] }))
        .await
        .data("shareAgent");
    receiver
        .owner
        .gql(ACCEPT, json!({ "id": agent }))
        .await
        .data("acceptAgentShare");
}

fn offers(response: &GqlResponse) -> Vec<Value> {
    response.data("agentShareOffers")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

/// Whether `org` may use `agent`: read it, list it and start a job of it (all or nothing,
/// checked every time so that a disagreement between the three fails the test).
async fn usable(org: &Org, agent: &str, project: &str) -> bool {
    let read = org.owner.gql(AGENT, json!({ "id": agent })).await;
    let in_list = listed(&org.owner.gql(AGENTS, json!({})).await).contains(&agent.to_owned());
    let started = org.owner.gql(START, json!({ "a": agent, "p": project })).await;
    if read.body["errors"].is_null() {
        assert_eq!(read.data("agent")["id"], agent);
        assert!(in_list, "readable but not listed");
        assert_eq!(started.data("startAgentJob")["status"], "QUEUED");
        true
    } else {
        assert_eq!(read.error_code(), "NOT_FOUND");
        assert!(!in_list, "listed but not readable");
        assert_eq!(started.error_code(), "NOT_FOUND");
        false
    }
}

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
    app.make_platform_admin(&acme.owner_user_id).await;
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

async fn only_a_platform_admin_makes_or_changes_a_global_agent(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let project = globex.project("G").await;
    let create = "mutation { createAgent(input: { name: \"Shared\", kind: \"echo\", config: { steps: 1 }, sharing: GLOBAL }) { id sharing } }";
    let make_global = "mutation($id: ID!) { updateAgent(id: $id, input: { sharing: GLOBAL }) { sharing } }";
    // Neither a member nor the organization's owner may make one GLOBAL, on create or update.
    let member = acme.member(&app, "MEMBER").await;
    assert_eq!(
        member.client.gql(create, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    let refused = acme.owner.gql(create, json!({})).await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    assert!(
        refused.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("platform admin"),
        "{}",
        refused.body
    );
    let agent = echo_agent(&acme.owner, json!({ "steps": 1 })).await;
    assert_eq!(
        acme.owner
            .gql(make_global, json!({ "id": agent }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert!(!usable(&globex, &agent, &project).await);
    assert!(listed(&acme.owner.gql(AGENTS, json!({})).await) == vec![agent.clone()]);

    // A platform admin (who is Acme's owner) may.
    app.make_platform_admin(&acme.owner_user_id).await;
    let global = acme.owner.gql(create, json!({})).await;
    assert_eq!(global.data("createAgent")["sharing"], "GLOBAL");
    let global = global.data("createAgent")["id"].as_str().unwrap().to_owned();
    assert_eq!(
        acme.owner
            .gql(make_global, json!({ "id": agent }))
            .await
            .data("updateAgent")["sharing"],
        "GLOBAL"
    );
    assert!(usable(&globex, &agent, &project).await);
    assert!(usable(&globex, &global, &project).await);

    // What a GLOBAL agent runs changes only by a platform admin: nobody accepts it.
    let admin = acme.member(&app, "ADMIN").await;
    let changed = admin
        .client
        .gql(UPDATE_CONFIG, json!({ "id": global, "c": { "steps": 2 } }))
        .await;
    assert_eq!(changed.error_code(), "FORBIDDEN");
    let renamed = admin
        .client
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"Renamed\" }) { name } }",
            json!({ "id": global }),
        )
        .await;
    assert_eq!(renamed.data("updateAgent")["name"], "Renamed");
    let changed = acme
        .owner
        .gql(UPDATE_CONFIG, json!({ "id": global, "c": { "steps": 2 } }))
        .await;
    assert_eq!(changed.data("updateAgent")["revision"], 2);
    assert!(usable(&globex, &global, &project).await);
}

async fn a_selective_share_takes_effect_when_the_receiving_admin_accepts_it(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let initech = app.org("Initech").await;
    let project = globex.project("G").await;
    let initech_project = initech.project("I").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 1 })).await;
    acme.owner
        .gql(SHARE, json!({ "id": agent, "o": [globex.id] }))
        .await
        .data("shareAgent");

    // Offered, not accepted: Globex neither reads, lists nor runs it, but its admins review it,
    // config included.
    assert!(!usable(&globex, &agent, &project).await);
    let pending = offers(&globex.owner.gql(OFFERS, json!({})).await);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["agent"]["id"], agent.as_str());
    assert_eq!(pending[0]["agent"]["organizationId"], acme.id.as_str());
    assert_eq!(pending[0]["agent"]["config"], json!({ "steps": 1 }));
    assert_eq!(pending[0]["agent"]["revision"], 1);
    assert_eq!(pending[0]["acceptedRevision"], Value::Null);
    assert!(offers(&initech.owner.gql(OFFERS, json!({})).await).is_empty());

    // A member of Globex may neither review nor accept; an organization it was not offered to
    // cannot accept it (it does not exist there).
    let member = globex.member(&app, "MEMBER").await;
    assert_eq!(
        member.client.gql(OFFERS, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        member
            .client
            .gql(ACCEPT, json!({ "id": agent }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        initech
            .owner
            .gql(ACCEPT, json!({ "id": agent }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    assert!(!usable(&initech, &agent, &initech_project).await);
    assert!(!usable(&globex, &agent, &project).await);
    // Accepting a revision other than the current one is refused.
    let stale = globex.owner.gql(ACCEPT, json!({ "id": agent, "r": 7 })).await;
    assert_eq!(stale.error_code(), "BAD_USER_INPUT");
    assert_eq!(stale.error_field(), Some("revision"));
    assert!(!usable(&globex, &agent, &project).await);

    // An admin of Globex accepts: from now on it is Globex's to use, read-only.
    let admin = globex.member(&app, "ADMIN").await;
    let accepted = admin.client.gql(ACCEPT, json!({ "id": agent, "r": 1 })).await;
    assert_eq!(accepted.data("acceptAgentShare")["id"], agent.as_str());
    assert!(usable(&globex, &agent, &project).await);
    assert!(offers(&globex.owner.gql(OFFERS, json!({})).await).is_empty());
    assert_eq!(
        globex
            .owner
            .gql(
                "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"mine\" }) { id } }",
                json!({ "id": agent })
            )
            .await
            .error_code(),
        "FORBIDDEN"
    );
    // Still nothing for Initech.
    assert!(!usable(&initech, &agent, &initech_project).await);
}

async fn a_change_of_what_a_shared_agent_runs_is_accepted_again(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let project = globex.project("G").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 1 })).await;
    share_and_accept(&acme.owner, &agent, &globex).await;
    assert!(usable(&globex, &agent, &project).await);

    // A new name is no new revision; the same config sent again neither.
    acme.owner
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { name: \"Renamed\" }) { id } }",
            json!({ "id": agent }),
        )
        .await
        .data("updateAgent");
    let same = acme
        .owner
        .gql(UPDATE_CONFIG, json!({ "id": agent, "c": { "steps": 1 } }))
        .await;
    assert_eq!(same.data("updateAgent")["revision"], 1);
    assert!(usable(&globex, &agent, &project).await);

    // A new config is: Globex's acceptance lapses and it is asked again, shown the new config.
    let changed = acme
        .owner
        .gql(UPDATE_CONFIG, json!({ "id": agent, "c": { "steps": 3 } }))
        .await;
    assert_eq!(changed.data("updateAgent")["revision"], 2);
    assert!(!usable(&globex, &agent, &project).await);
    let pending = offers(&globex.owner.gql(OFFERS, json!({})).await);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["acceptedRevision"], 1);
    assert_eq!(pending[0]["agent"]["revision"], 2);
    assert_eq!(pending[0]["agent"]["config"], json!({ "steps": 3 }));
    // So is a new number of attempts (each one is charged to the runner).
    let reaccepted = globex.owner.gql(ACCEPT, json!({ "id": agent, "r": 2 })).await;
    assert_eq!(reaccepted.data("acceptAgentShare")["revision"], 2);
    assert!(usable(&globex, &agent, &project).await);
    let attempts = acme
        .owner
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { maxAttempts: 5 }) { revision } }",
            json!({ "id": agent }),
        )
        .await;
    assert_eq!(attempts.data("updateAgent")["revision"], 3);
    assert!(!usable(&globex, &agent, &project).await);
    globex
        .owner
        .gql(ACCEPT, json!({ "id": agent }))
        .await
        .data("acceptAgentShare");
    assert!(usable(&globex, &agent, &project).await);
}

async fn declining_leaving_and_withdrawing_end_a_share(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let initech = app.org("Initech").await;
    let project = globex.project("G").await;
    let initech_project = initech.project("I").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 1 })).await;

    // Declined: the offer is gone, so nothing is left to accept.
    acme.owner
        .gql(SHARE, json!({ "id": agent, "o": [initech.id] }))
        .await
        .data("shareAgent");
    let member = initech.member(&app, "MEMBER").await;
    assert_eq!(
        member
            .client
            .gql(DECLINE, json!({ "id": agent }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        globex
            .owner
            .gql(DECLINE, json!({ "id": agent }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    assert_eq!(
        initech
            .owner
            .gql(DECLINE, json!({ "id": agent }))
            .await
            .data("declineAgentShare"),
        agent.as_str()
    );
    assert!(offers(&initech.owner.gql(OFFERS, json!({})).await).is_empty());
    assert_eq!(
        initech
            .owner
            .gql(ACCEPT, json!({ "id": agent }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    assert!(!usable(&initech, &agent, &initech_project).await);

    // Left: usable no more, and not offered either.
    share_and_accept(&acme.owner, &agent, &globex).await;
    assert!(usable(&globex, &agent, &project).await);
    assert_eq!(
        globex
            .owner
            .gql(LEAVE, json!({ "id": agent }))
            .await
            .data("leaveAgentShare"),
        agent.as_str()
    );
    assert!(!usable(&globex, &agent, &project).await);
    assert!(offers(&globex.owner.gql(OFFERS, json!({})).await).is_empty());
    assert_eq!(
        globex.owner.gql(LEAVE, json!({ "id": agent })).await.error_code(),
        "NOT_FOUND"
    );

    // Withdrawn by the author (left off the list, or the agent made PRIVATE): offered again
    // later, it waits for a new acceptance.
    share_and_accept(&acme.owner, &agent, &globex).await;
    acme.owner
        .gql(SHARE, json!({ "id": agent, "o": [globex.id, initech.id] }))
        .await
        .data("shareAgent");
    assert!(
        usable(&globex, &agent, &project).await,
        "a kept offer keeps its acceptance"
    );
    acme.owner
        .gql(SHARE, json!({ "id": agent, "o": [initech.id] }))
        .await
        .data("shareAgent");
    assert!(!usable(&globex, &agent, &project).await);
    acme.owner
        .gql(SHARE, json!({ "id": agent, "o": [globex.id] }))
        .await
        .data("shareAgent");
    assert!(!usable(&globex, &agent, &project).await);
    assert_eq!(offers(&globex.owner.gql(OFFERS, json!({})).await).len(), 1);
    globex
        .owner
        .gql(ACCEPT, json!({ "id": agent }))
        .await
        .data("acceptAgentShare");
    acme.owner
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { sharing: PRIVATE }) { sharing } }",
            json!({ "id": agent }),
        )
        .await
        .data("updateAgent");
    acme.owner
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { sharing: SELECTIVE }) { sharing } }",
            json!({ "id": agent }),
        )
        .await
        .data("updateAgent");
    assert!(!usable(&globex, &agent, &project).await);
    assert!(offers(&globex.owner.gql(OFFERS, json!({})).await).is_empty());
}

async fn selective_agents_reach_only_the_listed_organizations(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let initech = app.org("Initech").await;
    let agent = echo_agent(&acme.owner, json!({})).await;
    let shared = acme
        .owner
        .gql(SHARE, json!({ "id": agent, "o": [globex.id, globex.id] }))
        .await;
    assert_eq!(shared.data("shareAgent")["sharing"], "SELECTIVE");
    globex
        .owner
        .gql(ACCEPT, json!({ "id": agent }))
        .await
        .data("acceptAgentShare");
    assert_eq!(
        initech
            .owner
            .gql(ACCEPT, json!({ "id": agent }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
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
        .gql(SHARE, json!({ "id": agent, "o": [initech.id] }))
        .await
        .data("shareAgent");
    initech
        .owner
        .gql(ACCEPT, json!({ "id": agent }))
        .await
        .data("acceptAgentShare");
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
        .gql(SHARE, json!({ "id": agent, "o": [uuid::Uuid::now_v7()] }))
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

    // An organization a shared agent runs for sees its configuration: what it accepted.
    let globex = app.org("Globex").await;
    share_and_accept(&acme.owner, &org_wide, &globex).await;
    let config = "query($id: ID!) { agent(id: $id) { config } }";
    assert_eq!(
        globex
            .owner
            .gql(config, json!({ "id": org_wide }))
            .await
            .data("agent")["config"],
        json!({})
    );
    assert_eq!(
        acme.owner
            .gql(config, json!({ "id": org_wide }))
            .await
            .data("agent")["config"],
        json!({})
    );
}

/// Until the sharing migration any organization admin could make an agent GLOBAL. Such an
/// agent becomes SELECTIVE, offered (pending) to the organizations that ran it.
async fn global_agents_made_before_become_offers_to_those_that_ran_them(app: TestApp) {
    use migration::MigrationTrait;
    use migration::m20261206_000010_share_acceptance::Migration;

    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let initech = app.org("Initech").await;
    let project = globex.project("G").await;
    let initech_project = initech.project("I").await;
    app.make_platform_admin(&acme.owner_user_id).await;
    let agent = acme
        .owner
        .gql(
            "mutation { createAgent(input: { name: \"Old\", kind: \"echo\", config: {}, sharing: GLOBAL }) { id } }",
            json!({}),
        )
        .await
        .data("createAgent")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    start_job(&globex.owner, &agent, &project, json!({})).await;

    // The database as it was before the migration, then the migration again.
    let conn = app.owner_connection().await;
    let manager = migration::SchemaManager::new(&conn);
    Migration.down(&manager).await.unwrap();
    Migration.up(&manager).await.unwrap();

    let own = acme.owner.gql(AGENT, json!({ "id": agent })).await;
    assert_eq!(own.data("agent")["sharing"], "SELECTIVE");
    assert!(!usable(&globex, &agent, &project).await);
    let pending = offers(&globex.owner.gql(OFFERS, json!({})).await);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["agent"]["id"], agent.as_str());
    assert!(offers(&initech.owner.gql(OFFERS, json!({})).await).is_empty());
    assert!(!usable(&initech, &agent, &initech_project).await);
    globex
        .owner
        .gql(ACCEPT, json!({ "id": agent }))
        .await
        .data("acceptAgentShare");
    assert!(usable(&globex, &agent, &project).await);
}
