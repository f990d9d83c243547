//! The server under test: the real app serving on 127.0.0.1:0 in this process, on a database
//! of its own (a SQLite file, or a PostgreSQL database cloned from a migrated template) that
//! goes when the test ends.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use migration::APP_ROLE;
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::{Value, json};
use tenantql::app::App;
use tenantql::settings::{Config, Settings};
use tenantql::tenancy::{Db, TenantDb};
use tokio::sync::oneshot;

use super::{
    BASE_DOMAIN, Client, ENCRYPTION_KEYS, JWT_SECRET, LOOPBACK, Org, PASSWORD, PG_OWNER_ROLE, Replica,
    UNLIMITED_PLANS, Ws, postgres, processes, test_client, ws_raw_to, ws_to,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A test's own server; stopped, and its database dropped, with it.
pub struct TestApp {
    pub base_url: String,
    pub http: reqwest::Client,
    /// The server's owner pool.
    pub db: Db,
    /// The server's tenant pool (on SQLite, the same pool as `db`).
    pub tenant_db: TenantDb,
    pub database_url: String,
    /// The tenant login role's URL, on PostgreSQL.
    pub tenant_database_url: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    cleanup: Cleanup,
    /// Organizations' file areas for this test's server.
    pub workspaces_dir: PathBuf,
}

/// What removes a test's database.
enum Cleanup {
    SqliteDir(PathBuf),
    PostgresDatabase(String),
}

impl TestApp {
    /// The server on a fresh database; `None` only when PostgreSQL is unreachable outside CI.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        Some(
            Self::try_spawn_with(backend, adjust)
                .await?
                .expect("the server starts"),
        )
    }

    /// [`TestApp::spawn_with`] for a server that may refuse to start: its error, after
    /// the test's database is dropped.
    pub async fn try_spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
    ) -> Option<anyhow::Result<Self>> {
        let (database_url, tenant_database_url, cleanup) = fresh_database(backend).await?;
        let workspaces_dir =
            std::env::temp_dir().join(format!("tenantql-workspaces-{}", uuid::Uuid::new_v4()));
        let mut config = test_config(&database_url, tenant_database_url.as_deref(), workspaces_dir);
        adjust(&mut config);
        let workspaces_dir = config.workspaces_dir.clone();
        let app = match App::build(config).await {
            Ok(app) => app,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&workspaces_dir);
                cleanup.run();
                return Some(Err(error));
            }
        };
        let base_url = format!("http://{}", app.local_addr());
        let (db, tenant_db) = (app.db().clone(), app.tenant_db().clone());
        let (shutdown, stopped) = oneshot::channel();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        Some(Ok(Self {
            base_url,
            http: test_client(),
            db,
            tenant_db,
            database_url,
            tenant_database_url,
            shutdown: Some(shutdown),
            cleanup,
            workspaces_dir,
        }))
    }

    /// The database settings of this test's server, for a `tenantql` process sharing its
    /// database: `DATABASE_URL`, and on PostgreSQL `TENANT_DATABASE_URL`.
    pub fn database_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("DATABASE_URL", self.database_url.clone())];
        if let Some(url) = &self.tenant_database_url {
            env.push(("TENANT_DATABASE_URL", url.clone()));
        }
        env
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base_url)
    }

    /// The server's `/metrics` page.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("the metrics scrape");
        response.text().await.expect("the metrics body")
    }

    /// A client with no credentials.
    pub fn anonymous(&self) -> Client {
        Client {
            url: self.graphql_url(),
            http: self.http.clone(),
            headers: HeaderMap::new(),
        }
    }

    /// Opens a websocket with `protocol`, without `connection_init`.
    pub async fn ws_raw(&self, protocol: &str) -> Ws {
        ws_raw_to(&self.graphql_url(), protocol).await
    }

    /// A `graphql-transport-ws` connection acknowledged for `client`'s credentials.
    pub async fn ws(&self, client: &Client) -> Ws {
        ws_to(&self.graphql_url(), client).await
    }

    /// Signs up a new person with their own organization named `name`.
    pub async fn org(&self, name: &str) -> Org {
        Org::sign_up(self, name).await
    }

    /// The `signup` payload for a new account, panicking on errors.
    pub async fn signup(&self, email: &str, org_name: &str) -> Value {
        let response = self
            .anonymous()
            .gql(
                "mutation($input: SignupInput!) { signup(input: $input) {
                    accessToken refreshToken expiresIn
                    user { id email displayName }
                    organization { id slug name }
                } }",
                json!({ "input": {
                    "email": email, "password": PASSWORD, "displayName": "Test Person", "organizationName": org_name
                }}),
            )
            .await;
        response.data("signup").clone()
    }

    /// Makes a user a platform admin, as an operator does: outside the API.
    pub async fn make_platform_admin(&self, user_id: &str) {
        use sea_orm::sea_query::{Expr, ExprTrait, Query};
        let grant = Query::update()
            .table("users")
            .value("is_platform_admin", true)
            .and_where(Expr::col("id").eq(uuid::Uuid::parse_str(user_id).expect("a user id")))
            .to_owned();
        self.owner_connection()
            .await
            .execute(&grant)
            .await
            .expect("granted");
    }

    /// A raw connection to this test's database as the owner role (not through the server).
    pub async fn owner_connection(&self) -> sea_orm::DatabaseConnection {
        Database::connect(self.database_url.as_str())
            .await
            .expect("owner connection")
    }

    /// A `tenantql worker` process on this test's database, with a 2-second lease.
    pub fn spawn_worker_process(&self) -> Child {
        processes::worker(self)
    }

    /// Another replica: a `tenantql serve` process on this test's database, ready to serve.
    pub async fn spawn_replica(&self, workers: usize) -> Replica {
        self.spawn_replica_with(workers, &[]).await
    }

    /// A replica with more environment (later settings win).
    pub async fn spawn_replica_with(&self, workers: usize, env: &[(&str, &str)]) -> Replica {
        Replica::start(self, workers, env, Stdio::inherit()).await
    }

    /// A replica whose log (its stderr) goes to the file at `log`, for a test to read.
    pub async fn spawn_replica_logging_to(
        &self,
        workers: usize,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Replica {
        let file = std::fs::File::create(log).expect("the log file");
        Replica::start(self, workers, env, Stdio::from(file)).await
    }

    /// Stops the server as SIGTERM would (the database is cleaned up on drop).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Every test server's config before its test adjusts it: the defaults, changed where a
/// test server differs.
fn test_config(database_url: &str, tenant_database_url: Option<&str>, workspaces_dir: PathBuf) -> Config {
    let mut config = Settings {
        database_url: Some(database_url.into()),
        tenant_database_url: tenant_database_url.map(SecretString::from),
        db_max_connections: 4,
        db_owner_max_connections: 2,
        listen_addr: "127.0.0.1:0".parse().expect("address"),
        jwt_secret: Some(JWT_SECRET.into()),
        encryption_keys: Some(ENCRYPTION_KEYS.into()),
        base_domain: Some(BASE_DOMAIN.into()),
        cors_origins: vec!["https://app.example.com".into()],
        // Lets a test speak for several clients through `X-Forwarded-For`.
        trust_forwarded_for: true,
        workers: 2,
        job_lease_seconds: 2,
        job_retry_base_ms: 100,
        shutdown_drain_seconds: 0,
        shutdown_deadline_seconds: 5,
        ws_init_timeout_seconds: 1,
        // Tests and benchmarks open many sockets from one address as one caller; those
        // about the caps set their own.
        ws_max_connections_per_address: 1_000_000,
        ws_max_connections_per_caller: 1_000_000,
        ws_max_operations_per_connection: 1_000_000,
        password_hashing_concurrency: Some(4),
        // The third parties of these tests (model, OAuth provider) are small servers on
        // loopback, which the gate refuses unless allow-listed; tests about refusal
        // empty this list.
        egress_allow: LOOPBACK.into(),
        egress_timeout_seconds: 30,
        public_url: Some("http://tenantql.test".into()),
        workspaces_dir: Some(workspaces_dir),
        // Tests make many requests from one address and one organization; those that
        // are about rate limits set their own.
        plan_limits: UNLIMITED_PLANS.into(),
        api_key_requests_per_minute: 1_000_000,
        auth_attempts_per_minute: 1_000_000,
        pairing_attempts_per_minute: 1_000_000,
        anonymous_requests_per_minute: 1_000_000,
        account_signin_attempts_per_minute: 1_000_000,
        ..Settings::defaults()
    }
    .into_config()
    .expect("the test settings are valid");
    // Not a setting: how soon an idle worker looks for a job; tests wait on their jobs.
    config.worker.poll = Duration::from_millis(50);
    config
}

/// A fresh database for `backend`: the owner's URL, the tenant role's (on PostgreSQL) and
/// how to drop it; `None` when PostgreSQL is unreachable outside CI.
async fn fresh_database(backend: Backend) -> Option<(String, Option<String>, Cleanup)> {
    Some(match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("tenantql-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            (
                format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
                None,
                Cleanup::SqliteDir(dir),
            )
        }
        Backend::Postgres => {
            let name = postgres::fresh_database().await?;
            (
                postgres::url_for(PG_OWNER_ROLE, &name),
                Some(postgres::url_for(APP_ROLE, &name)),
                Cleanup::PostgresDatabase(name),
            )
        }
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = std::fs::remove_dir_all(&self.workspaces_dir);
        self.cleanup.run();
    }
}

impl Cleanup {
    fn run(&self) {
        match self {
            Cleanup::SqliteDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::PostgresDatabase(name) => {
                let name = name.clone();
                // Drop cannot await: drop the database from a thread with its own runtime.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(postgres::drop_database(&name));
                    Some(())
                })
                .join();
            }
        }
    }
}
