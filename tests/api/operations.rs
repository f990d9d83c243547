//! Running the server: what `/metrics` exposes (and what it must not), how a SIGTERM drains a
//! replica (probes, websockets, running jobs, buffered traces), and log lines that carry the
//! caller's W3C trace id.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, Server, handler, post};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, Client, TestApp, WsEnd, ws_to};
use crate::jobs::{echo_agent, start_job, terminal, wait_for};

backend_tests!(metrics_are_served_in_prometheus_format);

/// A caller's W3C trace context, as a proxy or another service would send it.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

const PROGRESS: &str = "subscription($job: ID!) { agentJobProgress(jobId: $job) { seq status progress } }";

/// The `(labels, value)` of every sample of the metric `name` (labels without braces; label
/// order is the exporter's choice, so callers look labels up with [`has_labels`]).
fn samples<'a>(body: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(rest) => rest.rsplit_once('}')?,
                // A longer name sharing the prefix is another metric.
                None if rest.starts_with(' ') => ("", rest),
                None => return None,
            };
            Some((labels, value.trim().parse::<f64>().ok()?))
        })
        .collect()
}

/// Whether a sample's labels include every wanted `key="value"` pair.
fn has_labels(labels: &str, wanted: &[(&str, &str)]) -> bool {
    let present: Vec<&str> = labels.split(',').map(str::trim).collect();
    wanted
        .iter()
        .all(|(key, value)| present.contains(&format!("{key}=\"{value}\"").as_str()))
}

/// The largest value among the samples of `name` carrying `wanted`, if any does.
fn value_of(body: &str, name: &str, wanted: &[(&str, &str)]) -> Option<f64> {
    samples(body, name)
        .into_iter()
        .filter(|(labels, _)| has_labels(labels, wanted))
        .map(|(_, value)| value)
        .reduce(f64::max)
}

/// `GET /metrics` on the server at `base_url`: asserts a Prometheus text answer, returns it.
async fn scrape(base_url: &str) -> String {
    let response = crate::helpers::test_client()
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .expect("the metrics scrape");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("the metrics body")
}

/// Every kind of figure shows up after the traffic that makes it, under bounded labels only:
/// no organization or user id, since per-tenant figures would make series unbounded and leak
/// who the customers are.
async fn metrics_are_served_in_prometheus_format(app: TestApp) {
    let acme = app.org("Acme").await;
    let project = acme.project("Launch").await;
    acme.owner.gql("{ me { id } }", json!({})).await.data("me");
    let missing = acme
        .owner
        .gql(
            "query($id: ID!) { project(id: $id) { name } }",
            json!({ "id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(missing.error_code(), "NOT_FOUND");
    let agent = echo_agent(&acme.owner, json!({ "steps": 2, "delayMs": 10 })).await;
    let job = start_job(&acme.owner, &agent, &project, json!({})).await;
    assert_eq!(wait_for(&acme.owner, &job, terminal).await["status"], "SUCCEEDED");

    let body = scrape(&app.base_url).await;
    assert!(
        body.lines()
            .any(|line| line == "# TYPE tenantql_http_request_duration_seconds histogram"),
        "{body}"
    );
    let graphql_ok = [("route", "/graphql"), ("status", "200"), ("le", "+Inf")];
    assert!(
        value_of(
            &body,
            "tenantql_http_request_duration_seconds_bucket",
            &graphql_ok
        ) >= Some(1.0),
        "{body}"
    );

    let operations = "tenantql_graphql_operations_total";
    for wanted in [
        [("type", "query"), ("outcome", "ok")],
        [("type", "mutation"), ("outcome", "ok")],
        [("type", "query"), ("outcome", "error")],
    ] {
        assert!(
            value_of(&body, operations, &wanted) >= Some(1.0),
            "{wanted:?}: {body}"
        );
    }
    assert!(
        value_of(
            &body,
            "tenantql_graphql_operation_duration_seconds_bucket",
            &[("type", "query"), ("le", "+Inf")]
        ) >= Some(1.0),
        "{body}"
    );

    // Queue depth is read at scrape time; the job is done, so only presence is certain.
    for status in ["QUEUED", "RUNNING"] {
        assert!(
            value_of(&body, "tenantql_jobs", &[("status", status)]).is_some(),
            "{status}: {body}"
        );
    }
    assert!(
        value_of(
            &body,
            "tenantql_job_run_duration_seconds_bucket",
            &[("outcome", "succeeded"), ("le", "+Inf")]
        ) >= Some(1.0),
        "{body}"
    );

    for state in ["in_use", "idle"] {
        assert!(
            value_of(&body, "tenantql_db_pool_connections", &[("state", state)]).is_some(),
            "{state}: {body}"
        );
    }
    assert!(
        value_of(&body, "tenantql_db_pool_waiting", &[]).is_some(),
        "{body}"
    );

    for id in [&acme.id, &acme.owner_user_id, &project, &agent, &job] {
        assert!(!body.contains(id.as_str()), "{id} appears in the metrics: {body}");
    }
}

/// A refusal for a rate limit is counted under the limit's name, so operators see which one
/// bites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.rate_limits = config
            .rate_limits
            .clone()
            .with_plan_overrides("FREE=2/100000/10")
            .unwrap();
    })
    .await
    .unwrap();
    let acme = app.org("Acme").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(acme.owner.gql("{ me { id } }", json!({})).await.status);
    }
    assert_eq!(statuses, [200, 200, 429]);

    let body = scrape(&app.base_url).await;
    let refused = value_of(
        &body,
        "tenantql_rate_limited_requests_total",
        &[("limit", "org-requests")],
    );
    assert!(refused >= Some(1.0), "{body}");
}

/// What the fake collector was sent: each OTLP/HTTP export request's protobuf body.
type Exports = Arc<Mutex<Vec<Vec<u8>>>>;

#[handler]
async fn export_traces(body: Vec<u8>, Data(exports): Data<&Exports>) -> Response {
    exports.lock().unwrap().push(body);
    // An empty `ExportTraceServiceResponse`: everything accepted.
    Response::builder()
        .content_type("application/x-protobuf")
        .body(Vec::<u8>::new())
}

/// An OTLP/HTTP trace collector on a loopback port: its base URL (what
/// `OTEL_EXPORTER_OTLP_ENDPOINT` takes) and what it received.
async fn fake_collector() -> (String, Exports) {
    let exports = Exports::default();
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let app = Route::new()
        .at("/v1/traces", post(export_traces))
        .data(exports.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}"), exports)
}

/// The trace id as protobuf carries it: 16 raw bytes.
fn trace_id_bytes() -> Vec<u8> {
    (0..TRACE_ID.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&TRACE_ID[at..at + 2], 16).unwrap())
        .collect()
}

/// The job's status and every stored event, oldest first (events come a page at a time).
async fn job_with_events(client: &Client, job: &str) -> (String, Vec<Value>) {
    let query = "query($id: ID!, $after: String) { agentJob(id: $id) { status
        events(first: 100, after: $after) { edges { node { seq status message } }
        pageInfo { hasNextPage endCursor } } } }";
    let (mut events, mut after) = (Vec::new(), Value::Null);
    loop {
        let response = client.gql(query, json!({ "id": job, "after": after })).await;
        let found = response.data("agentJob");
        let page = &found["events"];
        events.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|edge| edge["node"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return (found["status"].as_str().unwrap().to_owned(), events);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// Drain long enough that probes sent right after the signal land inside it on a busy machine.
const DRAIN_SECONDS: u64 = 2;
/// From the signal to exit, drain included.
const DEADLINE_SECONDS: u64 = 5;

/// Scenarios whose in-process server runs no workers: the replica under test runs the job,
/// and nothing here may pick it up again once it is released.
mod sigterm_drains_closes_sockets_releases_jobs_and_flushes_traces {
    use crate::helpers::{Backend, TestApp};

    async fn api_only(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |config| config.workers = 0).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::sigterm_drains_closes_sockets_releases_jobs_and_flushes_traces(
            api_only(Backend::Sqlite).await.unwrap(),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) = api_only(Backend::Postgres).await {
            super::sigterm_drains_closes_sockets_releases_jobs_and_flushes_traces(app).await;
        }
    }
}

/// The shutdown contract, in order: `/readyz` fails at once while the server keeps serving for
/// the drain; websockets then close with 1012 so clients reconnect elsewhere; the running job
/// goes back to the queue; buffered spans are flushed; and the process exits cleanly within
/// its deadline.
async fn sigterm_drains_closes_sockets_releases_jobs_and_flushes_traces(app: TestApp) {
    let (collector, exports) = fake_collector().await;
    let acme = app.org("Acme").await;
    let project = acme.project("Launch").await;
    let (drain, deadline) = (DRAIN_SECONDS.to_string(), DEADLINE_SECONDS.to_string());
    let mut replica = app
        .spawn_replica_with(
            1,
            &[
                ("SHUTDOWN_DRAIN_SECONDS", drain.as_str()),
                ("SHUTDOWN_DEADLINE_SECONDS", deadline.as_str()),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
                // Spans leave only at the shutdown flush (or a full batch).
                ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
                ("OTEL_SERVICE_NAME", "tenantql-test"),
                // A job the replica abandoned would stay RUNNING this long: longer than the test.
                ("JOB_LEASE_SECONDS", "30"),
            ],
        )
        .await;
    let on_replica = replica.client_like(&acme.owner);

    // A long job running on the replica, followed over a websocket to the replica.
    let agent = echo_agent(&on_replica, json!({ "steps": 200, "delayMs": 100 })).await;
    let job = start_job(&on_replica, &agent, &project, json!({})).await;
    let mut ws = ws_to(&replica.graphql_url(), &acme.owner).await;
    ws.subscribe("p", PROGRESS, json!({ "job": job })).await;
    let first = ws
        .next_message(Duration::from_secs(10))
        .await
        .expect("a progress event");
    assert_eq!(first["type"], "next", "{first}");
    wait_for(&acme.owner, &job, |job| {
        job["status"] == "RUNNING" && job["progress"].as_i64() > Some(0)
    })
    .await;

    // A request that continues the caller's trace, so a span of that trace is buffered.
    on_replica
        .header("traceparent", TRACEPARENT)
        .gql("{ me { id } }", json!({}))
        .await
        .data("me");

    let pid = replica.pid().to_string();
    let signalled = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", pid.as_str()])
        .status()
        .expect("kill runs");
    assert!(sent.success());

    // During the drain: not ready, yet still accepting new connections (a new client opens
    // a fresh one each time).
    let readyz = format!("{}/readyz", replica.base_url);
    let mut ready_status = 0;
    while signalled.elapsed() < Duration::from_millis(DRAIN_SECONDS * 1000 * 3 / 4) {
        ready_status = crate::helpers::test_client()
            .get(readyz.as_str())
            .send()
            .await
            .expect("/readyz is served during the drain")
            .status()
            .as_u16();
        if ready_status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready_status, 503, "/readyz answers 503 once the signal arrived");
    let healthz = crate::helpers::test_client()
        .get(format!("{}/healthz", replica.base_url))
        .send()
        .await
        .expect("new connections are accepted during the drain");
    assert_eq!(healthz.status(), 200);

    // After the drain the websocket closes with 1012 (service restart): progress until then.
    let end = loop {
        match ws.next_message(Duration::from_secs(10)).await {
            Ok(message) => assert_eq!(message["type"], "next", "{message}"),
            Err(end) => break end,
        }
    };
    assert_eq!(end, WsEnd::Closed(Some(1012)));
    assert!(
        signalled.elapsed() < Duration::from_secs(DRAIN_SECONDS + 5),
        "the websocket closed {:?} after the signal",
        signalled.elapsed()
    );

    let exited = replica
        .wait_exit(Duration::from_secs(DEADLINE_SECONDS + 5).saturating_sub(signalled.elapsed()))
        .await
        .expect("the replica exits within its deadline plus 5 s of slack");
    assert!(exited.success(), "{exited}");

    // The job went back to the queue, released rather than abandoned to its lease.
    let (status, events) = job_with_events(&acme.owner, &job).await;
    assert_eq!(status, "QUEUED", "{events:#?}");
    assert_eq!(
        events.last().unwrap()["message"],
        "released by a stopping worker",
        "{events:#?}"
    );

    // The buffered spans were exported on the way out, the caller's trace among them.
    let exports = exports.lock().unwrap().clone();
    assert!(!exports.is_empty(), "the collector received nothing");
    let trace_id = trace_id_bytes();
    assert!(
        exports.iter().any(|body| body
            .windows(trace_id.len())
            .any(|window| window == trace_id.as_slice())),
        "no exported span belongs to trace {TRACE_ID}"
    );
    // Database statements are spans of their own (sea-orm's, named for the call).
    let contains = |name: &[u8]| {
        exports
            .iter()
            .any(|body| body.windows(name.len()).any(|window| window == name))
    };
    assert!(
        contains(b"query_one") || contains(b"query_all"),
        "no database statement span was exported"
    );
}

/// The first string value of a field named `key` anywhere in `value` (JSON log lines nest the
/// current span's fields under `span`).
fn find_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|inner| find_field(inner, key))),
        Value::Array(items) => items.iter().find_map(|inner| find_field(inner, key)),
        _ => None,
    }
}

/// With JSON logs, a request's log lines carry the caller's trace id (even with no trace
/// exporter configured), so logs and traces of one request can be joined; a request without
/// a `traceparent` carries none of another caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_the_callers_trace_id() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let acme = app.org("Acme").await;
    let log = std::env::temp_dir().join(format!("tenantql-log-{}.jsonl", uuid::Uuid::new_v4()));
    let replica = app
        .spawn_replica_logging_to(0, &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")], &log)
        .await;
    let on_replica = replica.client_like(&acme.owner);
    // Request ids of our choosing tell the two requests' lines apart.
    let traced = format!("traced-{}", uuid::Uuid::new_v4().simple());
    let untraced = format!("untraced-{}", uuid::Uuid::new_v4().simple());
    on_replica
        .header("traceparent", TRACEPARENT)
        .header("x-request-id", &traced)
        .gql("{ me { id } }", json!({}))
        .await
        .data("me");
    on_replica
        .header("x-request-id", &untraced)
        .gql("{ me { id } }", json!({}))
        .await
        .data("me");
    // The line is written before the response is sent; stop the process and read its log.
    drop(replica);
    let text = std::fs::read_to_string(&log).expect("the replica's log");
    let _ = std::fs::remove_file(&log);

    let finished: Vec<Value> = text
        .lines()
        .filter(|line| line.contains("request finished"))
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not a JSON line: {line}")))
        .collect();
    let line_of = |request_id: &str| {
        finished
            .iter()
            .find(|line| find_field(line, "request_id") == Some(request_id))
            .unwrap_or_else(|| panic!("no `request finished` line for {request_id} in:\n{text}"))
    };
    let traced_line = line_of(traced.as_str());
    assert_eq!(
        find_field(traced_line, "trace_id"),
        Some(TRACE_ID),
        "{traced_line}"
    );
    let untraced_line = line_of(untraced.as_str());
    assert_ne!(
        find_field(untraced_line, "trace_id"),
        Some(TRACE_ID),
        "{untraced_line}"
    );
}
