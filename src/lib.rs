//! tenantql: a multi-tenant GraphQL API server.
//!
//! Modules are listed from the bottom layer up (ARCHITECTURE.md, "Layers"): each imports
//! only from modules listed before it, never from its own layer's neighbours or above.
//! `tests/api/layers.rs` fails on an import that points up.

pub mod error;
pub mod ids;

pub mod telemetry;

pub mod tenancy;

pub mod auth;

pub mod input;

pub mod integrations;

pub mod runners;

pub mod governance;

pub mod domain;

pub mod jobs;

pub mod graphql;

pub mod http;

pub mod settings;

pub mod app;

pub mod cli;
