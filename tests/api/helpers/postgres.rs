//! The PostgreSQL side of the harness: a template migrated once per migration set, and a
//! fresh database cloned from it per test.

use std::path::PathBuf;

use migration::APP_ROLE;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use secrecy::SecretString;
use tenantql::tenancy::Db;

/// The role the server's owner pool connects as on PostgreSQL: owns the schema, bypasses RLS
/// for the cross-tenant steps, and is not a superuser. Tenant transactions log in as
/// `APP_ROLE`, which owns nothing and is bound by every policy.
pub const PG_OWNER_ROLE: &str = "tenantql_owner";

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
