//! The egress gate, end to end with loopback only: a provider endpoint on loopback is refused
//! before any connection unless allow-listed; redirects are not followed; no remote body
//! reaches a job's error or output; oversize answers are cut off; and a shared agent sends
//! the running organization's credential only to that credential's endpoint.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tenantql::integrations::oauth::ProviderConfig;

use crate::configured_backend_tests;
use crate::helpers::{Backend, Client, Org, TestApp};
use crate::jobs::{start_job, terminal, wait_for};
use crate::llm::set_credential;

const MARKER: &str = "MARKER-7f3a-remote-body";
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What a fake provider was sent.
#[derive(Debug, Clone)]
struct Recorded {
    authorization: Option<String>,
    body: Value,
}

/// A provider on a loopback port, speaking just enough HTTP/1.1 to count every connection
/// it accepts, even one that never sends a request.
struct Fake {
    addr: SocketAddr,
    connections: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
    /// Where the `redirect` model sends the client.
    redirect_to: Mutex<Option<String>>,
}

impl Fake {
    async fn start() -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Arc::new(Fake {
            addr: listener.local_addr().unwrap(),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            redirect_to: Mutex::new(None),
        });
        let serving = fake.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                serving.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        fake
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    async fn serve(self: Arc<Self>, mut stream: TcpStream) {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
                break at + 4;
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim().to_owned())
        };
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while received.len() < head_end + length {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
        let body: Value =
            serde_json::from_slice(&received[head_end..head_end + length]).unwrap_or(Value::Null);
        self.requests.lock().unwrap().push(Recorded {
            authorization: header("authorization"),
            body: body.clone(),
        });
        if body["model"] == "silent" {
            // Never answers; the gate's time limit must end the call.
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
        let answer = self.answer(&body);
        // The client may hang up mid-answer (an oversize one): that is the point.
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    }

    fn answer(&self, body: &Value) -> Vec<u8> {
        let respond = |status: &str, content_type: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        };
        match body["model"].as_str().unwrap_or_default() {
            "redirect" => {
                let to = self.redirect_to.lock().unwrap().clone().unwrap();
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .into_bytes()
            }
            "marker-error" => respond(
                "400 Bad Request",
                "application/json",
                &json!({ "error": { "message": MARKER } }).to_string(),
            ),
            "marker-text" => respond("200 OK", "text/plain", MARKER),
            // An endless-looking stream: no length, more than the gate lets through.
            "huge" => {
                let chunk = json!({ "choices": [{ "delta": { "content": "x" } }] });
                let mut answer =
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                        .to_vec();
                while answer.len() < 4 * MAX_RESPONSE_BYTES {
                    answer.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
                }
                answer
            }
            // Announced as larger than the limit.
            "huge-announced" => respond(
                "200 OK",
                "application/json",
                &format!("{{\"pad\":\"{}\"}}", "x".repeat(2 * MAX_RESPONSE_BYTES)),
            ),
            _ => respond(
                "200 OK",
                "application/json",
                &json!({
                    "choices": [{ "message": { "role": "assistant", "content": "Hello from the model" } }],
                    "usage": { "prompt_tokens": 7, "completion_tokens": 3 }
                })
                .to_string(),
            ),
        }
    }
}

const SET: &str = "mutation($p: String!, $s: String!, $u: String) {
    setProviderCredential(input: { provider: $p, secret: $s, baseUrl: $u }) { id provider baseUrl ownEndpoint lastFour } }";

async fn llm_agent(client: &Client, config: Value) -> String {
    let created = client
        .gql(
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": { "name": "Writer", "kind": "llm", "config": config, "maxAttempts": 3 } }),
        )
        .await;
    created.data("createAgent")["id"].as_str().unwrap().to_owned()
}

/// Runs a fresh `llm` agent with `model` to its end.
async fn run(org: &Org, project: &str, config: Value) -> Value {
    let agent = llm_agent(&org.owner, config).await;
    let job = start_job(&org.owner, &agent, project, json!({ "prompt": "Write" })).await;
    wait_for(&org.owner, &job, terminal).await
}

/// Loopback is not allow-listed: whether the endpoint names the address or a name that
/// resolves to it, the job fails at once with the gate's reason, and the fake provider
/// never sees a connection.
async fn loopback_is_refused_before_any_connection(app: TestApp) {
    let fake = Fake::start().await;
    let acme = app.org("Acme").await;
    let project = acme.project("Posts").await;
    let port = fake.addr.port();
    for (base_url, host) in [
        (fake.base_url(), "127.0.0.1".to_owned()),
        (format!("http://localhost:{port}/v1"), "localhost".to_owned()),
        (
            format!("http://[::ffff:7f00:1]:{port}/v1"),
            "[::ffff:7f00:1]".to_owned(),
        ),
    ] {
        set_credential(&acme, "sk-acme", &base_url).await;
        let done = run(&acme, &project, json!({ "model": "gpt-test", "stream": false })).await;
        assert_eq!(done["status"], "FAILED", "{done:#}");
        assert_eq!(done["attempts"], 1, "refusals are not retried: {done:#}");
        assert_eq!(
            done["error"],
            format!("the address of {host} is not allowed"),
            "{done:#}"
        );
    }
    assert_eq!(fake.connections(), 0);
}

/// Loopback allow-listed (the harness's default): the provider is reached; what it answers
/// besides a completion never reaches the job.
async fn allowed_calls_follow_no_redirect_and_keep_no_remote_text(app: TestApp) {
    let fake = Fake::start().await;
    let target = Fake::start().await;
    *fake.redirect_to.lock().unwrap() = Some(format!("{}/chat/completions", target.base_url()));
    let acme = app.org("Acme").await;
    let project = acme.project("Posts").await;
    set_credential(&acme, "sk-acme", &fake.base_url()).await;

    let done = run(&acme, &project, json!({ "model": "gpt-test", "stream": false })).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    assert_eq!(done["output"]["text"], "Hello from the model");
    assert_eq!(
        fake.requests()[0].authorization.as_deref(),
        Some("Bearer sk-acme")
    );

    // A redirect is an answer, not an instruction: its target sees nothing.
    let done = run(&acme, &project, json!({ "model": "redirect", "stream": false })).await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert_eq!(done["error"], "the provider refused the request (307)");
    assert_eq!(target.connections(), 0);

    // The provider's words stay out of the job, refused or answered.
    let done = run(
        &acme,
        &project,
        json!({ "model": "marker-error", "stream": false }),
    )
    .await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert_eq!(done["error"], "the provider refused the request (400)");
    assert!(!done.to_string().contains(MARKER), "{done:#}");
    let done = run(
        &acme,
        &project,
        json!({ "model": "marker-text", "stream": false }),
    )
    .await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert_eq!(done["error"], "the answer is not valid JSON");
    assert!(!done.to_string().contains(MARKER), "{done:#}");

    // Oversize answers are cut off, streamed or announced.
    let done = run(&acme, &project, json!({ "model": "huge", "stream": true })).await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert_eq!(
        done["error"],
        format!("the answer exceeded {MAX_RESPONSE_BYTES} bytes")
    );
    assert_eq!(done["attempts"], 1);
    let done = run(
        &acme,
        &project,
        json!({ "model": "huge-announced", "stream": false }),
    )
    .await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert_eq!(
        done["error"],
        format!("the answer exceeded {MAX_RESPONSE_BYTES} bytes")
    );

    // And slow ones are given up on, within the gate's limit and the agent's.
    let silent = json!({ "name": "Slow", "kind": "llm", "maxAttempts": 1,
        "config": { "model": "silent", "stream": false, "timeoutMs": 300, "maxRetries": 0 } });
    let agent = acme
        .owner
        .gql(
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({ "input": silent }),
        )
        .await;
    let agent = agent.data("createAgent")["id"].as_str().unwrap().to_owned();
    let job = start_job(&acme.owner, &agent, &project, json!({ "prompt": "Write" })).await;
    let done = wait_for(&acme.owner, &job, terminal).await;
    assert_eq!(done["status"], "FAILED", "{done:#}");
    assert_eq!(
        done["error"], "the provider failed: no answer within the time limit",
        "{done:#}"
    );
    assert_eq!(fake.requests().len(), 7);
}

/// The author of a shared agent cannot choose where a runner's credential goes: the agent
/// names no address, and each organization's credential goes to its own endpoint.
async fn a_shared_agent_sends_the_runners_credential_only_to_its_endpoint(app: TestApp) {
    let authors = Fake::start().await;
    let runners = Fake::start().await;
    let acme = app.org("Acme").await;
    let globex = app.org("Globex").await;
    let theirs = globex.project("Posts").await;
    set_credential(&acme, "sk-acme", &authors.base_url()).await;
    set_credential(&globex, "sk-globex", &runners.base_url()).await;

    let create = "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }";
    let with_url = acme
        .owner
        .gql(
            create,
            json!({ "input": { "name": "Writer", "kind": "llm",
                    "config": { "model": "gpt-test", "baseUrl": authors.base_url() } } }),
        )
        .await;
    assert_eq!(with_url.error_code(), "BAD_USER_INPUT");
    assert_eq!(with_url.error_field(), Some("config"));
    let message = with_url.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("credential"), "{message}");

    let agent = llm_agent(&acme.owner, json!({ "model": "gpt-test", "stream": false })).await;
    crate::agents::share_and_accept(&acme.owner, &agent, &globex).await;
    let job = start_job(&globex.owner, &agent, &theirs, json!({ "prompt": "Write" })).await;
    let done = wait_for(&globex.owner, &job, terminal).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done:#}");
    let seen = runners.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-globex"));
    assert_eq!(seen[0].body["model"], "gpt-test");
    assert_eq!(authors.connections(), 0);

    // The author's own runs go to the author's endpoint, with the author's key.
    let project = acme.project("Posts").await;
    let job = start_job(&acme.owner, &agent, &project, json!({ "prompt": "Write" })).await;
    assert_eq!(wait_for(&acme.owner, &job, terminal).await["status"], "SUCCEEDED");
    assert_eq!(
        authors.requests()[0].authorization.as_deref(),
        Some("Bearer sk-acme")
    );
    assert_eq!(runners.requests().len(), 1);
}

/// A credential's endpoint: its own, or the server's for a provider it lists; a provider
/// with neither is refused.
async fn credentials_carry_their_endpoint(app: TestApp) {
    let acme = app.org("Acme").await;
    let known = acme
        .owner
        .gql(SET, json!({ "p": "openai", "s": "sk-1234", "u": null }))
        .await;
    let known = known.data("setProviderCredential");
    assert_eq!(known["baseUrl"], "https://api.openai.com/v1");
    assert_eq!(known["ownEndpoint"], false);
    let own = acme
        .owner
        .gql(
            SET,
            json!({ "p": "local", "s": "sk-5678", "u": "https://models.example.com/v1/" }),
        )
        .await;
    let own = own.data("setProviderCredential");
    assert_eq!(own["baseUrl"], "https://models.example.com/v1");
    assert_eq!(own["ownEndpoint"], true);
    let unknown = acme
        .owner
        .gql(SET, json!({ "p": "local", "s": "sk-5678", "u": null }))
        .await;
    assert_eq!(unknown.error_code(), "BAD_USER_INPUT");
    assert_eq!(unknown.error_field(), Some("baseUrl"));
    for bad in [
        "ftp://models.example.com",
        "not a url",
        "https://user:pw@models.example.com/v1",
        "https://models.example.com/v1?key=1",
    ] {
        let refused = acme
            .owner
            .gql(SET, json!({ "p": "local", "s": "sk-5678", "u": bad }))
            .await;
        assert_eq!(refused.error_code(), "BAD_USER_INPUT", "{bad}");
        assert_eq!(refused.error_field(), Some("baseUrl"), "{bad}");
    }
    let listed = acme
        .owner
        .gql("{ providerCredentials { provider baseUrl lastFour } }", json!({}))
        .await;
    assert_eq!(
        listed.data("providerCredentials"),
        &json!([
            { "provider": "openai", "baseUrl": "https://api.openai.com/v1", "lastFour": "1234" },
            { "provider": "local", "baseUrl": "https://models.example.com/v1", "lastFour": "5678" },
        ])
    );
    assert!(!listed.body.to_string().contains("sk-"));
}

/// OAuth's token requests pass the same gate: with loopback not allow-listed, the code
/// exchange with a provider on loopback fails and its token endpoint sees no connection.
async fn oauth_token_requests_pass_the_gate(app: TestApp, token_endpoint: Arc<Fake>) {
    let acme = app.org("Acme").await;
    let flow = crate::oauth::start(&acme.owner).await;
    let state = crate::oauth::param(&flow, "state");
    let (status, page) =
        crate::oauth::callback(&app, Some(&flow), &[("code", "c0de"), ("state", &state)]).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("did not accept"), "{page}");
    assert_eq!(token_endpoint.connections(), 0);
}

mod oauth_token_requests_pass_the_gate {
    use super::*;

    async fn app(backend: Backend) -> Option<(TestApp, Arc<Fake>)> {
        let fake = Fake::start().await;
        let provider = ProviderConfig {
            name: "fakebook".into(),
            authorize_url: format!("http://{}/authorize", fake.addr),
            token_url: format!("http://{}/token", fake.addr),
            api_url: Some(format!("http://{}", fake.addr)),
            client_id: "client-1".into(),
            client_secret: Some("shh".into()),
            scopes: vec![],
        };
        let app = TestApp::spawn_with(backend, |config| {
            config.oauth_providers = vec![provider];
            config.egress.policy.allow = Default::default();
        })
        .await?;
        Some((app, fake))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let (app, fake) = app(Backend::Sqlite).await.unwrap();
        super::oauth_token_requests_pass_the_gate(app, fake).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some((app, fake)) = app(Backend::Postgres).await {
            super::oauth_token_requests_pass_the_gate(app, fake).await;
        }
    }
}

configured_backend_tests!(
    loopback_is_refused_before_any_connection => |config| {
        config.egress.policy.allow = Default::default();
    },
    allowed_calls_follow_no_redirect_and_keep_no_remote_text => |config| {
        config.egress.max_response_bytes = super::MAX_RESPONSE_BYTES;
    },
    a_shared_agent_sends_the_runners_credential_only_to_its_endpoint => |_| {},
    credentials_carry_their_endpoint => |_| {},
);
