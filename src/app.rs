//! Wires settings into a running server: pool, migrations, schema, routes, listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use poem::listener::Acceptor;
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::jwt::JwtKeys;
use crate::auth::password::Passwords;
use crate::auth::tenant::{MembershipCache, follow_access_notices};
use crate::governance::erasure;
use crate::governance::persisted::{PersistedQueries, load_manifest};
use crate::governance::rate_limits::RateLimits;
use crate::governance::shared_limits::SharedLimits;
use crate::graphql::{self, AppSchema};
use crate::http;
use crate::http::HttpState;
use crate::http::listener::NoDelayAcceptor;
use crate::http::websocket_limits::OpenWebsockets;
use crate::integrations::crypto::Keyring;
use crate::integrations::egress::Gate;
use crate::integrations::keys;
use crate::integrations::oauth::OAuth;
use crate::integrations::workspaces::Workspaces;
use crate::jobs::{Jobs, replicas};
use crate::runners::Toolbox;
use crate::settings::{Config, Environment, Shutdown};
use crate::tenancy::{Db, TenantDb};

pub struct App {
    acceptor: NoDelayAcceptor,
    local_addr: SocketAddr,
    schema: AppSchema,
    config: Config,
    db: Db,
    tenant_db: TenantDb,
    jobs: Arc<Jobs>,
}

impl App {
    /// Connects and migrates the database, checks the tenant role and binds the listener;
    /// serving starts with [`App::run`].
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Before anything records a figure: until then figures go nowhere.
        crate::telemetry::metrics::handle();
        let (db, tenant_db) = connect_pools(&config).await?;
        let keyring = Arc::new(Keyring::parse(config.encryption_keys.expose_secret())?);
        keys::check_against_stored(&db, &keyring).await?;
        let jobs = Arc::new(Jobs::new(
            replicas::link(&db).await?,
            toolbox(&config, keyring.clone())?,
            config.worker,
        ));
        let manifest = match &config.persisted_query_manifest {
            Some(path) => load_manifest(path, &config.query_limits.document)?,
            None => Default::default(),
        };
        let shared_limits = match &config.redis_url {
            Some(url) => Some(SharedLimits::connect(url.expose_secret()).await?),
            None => None,
        };
        let memberships = Arc::new(MembershipCache::default());
        tokio::spawn(follow_access_notices(
            jobs.bus.access_notices(),
            memberships.clone(),
        ));
        let services = graphql::Services {
            db: db.clone(),
            tenant_db: tenant_db.clone(),
            jwt: Arc::new(JwtKeys::new(&config.jwt_secret)),
            passwords: Passwords::new(config.password_hashing_concurrency),
            api_keys: Default::default(),
            memberships,
            jobs: jobs.clone(),
            rate_limits: RateLimits::new(&config.rate_limits, shared_limits),
            persisted: Arc::new(PersistedQueries::new(
                db.clone(),
                config.query_limits.document,
                config.apq,
                manifest,
            )),
            oauth: jobs.toolbox.oauth.clone(),
            keyring,
            workspaces: jobs.toolbox.workspaces.clone(),
            documents: Default::default(),
        };
        let schema = graphql::build_schema(services, config.query_limits);
        let acceptor = NoDelayAcceptor::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .context("the listener has no socket address")?;
        Ok(Self {
            acceptor,
            local_addr,
            schema,
            config,
            db,
            tenant_db,
            jobs,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The owner's pool, for the test suite's checks.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The tenant pool, for the test suite's checks of tenant transactions and pooled
    /// connections.
    pub fn tenant_db(&self) -> &TenantDb {
        &self.tenant_db
    }

    /// Serves (and runs job workers) until `shutdown` completes. Then, within the shutdown
    /// deadline: `/readyz` answers 503 at once and workers stop claiming, their running jobs
    /// going back to the queue at their next step, while the server serves on for the drain
    /// delay; then it stops accepting connections, websockets close with 1012 so clients
    /// reconnect elsewhere, and open requests get the rest of the deadline to finish. Jobs
    /// still running after it are retried once their lease expires.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (draining, drain) = watch::channel(false);
        let (stopping, stop) = watch::channel(false);
        // Jobs are released as the drain begins, so that other replicas take them at once.
        let workers = self
            .jobs
            .spawn_workers(&self.db, &self.tenant_db, self.config.workers, &drain);
        let (db, workspaces) = (self.db.clone(), self.jobs.toolbox.workspaces.clone());
        tokio::spawn(async move {
            if let Err(error) = erasure::resume_unfinished(&db, &workspaces).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "finishing an interrupted erasure failed"
                );
            }
        });
        let config = &self.config;
        let routes = http::routes(HttpState {
            schema: self.schema,
            draining: drain,
            stopping: stop,
            ws_init_timeout: config.ws_init_timeout,
            base_domain: config.base_domain.clone(),
            cors_origins: config.cors_origins.clone(),
            trust_forwarded_for: config.trust_forwarded_for,
            max_batch_size: config.query_limits.max_batch_size,
            oauth_return_url: config.oauth_return_url.clone(),
            websockets: OpenWebsockets::new(config.websocket_limits),
        });
        let Shutdown { drain, deadline } = self.config.shutdown;
        let signalled = Arc::new(std::sync::OnceLock::new());
        let signal = {
            let signalled = signalled.clone();
            async move {
                shutdown.await;
                signalled.get_or_init(Instant::now);
                let _ = draining.send(true);
                tracing::info!(
                    drain_ms = drain.as_millis() as u64,
                    "draining: /readyz answers 503"
                );
                tokio::time::sleep(drain).await;
                let _ = stopping.send(true);
            }
        };
        poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes, signal, Some(deadline.saturating_sub(drain)))
            .await
            .context("server error")?;
        let left = signalled
            .get()
            .map_or(deadline, |at| deadline.saturating_sub(at.elapsed()));
        stop_workers(workers, left).await;
        self.jobs.bus.flush().await;
        self.tenant_db.close().await;
        self.db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Waits up to `grace` for workers to finish their current step and release their jobs.
pub async fn stop_workers(workers: Option<JoinHandle<()>>, grace: Duration) {
    let Some(workers) = workers else { return };
    let abort = workers.abort_handle();
    if tokio::time::timeout(grace, workers).await.is_err() {
        tracing::warn!(
            "workers did not stop within the grace period; their jobs are retried after their leases"
        );
        abort.abort();
    }
}

/// A worker-only process: no HTTP, just job workers until `shutdown`.
pub async fn run_workers(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (db, tenant_db) = connect_pools(&config).await?;
    let keyring = Arc::new(Keyring::parse(config.encryption_keys.expose_secret())?);
    keys::check_against_stored(&db, &keyring).await?;
    let jobs = Jobs::new(
        replicas::link(&db).await?,
        toolbox(&config, keyring)?,
        config.worker,
    );
    let (stopping, stop) = watch::channel(false);
    let workers = jobs.spawn_workers(&db, &tenant_db, config.workers.max(1), &stop);
    tracing::info!(workers = config.workers.max(1), "tenantql worker is running");
    shutdown.await;
    let _ = stopping.send(true);
    stop_workers(workers, config.shutdown.deadline).await;
    jobs.bus.flush().await;
    tenant_db.close().await;
    db.close().await;
    Ok(())
}

/// What the runners of this process reach outside the database; every outbound call,
/// theirs and OAuth's, passes the one gate built here.
fn toolbox(config: &Config, keyring: Arc<Keyring>) -> anyhow::Result<Arc<Toolbox>> {
    let gate = Arc::new(Gate::new(&config.egress)?);
    let oauth = Arc::new(OAuth::new(
        config.oauth_providers.clone(),
        &config.public_url,
        keyring.clone(),
        gate.clone(),
    )?);
    Ok(Arc::new(Toolbox {
        keyring,
        oauth,
        workspaces: Workspaces::new(config.workspaces_dir.clone()),
        gate,
        prices: config.llm_prices.clone(),
        llm_providers: config.llm_providers.clone(),
    }))
}

/// The pools a server needs for `config`: the owner's, migrated if asked, and the tenant
/// one, whose role is checked (see [`TenantDb::check_role`]).
async fn connect_pools(config: &Config) -> anyhow::Result<(Db, TenantDb)> {
    let url = config.database_url.expose_secret();
    let postgres = url.starts_with("postgres:") || url.starts_with("postgresql:");
    let owner_connections = if postgres {
        config.db_owner_max_connections
    } else {
        config.db_max_connections
    };
    let db = Db::connect(&config.database_url, owner_connections).await?;
    if config.auto_migrate {
        db.migrate().await?;
    }
    if !postgres {
        return Ok((db.clone(), TenantDb::sharing(&db)));
    }
    let Some(tenant_url) = &config.tenant_database_url else {
        anyhow::bail!(
            "TENANT_DATABASE_URL is required with a PostgreSQL DATABASE_URL: tenant transactions \
             connect as a role that owns nothing and cannot bypass RLS (README, \"Running on PostgreSQL\")"
        );
    };
    let tenant = TenantDb::connect(tenant_url, config.db_max_connections).await?;
    tenant
        .check_role(config.environment == Environment::Production)
        .await?;
    Ok((db, tenant))
}
