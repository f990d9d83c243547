//! The read path benchmark: nested reads of one tenant's jobs on PostgreSQL with RLS forced,
//! against what PostgreSQL alone does for the same read, in the same run.
//!
//! Seeds organizations × 5 projects × jobs (2 agents per organization), serves them
//! in-process, and drives two queries over HTTP, each request as a random organization's
//! owner (a JWT and `X-Organization-Id`):
//!
//! - Q1: `agentJobs(projectId, first: 20) { nodes { id status progress createdAt } }`
//! - Q2: `project(id) { id name }` and `agentJobs(projectId, first: 10)` with each job's
//!   `agent { name }`
//!
//! The limit is pgbench, prepared, as the tenant role: `BEGIN`, the tenant set in one
//! statement, Q1's select, `COMMIT`. Each figure is the median of `--runs` runs; the
//! round trips per request are counted by the server (`/metrics`) over sequential requests.
//!
//!     cargo bench --bench read_path                        # 1,000 orgs × 5 × 200 = 1 M jobs
//!     cargo bench --bench read_path -- --seconds 15 --runs 3 --connections 8,32
//!     cargo test --bench read_path -- --smoke              # tiny run for CI (debug build)

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
mod load;
mod seed;

use std::process::Command;
use std::time::{Duration, Instant};

use args::Args;
use helpers::{Backend, TestApp, access_token};
use sea_orm::{ConnectionTrait, DatabaseConnection};

const PROJECTS_PER_ORG: usize = 5;
const AGENTS_PER_ORG: usize = 2;

struct Options {
    orgs: usize,
    jobs_per_project: usize,
    seconds: u64,
    runs: usize,
    connections: Vec<usize>,
}

impl Options {
    fn from_args() -> Self {
        let args = Args::from_env();
        Self {
            orgs: args.get("--orgs", 1_000, 10),
            jobs_per_project: args.get("--jobs", 200, 20),
            seconds: args.get("--seconds", 15, 1),
            runs: args.get("--runs", 3, 1),
            connections: args.list("--connections", vec![8, 32], vec![2]),
        }
    }
}

/// Ids the load client and pgbench compute without a lookup: organization `i`, its owner,
/// its project `p` and its agent `a`.
fn org_id(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012x}")
}
fn owner_id(i: usize) -> String {
    format!("00000001-0000-7000-8000-{i:012x}")
}
fn project_id(i: usize, p: usize) -> String {
    format!("00000002-0000-7000-8{p:03x}-{i:012x}")
}
fn agent_id(i: usize, a: usize) -> String {
    format!("00000003-0000-7000-8{a:03x}-{i:012x}")
}

/// Inserts straight into the tables as the owner role: organizations, owners, projects and
/// agents in batches, then every project's jobs in one statement.
async fn seed(db: &DatabaseConnection, options: &Options) {
    let started = Instant::now();
    for chunk in (0..options.orgs).collect::<Vec<_>>().chunks(500) {
        let (mut users, mut orgs, mut members, mut projects, mut agents) =
            (vec![], vec![], vec![], vec![], vec![]);
        for &i in chunk {
            let (org, owner) = (org_id(i), owner_id(i));
            users.push(format!(
                "('{owner}', 'owner-{i}@bench.example.com', 'x', 'Bench owner', false, now(), now())"
            ));
            orgs.push(format!(
                "('{org}', 'bench-{i}', 'Bench {i}', 'CLIENT', 'PRO', 100000, now(), now())"
            ));
            members.push(format!(
                "('{}', '{org}', '{owner}', 'OWNER', now(), now())",
                uuid::Uuid::now_v7()
            ));
            for p in 0..PROJECTS_PER_ORG {
                projects.push(format!(
                    "('{}', '{org}', 'project-{p}', 'Project {p}', NULL, now(), now())",
                    project_id(i, p)
                ));
            }
            for a in 0..AGENTS_PER_ORG {
                agents.push(format!(
                    "('{}', '{org}', NULL, 'Agent {a}', 'echo', '{{}}', 'PRIVATE', 3, 1, now(), now())",
                    agent_id(i, a)
                ));
            }
        }
        seed::insert(db, seed::USERS, &users).await;
        seed::insert(db, seed::ORGANIZATIONS, &orgs).await;
        seed::insert(db, seed::MEMBERS, &members).await;
        seed::insert(db, seed::PROJECTS, &projects).await;
        let agent_columns = "agents (id, organization_id, project_id, name, kind, config, sharing, \
            max_attempts, revision, created_at, updated_at)";
        seed::insert(db, agent_columns, &agents).await;
    }
    // Each project's jobs alternate between its organization's two agents.
    db.execute_unprepared(&format!(
        "INSERT INTO agent_jobs (id, organization_id, project_id, agent_id, status, progress, input, output,
             error, attempts, max_attempts, last_seq, cancel_requested, run_after, worker_id,
             lease_expires_at, created_by, created_at, started_at, finished_at, updated_at)
         SELECT gen_random_uuid(), p.organization_id, p.id,
             (SELECT a.id FROM agents a WHERE a.organization_id = p.organization_id ORDER BY a.id OFFSET g % 2 LIMIT 1),
             'SUCCEEDED', 100, '{{}}', '{{}}', NULL, 1, 3, 3, false, now(), NULL, NULL,
             m.user_id, now() - g * interval '1 second', now(), now(), now()
         FROM projects p
         JOIN organization_members m ON m.organization_id = p.organization_id
         CROSS JOIN generate_series(1, {}) g",
        options.jobs_per_project
    ))
    .await
    .unwrap();
    db.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    println!(
        "seeded {} organizations × {PROJECTS_PER_ORG} projects × {} jobs in {:.1} s",
        options.orgs,
        options.jobs_per_project,
        started.elapsed().as_secs_f64()
    );
}

#[derive(Debug, Clone, Copy)]
enum Query {
    Q1,
    Q2,
}

impl Query {
    fn body(self, project: &str) -> String {
        let query = match self {
            Query::Q1 => {
                "query($p: ID!) { agentJobs(projectId: $p, first: 20) { nodes { id status progress createdAt } } }"
            }
            Query::Q2 => {
                "query($p: ID!) { project(id: $p) { id name }
                  agentJobs(projectId: $p, first: 10) { nodes { id status progress createdAt agent { name } } } }"
            }
        };
        serde_json::json!({ "query": query, "variables": { "p": project } }).to_string()
    }

    /// Whether the answer is the full page, every job with its agent where asked.
    fn answered(self, text: &str) -> bool {
        let Ok(body) = serde_json::from_str::<serde_json::Value>(text) else {
            return false;
        };
        let nodes = body["data"]["agentJobs"]["nodes"].as_array();
        body.get("errors").is_none()
            && match self {
                Query::Q1 => nodes.is_some_and(|nodes| !nodes.is_empty()),
                Query::Q2 => {
                    body["data"]["project"]["name"].is_string()
                        && nodes.is_some_and(|nodes| {
                            !nodes.is_empty() && nodes.iter().all(|job| job["agent"]["name"].is_string())
                        })
                }
            }
    }
}

/// Random organizations' owners sending `query` for one of their projects.
async fn drive(
    url: &str,
    tokens: &[String],
    query: Query,
    connections: usize,
    duration: Duration,
) -> load::Run {
    let (url, tokens) = (url.to_owned(), tokens.to_vec());
    let request = move |http: &reqwest::Client, random: u64| {
        let i = (random % tokens.len() as u64) as usize;
        let p = ((random >> 32) % PROJECTS_PER_ORG as u64) as usize;
        http.post(&url)
            .header("content-type", "application/json")
            .bearer_auth(&tokens[i])
            .header("x-organization-id", org_id(i))
            .body(query.body(&project_id(i, p)))
    };
    load::drive(connections, duration, request, move |text| query.answered(text)).await
}

/// PostgreSQL alone doing Q1's read as few round trips allow, as the tenant role under RLS.
fn pgbench(tenant_url: &str, orgs: usize, connections: usize, seconds: u64) -> f64 {
    let script = std::env::temp_dir().join(format!("tenantql-read-path-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(
        &script,
        format!(
            "\\set i random(0, {last})
\\set p random(0, {last_project})
BEGIN;
SELECT set_config('app.organization_id', '00000000-0000-7000-8000-' || lpad(to_hex(:i::int), 12, '0'), true);
SELECT id, status, progress, created_at FROM agent_jobs
 WHERE organization_id = ('00000000-0000-7000-8000-' || lpad(to_hex(:i::int), 12, '0'))::uuid
   AND project_id = ('00000002-0000-7000-8' || lpad(to_hex(:p::int), 3, '0') || '-' || lpad(to_hex(:i::int), 12, '0'))::uuid
 ORDER BY id DESC LIMIT 21;
COMMIT;
",
            last = orgs - 1,
            last_project = PROJECTS_PER_ORG - 1,
        ),
    )
    .unwrap();
    let output = Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-j", "2"])
        .args(["-c", &connections.to_string(), "-T", &seconds.to_string()])
        .arg("-f")
        .arg(&script)
        .arg(tenant_url)
        .output()
        .expect("pgbench (PostgreSQL's client tools) must be installed");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench failed: {}{}",
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// Statements plus each transaction's `BEGIN` and `COMMIT`, both pools, from `/metrics`.
async fn round_trips(app: &TestApp) -> u64 {
    let body = app.metrics().await;
    let sum = |name: &str| -> u64 {
        body.lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    sum("tenantql_db_statements_total") + 2 * sum("tenantql_db_transactions_total")
}

/// Round trips per request, over sequential requests (the scrape's own job count, one
/// statement on the owner pool, is taken out).
async fn round_trips_per_request(app: &TestApp, url: &str, token: &str, query: Query) -> f64 {
    let http = helpers::test_client();
    const REQUESTS: u64 = 50;
    let before = round_trips(app).await;
    for n in 0..REQUESTS {
        let text = http
            .post(url)
            .header("content-type", "application/json")
            .bearer_auth(token)
            .header("x-organization-id", org_id(0))
            .body(query.body(&project_id(0, n as usize % PROJECTS_PER_ORG)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(query.answered(&text), "{text}");
    }
    let after = round_trips(app).await;
    (after - before - 1) as f64 / REQUESTS as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let options = Options::from_args();
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.db_max_connections = 16;
        config.db_owner_max_connections = 4;
        config.workers = 0;
        config.rate_limits = config
            .rate_limits
            .clone()
            .with_plan_overrides("PRO=100000000/1000000000/1000")
            .unwrap();
    })
    .await
    .expect("the benchmark needs PostgreSQL (TEST_POSTGRES_URL)");
    seed(&app.owner_connection().await, &options).await;
    let url = app.graphql_url();
    let tenant_url = app
        .tenant_database_url
        .clone()
        .expect("a tenant role on PostgreSQL");
    let tokens: Vec<String> = (0..options.orgs)
        .map(|i| access_token(&owner_id(i), 24 * 3600))
        .collect();
    // Warm the pools and the database's caches.
    drive(&url, &tokens, Query::Q2, 4, Duration::from_millis(500)).await;

    for query in [Query::Q1, Query::Q2] {
        let trips = round_trips_per_request(&app, &url, &tokens[0], query).await;
        println!("{query:?}: {trips:.1} round trips to the database per request");
    }
    let seconds = Duration::from_secs(options.seconds);
    for &connections in &options.connections {
        let limit = median(
            (0..options.runs)
                .map(|_| pgbench(&tenant_url, options.orgs, connections, options.seconds))
                .collect(),
        );
        println!("connections {connections:>3}: PostgreSQL alone (pgbench, Q1's read) {limit:>8.0} /s");
        for query in [Query::Q1, Query::Q2] {
            let mut runs = Vec::new();
            for _ in 0..options.runs {
                runs.push(drive(&url, &tokens, query, connections, seconds).await);
            }
            let errors: usize = runs.iter().map(|run| run.errors).sum();
            assert_eq!(errors, 0, "every request must succeed");
            let per_second = median(runs.iter().map(load::Run::per_second).collect());
            println!(
                "connections {connections:>3}: {query:?} {per_second:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({:.2} of the limit; runs {})",
                median(runs.iter().map(|run| run.percentile_ms(0.50)).collect()),
                median(runs.iter().map(|run| run.percentile_ms(0.99)).collect()),
                per_second / limit,
                runs.iter()
                    .map(|run| format!("{:.0}", run.per_second()))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
}
