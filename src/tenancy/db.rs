//! The database pool, opaque outside `tenancy/`: other modules reach rows only through
//! [`super::Tenant`] or [`super::unscoped`].

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};

use super::Access;
use crate::telemetry::metrics;

#[derive(Clone)]
pub struct Db {
    pub(super) conn: DatabaseConnection,
    url: SecretString,
}

impl Db {
    pub async fn connect(url: &SecretString, max_connections: u32) -> anyhow::Result<Self> {
        let url = url.expose_secret();
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            // A ping before every checkout would add a round trip to each request; a broken
            // connection surfaces as an error on first use instead, and the pool replaces it.
            .test_before_acquire(false)
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            // One writer at a time is SQLite's model; WAL lets readers proceed meanwhile.
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        }
        let conn = Database::connect(options)
            .await
            .context("cannot connect to the database")?;
        Ok(Self {
            conn,
            url: url.to_owned().into(),
        })
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.conn, None)
            .await
            .context("database migration failed")
    }

    /// Begins a transaction. On SQLite one that will write takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred one that reads first fails at once, without waiting,
    /// when another writer commits before its first write.
    pub(super) async fn begin(&self, access: Access) -> Result<DatabaseTransaction, DbErr> {
        let immediate = self.backend() == DbBackend::Sqlite && access == Access::Write;
        let _waiting = metrics::Open::db_waiter();
        self.conn
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: immediate.then_some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
    }

    /// Pooled connections `(in use, idle)`.
    pub fn pool_connections(&self) -> (u32, u32) {
        let (size, idle) = match self.backend() {
            DbBackend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        (size.saturating_sub(idle), idle)
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.conn.ping().await.context("database ping failed")
    }

    /// A listener for PostgreSQL notifications on its own connection; `None` on SQLite.
    pub async fn listener(&self) -> anyhow::Result<Option<sea_orm::sqlx::postgres::PgListener>> {
        if self.backend() != sea_orm::DbBackend::Postgres {
            return Ok(None);
        }
        // Its own connection, not one of the pool's: it is held for the life of the process.
        let listener = sea_orm::sqlx::postgres::PgListener::connect(self.url.expose_secret())
            .await
            .context("cannot listen for notifications")?;
        Ok(Some(listener))
    }

    /// Sends one notification (outside any transaction: notifying commits serialize).
    pub async fn notify(&self, channel: &str, payload: &str) -> anyhow::Result<()> {
        use sea_orm::{ConnectionTrait, Statement};
        self.conn
            .execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [channel.into(), payload.into()],
            ))
            .await
            .context("notify failed")?;
        Ok(())
    }

    /// The pool itself, for the test suite's checks of what a pooled connection carries
    /// between requests. Never for tenant data.
    #[doc(hidden)]
    pub fn connection_for_checks(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}
