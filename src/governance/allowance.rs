//! What a caller's buckets say after an admitted operation, whether counted in this
//! process (`rate_limits`) or shared in Redis (`shared_limits`).

/// Where a caller stands after an admitted operation, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_seconds: u64,
}

impl Allowance {
    /// A bucket of at most `burst` units with `remaining` left, refilling one unit every
    /// `refill_seconds`.
    pub(super) fn of_bucket(burst: u32, remaining: u32, refill_seconds: f64) -> Self {
        let remaining = remaining.min(burst);
        Self {
            limit: burst,
            remaining,
            reset_seconds: (f64::from(burst - remaining) * refill_seconds).ceil() as u64,
        }
    }

    /// The one of the two with the smaller share of its bucket left.
    pub(super) fn tighter(self, other: Allowance) -> Allowance {
        let share = |a: Allowance| f64::from(a.remaining) / f64::from(a.limit.max(1));
        if share(other) < share(self) { other } else { self }
    }
}
