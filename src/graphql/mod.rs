//! The GraphQL schema, one file per domain: resolvers parse arguments, call one function
//! of `domain` or `governance`, and map the result. Also the request context, guards, the
//! error presenter, Relay pagination and the operation limits.

pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod arguments;
pub mod audit;
pub mod content;
pub mod context;
pub mod documents;
pub mod errors;
pub mod guards;
pub mod integrations;
pub mod jobs;
pub mod limits;
pub mod loaders;
pub mod organizations;
pub mod pagination;
pub mod platform;
pub mod projects;
pub mod trusted_documents;
pub mod usage;

use std::sync::Arc;

use async_graphql::{MergedObject, Schema};

pub use context::{RequestContext, Services};
use limits::{OperationLimits, QueryLimits};

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    accounts::AccountQuery,
    organizations::OrganizationQuery,
    projects::ProjectQuery,
    api_keys::ApiKeyQuery,
    agents::AgentQuery,
    jobs::JobQuery,
    audit::AuditQuery,
    trusted_documents::TrustedDocumentQuery,
    usage::UsageQuery,
    platform::PlatformQuery,
    integrations::IntegrationQuery,
    content::ContentQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    accounts::AccountMutation,
    organizations::OrganizationMutation,
    projects::ProjectMutation,
    api_keys::ApiKeyMutation,
    agents::AgentMutation,
    jobs::JobMutation,
    trusted_documents::TrustedDocumentMutation,
    platform::PlatformMutation,
    integrations::IntegrationMutation,
    content::ContentMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, jobs::SubscriptionRoot>;

pub fn build_schema(services: Services, limits: QueryLimits) -> AppSchema {
    let (rate_limits, documents) = (services.rate_limits.clone(), services.documents.clone());
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        jobs::SubscriptionRoot,
    )
    .data(Arc::new(services))
    .extension(OperationLimits {
        limits,
        rate_limits,
        documents,
    })
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
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
