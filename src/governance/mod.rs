//! What keeps tenants accountable and within bounds: reading the audit trail, document
//! intake, rate limits (local and shared), budgets, persisted queries and the erasure of a
//! whole organization.

pub mod allowance;
pub mod audit;
pub mod budgets;
pub mod erasure;
pub mod intake;
pub mod persisted;
pub mod rate_limits;
pub mod shared_limits;
