//! The `llm` runner against a fake OpenAI-compatible endpoint on loopback: real HTTP both
//! ways, the organization's own credential, streamed tokens as progress, usage and budget.

use std::sync::{Arc, Mutex};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Request, Response, Route, Server, handler, post};
use serde_json::{Value, json};
use tenantql::runners::Prices;

use crate::backend_tests;
use crate::helpers::{Backend, Client, Org, TestApp};
use crate::jobs::{terminal, wait_for};

const KEY: &str = "sk-test-key";
const STREAMED_TOKENS: usize = 40;

/// What the fake provider was asked, and how many rate-limit answers it has left to give.
#[derive(Default)]
struct Fake {
    requests: Mutex<Vec<(Option<String>, Value)>>,
    refusals_left: Mutex<u32>,
}

#[handler]
async fn completions(req: &Request, Json(body): Json<Value>, Data(fake): Data<&Arc<Fake>>) -> Response {
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    fake.requests
        .lock()
        .unwrap()
        .push((authorization.clone(), body.clone()));
    if authorization.as_deref() != Some(&format!("Bearer {KEY}")) {
        return poem::http::StatusCode::UNAUTHORIZED
            .with_body(r#"{"error":{"message":"Incorrect API key provided"}}"#)
            .into_response();
    }
    let model = body["model"].as_str().unwrap_or_default();
    if model == "overloaded" {
        return poem::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if model == "flaky" {
        let mut left = fake.refusals_left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return poem::http::StatusCode::TOO_MANY_REQUESTS
                .with_header("retry-after", "0")
                .into_response();
        }
    }
    if body["stream"] == true {
        let mut events = String::new();
        for i in 0..STREAMED_TOKENS {
            let chunk = json!({ "choices": [{ "delta": { "content": format!("t{i} ") } }] });
            events.push_str(&format!("data: {chunk}\n\n"));
        }
        let usage =
            json!({ "choices": [], "usage": { "prompt_tokens": 10, "completion_tokens": STREAMED_TOKENS } });
        events.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
        return events.with_content_type("text/event-stream").into_response();
    }
    Json(json!({
        "choices": [{ "message": { "role": "assistant", "content": "Hello from the model" } }],
        "usage": { "prompt_tokens": 7, "completion_tokens": 3 }
    }))
    .into_response()
}

/// The fake provider on a loopback port; its base URL and its record.
async fn fake_provider(refusals: u32) -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        refusals_left: Mutex::new(refusals),
        ..Fake::default()
    });
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let app = Route::new()
        .at("/v1/chat/completions", post(completions))
        .data(fake.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}/v1"), fake)
}

/// Stores the organization's openai credential, sent only to `base_url`.
pub(crate) async fn set_credential(org: &Org, secret: &str, base_url: &str) {
    let set = org
        .owner
        .gql(
            "mutation($s: String!, $u: String) { setProviderCredential(input: { provider: \"openai\", secret: $s, baseUrl: $u }) { id baseUrl } }",
            json!({ "s": secret, "u": base_url }),
        )
        .await;
    assert_eq!(set.data("setProviderCredential")["baseUrl"], base_url);
}

async fn llm_job(client: &Client, project: &str, config: Value, max_attempts: i32) -> String {
    let agent = client
        .gql(
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": { "name": "Writer", "kind": "llm", "config": config, "maxAttempts": max_attempts } }),
        )
        .await;
    let agent = agent.data("createAgent")["id"].as_str().unwrap().to_owned();
    let started = client
        .gql(
            "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p, input: { prompt: \"Write a post\" } }) { id } }",
            json!({ "a": agent, "p": project }),
        )
        .await;
    started.data("startAgentJob")["id"].as_str().unwrap().to_owned()
}

async fn usage(client: &Client) -> Value {
    client
        .gql("{ usage { costCents tokens } }", json!({}))
        .await
        .data("usage")
        .clone()
}

async fn streamed_tokens_become_progress_and_usage(app: TestApp) {
    let (base_url, fake) = fake_provider(0).await;
    let acme = app.org("Acme").await;
    let project = acme.project("Posts").await;
    set_credential(&acme, KEY, &base_url).await;
    let job = llm_job(&acme.owner, &project, json!({ "model": "gpt-test" }), 3).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let expected: String = (0..STREAMED_TOKENS).map(|i| format!("t{i} ")).collect();
    assert_eq!(done["output"]["text"], expected.as_str());
    assert_eq!(
        done["output"]["usage"],
        json!({ "promptTokens": 10, "completionTokens": 40 })
    );
    // 40 tokens, 16 per event: three progress events carrying the text in order.
    let events: Vec<&Value> = done["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| &edge["node"])
        .filter(|event| event["message"].as_str().is_some_and(|m| m.starts_with('t')))
        .collect();
    assert_eq!(events.len(), 3, "{done:#}");
    let streamed: String = events.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(streamed, expected);

    // What the provider saw: the organization's key, the model, the prompt, streaming.
    let requests = fake.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0.as_deref(), Some("Bearer sk-test-key"));
    assert_eq!(requests[0].1["model"], "gpt-test");
    assert_eq!(requests[0].1["stream"], true);
    assert_eq!(
        requests[0].1["messages"],
        json!([{ "role": "user", "content": "Write a post" }])
    );

    // 10 × 300 + 40 × 1,200 millionths of a cent at the default `*` price: 1 cent.
    assert_eq!(usage(&acme.owner).await, json!({ "costCents": 1, "tokens": 50 }));

    // With `draftPost`, the answer becomes a draft post of the job's project, written by
    // the job (and audited as such).
    let config = json!({ "model": "gpt-test", "stream": false, "draftPost": true });
    let job = llm_job(&acme.owner, &project, config, 3).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    let post_id = done["output"]["postId"].as_str().unwrap();
    let post = acme
        .owner
        .gql(
            "query($id: ID!) { post(id: $id) { title body status jobId projectId } }",
            json!({ "id": post_id }),
        )
        .await;
    assert_eq!(
        post.data("post"),
        &json!({ "title": "Hello from the model", "body": "Hello from the model", "status": "DRAFT",
                 "jobId": job, "projectId": project })
    );
    let trail = acme
        .owner
        .gql(
            "{ auditLog(filter: { action: \"saveDraftPost\" }) { edges { node { actorKind actorId } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        trail.data("auditLog")["edges"][0]["node"],
        json!({ "actorKind": "JOB", "actorId": job })
    );
}

async fn rate_limited_answers_are_retried_and_refused_keys_fail_at_once(app: TestApp) {
    let (base_url, fake) = fake_provider(2).await;
    let acme = app.org("Acme").await;
    let project = acme.project("Posts").await;
    set_credential(&acme, KEY, &base_url).await;
    let plain = json!({ "model": "flaky", "stream": false });
    let job = llm_job(&acme.owner, &project, plain, 1).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["output"]["text"], "Hello from the model");
    assert_eq!(fake.requests.lock().unwrap().len(), 3);

    // A wrong key: one request, no retry of the job, and an error that says why.
    set_credential(&acme, "sk-wrong", &base_url).await;
    let refused = json!({ "model": "gpt-test" });
    let job = llm_job(&acme.owner, &project, refused, 3).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["attempts"], 1);
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("refused") && error.contains("401"), "{error}");
    assert!(!error.contains("sk-wrong"), "{error}");

    // A provider that stays down: retried, then failed.
    set_credential(&acme, KEY, &base_url).await;
    let down = json!({ "model": "overloaded", "maxRetries": 2 });
    let job = llm_job(&acme.owner, &project, down, 1).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "FAILED");
    assert!(done["error"].as_str().unwrap().contains("503"), "{done:#}");

    // No credential at all.
    let globex = app.org("Globex").await;
    let theirs = globex.project("Posts").await;
    let job = llm_job(&globex.owner, &theirs, json!({ "model": "gpt-test" }), 3).await;
    let done = wait_for(&globex.owner, &job, terminal).await;
    assert_eq!(done["status"], "FAILED");
    assert!(
        done["error"].as_str().unwrap().contains("no openai credential"),
        "{done:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stops_when_the_budget_runs_out() {
    // 40 cents a token: the second progress event (32 tokens, 1,280 cents) overruns the
    // free plan's 1,000 cents.
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.llm_prices = Prices::parse("pricey=0/40000000,*=0/0").unwrap();
    })
    .await
    .unwrap();
    let (base_url, _fake) = fake_provider(0).await;
    let acme = app.org("Acme").await;
    let project = acme.project("Posts").await;
    set_credential(&acme, KEY, &base_url).await;
    let job = llm_job(&acme.owner, &project, json!({ "model": "pricey" }), 3).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["attempts"], 1);
    assert!(
        done["error"].as_str().unwrap().starts_with("BUDGET_EXCEEDED"),
        "{done:#}"
    );
    assert_eq!(done["output"], Value::Null);
    let spent = usage(&acme.owner).await;
    assert_eq!(spent["costCents"], 1_280);
    assert_eq!(spent["tokens"], 32);
    // And the next job is refused before it is queued.
    let echo = crate::jobs::echo_agent(&acme.owner, json!({ "steps": 1 })).await;
    let again = acme
        .owner
        .gql(
            "mutation($a: ID!, $p: ID!) { startAgentJob(input: { agentId: $a, projectId: $p }) { id } }",
            json!({ "a": echo, "p": project }),
        )
        .await;
    assert_eq!(again.error_code(), "BUDGET_EXCEEDED");
}

backend_tests!(
    streamed_tokens_become_progress_and_usage,
    rate_limited_answers_are_retried_and_refused_keys_fail_at_once,
);
