//! sea-orm models of tenantql's tables, one file per table; no behaviour beyond data.

pub mod api_key;
pub mod enums;
pub mod organization;
pub mod organization_member;
pub mod project;
pub mod project_member;
pub mod session;
pub mod user;

pub use enums::{OrgKind, OrgRole, Plan, ProjectRole};
