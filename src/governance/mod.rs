//! What keeps tenants accountable and within bounds: the audit trail and rate limits.

pub mod audit;
pub mod rate_limits;
