//! Agent jobs end to end: queue, workers, retries, cancellation, crashes, and live events over
//! real websockets, in order, complete, and only to the tenant they belong to.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Client, Org, TestApp, WsEnd};

backend_tests!(
    job_events_stream_in_order_and_end_after_the_terminal_one,
    a_hundred_subscribers_receive_identical_sequences,
    a_slow_subscriber_neither_delays_others_nor_loses_events,
    subscriptions_to_another_tenant_are_refused_and_silent,
    the_replica_relay_reads_a_job_s_events_only_under_its_organization,
    cancelling_stops_queued_and_running_jobs,
    failures_are_retried_then_fail_with_the_error,
    streams_end_when_access_ends,
    stopping_the_server_releases_running_jobs_to_the_queue,
);

/// Scenarios where this server runs no workers and separate `tenantql worker` processes do.
mod worker_processes {
    use crate::helpers::{Backend, TestApp};

    async fn api_only(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |config| config.workers = 0).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_worker_sqlite() {
        super::a_worker_killed_mid_job_leads_to_one_retry_and_one_terminal_event(
            api_only(Backend::Sqlite).await.unwrap(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_worker_postgres() {
        if let Some(app) = api_only(Backend::Postgres).await {
            super::a_worker_killed_mid_job_leads_to_one_retry_and_one_terminal_event(app).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unshared_agent_sqlite() {
        super::a_job_runs_only_an_agent_its_organization_may_still_use(
            api_only(Backend::Sqlite).await.unwrap(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unshared_agent_postgres() {
        if let Some(app) = api_only(Backend::Postgres).await {
            super::a_job_runs_only_an_agent_its_organization_may_still_use(app).await;
        }
    }

    /// Only PostgreSQL links replicas (SQLite is a single-server database).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscriber_on_one_server_sees_a_job_run_by_another_postgres() {
        if let Some(app) = api_only(Backend::Postgres).await {
            super::a_subscriber_sees_a_job_run_by_another_process(app).await;
        }
    }
}

const PROGRESS: &str = "subscription($job: ID!, $after: Int) { agentJobProgress(jobId: $job, afterSeq: $after) { jobId seq status progress message } }";
const JOB: &str = "query($id: ID!) { agentJob(id: $id) { status progress attempts error output input
    events(first: 100) { edges { node { seq status message } } } } }";

pub async fn echo_agent(client: &Client, config: Value) -> String {
    let created = client
        .gql(
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": { "name": "Echo", "kind": "echo", "config": config } }),
        )
        .await;
    created.data("createAgent")["id"].as_str().unwrap().to_owned()
}

pub async fn start_job(client: &Client, agent: &str, project: &str, input: Value) -> String {
    let started = client
        .gql(
            "mutation($input: StartAgentJobInput!) { startAgentJob(input: $input) { id status } }",
            json!({ "input": { "agentId": agent, "projectId": project, "input": input } }),
        )
        .await;
    assert_eq!(started.data("startAgentJob")["status"], "QUEUED");
    started.data("startAgentJob")["id"].as_str().unwrap().to_owned()
}

/// Polls the job until `done` says so (at most 20 s).
pub async fn wait_for(client: &Client, job: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let response = client.gql(JOB, json!({ "id": job })).await;
        let job = response.data("agentJob").clone();
        if done(&job) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job} never reached the expected state");
}

pub fn terminal(job: &Value) -> bool {
    matches!(job["status"].as_str(), Some("SUCCEEDED" | "FAILED" | "CANCELLED"))
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event["data"]["agentJobProgress"]["seq"].as_i64().unwrap())
        .collect()
}

pub fn stored_events(job: &Value) -> Vec<Value> {
    job["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect()
}

/// Exactly one terminal event, last, and seqs 1..n with no gap.
pub fn assert_well_formed(events: &[Value]) {
    let seqs: Vec<i64> = events
        .iter()
        .map(|event| event["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gap or duplicate in {events:#?}"
    );
    let terminals = events
        .iter()
        .filter(|e| matches!(e["status"].as_str(), Some("SUCCEEDED" | "FAILED" | "CANCELLED")))
        .count();
    assert_eq!(terminals, 1, "{events:#?}");
    assert!(
        terminal(events.last().unwrap()),
        "the terminal event must be last"
    );
}

async fn setup(app: &TestApp) -> (Org, String) {
    let acme = app.org("Acme").await;
    let project = acme.project("Launch").await;
    (acme, project)
}

async fn job_events_stream_in_order_and_end_after_the_terminal_one(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 3, "delayMs": 30 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({ "topic": "spring" })).await;
    let mut ws = app.ws(&acme.owner).await;
    ws.subscribe("p", PROGRESS, json!({ "job": job, "after": 0 }))
        .await;
    let (events, end) = ws.collect("p", Duration::from_secs(10)).await;
    assert_eq!(end["type"], "complete");
    assert_eq!(seqs(&events), vec![1, 2, 3, 4, 5, 6]);
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["agentJobProgress"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["QUEUED", "RUNNING", "RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"]
    );
    assert!(
        events
            .iter()
            .all(|e| e["data"]["agentJobProgress"]["jobId"] == job.as_str())
    );

    let finished = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(finished["progress"], 100);
    assert_eq!(finished["attempts"], 1);
    assert_eq!(finished["output"], json!({ "echo": { "topic": "spring" } }));

    // Resuming after seq 3 replays 4..6 from the table, then completes.
    ws.subscribe("again", PROGRESS, json!({ "job": job, "after": 3 }))
        .await;
    let (events, end) = ws.collect("again", Duration::from_secs(10)).await;
    assert_eq!(seqs(&events), vec![4, 5, 6]);
    assert_eq!(end["type"], "complete");

    let listed = acme
        .owner
        .gql(
            "query($p: ID!) { agentJobs(projectId: $p, status: SUCCEEDED) { edges { node { id } } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(listed.data("agentJobs")["edges"][0]["node"]["id"], job.as_str());
    let none = acme
        .owner
        .gql(
            "query($p: ID!) { agentJobs(projectId: $p, status: FAILED) { edges { node { id } } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(none.data("agentJobs")["edges"], json!([]));
}

async fn a_hundred_subscribers_receive_identical_sequences(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 5, "delayMs": 100 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    let subscribers = (0..100).map(|_| {
        let (app_ref, owner, job) = (&app, acme.owner.clone(), job.clone());
        async move {
            let mut ws = app_ref.ws(&owner).await;
            ws.subscribe("p", PROGRESS, json!({ "job": job })).await;
            let (events, end) = ws.collect("p", Duration::from_secs(20)).await;
            assert_eq!(end["type"], "complete", "{end}");
            events
        }
    });
    let all = futures_util::future::join_all(subscribers).await;
    let expected = seqs(&all[0]);
    assert_eq!(expected, (1..=8).collect::<Vec<_>>());
    for events in &all {
        assert_eq!(events, &all[0], "every subscriber sees the same events");
    }
}

async fn a_slow_subscriber_neither_delays_others_nor_loses_events(app: TestApp) {
    let (acme, project) = setup(&app).await;
    // More events than a live channel buffers, so the stalled reader falls behind.
    let agent = echo_agent(&acme.owner, json!({ "steps": 400 })).await;
    let mut stalled = app.ws(&acme.owner).await;
    let project_feed = "subscription($p: ID!) { projectJobEvents(projectId: $p) { seq status } }";
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    stalled.subscribe("slow", PROGRESS, json!({ "job": job })).await;
    stalled
        .subscribe("feed", project_feed, json!({ "p": project }))
        .await;

    let mut prompt = app.ws(&acme.owner).await;
    prompt.subscribe("p", PROGRESS, json!({ "job": job })).await;
    let (events, end) = prompt.collect("p", Duration::from_secs(30)).await;
    assert_eq!(end["type"], "complete");
    assert_eq!(seqs(&events).len(), 403);

    // The stalled reader catches up from the table without a gap.
    let (slow_events, end) = stalled.collect("slow", Duration::from_secs(30)).await;
    assert_eq!(end["type"], "complete");
    assert_eq!(seqs(&slow_events), (1..=403).collect::<Vec<_>>());
}

/// The relay between replicas reads events outside RLS, so its own organization filter is
/// the lock: the job's events under its organization, nothing under another.
async fn the_replica_relay_reads_a_job_s_events_only_under_its_organization(app: TestApp) {
    use tenantql::ids::OrgId;
    use tenantql::tenancy::unscoped::job_queue::relayed_events;

    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let project = acme.project("Launch").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 1 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    let finished = wait_for(&acme.owner, &job, terminal).await;
    let stored = stored_events(&finished).len();
    let job_id: uuid::Uuid = job.parse().unwrap();
    let org = |org: &Org| OrgId(org.id.parse().unwrap());

    let own = relayed_events(&app.db, org(&acme), job_id, 0, 100).await.unwrap();
    assert_eq!(own.len(), stored);
    assert_eq!(
        relayed_events(&app.db, org(&acme), job_id, 2, 100).await.unwrap()[0].seq,
        3
    );
    assert!(
        relayed_events(&app.db, org(&globex), job_id, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn subscriptions_to_another_tenant_are_refused_and_silent(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let globex = app.org("Globex").await;
    let globex_project = globex.project("Theirs").await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 2, "delayMs": 50 })).await;

    let mut spy = app.ws(&globex.owner).await;
    spy.subscribe(
        "own",
        "subscription($p: ID!) { projectJobEvents(projectId: $p) { jobId } }",
        json!({ "p": globex_project }),
    )
    .await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    spy.subscribe("job", PROGRESS, json!({ "job": job })).await;
    let refused = spy.next_message(Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused["id"], "job");
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "NOT_FOUND");
    spy.subscribe(
        "project",
        "subscription($p: ID!) { projectJobEvents(projectId: $p) { jobId } }",
        json!({ "p": project }),
    )
    .await;
    let refused = spy.next_message(Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused["payload"][0]["extensions"]["code"], "NOT_FOUND");

    // A viewer of Acme may follow; a member of Globex hears nothing of Acme's job.
    let viewer = acme.member(&app, "VIEWER").await;
    let mut follower = app.ws(&viewer.client).await;
    follower.subscribe("job", PROGRESS, json!({ "job": job })).await;
    let (events, _) = follower.collect("job", Duration::from_secs(10)).await;
    assert!(!events.is_empty());
    wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(
        spy.next_message(Duration::from_millis(500)).await,
        Err(WsEnd::TimedOut)
    );

    // Reads of the job from the other tenant are NOT_FOUND too.
    let read = globex.owner.gql(JOB, json!({ "id": job })).await;
    assert_eq!(read.error_code(), "NOT_FOUND");
    let cancel = globex
        .owner
        .gql(
            "mutation($id: ID!) { cancelAgentJob(id: $id) { status } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(cancel.error_code(), "NOT_FOUND");
    let list = globex
        .owner
        .gql(
            "query($p: ID!) { agentJobs(projectId: $p) { edges { node { id } } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(list.error_code(), "NOT_FOUND");
    // And a viewer of Acme may read but not start or cancel.
    let start = viewer
        .client
        .gql(
            "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id } }",
            json!({ "a": agent, "p": project }),
        )
        .await;
    assert_eq!(start.error_code(), "FORBIDDEN");
}

async fn cancelling_stops_queued_and_running_jobs(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 200, "delayMs": 50 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    wait_for(&acme.owner, &job, |job| {
        job["status"] == "RUNNING" && job["progress"].as_i64() > Some(0)
    })
    .await;
    let cancel = "mutation($id: ID!) { cancelAgentJob(id: $id) { status } }";
    acme.owner
        .gql(cancel, json!({ "id": job }))
        .await
        .data("cancelAgentJob");
    let finished = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(finished["status"], "CANCELLED");
    assert!(
        finished["progress"].as_i64().unwrap() < 100,
        "it stopped at its next step"
    );
    assert_well_formed(&stored_events(&finished));
    // Cancelling a finished job changes nothing.
    assert_eq!(
        acme.owner
            .gql(cancel, json!({ "id": job }))
            .await
            .data("cancelAgentJob")["status"],
        "CANCELLED"
    );
}

async fn failures_are_retried_then_fail_with_the_error(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let flaky = echo_agent(&acme.owner, json!({ "steps": 1, "failAttempts": 2 })).await;
    let job = start_job(&acme.owner, &flaky, &project, json!({})).await;
    let finished = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(finished["attempts"], 3);
    let events = stored_events(&finished);
    assert_well_formed(&events);
    let retries = events
        .iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.contains("retrying")))
        .count();
    assert_eq!(retries, 2);

    let broken = acme
        .owner
        .gql(
            "mutation { createAgent(input: { name: \"Broken\", kind: \"echo\", config: { steps: 1, failAttempts: 9 }, maxAttempts: 2 }) { id } }",
            json!({}),
        )
        .await;
    let broken = broken.data("createAgent")["id"].as_str().unwrap().to_owned();
    let job = start_job(&acme.owner, &broken, &project, json!({})).await;
    let failed = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["attempts"], 2);
    assert!(failed["error"].as_str().unwrap().contains("fails attempt 2"));
    assert_well_formed(&stored_events(&failed));
}

async fn a_worker_killed_mid_job_leads_to_one_retry_and_one_terminal_event(app: TestApp) {
    let (acme, project) = setup(&app).await;
    // This server runs no workers; a separate worker process does, and is killed.
    let agent = echo_agent(&acme.owner, json!({ "steps": 30, "delayMs": 100 })).await;
    let mut doomed = app.spawn_worker_process();
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    wait_for(&acme.owner, &job, |job| {
        job["status"] == "RUNNING" && job["progress"].as_i64() >= Some(10)
    })
    .await;
    doomed.kill().expect("kill the worker");
    let _ = doomed.wait();
    let mut survivor = app.spawn_worker_process();
    let finished = wait_for(&acme.owner, &job, terminal).await;
    let _ = survivor.kill();
    let _ = survivor.wait();
    assert_eq!(finished["status"], "SUCCEEDED");
    assert_eq!(finished["attempts"], 2);
    assert_well_formed(&stored_events(&finished));
}

/// The worker's claim reads each job's agent across tenants, so it applies the sharing rule
/// itself: jobs queued while an agent was shared run only if it still is when they are claimed.
async fn a_job_runs_only_an_agent_its_organization_may_still_use(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let globex = app.org("Globex").await;
    let share =
        "mutation($id: ID!, $o: [ID!]!) { shareAgent(agentId: $id, organizationIds: $o) { sharing } }";
    let unshared = echo_agent(&globex.owner, json!({ "steps": 1 })).await;
    let changed = echo_agent(&globex.owner, json!({ "steps": 1 })).await;
    app.make_platform_admin(&globex.owner_user_id).await;
    let global = globex
        .owner
        .gql(
            "mutation { createAgent(input: { name: \"Everyone's\", kind: \"echo\", config: { steps: 1 }, sharing: GLOBAL }) { id } }",
            json!({}),
        )
        .await
        .data("createAgent")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for agent in [&unshared, &changed] {
        crate::agents::share_and_accept(&globex.owner, agent, &acme).await;
    }
    // Queued while this server runs no workers.
    let unshared_job = start_job(&acme.owner, &unshared, &project, json!({})).await;
    let changed_job = start_job(&acme.owner, &changed, &project, json!({})).await;
    let still_global = start_job(&acme.owner, &global, &project, json!({})).await;
    let initech = app.org("Initech").await;
    globex
        .owner
        .gql(share, json!({ "id": unshared, "o": [initech.id] }))
        .await
        .data("shareAgent");
    // A new config waits for Acme's acceptance; the job queued before does not run it.
    globex
        .owner
        .gql(
            "mutation($id: ID!) { updateAgent(id: $id, input: { config: { steps: 2 } }) { id } }",
            json!({ "id": changed }),
        )
        .await
        .data("updateAgent");

    let mut worker = app.spawn_worker_process();
    let unshared_failed = wait_for(&acme.owner, &unshared_job, terminal).await;
    let changed_failed = wait_for(&acme.owner, &changed_job, terminal).await;
    let succeeded = wait_for(&acme.owner, &still_global, terminal).await;
    let _ = worker.kill();
    let _ = worker.wait();
    for failed in [&unshared_failed, &changed_failed] {
        assert_eq!(failed["status"], "FAILED", "{failed}");
        // At once: retrying cannot bring the agent back.
        assert_eq!(failed["attempts"], 1, "{failed}");
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains("no longer shared"), "{failed}");
        assert!(
            error.contains("awaits this organization's acceptance"),
            "{failed}"
        );
    }
    assert_eq!(succeeded["status"], "SUCCEEDED", "{succeeded}");
}

async fn streams_end_when_access_ends(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 100, "delayMs": 100 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;

    // Membership removed.
    let member = acme.member(&app, "MEMBER").await;
    let mut removed = app.ws(&member.client).await;
    removed.subscribe("p", PROGRESS, json!({ "job": job })).await;
    // API key revoked.
    let created = acme
        .owner
        .gql(
            "mutation { createApiKey(input: { name: \"bot\", role: VIEWER }) { key apiKey { id } } }",
            json!({}),
        )
        .await;
    let bot = app
        .anonymous()
        .header("x-api-key", created.data("createApiKey")["key"].as_str().unwrap());
    let mut revoked = app.ws(&bot).await;
    revoked.subscribe("p", PROGRESS, json!({ "job": job })).await;
    // Access token about to expire.
    let viewer = acme.member(&app, "VIEWER").await;
    let expiring_viewer = app
        .anonymous()
        .bearer(&crate::helpers::access_token(&viewer.user_id, 2))
        .in_org(&acme.id);
    let mut expires = app.ws(&expiring_viewer).await;
    expires.subscribe("p", PROGRESS, json!({ "job": job })).await;

    for ws in [&mut removed, &mut revoked, &mut expires] {
        let first = ws.next_message(Duration::from_secs(5)).await.unwrap();
        assert_eq!(first["type"], "next", "{first}");
    }
    acme.owner
        .gql(
            "mutation($u: ID!) { removeMember(userId: $u) }",
            json!({ "u": member.user_id }),
        )
        .await
        .data("removeMember");
    acme.owner
        .gql(
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({ "id": created.data("createApiKey")["apiKey"]["id"] }),
        )
        .await
        .data("revokeApiKey");
    for (ws, code) in [
        (&mut removed, "FORBIDDEN"),
        (&mut revoked, "UNAUTHENTICATED"),
        (&mut expires, "UNAUTHENTICATED"),
    ] {
        let (_, end) = ws.collect("p", Duration::from_secs(5)).await;
        assert_eq!(end["type"], "error", "{end}");
        assert_eq!(end["payload"][0]["extensions"]["code"], code, "{end}");
    }
}

async fn a_subscriber_sees_a_job_run_by_another_process(app: TestApp) {
    let (acme, project) = setup(&app).await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 5, "delayMs": 50 })).await;
    let mut worker = app.spawn_worker_process();
    let mut ws = app.ws(&acme.owner).await;
    let feed = "subscription($p: ID!) { projectJobEvents(projectId: $p) { jobId seq status } }";
    ws.subscribe("feed", feed, json!({ "p": project })).await;
    // Let the subscription start before the job exists, so the feed sees all of it live.
    assert_eq!(
        ws.next_message(Duration::from_millis(300)).await,
        Err(WsEnd::TimedOut)
    );
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    ws.subscribe("job", PROGRESS, json!({ "job": job })).await;
    // Both streams interleave on one socket: sort messages by operation id.
    let (mut job_seqs, mut feed_seqs, mut job_done) = (Vec::new(), Vec::new(), false);
    while !job_done || feed_seqs.len() < 8 {
        let message = ws.next_message(Duration::from_secs(10)).await.expect("an event");
        match (message["id"].as_str(), message["type"].as_str()) {
            (Some("job"), Some("next")) => job_seqs.push(
                message["payload"]["data"]["agentJobProgress"]["seq"]
                    .as_i64()
                    .unwrap(),
            ),
            (Some("job"), Some("complete")) => job_done = true,
            (Some("feed"), Some("next")) => feed_seqs.push(
                message["payload"]["data"]["projectJobEvents"]["seq"]
                    .as_i64()
                    .unwrap(),
            ),
            _ => panic!("unexpected {message}"),
        }
    }
    let _ = worker.kill();
    let _ = worker.wait();
    assert_eq!(job_seqs, (1..=8).collect::<Vec<_>>());
    // The project feed saw the same events, written by the other process, live.
    assert_eq!(feed_seqs, (1..=8).collect::<Vec<_>>());
}

async fn stopping_the_server_releases_running_jobs_to_the_queue(mut app: TestApp) {
    use sea_orm::{ConnectionTrait, Statement};
    let (acme, project) = setup(&app).await;
    let agent = echo_agent(&acme.owner, json!({ "steps": 100, "delayMs": 100 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    wait_for(&acme.owner, &job, |job| {
        job["status"] == "RUNNING" && job["progress"].as_i64() > Some(0)
    })
    .await;
    app.stop();
    // The server is gone: read the table directly.
    let db = app.owner_connection().await;
    let backend = db.get_database_backend();
    let mut released = false;
    for _ in 0..100 {
        let row = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT status, worker_id IS NULL FROM agent_jobs",
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get_by_index::<String>(0).unwrap() == "QUEUED" && row.try_get_by_index::<bool>(1).unwrap()
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(released, "the running job went back to the queue");
    let last = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT message FROM agent_job_events ORDER BY seq DESC LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        last.try_get_by_index::<String>(0).unwrap(),
        "released by a stopping worker"
    );
}
