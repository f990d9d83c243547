//! Operations that must run before a tenant is known or across tenants, one file per concern,
//! each saying why it must cross tenants. Every function is named for exactly one step;
//! nothing here takes a caller-chosen filter.
//!
//! On PostgreSQL these run on the owner's pool, as the role that owns the schema and
//! bypasses RLS (ARCHITECTURE.md lists every step); tenant work runs on the tenant pool,
//! logged in as the RLS-bound role, and never reaches this one.

pub mod accounts;
pub mod api_keys;
pub mod ciphertexts;
pub mod job_queue;
pub mod oauth_states;
pub mod persisted_queries;
pub mod platform;
pub mod sessions;
