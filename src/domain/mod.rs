//! The business rules: accounts, organizations and members, projects and members, API keys,
//! agents and sharing, jobs and their events, content. They read and write through
//! `tenancy` only, and know no HTTP or GraphQL.

pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod content;
pub mod jobs;
pub mod organizations;
pub mod platform;
pub mod projects;
