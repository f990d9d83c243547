//! Who the tenant is, and the only way to rows. `scoped` is the only way to reach
//! tenant-owned rows, on the tenant pool; `unscoped` holds the few steps that must work
//! before or across tenants, each named for what it does, on the owner's pool; `erasure`
//! reads and deletes one named organization's rows in every table; `audit` writes the trail
//! inside the transaction it records. These four are exempt from the workspace's
//! `disallowed-methods` lint; no other module may call sea-orm's entry points.

pub mod audit;
pub mod context;
pub mod db;
pub mod erasure;
pub mod page;
pub mod scoped;
pub mod sealed;
mod sharing;
pub mod tables;
pub mod unscoped;

pub use context::{Actor, TenantContext};
pub use db::{Access, Db, TenantDb};
pub use page::{Page, PageRequest};
pub use scoped::{Scoped, SharedRead, Tenant};
