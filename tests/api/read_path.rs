//! The read path: an operation's fields read in one transaction of its tenant, and relation
//! fields in batches, by the same visibility rule as a single read, so a nested page costs
//! the same statements whatever its size.

use serde_json::{Value, json};
use tenantql::settings::Config;

use crate::agents::{SHARE, share_and_accept};
use crate::configured_backend_tests;
use crate::helpers::{Org, TestApp};
use crate::jobs::{echo_agent, start_job};

/// A project with its newest jobs and each job's agent: the nested read of the benchmark.
const PROJECT_WITH_JOBS: &str = "query($project: ID!, $first: Int!) {
    project(id: $project) { id name }
    agentJobs(projectId: $project, first: $first) { nodes { id status progress createdAt agent { name } } }
}";

/// No workers (the jobs stay queued, so nothing else reads meanwhile) and room for many
/// job starts a minute.
fn quiet_with_many_jobs(config: &mut Config) {
    config.workers = 0;
    config.rate_limits = config
        .rate_limits
        .clone()
        .with_plan_overrides("FREE=100000/10000000/100000")
        .unwrap();
}

/// `(statements, transactions)` the tenant pool has sent, from `/metrics`.
async fn tenant_round_trips(app: &TestApp) -> (u64, u64) {
    let body = app.metrics().await;
    let figure = |name: &str| {
        let prefix = format!("{name}{{pool=\"tenant\"}} ");
        body.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{name} for the tenant pool is not in /metrics"))
            .parse::<u64>()
            .unwrap()
    };
    (
        figure("tenantql_db_statements_total"),
        figure("tenantql_db_transactions_total"),
    )
}

async fn project_with_jobs(org: &Org, project: &str, first: usize) -> Value {
    org.owner
        .gql(PROJECT_WITH_JOBS, json!({ "project": project, "first": first }))
        .await
        .data("agentJobs")
        .clone()
}

async fn a_nested_query_costs_the_same_statements_at_every_page_size(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Launch").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 1 })).await;
    for _ in 0..50 {
        start_job(&acme.owner, &agent, &project, json!({})).await;
    }
    let mut costs = Vec::new();
    for first in [1, 10, 50] {
        let before = tenant_round_trips(&app).await;
        let jobs = project_with_jobs(&acme, &project, first).await;
        let after = tenant_round_trips(&app).await;
        let nodes = jobs["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), first);
        assert!(nodes.iter().all(|job| job["agent"]["name"] == "Echo"), "{jobs}");
        let cost = (after.0 - before.0, after.1 - before.1);
        assert_eq!(cost.1, 1, "the operation read in one transaction: {cost:?}");
        costs.push((first, cost));
    }
    assert!(
        costs.iter().all(|(_, cost)| *cost == costs[0].1),
        "statements grew with the page size: {costs:?}"
    );
}

/// Jobs of one organization whose agents are its own, shared with it, and no longer shared
/// with it are read in one batch; the batch answers only what the single read would.
async fn batched_agents_follow_the_sharing_rule(app: TestApp) {
    let author = app.org("Author").await;
    let user = app.org("User").await;
    let shared = echo_agent(&author.owner, json!({ "steps": 1 })).await;
    let withdrawn = echo_agent(&author.owner, json!({ "steps": 1 })).await;
    for agent in [&shared, &withdrawn] {
        share_and_accept(&author.owner, agent, &user).await;
    }
    let project = user.project("Campaigns").await;
    let own = echo_agent(&user.owner, json!({ "steps": 1 })).await;
    for agent in [&own, &shared, &withdrawn] {
        start_job(&user.owner, agent, &project, json!({})).await;
    }
    // The author takes the second offer back: the user's job keeps its history, not the agent.
    author
        .owner
        .gql(SHARE, json!({ "id": withdrawn, "o": [] }))
        .await
        .data("shareAgent");

    let jobs = user
        .owner
        .gql(
            "query($project: ID!) { agentJobs(projectId: $project, first: 10) { nodes { agent { id } } } }",
            json!({ "project": project }),
        )
        .await;
    let seen: Vec<Value> = jobs.data("agentJobs")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["agent"]["id"].clone())
        .collect();
    // Newest first: the withdrawn agent's job, the shared one's, the user's own.
    assert_eq!(seen, [Value::Null, json!(shared), json!(own)]);
    // The same answers, one agent at a time.
    let single = |agent: &str| {
        user.owner.gql(
            "query($id: ID!) { agent(id: $id) { id } }",
            json!({ "id": agent }),
        )
    };
    assert_eq!(single(&shared).await.data("agent")["id"], json!(shared));
    assert_eq!(single(&withdrawn).await.error_code(), "NOT_FOUND");
}

configured_backend_tests!(
    a_nested_query_costs_the_same_statements_at_every_page_size => super::quiet_with_many_jobs,
    batched_agents_follow_the_sharing_rule => super::quiet_with_many_jobs,
);
