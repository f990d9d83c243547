//! sea-orm models of tenantql's tables, one file per table; no behaviour beyond data.

pub mod agent;
pub mod agent_job;
pub mod agent_job_event;
pub mod agent_share;
pub mod agent_share_acceptance;
pub mod api_key;
pub mod audit_entry;
pub mod campaign;
pub mod chat_pairing;
pub mod enums;
pub mod integration;
pub mod oauth_state;
pub mod organization;
pub mod organization_erasure;
pub mod organization_member;
pub mod pairing_code;
pub mod persisted_query;
pub mod post;
pub mod project;
pub mod project_member;
pub mod provider_credential;
pub mod session;
pub mod trusted_document;
pub mod usage_record;
pub mod user;

pub use enums::{ActorKind, AgentSharing, JobStatus, OrgKind, OrgRole, Plan, PostStatus, ProjectRole};
