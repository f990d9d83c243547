//! Three server processes on one PostgreSQL and one Redis, as a deployment runs them: events,
//! persisted queries and rate limits cross replicas, and a replica killed mid-job loses no
//! job. (SQLite is one server's database; replicas need PostgreSQL.)

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, TestApp, WsEnd, ws_to};
use crate::jobs::{assert_well_formed, echo_agent, start_job, stored_events, terminal, wait_for};
use crate::persisted::{persisted, sha256};
use crate::rate_limits::redis_url;

const FEED: &str = "subscription($p: ID!) { projectJobEvents(projectId: $p) { jobId seq status } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_events_queries_limits_and_jobs() {
    let Some(redis) = redis_url() else { return };
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |config| config.workers = 0).await else {
        return;
    };
    // Five requests a minute on the free plan, shared through Redis; the main organization
    // is on PRO so its own traffic stays clear of that.
    let env = [
        ("REDIS_URL", redis),
        ("PLAN_LIMITS", "FREE=5/100000/100,PRO=100000/1000000/100000"),
        ("JOB_LEASE_SECONDS", "2"),
    ];
    let api = app.spawn_replica_with(0, &env).await;
    let mut doomed = Some(app.spawn_replica_with(1, &env).await);
    let acme = app.org("Acme").await;
    set_plan(&app, &acme.id, "PRO").await;
    let project = acme.project("Launch").await;
    let on_api = api.client_like(&acme.owner);

    // A subscriber on the API-only replica; the job runs on the worker replica. Another
    // tenant follows its own project on the same replica.
    let mut feed = ws_to(&api.graphql_url(), &acme.owner).await;
    feed.subscribe("feed", FEED, json!({ "p": project })).await;
    let initech = app.org("Initech").await;
    let initech_project = initech.project("Launch").await;
    let mut initech_feed = ws_to(&api.graphql_url(), &initech.owner).await;
    initech_feed
        .subscribe("feed", FEED, json!({ "p": initech_project }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = echo_agent(&on_api, json!({ "steps": 40, "delayMs": 100 })).await;
    let job = start_job(&on_api, &agent, &project, json!({})).await;
    wait_for(&acme.owner, &job, |job| {
        job["status"] == "RUNNING" && job["progress"].as_i64() >= Some(10)
    })
    .await;

    // SIGKILL the replica running it; a third replica takes the job over after its lease.
    drop(doomed.take());
    let survivor = app.spawn_replica_with(1, &env).await;
    let finished = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(finished["attempts"], 2);
    let events = stored_events(&finished);
    assert_well_formed(&events);

    // The subscriber on the first replica saw every event of both runs, in order, live.
    let mut seqs = Vec::new();
    while seqs.len() < events.len() {
        let message = feed
            .next_message(Duration::from_secs(10))
            .await
            .expect("an event");
        assert_eq!(message["type"], "next", "{message}");
        seqs.push(
            message["payload"]["data"]["projectJobEvents"]["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    // Nothing of Acme's relayed events reached the other tenant's stream.
    assert!(matches!(
        initech_feed.next_message(Duration::from_millis(500)).await,
        Err(WsEnd::TimedOut)
    ));

    // A query registered (APQ) on one replica is served by another.
    let query = "query Names { projects { edges { node { name } } } }";
    let hash = sha256(query);
    let on_survivor = survivor.client_like(&acme.owner);
    let registered = on_api
        .post_json(&json!({ "query": query, "extensions": persisted(&hash) }))
        .await;
    assert_eq!(registered.data("projects")["edges"][0]["node"]["name"], "Launch");
    let served = on_survivor
        .post_json(&json!({ "extensions": persisted(&hash) }))
        .await;
    assert_eq!(served.data("projects")["edges"][0]["node"]["name"], "Launch");

    // Rate limits are one allowance across the replicas.
    let globex = app.org("Globex").await;
    let clients = [
        api.client_like(&globex.owner),
        survivor.client_like(&globex.owner),
    ];
    for round in 0..5 {
        let response = clients[round % 2].gql("{ me { id } }", json!({})).await;
        assert!(
            response.body["errors"].is_null(),
            "request {round}: {}",
            response.body
        );
    }
    for client in &clients {
        assert_eq!(
            client.gql("{ me { id } }", json!({})).await.error_code(),
            "RATE_LIMITED"
        );
    }
}

async fn set_plan(app: &TestApp, org: &str, plan: &str) {
    use sea_orm::ConnectionTrait;
    app.owner_connection()
        .await
        .execute_unprepared(&format!(
            "UPDATE organizations SET plan = '{plan}' WHERE id = '{org}'"
        ))
        .await
        .unwrap();
}

/// A replica keeps a signed-in person's memberships for a few seconds; removing them on
/// another replica ends their access there as soon as the notice arrives, well before the
/// cached memberships would have expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_refused_on_every_replica_at_once() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, |config| config.workers = 0).await else {
        return;
    };
    let replica = app.spawn_replica(0).await;
    let acme = app.org("Acme").await;
    let member = acme.member(&app, "MEMBER").await;
    let on_replica = replica.client_like(&member.client);
    const PROJECTS: &str = "{ projects(first: 1) { edges { node { id } } } }";
    on_replica.gql(PROJECTS, json!({})).await.data("projects");

    let removed_at = std::time::Instant::now();
    acme.owner
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": member.user_id }),
        )
        .await
        .data("removeMember");
    let deadline = tenantql::auth::tenant::MEMBERSHIP_CACHE_TTL / 2;
    loop {
        let answer = on_replica.gql(PROJECTS, json!({})).await;
        if answer.body["errors"][0]["extensions"]["code"] == "FORBIDDEN" {
            break;
        }
        answer.data("projects");
        assert!(
            removed_at.elapsed() < deadline,
            "the replica still served the removed member after {:?}",
            removed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
