//! What keeps tenants accountable and within bounds: the audit trail.

pub mod audit;
