pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod context;
pub mod errors;
pub mod guards;
pub mod jobs;
pub mod organizations;
pub mod pagination;
pub mod projects;

use std::sync::Arc;

use async_graphql::{MergedObject, Schema};

use crate::auth::jwt::JwtKeys;
use crate::jobs::Jobs;
use crate::tenancy::Db;

pub use context::{RequestContext, Services};

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    accounts::AccountQuery,
    organizations::OrganizationQuery,
    projects::ProjectQuery,
    api_keys::ApiKeyQuery,
    agents::AgentQuery,
    jobs::JobQuery,
    audit::AuditQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    accounts::AccountMutation,
    organizations::OrganizationMutation,
    projects::ProjectMutation,
    api_keys::ApiKeyMutation,
    agents::AgentMutation,
    jobs::JobMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, jobs::SubscriptionRoot>;

/// Limits that keep one request from costing the server more than a page of work.
pub const MAX_DEPTH: usize = 12;
pub const MAX_COMPLEXITY: usize = 1_000;

pub fn build_schema(db: Db, jwt: Arc<JwtKeys>, jobs: Arc<Jobs>) -> AppSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        jobs::SubscriptionRoot,
    )
    .data(Arc::new(Services {
        db,
        jwt,
        api_keys: Default::default(),
        jobs,
    }))
    .extension(errors::ErrorPresenter)
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .finish()
}

/// The SDL the server serves; `schema.graphql` must equal it.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        jobs::SubscriptionRoot,
    )
    .finish()
    .sdl()
}
