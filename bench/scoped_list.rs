//! The scoped list benchmark: `projects(first: 20)` for random organizations on PostgreSQL.
//!
//! Seeds 1,000 organizations × 5 projects (an owner, a member and an API key each) into a
//! fresh database, serves it in-process, and drives it over HTTP with N concurrent
//! connections, reporting requests/s and latency percentiles per concurrency.
//!
//!     cargo bench --bench scoped_list                      # 1,000 orgs, 10 s at 8 and 32
//!     cargo bench --bench scoped_list -- --seconds 30 --connections 8,32,64
//!     cargo test --bench scoped_list -- --smoke            # tiny run for CI (debug build)
//!     cargo bench --bench scoped_list -- --hold 120         # then drive it with wrk (bench/wrk.lua)

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

use std::time::{Duration, Instant};

use args::Args;
use helpers::{Backend, TestApp};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tenantql::auth::secret_token::sha256_hex;

struct Options {
    orgs: usize,
    projects_per_org: usize,
    seconds: u64,
    connections: Vec<usize>,
    /// Keep serving the seeded database this many seconds, for an outside load generator.
    hold: Option<u64>,
}

impl Options {
    fn from_args() -> Self {
        let args = Args::from_env();
        Self {
            orgs: args.get("--orgs", 1_000, 20),
            projects_per_org: 5,
            seconds: args.get("--seconds", 10, 1),
            connections: args.list("--connections", vec![8, 32], vec![2]),
            hold: args
                .value("--hold")
                .map(|seconds| seconds.parse().expect("--hold takes seconds")),
        }
    }
}

/// The API key of bench organization `i`: deterministic, so the load needs no lookups.
fn api_key(i: usize) -> (String, String, String) {
    let prefix = format!("bench{i:05}");
    let secret = format!("{i:0>40}");
    (format!("tql_{prefix}_{secret}"), prefix, sha256_hex(&secret))
}

/// Inserts in batches of rows, as the owner role, straight into the tables.
async fn seed(db: &DatabaseConnection, options: &Options) {
    let started = Instant::now();
    let password_hash =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1nGkKT2fA0gGpcRbT1xTqmMlDNQnb7uVKHEG7VZ0B0Q";
    for chunk in (0..options.orgs).collect::<Vec<_>>().chunks(200) {
        let (mut users, mut orgs, mut members, mut projects, mut keys) =
            (vec![], vec![], vec![], vec![], vec![]);
        for &i in chunk {
            let org = uuid::Uuid::now_v7();
            let owner = uuid::Uuid::now_v7();
            let member = uuid::Uuid::now_v7();
            for (user, role) in [(owner, "OWNER"), (member, "MEMBER")] {
                users.push(format!(
                    "('{user}', '{role}-{i}@bench.example.com', '{password_hash}', 'Bench {role}', false, now(), now())"
                ));
                members.push(format!(
                    "('{}', '{org}', '{user}', '{role}', now(), now())",
                    uuid::Uuid::now_v7()
                ));
            }
            orgs.push(format!(
                "('{org}', 'bench-{i}', 'Bench {i}', 'CLIENT', 'PRO', 100000, now(), now())"
            ));
            for p in 0..options.projects_per_org {
                projects.push(format!(
                    "('{}', '{org}', 'project-{p}', 'Project {p}', 'Seeded for the benchmark', now(), now())",
                    uuid::Uuid::now_v7()
                ));
            }
            let (_, prefix, hash) = api_key(i);
            keys.push(format!(
                "('{}', '{org}', NULL, 'bench', '{prefix}', '{hash}', 'MEMBER', '{owner}', NULL, NULL, NULL, now(), now())",
                uuid::Uuid::now_v7()
            ));
        }
        seed::insert(db, seed::USERS, &users).await;
        seed::insert(db, seed::ORGANIZATIONS, &orgs).await;
        seed::insert(db, seed::MEMBERS, &members).await;
        seed::insert(db, seed::PROJECTS, &projects).await;
        let api_keys = "api_keys (id, organization_id, project_id, name, prefix, secret_hash, role, \
            created_by, expires_at, last_used_at, revoked_at, created_at, updated_at)";
        seed::insert(db, api_keys, &keys).await;
    }
    db.execute_unprepared("ANALYZE").await.unwrap();
    println!(
        "seeded {} organizations × {} projects in {:.1} s",
        options.orgs,
        options.projects_per_org,
        started.elapsed().as_secs_f64()
    );
}

/// Random organizations' `projects(first: 20)` with their API keys.
async fn drive(url: &str, orgs: usize, connections: usize, duration: Duration) -> load::Run {
    let body =
        serde_json::json!({ "query": "{ projects(first: 20) { edges { node { id name } } } }" }).to_string();
    let url = url.to_owned();
    let request = move |http: &reqwest::Client, random: u64| {
        let (key, _, _) = api_key((random % orgs as u64) as usize);
        http.post(&url)
            .header("content-type", "application/json")
            .header("x-api-key", key)
            .body(body.clone())
    };
    let answered = |text: &str| text.contains("\"edges\"") && !text.contains("errors");
    load::drive(connections, duration, request, answered).await
}

#[tokio::main]
async fn main() {
    let options = Options::from_args();
    // The pools as deployed: the tenant pool at DB_MAX_CONNECTIONS' default and the owner's
    // (API-key lookups) at DB_OWNER_MAX_CONNECTIONS' default, not the test harness's small ones.
    let app = TestApp::spawn_with(Backend::Postgres, |config| {
        config.db_max_connections = 16;
        config.db_owner_max_connections = 4;
    })
    .await
    .expect("the benchmark needs PostgreSQL (TEST_POSTGRES_URL)");
    seed(&app.owner_connection().await, &options).await;
    let url = app.graphql_url();
    if let Some(seconds) = options.hold {
        println!("serving {url} for {seconds} s; keys: tql_bench00000_{{40 digits of the org index}}");
        println!("  wrk -t2 -c32 -d10s -s bench/wrk.lua {url} -- {}", options.orgs);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        return;
    }
    // Warm the pool and the database's caches.
    drive(&url, options.orgs, 4, Duration::from_millis(500)).await;
    println!("projects(first: 20), random organization per request, API key auth, PostgreSQL with RLS");
    for &connections in &options.connections {
        let run = drive(
            &url,
            options.orgs,
            connections,
            Duration::from_secs(options.seconds),
        )
        .await;
        println!(
            "connections {connections:>3}: {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} requests, {} errors)",
            run.per_second(),
            run.percentile_ms(0.50),
            run.percentile_ms(0.99),
            run.percentile_ms(1.0),
            run.requests,
            run.errors,
        );
        assert_eq!(run.errors, 0, "every request must succeed");
    }
}
