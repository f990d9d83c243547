//! Other `tenantql` processes on a test's database, as deployments run them: server replicas
//! and worker-only processes.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Client, ENCRYPTION_KEYS, JWT_SECRET, TestApp, UNLIMITED_PLANS, test_client};

/// A server process sharing a test's database; killed when dropped.
pub struct Replica {
    child: Child,
    pub base_url: String,
}

impl Replica {
    /// A `tenantql serve` process on `app`'s database, once it is ready to serve; `env`
    /// comes after the harness's own (later settings win).
    pub(super) async fn start(app: &TestApp, workers: usize, env: &[(&str, &str)], stderr: Stdio) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let child = tenantql(app)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("PLAN_LIMITS", UNLIMITED_PLANS)
            .env("ANONYMOUS_REQUESTS_PER_MINUTE", "1000000")
            .env("WS_MAX_CONNECTIONS_PER_ADDRESS", "1000000")
            .env("WS_MAX_CONNECTIONS_PER_CALLER", "1000000")
            .env("WORKERS", workers.to_string())
            .envs(env.iter().copied())
            .stderr(stderr)
            .spawn()
            .expect("the server process starts");
        let replica = Replica {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while test_client()
            .get(format!("{}/readyz", replica.base_url))
            .send()
            .await
            .map_or(true, |response| !response.status().is_success())
        {
            assert!(Instant::now() < deadline, "the replica never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        replica
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` for the process to exit on its own (after a signal): its exit
    /// status, or `None` while it still runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the replica's status") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base_url)
    }

    /// `client` (its credentials and organization) talking to this replica instead.
    pub fn client_like(&self, client: &Client) -> Client {
        Client {
            url: self.graphql_url(),
            ..client.clone()
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tenantql worker` process on `app`'s database, with a 2-second lease.
pub(super) fn worker(app: &TestApp) -> Child {
    tenantql(app)
        .arg("worker")
        .env("WORKERS", "1")
        .env("JOB_LEASE_SECONDS", "2")
        .env("JOB_RETRY_BASE_MS", "100")
        .spawn()
        .expect("the worker process starts")
}

/// `tenantql` on `app`'s database with the harness's keys, leaving the migrations to `app`,
/// logging warnings only (to stderr), its stdout discarded.
fn tenantql(app: &TestApp) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenantql"));
    command
        .envs(app.database_env())
        .env("JWT_SECRET", JWT_SECRET)
        .env("ENCRYPTION_KEYS", ENCRYPTION_KEYS)
        .env("AUTO_MIGRATE", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    command
}
