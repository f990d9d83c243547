//! Row scoping in one place. `scoped` is the only way to reach tenant-owned rows, on the
//! tenant pool; `unscoped` holds the few operations that must work before or across tenants
//! (signup, login, credential lookup), each named for what it does, on the owner's pool.
//! Both are exempt from the workspace's `disallowed-methods` lint; no other module may call
//! sea-orm's entry points.

pub mod audit;
pub mod context;
pub mod db;
pub mod erasure;
pub mod page;
pub mod resolve;
pub mod scoped;
pub mod sealed;
mod sharing;
pub mod tables;
pub mod unscoped;

pub use context::{Actor, TenantContext};
pub use db::{Access, Db, TenantDb};
pub use page::{Page, PageRequest};
pub use scoped::{Scoped, Tenant};
