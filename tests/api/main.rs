//! The integration suite: one binary, the real server over HTTP and websockets, every
//! scenario on SQLite and on PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "in a test, a failed unwrap is a failed assertion"
)]

mod helpers;

mod abuse;
mod agents;
mod audit;
mod auth;
mod budgets;
mod content;
mod cross_tenant;
mod egress;
mod erasure;
mod http;
mod integrations;
mod jobs;
mod layers;
mod limits;
mod llm;
mod oauth;
mod operations;
mod persisted;
mod rate_limits;
mod read_path;
mod replicas;
mod rls;
mod roles;
mod schema;
mod secrets;
mod tenancy;
mod validation;
mod websocket;
mod workspaces;
