//! What keeps tenants accountable and within bounds: the audit trail, rate limits
//! and persisted queries.

pub mod audit;
pub mod budgets;
pub mod erasure;
pub mod intake;
pub mod persisted;
pub mod rate_limits;
pub mod shared_limits;
