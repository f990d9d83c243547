//! The database pools, opaque outside `tenancy/`: other modules reach rows only through
//! [`super::Tenant`], [`super::unscoped`] or [`super::erasure`]. On PostgreSQL there are two,
//! one per login role: [`Db`] as the schema owner for migrations and the named cross-tenant
//! steps, [`TenantDb`] as a role that owns nothing and cannot bypass RLS, for tenant
//! transactions. On SQLite (no RLS) both are the same pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};

/// Whether a transaction only reads, or may write (on SQLite a writer begins `IMMEDIATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}
use crate::telemetry::metrics;

/// The owner's pool: migrations, notifications and the cross-tenant steps of
/// [`super::unscoped`] and [`super::erasure`]. Never handed to tenant code: a [`super::Tenant`]
/// holds a [`TenantDb`] only.
#[derive(Clone)]
pub struct Db {
    pub(super) conn: DatabaseConnection,
    url: SecretString,
    round_trips: Arc<RoundTrips>,
}

/// What a pool sent the database: statements, and transactions (each a `BEGIN` and a
/// `COMMIT` or `ROLLBACK` besides its statements). Read at scrape time.
#[derive(Debug, Default)]
pub struct RoundTrips {
    statements: AtomicU64,
    transactions: AtomicU64,
}

impl RoundTrips {
    /// `(statements, transactions)` so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.statements.load(Ordering::Relaxed),
            self.transactions.load(Ordering::Relaxed),
        )
    }
}

async fn open(url: &str, max_connections: u32) -> Result<(DatabaseConnection, Arc<RoundTrips>), DbErr> {
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
    let mut conn = Database::connect(options).await?;
    let round_trips = Arc::new(RoundTrips::default());
    let counted = round_trips.clone();
    conn.set_metric_callback(move |_| {
        counted.statements.fetch_add(1, Ordering::Relaxed);
    });
    Ok((conn, round_trips))
}

/// Begins a transaction on `conn`. On SQLite one that will write takes the write lock up
/// front (`BEGIN IMMEDIATE`): a deferred one that reads first fails at once, without
/// waiting, when another writer commits before its first write.
async fn begin_on(
    conn: &DatabaseConnection,
    round_trips: &RoundTrips,
    access: Access,
) -> Result<DatabaseTransaction, DbErr> {
    round_trips.transactions.fetch_add(1, Ordering::Relaxed);
    let immediate = conn.get_database_backend() == DbBackend::Sqlite && access == Access::Write;
    let _waiting = metrics::Open::db_waiter();
    conn.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: immediate.then_some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Pooled connections of `conn`, `(in use, idle)`.
fn pool_figures(conn: &DatabaseConnection) -> (u32, u32) {
    let (size, idle) = match conn.get_database_backend() {
        DbBackend::Postgres => {
            let pool = conn.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => {
            let pool = conn.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    (size.saturating_sub(idle), idle)
}

impl Db {
    pub async fn connect(url: &SecretString, max_connections: u32) -> anyhow::Result<Self> {
        let url = url.expose_secret();
        let (conn, round_trips) = open(url, max_connections)
            .await
            .context("cannot connect to the database")?;
        Ok(Self {
            conn,
            url: url.to_owned().into(),
            round_trips,
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

    /// A transaction as the owner, for the cross-tenant steps (see [`begin_on`]).
    pub(super) async fn begin(&self, access: Access) -> Result<DatabaseTransaction, DbErr> {
        begin_on(&self.conn, &self.round_trips, access).await
    }

    /// Pooled connections `(in use, idle)`.
    pub fn pool_connections(&self) -> (u32, u32) {
        pool_figures(&self.conn)
    }

    pub fn round_trips(&self) -> &RoundTrips {
        &self.round_trips
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

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// The pool tenant transactions run on ([`super::scoped`] only). On PostgreSQL its login
/// role is the RLS-bound one itself, so no statement inside a tenant transaction (`RESET
/// ROLE`, `SET ROLE`) can leave the policies: there is no other role to return to.
#[derive(Clone)]
pub struct TenantDb {
    conn: DatabaseConnection,
    round_trips: Arc<RoundTrips>,
}

impl TenantDb {
    /// Connects as the tenant login role of `TENANT_DATABASE_URL` (PostgreSQL).
    pub async fn connect(url: &SecretString, max_connections: u32) -> anyhow::Result<Self> {
        let (conn, round_trips) = open(url.expose_secret(), max_connections)
            .await
            .context("cannot connect to the database as the tenant role (TENANT_DATABASE_URL)")?;
        Ok(Self { conn, round_trips })
    }

    /// SQLite has no roles and no RLS: tenant transactions share the one pool, and the
    /// application's scoping is the only lock there.
    pub fn sharing(db: &Db) -> Self {
        Self {
            conn: db.conn.clone(),
            round_trips: db.round_trips.clone(),
        }
    }

    /// Refuses a tenant login role that could step outside the policies: one that is, or is
    /// a member of (directly or through other roles, so `SET ROLE` could reach it), a
    /// superuser, a role with `BYPASSRLS` or `CREATEROLE`, or an owner of anything in this
    /// database (an owner can turn RLS off or drop a policy). In production the server does
    /// not start; in development it warns. A role without `tenantql_app`'s privileges is
    /// refused everywhere: every tenant statement would fail.
    pub async fn check_role(&self, production: bool) -> anyhow::Result<()> {
        use sea_orm::{ConnectionTrait, Statement};
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let row = self
            .conn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "WITH reachable AS (
                   SELECT oid, rolname, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles
                   WHERE pg_has_role(session_user, oid, 'MEMBER')
                 )
                 SELECT session_user::text,
                   (SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM reachable
                     WHERE rolsuper OR rolbypassrls OR rolcreaterole),
                   (SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM reachable r
                     WHERE EXISTS (SELECT 1 FROM pg_class WHERE relowner = r.oid)
                        OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspowner = r.oid)
                        OR EXISTS (SELECT 1 FROM pg_proc WHERE proowner = r.oid)
                        OR EXISTS (SELECT 1 FROM pg_type WHERE typowner = r.oid)
                        OR EXISTS (SELECT 1 FROM pg_database
                                    WHERE datname = current_database() AND datdba = r.oid)),
                   pg_has_role(session_user, $1, 'USAGE')",
                [migration::APP_ROLE.into()],
            ))
            .await
            .context("cannot read the tenant role's attributes")?
            .context("the role query returned no row")?;
        let role: String = row.try_get_by_index(0)?;
        let privileged: Option<String> = row.try_get_by_index(1)?;
        let owning: Option<String> = row.try_get_by_index(2)?;
        let has_grants: bool = row.try_get_by_index(3)?;
        if !has_grants {
            anyhow::bail!(
                "the tenant role {role} (TENANT_DATABASE_URL) lacks the privileges of {app}: connect as {app}, or GRANT {app} TO {role}",
                app = migration::APP_ROLE,
            );
        }
        let mut problems = Vec::new();
        if let Some(roles) = privileged {
            problems.push(format!("superuser, BYPASSRLS or CREATEROLE through {roles}"));
        }
        if let Some(roles) = owning {
            problems.push(format!("owns objects of this database through {roles}"));
        }
        if problems.is_empty() {
            return Ok(());
        }
        let problem = format!(
            "tenant transactions would run as {role} (TENANT_DATABASE_URL), which can bypass row-level security: {}",
            problems.join("; ")
        );
        if production {
            anyhow::bail!(
                "{problem}; connect as a role that owns nothing and has none of these (README, \"Running on PostgreSQL\")"
            );
        }
        tracing::warn!("{problem}; refused in production");
        Ok(())
    }

    /// A transaction as the tenant role (see [`begin_on`]); [`super::scoped`] sets its organization.
    pub(super) async fn begin(&self, access: Access) -> Result<DatabaseTransaction, DbErr> {
        begin_on(&self.conn, &self.round_trips, access).await
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Pooled connections `(in use, idle)`.
    pub fn pool_connections(&self) -> (u32, u32) {
        pool_figures(&self.conn)
    }

    pub fn round_trips(&self) -> &RoundTrips {
        &self.round_trips
    }

    /// The pool itself, for the test suite's checks of what a pooled connection carries
    /// between requests.
    #[doc(hidden)]
    pub fn connection_for_checks(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}
