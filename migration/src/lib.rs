//! Append-only schema migrations; PostgreSQL-only parts (the app role, RLS) are guarded by backend.

pub use sea_orm_migration::prelude::*;

mod helpers;
mod m20261125_000001_foundation;
mod m20261125_000002_agent_jobs;
mod m20261125_000003_audit_log;
mod m20261125_000004_persisted_queries;
mod m20261125_000005_usage_records;
mod m20261125_000006_integrations;
mod m20261125_000007_oauth;
mod m20261125_000008_content;
mod m20261125_000009_erasures;
mod m20261206_000001_credential_endpoints;
/// Public so that a test can run its data step against rows made before it.
pub mod m20261206_000010_share_acceptance;
mod m20261206_000020_oauth_browser_binding;
mod rls;

pub use rls::APP_ROLE;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_agent_jobs::Migration),
            Box::new(m20261125_000003_audit_log::Migration),
            Box::new(m20261125_000004_persisted_queries::Migration),
            Box::new(m20261125_000005_usage_records::Migration),
            Box::new(m20261125_000006_integrations::Migration),
            Box::new(m20261125_000007_oauth::Migration),
            Box::new(m20261125_000008_content::Migration),
            Box::new(m20261125_000009_erasures::Migration),
            Box::new(m20261206_000001_credential_endpoints::Migration),
            Box::new(m20261206_000010_share_acceptance::Migration),
            Box::new(m20261206_000020_oauth_browser_binding::Migration),
        ]
    }
}
