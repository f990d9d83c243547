//! Prometheus metrics at `GET /metrics`. Labels are bounded sets (route, status, operation
//! type, outcome); nothing names an organization or a user: per-tenant figures live in the
//! database (`usage`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const HTTP_DURATION: &str = "tenantql_http_request_duration_seconds";
const OPERATIONS: &str = "tenantql_graphql_operations_total";
const OPERATION_DURATION: &str = "tenantql_graphql_operation_duration_seconds";
const WEBSOCKETS: &str = "tenantql_websocket_connections";
const SUBSCRIPTIONS: &str = "tenantql_graphql_subscriptions_active";
const JOBS: &str = "tenantql_jobs";
const JOB_DURATION: &str = "tenantql_job_run_duration_seconds";
const RATE_LIMITED: &str = "tenantql_rate_limited_requests_total";
const DB_CONNECTIONS: &str = "tenantql_db_pool_connections";
const DB_WAITING: &str = "tenantql_db_pool_waiting";
const DB_STATEMENTS: &str = "tenantql_db_statements_total";
const DB_TRANSACTIONS: &str = "tenantql_db_transactions_total";

/// Request and operation latencies: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Job runs: 10 ms to 30 minutes.
const JOB_BUCKETS: &[f64] = &[0.01, 0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0];

/// The process-wide recorder, installed on first use. Every app in one process (tests run
/// several) shares it, so figures are per process, as Prometheus scrapes them.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), LATENCY_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), LATENCY_BUCKETS)
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(JOB_DURATION.into()), JOB_BUCKETS)
            })
            .and_then(PrometheusBuilder::install_recorder)
            .expect("the metrics recorder is installed once, with non-empty buckets");
        describe();
        handle
    })
}

fn describe() {
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP requests by route and status.");
    describe_counter!(OPERATIONS, "GraphQL operations by type and outcome.");
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "GraphQL operation execution time by type."
    );
    describe_counter!(DB_STATEMENTS, "Statements sent to the database, by pool.");
    describe_counter!(
        DB_TRANSACTIONS,
        "Transactions begun, by pool; each is also a BEGIN and a COMMIT or ROLLBACK."
    );
    describe_gauge!(WEBSOCKETS, "Open websocket connections.");
    describe_gauge!(SUBSCRIPTIONS, "Active GraphQL subscriptions.");
    describe_gauge!(
        JOBS,
        "Agent jobs waiting or running, by status (the whole queue, as this replica reads it)."
    );
    describe_histogram!(JOB_DURATION, Unit::Seconds, "Job runs by outcome.");
    describe_counter!(RATE_LIMITED, "Requests refused for a rate limit, by limit.");
    describe_gauge!(
        DB_CONNECTIONS,
        "Database pool connections by pool (tenant; owner on PostgreSQL) and state (in_use, idle)."
    );
    describe_gauge!(
        DB_WAITING,
        "Tasks waiting for a database connection to begin a transaction."
    );
}

/// `route` is one of the server's routes, never the raw path (unbounded).
pub fn http_request(route: &'static str, status: u16, elapsed: Duration) {
    histogram!(HTTP_DURATION, "route" => route, "status" => status.to_string()).record(elapsed);
}

pub fn graphql_operation(kind: &'static str, ok: bool, elapsed: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    counter!(OPERATIONS, "type" => kind, "outcome" => outcome).increment(1);
    histogram!(OPERATION_DURATION, "type" => kind).record(elapsed);
}

pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

pub fn job_run(outcome: &'static str, elapsed: Duration) {
    histogram!(JOB_DURATION, "outcome" => outcome).record(elapsed);
}

pub fn jobs(status: &'static str, count: u64) {
    gauge!(JOBS, "status" => status).set(count as f64);
}

/// `pool` is `tenant` (tenant transactions; SQLite's one pool) or `owner` (PostgreSQL's
/// cross-tenant steps).
pub fn db_pool(pool: &'static str, in_use: u32, idle: u32) {
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "in_use").set(in_use);
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "idle").set(idle);
}

/// What `pool` has sent the database since start: statements, and transactions (each also a
/// `BEGIN` and a `COMMIT` or `ROLLBACK`).
pub fn db_round_trips(pool: &'static str, statements: u64, transactions: u64) {
    counter!(DB_STATEMENTS, "pool" => pool).absolute(statements);
    counter!(DB_TRANSACTIONS, "pool" => pool).absolute(transactions);
}

/// Counts a thing open while the guard lives: a websocket, a subscription, a waiter for a
/// database connection.
pub struct Open(&'static str);

impl Open {
    fn new(name: &'static str) -> Self {
        gauge!(name).increment(1);
        Self(name)
    }

    pub fn websocket() -> Self {
        Self::new(WEBSOCKETS)
    }

    pub fn subscription() -> Self {
        Self::new(SUBSCRIPTIONS)
    }

    pub fn db_waiter() -> Self {
        Self::new(DB_WAITING)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1);
    }
}
