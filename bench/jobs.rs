//! Agent job benchmarks.
//!
//! Throughput: jobs started over HTTP and run by the server's workers with the `echo` runner
//! (one step, no delay), timed until the last SUCCEEDED event reaches a websocket subscriber.
//! Fan-out: N idle `projectJobEvents` subscribers on one project of a separate server process
//! (RSS per subscription measured on it), then a burst of jobs: delivery latency from each
//! event's write (`at`) to its receipt by each subscriber.
//! Cross-replica: a subscriber on an API-only server process, jobs run by a separate worker
//! process at ~100 events/s: delivery latency of the relayed events.
//! Shutdown: SIGTERM to a server process with 1,000 open subscriptions and a running job:
//! time to exit against its deadline, and the sockets closed with 1012.
//! Floor: the fan-out run against a bare websocket server that renders each event once and
//! writes it to every socket: the least any server that writes each event to each
//! subscriber's socket pays on this machine, to compare with the fan-out figures.
//!
//!     cargo bench --bench jobs                                   # PostgreSQL and SQLite
//!     cargo bench --bench jobs -- --jobs 5000 --subscribers 1000,10000 --burst 20
//!     cargo bench --bench jobs -- --parts fanout --subscribers 10000 --job-interval-ms 250
//!     cargo bench --bench jobs -- --parts fanout,floor --subscribers 10000 --burst 1
//!     cargo bench --bench jobs -- --parts throughput --backend postgres --workers 32
//!     cargo test --bench jobs -- --smoke                         # tiny run for CI

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark that cannot set up should stop loudly"
)]

mod args;
#[path = "../tests/api/helpers/mod.rs"]
#[expect(
    dead_code,
    unused_imports,
    reason = "the benchmark uses only part of the test harness"
)]
mod helpers;

use std::time::{Duration, Instant};

use args::Args;
use futures_util::{SinkExt, StreamExt};
use helpers::{Backend, Client, TestApp};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

struct Options {
    jobs: usize,
    workers: usize,
    subscribers: Vec<usize>,
    burst: usize,
    /// Time between the starts of the fan-out burst's jobs; 0 starts them back to back.
    job_interval: Duration,
    replica_jobs: usize,
    shutdown_subscribers: usize,
    backends: Vec<Backend>,
    /// Which of throughput, replicas, fanout, shutdown and floor to run.
    parts: Vec<String>,
}

impl Options {
    fn from_args() -> Self {
        let args = Args::from_env();
        Self {
            jobs: args.get("--jobs", 3_000, 20),
            workers: args.get("--workers", 16, 4),
            subscribers: args.list("--subscribers", vec![1_000, 10_000], vec![10]),
            burst: args.get("--burst", 20, 2),
            job_interval: Duration::from_millis(args.get("--job-interval-ms", 0, 0)),
            replica_jobs: args.get("--replica-jobs", 300, 5),
            shutdown_subscribers: args.get("--shutdown-subscribers", 1_000, 10),
            parts: args.list(
                "--parts",
                vec![
                    "throughput".into(),
                    "replicas".into(),
                    "fanout".into(),
                    "shutdown".into(),
                    "floor".into(),
                ],
                vec![
                    "throughput".into(),
                    "replicas".into(),
                    "fanout".into(),
                    "shutdown".into(),
                    "floor".into(),
                ],
            ),
            backends: match args.value("--backend") {
                Some("sqlite") => vec![Backend::Sqlite],
                Some("postgres") => vec![Backend::Postgres],
                _ => vec![Backend::Postgres, Backend::Sqlite],
            },
        }
    }
}

const START: &str = "mutation($input: StartAgentJobInput!) { startAgentJob(input: $input) { id } }";

async fn echo_agent(owner: &Client) -> String {
    let created = owner
        .gql(
            "mutation { createAgent(input: { name: \"Bench\", kind: \"echo\", config: { steps: 1 } }) { id } }",
            json!({}),
        )
        .await;
    created.data("createAgent")["id"].as_str().unwrap().to_owned()
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `projectJobEvents` subscriber, acknowledged and subscribed.
async fn subscriber(graphql_url: &str, owner: &Client, project: &str) -> Socket {
    subscribe(graphql_url, owner.init_payload(), project).await
}

/// `count` subscribers, connected 200 at a time.
async fn subscribers_of(count: usize, graphql_url: &str, init_payload: Value, project: &str) -> Vec<Socket> {
    let mut sockets = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(200) {
        let opened = chunk
            .iter()
            .map(|_| subscribe(graphql_url, init_payload.clone(), project));
        sockets.extend(futures_util::future::join_all(opened).await);
    }
    sockets
}

async fn subscribe(graphql_url: &str, init_payload: Value, project: &str) -> Socket {
    let mut request = graphql_url
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    // tungstenite zero-fills its whole read buffer before every read: at the default 128 KiB
    // the load client, not the server, would set the pace.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .unwrap();
    let init = json!({ "type": "connection_init", "payload": init_payload });
    socket.send(Message::Text(init.to_string().into())).await.unwrap();
    // A load client that waits forever hides the failure it waits on.
    let acked = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.to_text().unwrap_or_default().contains("connection_ack") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(acked == Ok(true), "no connection_ack within 30 s: {acked:?}");
    let subscribe = json!({ "id": "feed", "type": "subscribe", "payload": {
        "query": "subscription($p: ID!) { projectJobEvents(projectId: $p) { jobId seq status at } }",
        "variables": { "p": project } } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    socket
}

/// `error` or `complete`: the subscription is over.
fn ends_operation(message: &Message) -> bool {
    let Some(value) = message
        .to_text()
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
    else {
        return matches!(message, Message::Close(_));
    };
    matches!(value["type"].as_str(), Some("error" | "complete"))
}

fn event_of(message: &Message) -> Option<Value> {
    let value: Value = serde_json::from_str(message.to_text().ok()?).ok()?;
    (value["type"] == "next").then(|| value["payload"]["data"]["projectJobEvents"].clone())
}

async fn throughput(backend: Backend, options: &Options) {
    let workers = options.workers;
    let app = TestApp::spawn_with(backend, |config| {
        config.workers = workers;
        config.db_max_connections = 16;
    })
    .await
    .expect("the benchmark needs PostgreSQL (TEST_POSTGRES_URL)");
    let org = app.org("Bench").await;
    let project = org.project("Throughput").await;
    let agent = echo_agent(&org.owner).await;
    let mut feed = subscriber(&app.graphql_url(), &org.owner, &project).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let jobs = options.jobs;
    let starters: Vec<_> = (0..16)
        .map(|worker| {
            let (owner, agent, project) = (org.owner.clone(), agent.clone(), project.clone());
            tokio::spawn(async move {
                for _ in (worker..jobs).step_by(16) {
                    let input = json!({ "input": { "agentId": agent, "projectId": project, "input": {} } });
                    owner.gql(START, input).await.data("startAgentJob");
                }
            })
        })
        .collect();
    // When the last start returned: separates the HTTP side from the workers.
    let starts_done = tokio::spawn(async move {
        for starter in starters {
            starter.await.unwrap();
        }
        started.elapsed()
    });
    let mut succeeded = 0;
    while succeeded < jobs {
        let message = tokio::time::timeout(Duration::from_secs(60), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event_of(&message).is_some_and(|event| event["status"] == "SUCCEEDED") {
            succeeded += 1;
        }
    }
    let elapsed = started.elapsed();
    let starting = starts_done.await.unwrap();
    println!(
        "{backend:?}: {jobs} echo jobs started over HTTP and finished by {workers} workers in {:.2} s: {:.0} jobs/s (the starts took {:.2} s)",
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64(),
        starting.as_secs_f64()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A server process on the harness's fresh PostgreSQL database, signed up and ready: its
/// owner, a project and an echo agent.
struct ServerProcess {
    replica: helpers::Replica,
    owner: Client,
    project: String,
    agent: String,
}

async fn server_process(app: &TestApp, workers: usize) -> ServerProcess {
    server_process_with(app, workers, &[]).await
}

async fn server_process_with(app: &TestApp, workers: usize, env: &[(&str, &str)]) -> ServerProcess {
    let replica = app.spawn_replica_with(workers, env).await;
    let anonymous = Client {
        url: replica.graphql_url(),
        http: helpers::test_client(),
        headers: Default::default(),
    };
    let email = format!("{}@bench.example.com", uuid::Uuid::now_v7().simple());
    let signed_up = anonymous
        .gql(
            "mutation($email: String!) { signup(input: { email: $email, password: \"Correct-horse-42\", displayName: \"Bench\", organizationName: \"Bench\" }) { accessToken } }",
            json!({ "email": email }),
        )
        .await;
    let owner = anonymous.bearer(signed_up.data("signup")["accessToken"].as_str().unwrap());
    let project = owner
        .gql(
            "mutation { createProject(input: { name: \"Bench\" }) { id } }",
            json!({}),
        )
        .await;
    let project = project.data("createProject")["id"].as_str().unwrap().to_owned();
    let agent = echo_agent(&owner).await;
    ServerProcess {
        replica,
        owner,
        project,
        agent,
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * p) as usize)
        .copied()
        .unwrap_or(0) as f64
        / 1000.0
}

fn latency_us(event: &Value) -> u64 {
    let at: chrono::DateTime<chrono::Utc> = event["at"].as_str().unwrap().parse().unwrap();
    (chrono::Utc::now() - at).num_microseconds().unwrap_or(0).max(0) as u64
}

/// SIGTERM to a server process holding N open subscriptions and a running job: how long until
/// it exits (drain included), and whether every socket was closed with 1012.
async fn shutdown(subscribers: usize) {
    const DRAIN_SECONDS: u64 = 1;
    const DEADLINE_SECONDS: u64 = 25;
    let app = TestApp::spawn_with(Backend::Postgres, |config| config.workers = 0)
        .await
        .expect("PostgreSQL");
    let (drain, deadline) = (DRAIN_SECONDS.to_string(), DEADLINE_SECONDS.to_string());
    let env = [
        ("SHUTDOWN_DRAIN_SECONDS", drain.as_str()),
        ("SHUTDOWN_DEADLINE_SECONDS", deadline.as_str()),
    ];
    let mut server = server_process_with(&app, 1, &env).await;
    let graphql_url = server.replica.graphql_url();
    let sockets = subscribers_of(
        subscribers,
        &graphql_url,
        server.owner.init_payload(),
        &server.project,
    )
    .await;
    let slow = server
        .owner
        .gql(
            "mutation { createAgent(input: { name: \"Slow\", kind: \"echo\", config: { steps: 600, delayMs: 100 } }) { id } }",
            json!({}),
        )
        .await;
    let input = json!({ "input": { "agentId": slow.data("createAgent")["id"], "projectId": server.project, "input": {} } });
    server.owner.gql(START, input).await.data("startAgentJob");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let closes: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                while let Ok(Some(Ok(message))) =
                    tokio::time::timeout(Duration::from_secs(DEADLINE_SECONDS + 5), socket.next()).await
                {
                    if let Message::Close(frame) = message {
                        return frame.map(|frame| u16::from(frame.code));
                    }
                }
                None
            })
        })
        .collect();
    let signalled = Instant::now();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &server.replica.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let exited = server
        .replica
        .wait_exit(Duration::from_secs(DEADLINE_SECONDS + 5))
        .await;
    let took = signalled.elapsed();
    let mut restart_closes = 0;
    for close in closes {
        if close.await.unwrap() == Some(1012) {
            restart_closes += 1;
        }
    }
    println!(
        "PostgreSQL shutdown: SIGTERM with {subscribers} open subscriptions and a running job: exited {} in {:.2} s ({DRAIN_SECONDS} s drain, {DEADLINE_SECONDS} s deadline); {restart_closes}/{subscribers} sockets closed with 1012",
        match exited {
            Some(status) if status.success() => "cleanly",
            Some(_) => "with an error",
            None => "NOT AT ALL",
        },
        took.as_secs_f64(),
    );
}

/// How long the cross-replica run goes before its latencies count, at most: a short run
/// (the smoke run) skips its first fifth only.
const REPLICA_WARM_UP: Duration = Duration::from_secs(2);

/// A subscriber on an API-only server process; jobs run by a separate `tenantql worker`
/// process, about 100 events/s; latency from each event's write to its receipt.
async fn cross_replica(options: &Options) {
    let app = TestApp::spawn_with(Backend::Postgres, |config| config.workers = 0)
        .await
        .expect("PostgreSQL");
    let server = server_process(&app, 0).await;
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_tenantql"))
        .arg("worker")
        .envs(app.database_env())
        .env("JWT_SECRET", helpers::JWT_SECRET)
        .env("ENCRYPTION_KEYS", helpers::ENCRYPTION_KEYS)
        .env("WORKERS", options.workers.to_string())
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let mut feed = subscriber(&server.replica.graphql_url(), &server.owner, &server.project).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let jobs = options.replica_jobs;
    let (owner, agent, project) = (server.owner.clone(), server.agent.clone(), server.project.clone());
    // Four events per job: 25 jobs/s is 100 events/s.
    let starter = tokio::spawn(async move {
        start_jobs(&owner, &agent, &project, jobs, Duration::from_millis(40)).await;
    });
    // QUEUED events are written by the API process itself; the other three per job are relayed.
    // The first seconds are not counted: both processes open their pooled connections then.
    let warm_up = REPLICA_WARM_UP.min(Duration::from_millis(8 * jobs as u64));
    let counted_from = Instant::now() + warm_up;
    let (mut received, mut written_elsewhere) = (0, Vec::new());
    while received < jobs * 4 {
        let message = tokio::time::timeout(Duration::from_secs(30), feed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(event) = event_of(&message) {
            received += 1;
            if event["status"] != "QUEUED" && Instant::now() >= counted_from {
                written_elsewhere.push(latency_us(&event));
            }
        }
    }
    starter.await.unwrap();
    let _ = worker.kill();
    let _ = worker.wait();
    written_elsewhere.sort_unstable();
    println!(
        "PostgreSQL cross-replica: {jobs} jobs at 25 jobs/s (~100 events/s) run by a worker process, subscriber on the API process: delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} relayed events after a {} ms warm-up",
        percentile(&written_elsewhere, 0.50),
        percentile(&written_elsewhere, 0.99),
        percentile(&written_elsewhere, 1.0),
        written_elsewhere.len(),
        warm_up.as_millis(),
    );
}

async fn fan_out(subscribers: usize, options: &Options) {
    // The database comes from the harness; the server under test is its own process.
    let app = TestApp::spawn_with(Backend::Postgres, |config| config.workers = 0)
        .await
        .expect("PostgreSQL");
    let server = server_process(&app, options.workers).await;
    let graphql_url = server.replica.graphql_url();
    let (owner, project, agent) = (server.owner.clone(), server.project.clone(), server.agent.clone());
    let before = rss_kib(server.replica.pid());
    let sockets = subscribers_of(subscribers, &graphql_url, owner.init_payload(), &project).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(server.replica.pid());
    let per_subscription = (after.saturating_sub(before)) as f64 * 1024.0 / subscribers as f64;

    let expected = options.burst * EVENTS_PER_JOB;
    let receivers = receive_events(sockets, expected);
    start_jobs(&owner, &agent, &project, options.burst, options.job_interval).await;
    let (latencies, complete) = collect_latencies(receivers, expected).await;
    println!(
        "PostgreSQL fan-out: {}; server RSS {before} → {after} KiB ({:.1} KiB per idle subscription)",
        delivery_summary(subscribers, options, &latencies, complete),
        per_subscription / 1024.0,
    );
}

/// The load and latencies of one fan-out run, as both fan-out parts report them.
fn delivery_summary(subscribers: usize, options: &Options, sorted: &[u64], complete: usize) -> String {
    format!(
        "{subscribers} subscribers, {} jobs {} ms apart ({} events each): delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {complete}/{subscribers} got every event",
        options.burst,
        options.job_interval.as_millis(),
        options.burst * EVENTS_PER_JOB,
        percentile(sorted, 0.50),
        percentile(sorted, 0.99),
        percentile(sorted, 1.0),
    )
}

/// Ticks every `interval`, the first at once; a zero interval (which tokio refuses) ticks
/// back to back.
fn pacer(interval: Duration) -> tokio::time::Interval {
    tokio::time::interval(interval.max(Duration::from_micros(1)))
}

/// Starts `count` jobs of `agent` over HTTP, one every `interval` (back to back when zero).
async fn start_jobs(owner: &Client, agent: &str, project: &str, count: usize, interval: Duration) {
    let mut tick = pacer(interval);
    for _ in 0..count {
        tick.tick().await;
        owner
            .gql(
                START,
                json!({ "input": { "agentId": agent, "projectId": project, "input": {} } }),
            )
            .await
            .data("startAgentJob");
    }
}

/// QUEUED, RUNNING, one step, SUCCEEDED.
const EVENTS_PER_JOB: usize = 4;

/// One task per socket, each returning the latencies of the first `expected` events it got.
fn receive_events(sockets: Vec<Socket>, expected: usize) -> Vec<tokio::task::JoinHandle<Vec<u64>>> {
    // One deadline for all: the server's keepalive pings would renew a per-message timeout.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(expected);
                // One timer for the whole wait, not one per message.
                let _ = tokio::time::timeout_at(give_up, async {
                    while latencies.len() < expected {
                        let Some(Ok(message)) = socket.next().await else {
                            break;
                        };
                        if let Some(event) = event_of(&message) {
                            latencies.push(latency_us(&event));
                        } else if ends_operation(&message) {
                            // A subscriber that fell behind is closed with an error.
                            break;
                        }
                    }
                })
                .await;
                latencies
            })
        })
        .collect()
}

/// Every latency received, sorted, and how many subscribers got all `expected` events.
async fn collect_latencies(
    receivers: Vec<tokio::task::JoinHandle<Vec<u64>>>,
    expected: usize,
) -> (Vec<u64>, usize) {
    let mut latencies = Vec::new();
    let mut complete = 0;
    for receiver in receivers {
        let received = receiver.await.unwrap();
        complete += usize::from(received.len() == expected);
        latencies.extend(received);
    }
    latencies.sort_unstable();
    (latencies, complete)
}

/// The machine's floor under the fan-out figure: the same subscribers, client and messages,
/// served by a bare websocket server process (this benchmark, run with `--serve-floor`) that
/// renders each event once and writes it to every socket. No GraphQL, no database, no
/// authorization: what any server pays that writes each event to each subscriber's socket.
async fn fan_out_floor(subscribers: usize, options: &Options) {
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--serve-floor")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut address = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut address,
    )
    .unwrap();
    let url = format!("http://{}/graphql", address.trim());
    let sockets = subscribers_of(subscribers, &url, json!({}), "floor").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let expected = options.burst * EVENTS_PER_JOB;
    let receivers = receive_events(sockets, expected);
    let mut events = server.stdin.take().unwrap();
    let mut tick = pacer(options.job_interval);
    for job in 0..options.burst {
        tick.tick().await;
        for seq in 1..=EVENTS_PER_JOB {
            let event = json!({ "jobId": job.to_string(), "seq": seq, "status": "RUNNING",
                "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true) });
            let message = json!({ "type": "next", "id": "feed",
                "payload": { "data": { "projectJobEvents": event } } });
            // A line of a few hundred bytes fits the pipe: the write does not block.
            std::io::Write::write_all(&mut events, format!("{message}\n").as_bytes()).unwrap();
        }
    }
    let (latencies, complete) = collect_latencies(receivers, expected).await;
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "Floor fan-out (bare websocket server, one rendering per event): {}",
        delivery_summary(subscribers, options, &latencies, complete),
    );
}

/// The floor's server process: prints the address it listens on, then sends each line of its
/// standard input, as a message, to every subscriber.
fn serve_floor() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // The load client connects 200 at a time: the default backlog of 128 resets some.
        let listener = socket.listen(1024).unwrap();
        println!("{}", listener.local_addr().unwrap());
        let (events, _) = tokio::sync::broadcast::channel::<std::sync::Arc<str>>(1024);
        let sender = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::stdin().lock()).map_while(Result::ok) {
                let _ = sender.send(line.into());
            }
        });
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(bare_subscription(stream, events.subscribe()));
        }
    });
}

/// The client asked for graphql-transport-ws and refuses an upgrade that does not agree.
#[expect(
    clippy::result_large_err,
    reason = "the signature of tungstenite's handshake callback"
)]
fn agree_protocol(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    response
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    Ok(response)
}

/// One subscriber of [`fan_out_floor`]: the handshake, then every event as it comes, with
/// whatever else is ready gathered into the same write, as the server does.
async fn bare_subscription(
    stream: tokio::net::TcpStream,
    mut events: tokio::sync::broadcast::Receiver<std::sync::Arc<str>>,
) {
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, agree_protocol).await else {
        return;
    };
    // connection_init, then subscribe.
    let _ = socket.next().await;
    let ack = Message::Text(json!({ "type": "connection_ack" }).to_string().into());
    if socket.send(ack).await.is_err() {
        return;
    }
    let _ = socket.next().await;
    while let Ok(first) = events.recv().await {
        let mut ready = Some(first);
        while let Some(event) = ready {
            if socket
                .feed(Message::Text(event.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            ready = events.try_recv().ok();
        }
        if socket.flush().await.is_err() {
            return;
        }
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--serve-floor") {
        return serve_floor();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(Options::from_args()));
}

async fn run(options: Options) {
    let runs = |part: &str| options.parts.iter().any(|chosen| chosen == part);
    if runs("throughput") {
        for &backend in &options.backends {
            throughput(backend, &options).await;
        }
    }
    if options.backends.contains(&Backend::Postgres) {
        if runs("replicas") {
            cross_replica(&options).await;
        }
        if runs("fanout") {
            for &subscribers in &options.subscribers {
                fan_out(subscribers, &options).await;
            }
        }
        if runs("shutdown") {
            shutdown(options.shutdown_subscribers).await;
        }
    }
    if runs("floor") {
        for &subscribers in &options.subscribers {
            fan_out_floor(subscribers, &options).await;
        }
    }
}
