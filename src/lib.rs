//! tenantql: a multi-tenant GraphQL API server.

pub mod app;
/// Passwords, access tokens, API keys, refresh sessions and the principal behind a request.
pub mod auth;
pub mod cli;
/// Business rules and persistence through the scoped handle; knows no HTTP or GraphQL.
pub mod domain;
pub mod error;
/// The audit trail, and later the limits that keep tenants within bounds.
pub mod governance;
/// The GraphQL schema: roots, context helpers, error presenter, pagination, one file per domain.
pub mod graphql;
/// poem endpoints and middleware: GraphQL over HTTP and websocket, GraphiQL, health, request ids.
pub mod http;
pub mod ids;
/// Encrypted provider credentials and bot pairing.
pub mod integrations;
/// Agent jobs at run time: event bus, workers, runners, live streams, replica links.
pub mod jobs;
pub mod settings;
pub mod telemetry;
/// Who the tenant is, and the only way to reach tenant-owned rows.
pub mod tenancy;
