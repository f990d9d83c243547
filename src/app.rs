//! Wires settings into a running server: pool, migrations, schema, routes, listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::auth::jwt::JwtKeys;
use crate::graphql::{self, AppSchema};
use crate::http;
use crate::settings::Config;
use crate::tenancy::Db;

/// Connections still open this long after shutdown was asked for are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct App {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    schema: AppSchema,
    config: Config,
    db: Db,
}

impl App {
    /// Connects and migrates the database and binds the listener; serving starts with [`App::run`].
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database_url, config.db_max_connections).await?;
        if config.auto_migrate {
            db.migrate().await?;
        }
        let schema = graphql::build_schema(db.clone(), Arc::new(JwtKeys::new(&config.jwt_secret)));
        let acceptor = TcpListener::bind(config.listen_addr)
            .into_acceptor()
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
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The database pool, for the test suite's checks of pooled connections.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Serves until `shutdown` completes, then lets open requests finish for a grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let routes = http::routes(self.schema, &self.config);
        poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes, shutdown, Some(SHUTDOWN_GRACE))
            .await
            .context("server error")?;
        self.db.close().await;
        Ok(())
    }
}
