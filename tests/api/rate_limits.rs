//! Rate limits: per organization by plan and by cost, per API key, per client address on
//! sign-in, per organization on job starts. Refusals are `RATE_LIMITED` with a wait.

use serde_json::json;

use crate::helpers::{Backend, Client, GqlResponse, TestApp};

async fn app_with_plan(free: &str) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |config| {
        config.rate_limits = config.rate_limits.clone().with_plan_overrides(free).unwrap();
    })
    .await
    .unwrap()
}

/// The response and its headers.
async fn send(client: &Client, query: &str) -> (GqlResponse, reqwest::header::HeaderMap) {
    let response = client.post_json(&json!({ "query": query })).await;
    let headers = response.headers.clone();
    (response, headers)
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> u64 {
    headers[name].to_str().unwrap().parse().unwrap()
}

fn assert_rate_limited(response: &GqlResponse, headers: &reqwest::header::HeaderMap) {
    assert_eq!(response.status, 429, "{:#}", response.body);
    assert_eq!(response.error_code(), "RATE_LIMITED");
    let wait = response.body["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap();
    assert!(wait >= 1);
    assert_eq!(header(headers, "retry-after"), wait);
    assert_eq!(header(headers, "ratelimit-remaining"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_ends_in_rate_limited_for_that_organization_only() {
    let app = app_with_plan("FREE=4/100000/10").await;
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let mut remaining = Vec::new();
    for _ in 0..4 {
        let (response, headers) = send(&acme.owner, "{ me { id } }").await;
        assert_eq!(response.status, 200, "{:#}", response.body);
        let cost = &response.body["extensions"]["cost"];
        assert_eq!(cost["requestedQueryCost"], 2);
        assert_eq!(
            cost["remaining"].as_u64(),
            Some(header(&headers, "ratelimit-remaining"))
        );
        remaining.push(header(&headers, "ratelimit-remaining"));
    }
    assert!(
        remaining.windows(2).all(|pair| pair[1] < pair[0]),
        "{remaining:?}"
    );
    let (refused, headers) = send(&acme.owner, "{ me { id } }").await;
    assert_rate_limited(&refused, &headers);
    assert!(refused.body.get("data").is_none() || refused.body["data"].is_null());

    let (other, _) = send(&globex.owner, "{ me { id } }").await;
    assert_eq!(other.status, 200, "{:#}", other.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_are_charged_by_their_cost() {
    // Plenty of requests, but 100 complexity units a minute.
    let app = app_with_plan("FREE=1000/100/10").await;
    let acme = app.org("Acme").await;
    // 1 + 10 × (edges + node + id + name) = 41 units.
    let page = "{ projects(first: 10) { edges { node { id name } } } }";
    let (first, _) = send(&acme.owner, page).await;
    assert_eq!(first.body["extensions"]["cost"]["requestedQueryCost"], 41);
    let (second, _) = send(&acme.owner, page).await;
    assert_eq!(second.status, 200);
    let (third, headers) = send(&acme.owner, page).await;
    assert_rate_limited(&third, &headers);
    // A cheap query still fits in what is left.
    let (cheap, _) = send(&acme.owner, "{ me { id } }").await;
    assert_eq!(cheap.status, 200, "{:#}", cheap.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_has_its_own_limit_within_its_organization() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.rate_limits.api_key_requests_per_minute = 2;
    })
    .await
    .unwrap();
    let acme = app.org("Acme").await;
    let bot = acme.api_key(&app, "MEMBER", None).await;
    let query = "{ projects { edges { cursor } } }";
    for _ in 0..2 {
        assert_eq!(send(&bot, query).await.0.status, 200);
    }
    let (refused, headers) = send(&bot, query).await;
    assert_rate_limited(&refused, &headers);
    // The organization's people are not held back by one busy bot.
    assert_eq!(send(&acme.owner, query).await.0.status, 200);
}

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { accessToken } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_guessing_address_is_stopped_and_others_are_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.rate_limits.auth_attempts_per_minute = 5;
    })
    .await
    .unwrap();
    app.signup("victim@example.com", "Victim Co").await;
    let attacker = app.anonymous().header("x-forwarded-for", "198.51.100.9");
    let guess = |password: &str| json!({ "input": { "email": "victim@example.com", "password": password } });
    for attempt in 0..5 {
        let wrong = attacker
            .gql(LOGIN, guess(&format!("Guess-{attempt}-horse")))
            .await;
        assert_eq!(wrong.error_code(), "UNAUTHENTICATED");
    }
    // Even the right password is refused now, from that address.
    let stopped = attacker.gql(LOGIN, guess(crate::helpers::PASSWORD)).await;
    assert_eq!(stopped.status, 429);
    assert_eq!(stopped.error_code(), "RATE_LIMITED");

    let victim = app.anonymous().header("x-forwarded-for", "192.0.2.44");
    let ok = victim.gql(LOGIN, guess(crate::helpers::PASSWORD)).await;
    assert!(ok.data("login")["accessToken"].is_string());
}

async fn job_starts_are_limited_per_organization_and_nothing_is_queued_beyond(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Jobs").await;
    let agent = acme
        .owner
        .gql(
            "mutation { createAgent(input: { name: \"Echo\", kind: \"echo\", config: { steps: 1 } }) { id } }",
            json!({}),
        )
        .await;
    let agent = agent.data("createAgent")["id"].as_str().unwrap().to_owned();
    let start = "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id } }";
    let vars = json!({ "a": agent, "p": project });
    for _ in 0..2 {
        assert!(acme.owner.gql(start, vars.clone()).await.data("startAgentJob")["id"].is_string());
    }
    let refused = acme.owner.gql(start, vars.clone()).await;
    assert_eq!(refused.error_code(), "RATE_LIMITED");
    let jobs = acme
        .owner
        .gql(
            "query($p: ID!) { agentJobs(projectId: $p) { edges { cursor } } }",
            json!({ "p": project }),
        )
        .await;
    assert_eq!(jobs.data("agentJobs")["edges"].as_array().unwrap().len(), 2);
}

mod job_starts {
    use crate::helpers::{Backend, TestApp};

    async fn app(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |config| {
            config.rate_limits = config
                .rate_limits
                .clone()
                .with_plan_overrides("FREE=1000/100000/2")
                .unwrap();
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::job_starts_are_limited_per_organization_and_nothing_is_queued_beyond(
            app(Backend::Sqlite).await.unwrap(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = app(Backend::Postgres).await {
            super::job_starts_are_limited_per_organization_and_nothing_is_queued_beyond(app).await;
        }
    }
}

/// Redis for the shared tier, if it answers (CI starts it; elsewhere the test is skipped).
pub fn redis_url() -> Option<&'static str> {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().unwrap(),
        std::time::Duration::from_secs(1),
    )
    .is_ok();
    assert!(up || std::env::var("CI").is_err(), "Redis is required in CI");
    up.then_some("redis://127.0.0.1:6379")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_allowance_through_redis_and_limit_alone_without_it() {
    let Some(redis) = redis_url() else { return };
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let acme = app.org("Acme").await;
    let four_a_minute = [("REDIS_URL", redis), ("PLAN_LIMITS", "FREE=4/100000/10")];
    let a = app.spawn_replica_with(0, &four_a_minute).await;
    let b = app.spawn_replica_with(0, &four_a_minute).await;
    let (on_a, on_b) = (a.client_like(&acme.owner), b.client_like(&acme.owner));
    for client in [&on_a, &on_b, &on_a, &on_b] {
        let (response, _) = send(client, "{ me { id } }").await;
        assert_eq!(response.status, 200, "{:#}", response.body);
    }
    // Each replica alone would still allow two more; together the four are spent.
    let (refused, headers) = send(&on_a, "{ me { id } }").await;
    assert_rate_limited(&refused, &headers);
    let (refused, headers) = send(&on_b, "{ me { id } }").await;
    assert_rate_limited(&refused, &headers);

    // With Redis unreachable each replica limits on its own, and still answers.
    let globex = app.org("Globex").await;
    let nowhere = [
        ("REDIS_URL", "redis://127.0.0.1:9"),
        ("PLAN_LIMITS", "FREE=2/100000/10"),
    ];
    let alone = app.spawn_replica_with(0, &nowhere).await;
    let on_alone = alone.client_like(&globex.owner);
    for _ in 0..2 {
        assert_eq!(send(&on_alone, "{ me { id } }").await.0.status, 200);
    }
    let (refused, headers) = send(&on_alone, "{ me { id } }").await;
    assert_rate_limited(&refused, &headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_operations_draw_on_the_same_allowance() {
    let app = app_with_plan("FREE=3/100000/10").await;
    let acme = app.org("Acme").await;
    let (first, _) = send(&acme.owner, "{ me { id } }").await;
    assert_eq!(first.status, 200);
    let mut ws = app.ws(&acme.owner).await;
    for id in ["a", "b"] {
        ws.subscribe(id, "{ me { id } }", json!({})).await;
        let answer = ws.receive().await.unwrap();
        assert_eq!(answer["type"], "next", "{answer}");
        assert_eq!(ws.receive().await.unwrap()["type"], "complete");
    }
    ws.subscribe("c", "{ me { id } }", json!({})).await;
    let refused = ws.receive().await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(
        refused["payload"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            >= 1
    );
}
