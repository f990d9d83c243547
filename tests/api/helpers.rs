//! The test harness: the real server on 127.0.0.1:0 against a fresh database per test, on
//! SQLite and on PostgreSQL, plus a small GraphQL client and actors to call it as.

use std::path::PathBuf;

use migration::APP_ROLE;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;

use tenantql::app::App;
use tenantql::settings::{Config, Settings};
use tenantql::tenancy::{Db, TenantDb};
use tokio::sync::oneshot;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const BASE_DOMAIN: &str = "tenantql.test";
pub const PASSWORD: &str = "Correct-horse-42";
/// One fixed key, so a test can read what the server encrypted.
pub const ENCRYPTION_KEYS: &str = "test1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// `PLAN_LIMITS` no test or benchmark reaches.
pub const UNLIMITED_PLANS: &str = "FREE=1000000/100000000/100000,STARTER=1000000/100000000/100000,\
                                   PRO=1000000/100000000/100000,ENTERPRISE=1000000/100000000/100000";
/// `EGRESS_ALLOW` of the test servers: loopback, where the tests' fake third parties listen.
pub const LOOPBACK: &str = "127.0.0.0/8,::1/128";
/// The role the server's owner pool connects as on PostgreSQL: owns the schema, bypasses RLS
/// for the cross-tenant steps, and is not a superuser. Tenant transactions log in as
/// `APP_ROLE`, which owns nothing and is bound by every policy.
pub const PG_OWNER_ROLE: &str = "tenantql_owner";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named scenario `async fn name(app: TestApp)` once per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                super::$name(app.expect("sqlite always runs")).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}

/// Runs each named scenario `async fn name(app: TestApp)` once per backend, on a server whose
/// config the expression after `=>` (an `FnOnce(&mut Config)`) adjusts.
#[macro_export]
macro_rules! configured_backend_tests {
    ($($name:ident => $adjust:expr),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $adjust).await;
                super::$name(app.expect("sqlite always runs")).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, $adjust).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}

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
        let (database_url, tenant_database_url, cleanup) = match backend {
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
        };
        let workspaces_dir =
            std::env::temp_dir().join(format!("tenantql-workspaces-{}", uuid::Uuid::new_v4()));
        let mut config = Settings {
            database_url: Some(database_url.clone().into()),
            tenant_database_url: tenant_database_url.clone().map(SecretString::from),
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
            workspaces_dir: Some(workspaces_dir.clone()),
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

    /// A client with no credentials.
    pub fn anonymous(&self) -> Client {
        Client {
            url: self.graphql_url(),
            http: self.http.clone(),
            headers: HeaderMap::new(),
        }
    }

    /// Signs up a new person with their own organization named `name`.
    pub async fn org(&self, name: &str) -> Org {
        let email = format!(
            "owner-{}@{}.example.com",
            uuid::Uuid::new_v4().simple(),
            name.to_lowercase()
        );
        let signed_up = self.signup(&email, name).await;
        let org_id = signed_up["organization"]["id"]
            .as_str()
            .expect("organization id")
            .to_owned();
        let owner = self
            .anonymous()
            .bearer(signed_up["accessToken"].as_str().expect("token"));
        Org {
            id: org_id.clone(),
            slug: signed_up["organization"]["slug"]
                .as_str()
                .expect("slug")
                .to_owned(),
            owner: owner.in_org(&org_id),
            owner_user_id: signed_up["user"]["id"].as_str().expect("user id").to_owned(),
        }
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

/// A server process sharing a test's database; killed when dropped.
pub struct Replica {
    child: std::process::Child,
    pub base_url: String,
}

impl Replica {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` for the process to exit on its own (after a signal): its exit
    /// status, or `None` while it still runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the replica's status") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
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

/// A tenant created for a test, with its owner's client.
pub struct Org {
    pub id: String,
    pub slug: String,
    pub owner: Client,
    pub owner_user_id: String,
}

/// A person added to an organization: their client acts in that organization.
pub struct Person {
    pub client: Client,
    pub user_id: String,
}

impl Org {
    /// Signs up a new person and has the owner add them with `role` (OWNER, ADMIN, MEMBER, VIEWER).
    pub async fn member(&self, app: &TestApp, role: &str) -> Person {
        let email = format!(
            "{}-{}@example.com",
            role.to_lowercase(),
            uuid::Uuid::new_v4().simple()
        );
        let signed_up = app.signup(&email, "Own Org").await;
        let added = self
            .owner
            .gql(
                "mutation($input: AddMemberInput!) { addMember(input: $input) { userId role } }",
                json!({ "input": { "email": email, "role": role } }),
            )
            .await;
        assert_eq!(added.data("addMember")["role"], role);
        let token = signed_up["accessToken"].as_str().expect("token");
        Person {
            client: app.anonymous().bearer(token).in_org(&self.id),
            user_id: signed_up["user"]["id"].as_str().expect("user id").to_owned(),
        }
    }

    /// An API key of this organization with `role`, optionally restricted to a project.
    pub async fn api_key(&self, app: &TestApp, role: &str, project_id: Option<&str>) -> Client {
        let created = self
            .owner
            .gql(
                "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { key apiKey { id } } }",
                json!({ "input": { "name": "bot", "role": role, "projectId": project_id } }),
            )
            .await;
        let key = created.data("createApiKey")["key"]
            .as_str()
            .expect("key")
            .to_owned();
        app.anonymous().header("x-api-key", &key)
    }

    /// Creates a project as the owner and returns its id.
    pub async fn project(&self, name: &str) -> String {
        let created = self
            .owner
            .gql(
                "mutation($input: CreateProjectInput!) { createProject(input: $input) { id } }",
                json!({ "input": { "name": name } }),
            )
            .await;
        created.data("createProject")["id"]
            .as_str()
            .expect("project id")
            .to_owned()
    }
}

#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub http: reqwest::Client,
    pub headers: HeaderMap,
}

impl Client {
    pub fn header(&self, name: &str, value: &str) -> Self {
        let mut client = self.clone();
        client.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        client
    }

    pub fn bearer(&self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn in_org(&self, org: &str) -> Self {
        self.header("x-organization-id", org)
    }

    pub fn without(&self, name: &str) -> Self {
        let mut client = self.clone();
        client.headers.remove(name);
        client
    }

    pub async fn gql(&self, query: &str, variables: Value) -> GqlResponse {
        self.post_json(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// POSTs any JSON body (a batch, a persisted query's extensions, …) as this client.
    pub async fn post_json(&self, body: &Value) -> GqlResponse {
        let response = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .json(body)
            .send()
            .await
            .expect("request sent");
        GqlResponse::read(response).await
    }
}

#[derive(Debug)]
pub struct GqlResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl GqlResponse {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    /// The named root field, asserting the response had no errors.
    #[track_caller]
    pub fn data(&self, field: &str) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {:#}",
            self.body
        );
        &self.body["data"][field]
    }

    /// The first error's code.
    #[track_caller]
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code: {:#}", self.body))
    }

    /// The first error's `field` extension (for BAD_USER_INPUT).
    pub fn error_field(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["field"].as_str()
    }
}

/// The PostgreSQL side of the harness: a template migrated once per migration set, and a
/// fresh database cloned from it per test.
pub mod postgres {
    use super::*;

    fn admin_url() -> String {
        std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    pub fn url_for(role: &str, database: &str) -> String {
        let admin = admin_url();
        let (_, rest) = admin.split_once("://").expect("postgres url");
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split('/').next().unwrap_or(host);
        // On loopback, TLS only costs both sides CPU (sqlx would negotiate it by default).
        let loopback = host.starts_with("127.0.0.1") || host.starts_with("localhost");
        let tls = if loopback { "?sslmode=disable" } else { "" };
        format!("postgres://{role}@{host}/{database}{tls}")
    }

    fn required() -> bool {
        std::env::var("CI").is_ok_and(|value| value == "true") || std::env::var("REQUIRE_POSTGRES").is_ok()
    }

    /// The migrations' fingerprint: a template is reused only by the migrations that made it.
    fn template_name() -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migration/src");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("migration sources")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            std::fs::read(&file).expect("migration file").hash(&mut hasher);
        }
        format!("tenantql_tpl_{:016x}", hasher.finish())
    }

    async fn admin() -> Option<sea_orm::DatabaseConnection> {
        match Database::connect(admin_url()).await {
            Ok(conn) => Some(conn),
            Err(error) if required() => panic!("PostgreSQL is required (CI) but unreachable: {error}"),
            Err(error) => {
                eprintln!("skipping: PostgreSQL unreachable ({error}); set CI=true to make this fail");
                None
            }
        }
    }

    async fn exec(conn: &impl ConnectionTrait, sql: &str) {
        conn.execute_unprepared(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    pub async fn fresh_database() -> Option<String> {
        let admin = admin().await?;
        let template = template_name();
        // One process at a time prepares the shared role and template (tests run as processes).
        exec(&admin, "SELECT pg_advisory_lock(727274)").await;
        // The roles are the cluster's, shared by every run; kept as a deployment has them
        // (README, "Running on PostgreSQL"), whatever an older run left.
        exec(
            &admin,
            &format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PG_OWNER_ROLE}') THEN
                     CREATE ROLE {PG_OWNER_ROLE} LOGIN NOSUPERUSER BYPASSRLS;
                   END IF;
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                     CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
                   ELSIF NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                     ALTER ROLE {APP_ROLE} LOGIN;
                   END IF;
                 END $$;
                 GRANT {APP_ROLE} TO {PG_OWNER_ROLE}"
            ),
        )
        .await;
        let exists = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_database WHERE datname = $1",
                [template.clone().into()],
            ))
            .await
            .expect("catalog query")
            .is_some();
        if !exists {
            let building = format!("{template}_building");
            exec(
                &admin,
                &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
            )
            .await;
            exec(
                &admin,
                &format!("CREATE DATABASE {building} OWNER {PG_OWNER_ROLE}"),
            )
            .await;
            let owner_url = SecretString::from(url_for(PG_OWNER_ROLE, &building));
            let db = Db::connect(&owner_url, 1).await.expect("template connection");
            db.migrate().await.expect("template migrates");
            db.close().await;
            exec(&admin, &format!("ALTER DATABASE {building} RENAME TO {template}")).await;
        }
        exec(&admin, "SELECT pg_advisory_unlock(727274)").await;
        let name = format!("tenantql_test_{}", uuid::Uuid::new_v4().simple());
        exec(
            &admin,
            &format!("CREATE DATABASE {name} TEMPLATE {template} OWNER {PG_OWNER_ROLE}"),
        )
        .await;
        let _ = admin.close().await;
        Some(name)
    }

    /// A login role of its own for one test, a member of `member_of`; drop it with
    /// [`drop_role`].
    pub async fn create_login_role(name: &str, member_of: &[&str]) {
        let admin = admin().await.expect("PostgreSQL");
        exec(
            &admin,
            &format!("CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS"),
        )
        .await;
        for role in member_of {
            exec(&admin, &format!("GRANT {role} TO {name}")).await;
        }
        let _ = admin.close().await;
    }

    pub async fn drop_role(name: &str) {
        if let Ok(admin) = Database::connect(admin_url()).await {
            let _ = admin
                .execute_unprepared(&format!("DROP ROLE IF EXISTS {name}"))
                .await;
            let _ = admin.close().await;
        }
    }

    pub async fn drop_database(name: &str) {
        if let Ok(admin) = Database::connect(admin_url()).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// An access token for `user` that expires in `seconds`, signed like the server's.
pub fn access_token(user: &str, seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": user, "sid": uuid::Uuid::now_v7(), "iss": "tenantql", "aud": "tenantql-api",
        "iat": now, "nbf": now, "exp": now + seconds });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("token")
}

/// A `graphql-transport-ws` (or legacy `graphql-ws`) client over a real websocket.
pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

/// How a websocket conversation ended, when it did.
#[derive(Debug, PartialEq, Eq)]
pub enum WsEnd {
    Closed(Option<u16>),
    TimedOut,
}

/// Opens a websocket with `protocol` to the server whose GraphQL endpoint is `graphql_url`
/// (`http://…/graphql`: this test's server or a replica), without `connection_init`.
pub async fn ws_raw_to(graphql_url: &str, protocol: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = graphql_url
        .replace("http://", "ws://")
        .into_client_request()
        .expect("ws request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("protocol"));
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    Ws { socket }
}

/// A `graphql-transport-ws` connection to `graphql_url`, acknowledged for `client`'s
/// credentials (whatever server `client` itself talks to).
pub async fn ws_to(graphql_url: &str, client: &Client) -> Ws {
    let mut ws = ws_raw_to(graphql_url, "graphql-transport-ws").await;
    ws.send(json!({ "type": "connection_init", "payload": client.init_payload() }))
        .await;
    let ack = ws.receive().await.expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws
}

impl TestApp {
    /// Opens a websocket with `protocol`, without `connection_init`.
    pub async fn ws_raw(&self, protocol: &str) -> Ws {
        ws_raw_to(&self.graphql_url(), protocol).await
    }

    /// A `graphql-transport-ws` connection acknowledged for `client`'s credentials.
    pub async fn ws(&self, client: &Client) -> Ws {
        ws_to(&self.graphql_url(), client).await
    }

    /// A `tenantql worker` process on this test's database, with a 2-second lease.
    pub fn spawn_worker_process(&self) -> std::process::Child {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenantql"))
            .arg("worker")
            .envs(self.database_env())
            .env("JWT_SECRET", JWT_SECRET)
            .env("ENCRYPTION_KEYS", ENCRYPTION_KEYS)
            .env("WORKERS", "1")
            .env("JOB_LEASE_SECONDS", "2")
            .env("JOB_RETRY_BASE_MS", "100")
            .env("AUTO_MIGRATE", "false")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the worker process starts")
    }

    /// Another replica: a `tenantql serve` process on this test's database, ready to serve.
    pub async fn spawn_replica(&self, workers: usize) -> Replica {
        self.spawn_replica_with(workers, &[]).await
    }

    /// A replica with more environment (later settings win).
    pub async fn spawn_replica_with(&self, workers: usize, env: &[(&str, &str)]) -> Replica {
        self.spawn_replica_process(workers, env, std::process::Stdio::inherit())
            .await
    }

    /// A replica whose log (its stderr) goes to the file at `log`, for a test to read.
    pub async fn spawn_replica_logging_to(
        &self,
        workers: usize,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Replica {
        let file = std::fs::File::create(log).expect("the log file");
        self.spawn_replica_process(workers, env, std::process::Stdio::from(file))
            .await
    }

    async fn spawn_replica_process(
        &self,
        workers: usize,
        env: &[(&str, &str)],
        stderr: std::process::Stdio,
    ) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("its address")
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tenantql"))
            .envs(self.database_env())
            .env("JWT_SECRET", JWT_SECRET)
            .env("ENCRYPTION_KEYS", ENCRYPTION_KEYS)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("PLAN_LIMITS", UNLIMITED_PLANS)
            .env("ANONYMOUS_REQUESTS_PER_MINUTE", "1000000")
            .env("WS_MAX_CONNECTIONS_PER_ADDRESS", "1000000")
            .env("WS_MAX_CONNECTIONS_PER_CALLER", "1000000")
            .env("WORKERS", workers.to_string())
            .env("AUTO_MIGRATE", "false")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the server process starts");
        let replica = Replica {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while test_client()
            .get(format!("{}/readyz", replica.base_url))
            .send()
            .await
            .map_or(true, |response| !response.status().is_success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the replica never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        replica
    }

    /// Stops the server as SIGTERM would (the database is cleaned up on drop).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Client {
    /// The client's credentials and organization as a `connection_init` payload.
    pub fn init_payload(&self) -> Value {
        let mut payload = serde_json::Map::new();
        for (header, key) in [
            ("authorization", "Authorization"),
            ("x-api-key", "X-Api-Key"),
            ("x-organization-id", "X-Organization-Id"),
        ] {
            if let Some(value) = self.headers.get(header) {
                payload.insert(
                    key.into(),
                    Value::String(value.to_str().expect("ascii header").to_owned()),
                );
            }
        }
        Value::Object(payload)
    }
}

impl Ws {
    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(
            json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }),
        )
        .await;
    }

    /// The next protocol message other than keep-alives, or how the conversation ended.
    pub async fn next_message(&mut self, within: Duration) -> Result<Value, WsEnd> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = match tokio::time::timeout(within, self.socket.next()).await {
                Err(_) => return Err(WsEnd::TimedOut),
                Ok(None) | Ok(Some(Err(_))) => return Err(WsEnd::Closed(None)),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("json message");
                    if matches!(value["type"].as_str(), Some("ping" | "pong" | "ka")) {
                        continue;
                    }
                    return Ok(value);
                }
                Message::Close(frame) => return Err(WsEnd::Closed(frame.map(|frame| u16::from(frame.code)))),
                _ => continue,
            }
        }
    }

    pub async fn receive(&mut self) -> Option<Value> {
        self.next_message(Duration::from_secs(10)).await.ok()
    }

    /// Payloads of `next` messages for `id` until its `complete` or `error`, which is returned too.
    pub async fn collect(&mut self, id: &str, within: Duration) -> (Vec<Value>, Value) {
        let mut items = Vec::new();
        loop {
            let message = self
                .next_message(within)
                .await
                .unwrap_or_else(|end| panic!("stream {id} ended: {end:?}"));
            if message["id"] != id {
                continue;
            }
            match message["type"].as_str() {
                Some("next") => items.push(message["payload"].clone()),
                _ => return (items, message),
            }
        }
    }
}

/// The tests' own HTTP client, which calls the server under test as its clients do.
#[expect(
    clippy::disallowed_methods,
    reason = "a test client calling the server under test, not the server's egress"
)]
pub fn test_client() -> reqwest::Client {
    reqwest::Client::new()
}
