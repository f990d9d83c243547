//! Command line and environment: every setting is a flag and an environment variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, FromArgMatches, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::governance::intake::DocumentLimits;
use crate::governance::persisted::ApqConfig;
use crate::governance::rate_limits::RateLimitConfig;
use crate::graphql::limits::QueryLimits;
use crate::http::websocket_limits::WebsocketLimits;
use crate::integrations::credentials::ProviderEndpoints;
use crate::integrations::crypto::Keyring;
use crate::integrations::egress::{AllowList, EgressConfig, Policy};
use crate::integrations::oauth::{ProviderConfig, parse_providers};
use crate::jobs::WorkerConfig;
use crate::runners::Prices;
use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Raw settings as given; [`Settings::into_config`] checks them and fills the embedded defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// postgres://… or sqlite://…; without it, SQLite at DATA_DIR/tenantql.db.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// On PostgreSQL, postgres://… as the tenant login role: owns nothing, no superuser,
    /// BYPASSRLS or CREATEROLE, holds tenantql_app's privileges. Tenant transactions run on
    /// it; DATABASE_URL's owner role serves only migrations and the cross-tenant steps.
    /// Required to serve or run workers on PostgreSQL; not used on SQLite.
    #[arg(long, env = "TENANT_DATABASE_URL", global = true, hide_env_values = true)]
    pub tenant_database_url: Option<SecretString>,
    /// Maximum pooled connections for tenant transactions (on SQLite, the one pool's).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,
    /// Maximum pooled connections as the owner role on PostgreSQL, for the cross-tenant
    /// steps: sign-in, membership and API-key lookups, job claims, the replica relay.
    #[arg(long, env = "DB_OWNER_MAX_CONNECTIONS", default_value_t = 4, global = true)]
    pub db_owner_max_connections: u32,
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000", global = true)]
    pub listen_addr: SocketAddr,
    /// HS256 key for access tokens, at least 32 bytes; generated into DATA_DIR outside production.
    #[arg(long, env = "JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,
    /// With `acme.example.com` requests to `<org-slug>.acme.example.com` name their organization.
    #[arg(long, env = "BASE_DOMAIN", global = true)]
    pub base_domain: Option<String>,
    /// Comma-separated origins allowed to call the API from a browser.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', global = true)]
    pub cors_origins: Vec<String>,
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
    #[arg(long, env = "ENVIRONMENT", value_enum, default_value_t = Environment::Development, global = true)]
    pub environment: Environment,
    /// Apply pending migrations at start. Turn off when several replicas start at once and
    /// run `tenantql migrate` as a one-shot step instead.
    #[arg(long, env = "AUTO_MIGRATE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub auto_migrate: bool,
    /// Jobs this process runs at once (0 for an API-only replica). Jobs mostly wait on
    /// outside services, so this can well exceed the cores.
    #[arg(long, env = "WORKERS", default_value_t = 8, global = true)]
    pub workers: usize,
    /// Seconds a worker's claim on a job lasts without renewal; a crashed worker's job is
    /// retried after this.
    #[arg(long, env = "JOB_LEASE_SECONDS", default_value_t = 30, global = true)]
    pub job_lease_seconds: u64,
    /// Milliseconds before the first retry of a failed job; doubled for each further one.
    #[arg(long, env = "JOB_RETRY_BASE_MS", default_value_t = 1_000, global = true)]
    pub job_retry_base_ms: u64,
    /// Websockets open at once from one client address (an IPv6 /64); more are refused 429.
    #[arg(
        long,
        env = "WS_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256,
        global = true
    )]
    pub ws_max_connections_per_address: usize,
    /// Websockets open at once for one user or API key; more are closed (1008) at init.
    #[arg(
        long,
        env = "WS_MAX_CONNECTIONS_PER_CALLER",
        default_value_t = 64,
        global = true
    )]
    pub ws_max_connections_per_caller: usize,
    /// Operations running at once on one websocket; more are answered with an error.
    #[arg(
        long,
        env = "WS_MAX_OPERATIONS_PER_CONNECTION",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_operations_per_connection: usize,
    /// Seconds a websocket client has to send `connection_init` before it is closed (4408).
    #[arg(long, env = "WS_INIT_TIMEOUT_SECONDS", default_value_t = 10, global = true)]
    pub ws_init_timeout_seconds: u64,
    /// Seconds the server keeps serving after SIGTERM while `/readyz` already answers 503,
    /// so that load balancers stop sending it new clients.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECONDS", default_value_t = 5, global = true)]
    pub shutdown_drain_seconds: u64,
    /// Seconds from SIGTERM to exit: the drain, then open requests and running job steps
    /// finishing. Set the orchestrator's termination grace period above it.
    #[arg(long, env = "SHUTDOWN_DEADLINE_SECONDS", default_value_t = 25, global = true)]
    pub shutdown_deadline_seconds: u64,
    /// Take the client address from the last `X-Forwarded-For` entry, the one the proxy in
    /// front of the server added. Only behind such a proxy: otherwise clients choose it.
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub trust_forwarded_for: bool,
    /// Deepest selection nesting an operation may have.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 12, global = true)]
    pub max_depth: usize,
    /// Most complexity units one operation may cost (a field is 1, a list its page size
    /// times its selection).
    #[arg(long, env = "MAX_COMPLEXITY", default_value_t = 1_000, global = true)]
    pub max_complexity: usize,
    /// Most aliased fields one document may use.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 30, global = true)]
    pub max_aliases: usize,
    /// Deepest nesting of brackets (`{`, `[`, `(`) a document may have; checked on its text
    /// before it is parsed.
    #[arg(long, env = "MAX_NESTING", default_value_t = 64, global = true)]
    pub max_nesting: usize,
    /// Most lexical tokens one document may have; checked before it is parsed.
    #[arg(long, env = "MAX_TOKENS", default_value_t = 15_000, global = true)]
    pub max_tokens: usize,
    /// Most directives one document may use; checked before it is parsed.
    #[arg(long, env = "MAX_DIRECTIVES", default_value_t = 50, global = true)]
    pub max_directives: usize,
    /// Most top-level fields one operation may select.
    #[arg(long, env = "MAX_ROOT_FIELDS", default_value_t = 10, global = true)]
    pub max_root_fields: usize,
    /// Most operations in one batched POST; 0 (the default) refuses batches.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 0, global = true)]
    pub max_batch_size: usize,
    /// Serve introspection and field suggestions; by default on outside production only.
    #[arg(long, env = "INTROSPECTION", action = clap::ArgAction::Set, global = true)]
    pub introspection: Option<bool>,
    /// Per-plan limits as PLAN=requests/complexity/jobs per minute, comma-separated, over the
    /// defaults (FREE=300/20000/20, STARTER=1200/100000/120, PRO=6000/500000/600,
    /// ENTERPRISE=30000/2500000/3000).
    #[arg(long, env = "PLAN_LIMITS", default_value = "", global = true)]
    pub plan_limits: String,
    /// Requests per minute one API key may make, within its organization's limits.
    #[arg(
        long,
        env = "API_KEY_REQUESTS_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub api_key_requests_per_minute: u32,
    /// signup, login and refreshSession attempts per minute from one client address.
    #[arg(long, env = "AUTH_ATTEMPTS_PER_MINUTE", default_value_t = 10, global = true)]
    pub auth_attempts_per_minute: u32,
    /// login attempts per minute on one account, from any address.
    #[arg(
        long,
        env = "ACCOUNT_SIGNIN_ATTEMPTS_PER_MINUTE",
        default_value_t = 30,
        global = true
    )]
    pub account_signin_attempts_per_minute: u32,
    /// Operations with no tenant (anonymous, or a person naming no organization) per minute
    /// from one client address (an IPv6 /64).
    #[arg(
        long,
        env = "ANONYMOUS_REQUESTS_PER_MINUTE",
        default_value_t = 300,
        global = true
    )]
    pub anonymous_requests_per_minute: u32,
    /// Seconds of a minute's quota an organization, API key or client address may spend at
    /// once.
    #[arg(long, env = "RATE_LIMIT_BURST_SECONDS", default_value_t = 10, global = true)]
    pub rate_limit_burst_seconds: u32,
    /// Password hashes (19 MiB of memory each) computed at once; more wait in a short
    /// queue, and beyond it are refused with RATE_LIMITED. By default the number of cores.
    #[arg(long, env = "PASSWORD_HASHING_CONCURRENCY", global = true)]
    pub password_hashing_concurrency: Option<usize>,
    /// Keys for provider credentials and OAuth tokens at rest, `id:base64-32-bytes`,
    /// comma-separated, newest first (it encrypts; all decrypt). Generated into DATA_DIR
    /// outside production.
    #[arg(long, env = "ENCRYPTION_KEYS", global = true, hide_env_values = true)]
    pub encryption_keys: Option<SecretString>,
    /// What `llm` jobs cost: `model=input/output` in cents per million tokens, comma-separated,
    /// with `*` for models not listed.
    #[arg(long, env = "LLM_PRICES", default_value = Prices::DEFAULT, global = true)]
    pub llm_prices: String,
    /// The providers an organization may store an `llm` credential for without giving its
    /// own endpoint, and where such credentials are sent: `name=base-url`, comma-separated.
    #[arg(long, env = "LLM_PROVIDERS", default_value = ProviderEndpoints::DEFAULT, global = true)]
    pub llm_providers: String,
    /// Exceptions to the egress gate, which otherwise refuses loopback, private, link-local
    /// and other non-public addresses: comma-separated CIDRs (`10.0.0.0/8`), addresses,
    /// `address:port` (`127.0.0.1:11434`, for URLs naming that address) and `host[:port]`
    /// (`ollama.internal:11434`, wherever that name resolves).
    #[arg(long, env = "EGRESS_ALLOW", default_value = "", global = true)]
    pub egress_allow: String,
    /// The most bytes an answer to an outbound call may hold; longer ones are cut off.
    #[arg(
        long,
        env = "EGRESS_MAX_RESPONSE_BYTES",
        default_value_t = EgressConfig::DEFAULT_MAX_RESPONSE_BYTES,
        global = true
    )]
    pub egress_max_response_bytes: usize,
    /// The longest an outbound call may take, its answer included, in seconds.
    #[arg(
        long,
        env = "EGRESS_TIMEOUT_SECONDS",
        default_value_t = EgressConfig::DEFAULT_TIMEOUT_SECONDS,
        global = true
    )]
    pub egress_timeout_seconds: u64,
    /// OAuth2 providers as a JSON array of {name, authorizeUrl, tokenUrl, apiUrl, clientId,
    /// clientSecret, scopes}.
    #[arg(
        long,
        env = "OAUTH_PROVIDERS",
        default_value = "",
        global = true,
        hide_env_values = true
    )]
    pub oauth_providers: String,
    /// The server's address as browsers reach it (OAuth callbacks; https makes the OAuth
    /// cookie Secure); by default http://LISTEN_ADDR.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Where the browser goes after an OAuth connection, with `status`, `provider` (and
    /// `message`) added to the query; without it the server shows a small page.
    #[arg(long, env = "OAUTH_RETURN_URL", global = true)]
    pub oauth_return_url: Option<String>,
    /// Pairing codes a bot's API key may try per minute.
    #[arg(
        long,
        env = "PAIRING_ATTEMPTS_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub pairing_attempts_per_minute: u32,
    /// redis://… to share rate limits across replicas; without it each replica limits alone.
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<SecretString>,
    /// Largest document an APQ registration stores; longer ones run without being stored.
    #[arg(long, env = "APQ_MAX_BYTES", default_value_t = 16_384, global = true)]
    pub apq_max_bytes: usize,
    /// Hours an APQ registration is served after it was last registered.
    #[arg(long, env = "APQ_TTL_HOURS", default_value_t = 168, global = true)]
    pub apq_ttl_hours: u64,
    /// An Apollo persisted-query manifest (JSON) whose operations are trusted documents for
    /// every organization.
    #[arg(long, env = "PERSISTED_QUERY_MANIFEST", global = true)]
    pub persisted_query_manifest: Option<PathBuf>,
    /// Where organizations' workspaces (agent artifacts) live, one directory each; by default
    /// DATA_DIR/workspaces.
    #[arg(long, env = "WORKSPACES_DIR", global = true)]
    pub workspaces_dir: Option<PathBuf>,
    /// Where the embedded default keeps its SQLite file and generated secrets.
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
}

/// How the server stops on SIGTERM or SIGINT.
#[derive(Debug, Clone, Copy)]
pub struct Shutdown {
    /// Serving on while `/readyz` says 503.
    pub drain: Duration,
    /// From the signal to exit, drain included.
    pub deadline: Duration,
}

/// Checked settings: what the rest of the server reads.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    /// The tenant login role's URL; `None` on SQLite.
    pub tenant_database_url: Option<SecretString>,
    pub db_max_connections: u32,
    pub db_owner_max_connections: u32,
    pub listen_addr: SocketAddr,
    pub jwt_secret: SecretString,
    pub base_domain: Option<String>,
    pub cors_origins: Vec<String>,
    pub trust_forwarded_for: bool,
    pub log_format: LogFormat,
    pub environment: Environment,
    pub auto_migrate: bool,
    pub workers: usize,
    pub worker: WorkerConfig,
    pub shutdown: Shutdown,
    pub ws_init_timeout: Duration,
    pub websocket_limits: WebsocketLimits,
    pub query_limits: QueryLimits,
    pub rate_limits: RateLimitConfig,
    /// Password hashes computed at once.
    pub password_hashing_concurrency: usize,
    pub persisted_query_manifest: Option<PathBuf>,
    pub apq: ApqConfig,
    pub redis_url: Option<SecretString>,
    pub encryption_keys: SecretString,
    pub llm_prices: Prices,
    pub llm_providers: ProviderEndpoints,
    pub egress: EgressConfig,
    pub oauth_providers: Vec<ProviderConfig>,
    pub public_url: String,
    pub oauth_return_url: Option<String>,
    pub workspaces_dir: PathBuf,
}

const MIN_JWT_SECRET_BYTES: usize = 32;

impl Settings {
    /// Every setting at its default, as `tenantql` without flags would have it, whatever the
    /// environment holds: where tests and benchmarks start, changing only what they are
    /// about, so that a new setting reaches them with its one default.
    pub fn defaults() -> Self {
        let command =
            Self::augment_args(clap::Command::new("tenantql")).mut_args(|arg| arg.env(None::<&str>));
        command
            .try_get_matches_from(["tenantql"])
            .and_then(|matches| Self::from_arg_matches(&matches))
            .expect("every setting has a default")
    }

    /// Checks every setting and, outside production, fills in the embedded defaults:
    /// SQLite under DATA_DIR and a JWT secret generated there once.
    pub fn into_config(self) -> anyhow::Result<Config> {
        let production = self.environment == Environment::Production;
        let (database_url, tenant_database_url) = self.database_urls()?;
        let jwt_secret = self.jwt_secret(production)?;
        let encryption_keys = self.encryption_keys(production)?;
        let base_domain = self.base_domain()?;
        let cors_origins = self.cors_origins()?;
        let worker = self.worker()?;
        let query_limits = self.query_limits(production)?;
        let egress = self.egress(production)?;
        let rate_limits = self.rate_limits()?;
        let llm_prices = Prices::parse(&self.llm_prices)?;
        let llm_providers = ProviderEndpoints::parse(&self.llm_providers)?;
        let oauth_providers = parse_providers(&self.oauth_providers)?;
        Ok(Config {
            database_url,
            tenant_database_url,
            db_max_connections: self.db_max_connections,
            db_owner_max_connections: self.db_owner_max_connections,
            listen_addr: self.listen_addr,
            jwt_secret,
            base_domain,
            cors_origins,
            trust_forwarded_for: self.trust_forwarded_for,
            log_format: self.log_format,
            environment: self.environment,
            auto_migrate: self.auto_migrate,
            workers: self.workers,
            worker,
            shutdown: self.shutdown(),
            ws_init_timeout: Duration::from_secs(self.ws_init_timeout_seconds.max(1)),
            websocket_limits: self.websocket_limits(),
            query_limits,
            rate_limits,
            password_hashing_concurrency: self.password_hashing_concurrency(),
            apq: self.apq(),
            public_url: self.public_url(),
            workspaces_dir: self.workspaces_dir(),
            persisted_query_manifest: self.persisted_query_manifest,
            redis_url: self.redis_url,
            encryption_keys,
            llm_prices,
            llm_providers,
            egress,
            oauth_providers,
            oauth_return_url: self.oauth_return_url,
        })
    }

    /// The owner role's database (by default SQLite under DATA_DIR), the tenant role's, and
    /// room in their pools.
    fn database_urls(&self) -> anyhow::Result<(SecretString, Option<SecretString>)> {
        let database_url = match &self.database_url {
            Some(url) => {
                let scheme = scheme(url);
                if !matches!(scheme, "postgres" | "postgresql" | "sqlite") {
                    bail!("DATABASE_URL must start with postgres:// or sqlite:// (got scheme {scheme:?})");
                }
                url.clone()
            }
            None => {
                ensure_dir(&self.data_dir)?;
                let path = self.data_dir.join("tenantql.db");
                SecretString::from(format!("sqlite://{}?mode=rwc", path.display()))
            }
        };
        let tenant_database_url = match &self.tenant_database_url {
            Some(_) if !database_url.expose_secret().starts_with("postgres") => {
                bail!("TENANT_DATABASE_URL applies to a PostgreSQL DATABASE_URL only (SQLite has no roles)");
            }
            Some(url) => {
                let scheme = scheme(url);
                if !matches!(scheme, "postgres" | "postgresql") {
                    bail!("TENANT_DATABASE_URL must start with postgres:// (got scheme {scheme:?})");
                }
                Some(url.clone())
            }
            None => None,
        };
        if self.db_max_connections == 0 || self.db_owner_max_connections == 0 {
            bail!("DB_MAX_CONNECTIONS and DB_OWNER_MAX_CONNECTIONS must be at least 1");
        }
        Ok((database_url, tenant_database_url))
    }

    /// The access tokens' key: required in production, else generated into DATA_DIR once.
    fn jwt_secret(&self, production: bool) -> anyhow::Result<SecretString> {
        let jwt_secret = match &self.jwt_secret {
            Some(secret) => secret.clone(),
            None if production => bail!("JWT_SECRET is required when ENVIRONMENT=production"),
            None => generated_secret(&self.data_dir, "jwt_secret", || {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 48]>())
            })?,
        };
        if jwt_secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
            bail!("JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long");
        }
        Ok(jwt_secret)
    }

    /// The keyring for secrets at rest: required in production, else generated into
    /// DATA_DIR once.
    fn encryption_keys(&self, production: bool) -> anyhow::Result<SecretString> {
        let encryption_keys = match &self.encryption_keys {
            Some(keys) => keys.clone(),
            None if production => bail!("ENCRYPTION_KEYS is required when ENVIRONMENT=production"),
            None => generated_secret(&self.data_dir, "encryption_keys", || {
                Keyring::generate_entry("k1")
            })?,
        };
        Keyring::parse(encryption_keys.expose_secret())?;
        Ok(encryption_keys)
    }

    /// The domain whose subdomains name organizations, lower case without outer dots.
    fn base_domain(&self) -> anyhow::Result<Option<String>> {
        let base_domain = self
            .base_domain
            .as_ref()
            .map(|domain| domain.trim_matches('.').to_ascii_lowercase());
        if let Some(domain) = &base_domain
            && (domain.is_empty() || domain.contains(['/', ':', ' ']))
        {
            bail!("BASE_DOMAIN must be a bare host name such as example.com (got {domain:?})");
        }
        Ok(base_domain)
    }

    /// Browser origins allowed to call, without trailing slashes or empty entries.
    fn cors_origins(&self) -> anyhow::Result<Vec<String>> {
        let cors_origins = self
            .cors_origins
            .iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect::<Vec<_>>();
        for origin in &cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                bail!(
                    "CORS_ORIGINS entries must be origins such as https://app.example.com (got {origin:?})"
                );
            }
        }
        Ok(cors_origins)
    }

    /// How long a worker's claim lasts and how soon a failed job is retried.
    fn worker(&self) -> anyhow::Result<WorkerConfig> {
        if self.job_lease_seconds < 2 {
            bail!("JOB_LEASE_SECONDS must be at least 2");
        }
        Ok(WorkerConfig {
            lease: Duration::from_secs(self.job_lease_seconds),
            retry_base: Duration::from_millis(self.job_retry_base_ms),
            poll: Duration::from_millis(250),
        })
    }

    /// The drain can last no longer than the whole shutdown.
    fn shutdown(&self) -> Shutdown {
        Shutdown {
            drain: Duration::from_secs(self.shutdown_drain_seconds.min(self.shutdown_deadline_seconds)),
            deadline: Duration::from_secs(self.shutdown_deadline_seconds),
        }
    }

    /// What one document and one operation may hold; introspection is on outside production
    /// unless set.
    fn query_limits(&self, production: bool) -> anyhow::Result<QueryLimits> {
        if self.max_complexity == 0 || self.max_depth == 0 {
            bail!("MAX_DEPTH and MAX_COMPLEXITY must be at least 1");
        }
        if self.max_nesting < self.max_depth || self.max_tokens == 0 {
            bail!("MAX_NESTING must be at least MAX_DEPTH, and MAX_TOKENS at least 1");
        }
        Ok(QueryLimits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            document: DocumentLimits {
                max_nesting: self.max_nesting,
                max_tokens: self.max_tokens,
                max_directives: self.max_directives,
                max_aliases: self.max_aliases,
            },
            max_root_fields: self.max_root_fields.max(1),
            max_batch_size: self.max_batch_size,
            introspection: self.introspection.unwrap_or(!production),
        })
    }

    /// The rate limits' buckets; every plan must afford the costliest operation allowed.
    fn rate_limits(&self) -> anyhow::Result<RateLimitConfig> {
        if self.api_key_requests_per_minute == 0 || self.auth_attempts_per_minute == 0 {
            bail!("API_KEY_REQUESTS_PER_MINUTE and AUTH_ATTEMPTS_PER_MINUTE must be at least 1");
        }
        let rate_limits = RateLimitConfig {
            api_key_requests_per_minute: self.api_key_requests_per_minute,
            auth_attempts_per_minute: self.auth_attempts_per_minute,
            account_signins_per_minute: self.account_signin_attempts_per_minute.max(1),
            anonymous_requests_per_minute: self.anonymous_requests_per_minute.max(1),
            burst_seconds: self.rate_limit_burst_seconds.clamp(1, 60),
            max_operation_cost: u32::try_from(self.max_complexity).unwrap_or(u32::MAX),
            pairing_attempts_per_minute: self.pairing_attempts_per_minute.max(1),
            ..RateLimitConfig::default()
        }
        .with_plan_overrides(&self.plan_limits)?;
        if let Some((plan, _)) = rate_limits
            .plans
            .iter()
            .find(|(_, quota)| (quota.complexity as usize) < self.max_complexity)
        {
            bail!(
                "PLAN_LIMITS gives {plan:?} fewer complexity units a minute than MAX_COMPLEXITY: its largest operations could never run"
            );
        }
        Ok(rate_limits)
    }

    /// Every cap is at least one.
    fn websocket_limits(&self) -> WebsocketLimits {
        WebsocketLimits {
            connections_per_address: self.ws_max_connections_per_address.max(1),
            connections_per_caller: self.ws_max_connections_per_caller.max(1),
            operations_per_connection: self.ws_max_operations_per_connection.max(1),
        }
    }

    /// By default one hash per core; at least one.
    fn password_hashing_concurrency(&self) -> usize {
        self.password_hashing_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1)
    }

    /// What an APQ registration stores, and for how long.
    fn apq(&self) -> ApqConfig {
        ApqConfig {
            max_bytes: self.apq_max_bytes,
            ttl: Duration::from_secs(self.apq_ttl_hours.saturating_mul(3_600)),
        }
    }

    /// The gate for outbound calls; production sends to https only.
    fn egress(&self, production: bool) -> anyhow::Result<EgressConfig> {
        if self.egress_max_response_bytes == 0 || self.egress_timeout_seconds == 0 {
            bail!("EGRESS_MAX_RESPONSE_BYTES and EGRESS_TIMEOUT_SECONDS must be at least 1");
        }
        Ok(EgressConfig {
            policy: Policy {
                allow: AllowList::parse(&self.egress_allow)?,
                require_https: production,
            },
            max_response_bytes: self.egress_max_response_bytes,
            timeout: Duration::from_secs(self.egress_timeout_seconds),
        })
    }

    /// By default the listening address over http.
    fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen_addr))
    }

    /// By default under DATA_DIR.
    fn workspaces_dir(&self) -> PathBuf {
        self.workspaces_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("workspaces"))
    }
}

/// A database URL's scheme, which names its backend.
fn scheme(url: &SecretString) -> &str {
    url.expose_secret().split(':').next().unwrap_or_default()
}

fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// Reads a secret generated earlier into `dir`, or generates and stores it (readable by
/// the owner only), so restarts keep sessions valid.
fn generated_secret(
    dir: &Path,
    name: &str,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<SecretString> {
    ensure_dir(dir)?;
    let path = dir.join(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    let secret = generate();
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(path = %path.display(), "generated a new {name}; set it in the environment for production");
    Ok(SecretString::from(secret))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The settings as `tenantql` parses them, without a subcommand.
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        settings: Settings,
    }

    fn settings(args: &[&str]) -> Settings {
        let dir = std::env::temp_dir().join(format!("tenantql-settings-{}", uuid::Uuid::new_v4()));
        let mut argv = vec!["tenantql", "--data-dir", dir.to_str().expect("utf-8 path")];
        argv.extend_from_slice(args);
        Flags::try_parse_from(argv).expect("parses").settings
    }

    fn error(args: &[&str]) -> String {
        format!("{:#}", settings(args).into_config().expect_err("must be refused"))
    }

    #[test]
    fn the_embedded_default_needs_no_settings() {
        let config = settings(&[]).into_config().expect("defaults are valid");
        assert!(config.database_url.expose_secret().starts_with("sqlite://"));
        assert!(config.jwt_secret.expose_secret().len() >= MIN_JWT_SECRET_BYTES);
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8000");
        assert!(config.egress.policy.allow.is_empty());
        assert!(!config.egress.policy.require_https);
        assert_eq!(
            config.llm_providers.get("openai"),
            Some("https://api.openai.com/v1")
        );
    }

    #[test]
    fn the_defaults_are_the_flags_defaults() {
        let dir = std::env::temp_dir().join(format!("tenantql-settings-{}", uuid::Uuid::new_v4()));
        let defaults = Settings {
            data_dir: dir.clone(),
            ..Settings::defaults()
        };
        assert!(defaults.database_url.is_none() && defaults.jwt_secret.is_none());
        assert_eq!(defaults.workers, 8);
        let config = defaults.into_config().expect("defaults are valid");
        assert_eq!(config.workspaces_dir, dir.join("workspaces"));
        assert!(config.query_limits.introspection);
    }

    #[test]
    fn invalid_settings_are_refused_with_a_clear_message() {
        assert!(error(&["--database-url", "mysql://x"]).contains("DATABASE_URL"));
        assert!(
            error(&["--tenant-database-url", "postgres://app@db/x"]).contains("PostgreSQL DATABASE_URL only")
        );
        assert!(
            error(&[
                "--database-url",
                "postgres://owner@db/x",
                "--tenant-database-url",
                "mysql://x"
            ])
            .contains("TENANT_DATABASE_URL must start with postgres://")
        );
        assert!(error(&["--jwt-secret", "short"]).contains("at least 32 bytes"));
        assert!(error(&["--environment", "production"]).contains("JWT_SECRET is required"));
        assert!(error(&["--cors-origins", "app.example.com"]).contains("CORS_ORIGINS"));
        assert!(error(&["--base-domain", "http://x.com"]).contains("BASE_DOMAIN"));
        assert!(Flags::try_parse_from(["tenantql", "--listen-addr", "nowhere"]).is_err());
        assert!(error(&["--egress-allow", "10.0.0.0/40"]).contains("EGRESS_ALLOW"));
        assert!(error(&["--llm-providers", "openai=ftp://x"]).contains("LLM_PROVIDERS"));
        assert!(error(&["--egress-timeout-seconds", "0"]).contains("EGRESS_TIMEOUT_SECONDS"));
    }
}
