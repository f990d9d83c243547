//! Budgets and usage: what jobs cost, month by month; a job that would go over is refused
//! before it is queued; platform admins move organizations between plans.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Client, TestApp};
use crate::jobs::{echo_agent, start_job, terminal, wait_for};

const USAGE: &str = "query($period: String) { usage(period: $period) { costCents budgetCents tokens jobs } }";
const START: &str =
    "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id } }";
const JOBS: &str = "query($p: ID!) { agentJobs(projectId: $p) { edges { node { id } } } }";

async fn jobs_in(client: &Client, project: &str) -> usize {
    let jobs = client.gql(JOBS, json!({ "p": project })).await;
    jobs.data("agentJobs")["edges"].as_array().unwrap().len()
}

async fn usage_counts_what_jobs_cost_in_each_month(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let project = acme.project("Spend").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 2, "costCentsPerStep": 150 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "SUCCEEDED");

    let usage = acme.owner.gql(USAGE, json!({})).await;
    assert_eq!(
        usage.data("usage"),
        &json!({ "costCents": 300, "budgetCents": 1000, "tokens": 0, "jobs": 1 })
    );
    let via_organization = acme
        .owner
        .gql("{ organization { usage { costCents jobs } } }", json!({}))
        .await;
    assert_eq!(via_organization.data("organization")["usage"]["costCents"], 300);
    let long_ago = acme.owner.gql(USAGE, json!({ "period": "2020-01" })).await;
    assert_eq!(long_ago.data("usage")["costCents"], 0);
    assert_eq!(long_ago.data("usage")["jobs"], 0);
    let bad = acme.owner.gql(USAGE, json!({ "period": "January" })).await;
    assert_eq!(bad.error_code(), "BAD_USER_INPUT");

    // Another organization's spending is its own; a project-bound key sees none of it.
    assert_eq!(
        globex.owner.gql(USAGE, json!({})).await.data("usage")["costCents"],
        0
    );
    let bound = acme.api_key(&app, "MEMBER", Some(&project)).await;
    assert_eq!(bound.gql(USAGE, json!({})).await.error_code(), "FORBIDDEN");
}

async fn a_job_that_would_exceed_the_budget_is_refused_before_it_is_queued(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Spend").await;
    // The free plan's budget is 1,000 cents a month.
    let too_big = echo_agent(&acme.owner, json!({ "steps": 3, "costCentsPerStep": 400 })).await;
    let refused = acme.owner.gql(START, json!({ "a": too_big, "p": project })).await;
    assert_eq!(refused.error_code(), "BUDGET_EXCEEDED");
    assert_eq!(jobs_in(&acme.owner, &project).await, 0);

    let fits = echo_agent(&acme.owner, json!({ "steps": 3, "costCentsPerStep": 300 })).await;
    let job = start_job(&acme.owner, &fits, &project, json!({})).await;
    assert_eq!(wait_for(&acme.owner, &job, terminal).await["status"], "SUCCEEDED");
    // 900 spent: another 900 would go over.
    let again = acme.owner.gql(START, json!({ "a": fits, "p": project })).await;
    assert_eq!(again.error_code(), "BUDGET_EXCEEDED");
    assert_eq!(jobs_in(&acme.owner, &project).await, 1);
}

const SET_PLAN: &str = "mutation($org: ID!, $plan: Plan!, $budget: Int) {
    setOrganizationPlan(organizationId: $org, plan: $plan, monthlyBudgetCents: $budget) { id plan monthlyBudgetCents } }";
const PLATFORM_ORGS: &str = "{ platformOrganizations(first: 50) { edges { node { id name } } } }";

async fn platform_admins_alone_see_every_tenant_and_set_plans(app: TestApp) {
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let staff = app.org("Staff").await;

    // An organization owner is not a platform admin.
    assert_eq!(
        acme.owner.gql(PLATFORM_ORGS, json!({})).await.error_code(),
        "FORBIDDEN"
    );
    let attempt = acme
        .owner
        .gql(SET_PLAN, json!({ "org": acme.id, "plan": "ENTERPRISE" }))
        .await;
    assert_eq!(attempt.error_code(), "FORBIDDEN");

    app.make_platform_admin(&staff.owner_user_id).await;

    let listed = staff.owner.gql(PLATFORM_ORGS, json!({})).await;
    let names: Vec<&str> = listed.data("platformOrganizations")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Staff", "Globex", "Acme"]);
    // Lists inside another tenant stay closed even to platform admins.
    let nested = staff
        .owner
        .gql(
            "{ platformOrganizations { edges { node { projects { edges { cursor } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(nested.error_code(), "TENANT_REQUIRED");

    let pro = staff
        .owner
        .gql(SET_PLAN, json!({ "org": globex.id, "plan": "PRO" }))
        .await;
    assert_eq!(
        pro.data("setOrganizationPlan"),
        &json!({ "id": globex.id, "plan": "PRO", "monthlyBudgetCents": 100000 })
    );
    let custom = staff
        .owner
        .gql(
            SET_PLAN,
            json!({ "org": globex.id, "plan": "STARTER", "budget": 4321 }),
        )
        .await;
    assert_eq!(custom.data("setOrganizationPlan")["monthlyBudgetCents"], 4321);
    let negative = staff
        .owner
        .gql(SET_PLAN, json!({ "org": globex.id, "plan": "PRO", "budget": -1 }))
        .await;
    assert_eq!(negative.error_code(), "BAD_USER_INPUT");
    let unknown = staff
        .owner
        .gql(
            SET_PLAN,
            json!({ "org": uuid::Uuid::now_v7().to_string(), "plan": "PRO" }),
        )
        .await;
    assert_eq!(unknown.error_code(), "NOT_FOUND");

    // The change is in the organization's own trail, naming the platform admin.
    let trail = globex
        .owner
        .gql(
            "{ auditLog(filter: { action: \"setOrganizationPlan\" }) { edges { node { actorId before after } } } }",
            json!({}),
        )
        .await;
    let entries = trail.data("auditLog")["edges"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    let first = &entries[1]["node"];
    assert_eq!(first["actorId"], staff.owner_user_id.as_str());
    assert_eq!(first["before"]["plan"], "FREE");
    assert_eq!(first["after"]["plan"], "PRO");
    assert_eq!(
        globex.owner.gql(USAGE, json!({})).await.data("usage")["budgetCents"],
        4321
    );
}

backend_tests!(
    usage_counts_what_jobs_cost_in_each_month,
    a_job_that_would_exceed_the_budget_is_refused_before_it_is_queued,
    platform_admins_alone_see_every_tenant_and_set_plans,
);
