//! Rate limits: per organization by plan (requests, complexity units and jobs per minute),
//! per API key, per client address for operations with no tenant (anonymous or naming
//! none), per client address and per account for sign-in, per sign-in for refreshing it.
//! Each is a GCRA bucket (governor) that refills continuously over a minute and holds a
//! burst of a few seconds of it ([`burst`]). IPv6 clients are counted per /64, the block
//! one subscriber gets.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::{Context, bail};
use entity::Plan;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sea_orm::{ActiveEnum, Iterable};
use uuid::Uuid;

use super::allowance::Allowance;
use super::shared_limits::SharedLimits;
use crate::error::AppError;
use crate::input::Email;
use crate::telemetry::metrics;

/// What one plan allows per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanQuota {
    pub requests: u32,
    /// Complexity units: each operation costs its complexity, lists by their page size.
    pub complexity: u32,
    pub jobs: u32,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub plans: HashMap<Plan, PlanQuota>,
    pub api_key_requests_per_minute: u32,
    /// signup, login, pairChat and unknown refresh tokens per client address, and
    /// refreshSession per sign-in.
    pub auth_attempts_per_minute: u32,
    /// login per account, from any address: above the per-address limit, so one address
    /// is stopped first, and guesses spread over many addresses still meet a limit.
    pub account_signins_per_minute: u32,
    /// pairChat per API key.
    pub pairing_attempts_per_minute: u32,
    /// Operations with no tenant (anonymous, or a person naming no organization) per client
    /// address.
    pub anonymous_requests_per_minute: u32,
    /// Seconds of its minute quota a plan or API key bucket may spend at once.
    pub burst_seconds: u32,
    /// The costliest operation allowed (`MAX_COMPLEXITY`): a complexity bucket always holds
    /// at least that.
    pub max_operation_cost: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let plan = |requests, complexity, jobs| PlanQuota {
            requests,
            complexity,
            jobs,
        };
        Self {
            plans: HashMap::from([
                (Plan::Free, plan(300, 20_000, 20)),
                (Plan::Starter, plan(1_200, 100_000, 120)),
                (Plan::Pro, plan(6_000, 500_000, 600)),
                (Plan::Enterprise, plan(30_000, 2_500_000, 3_000)),
            ]),
            api_key_requests_per_minute: 600,
            auth_attempts_per_minute: 10,
            account_signins_per_minute: 30,
            pairing_attempts_per_minute: 10,
            anonymous_requests_per_minute: 300,
            burst_seconds: 10,
            max_operation_cost: 1_000,
        }
    }
}

/// Fewest units a bucket holds, unless its whole minute is fewer: bursts of a small quota
/// would otherwise be a single request.
const MIN_BURST: u32 = 10;

/// What a bucket refilling `per_minute` may spend at once: `burst_seconds` of its minute,
/// at least `floor` (and [`MIN_BURST`]), at most the whole minute.
fn burst(per_minute: u32, burst_seconds: u32, floor: u32) -> u32 {
    let slice = u32::try_from(u64::from(per_minute) * u64::from(burst_seconds) / 60).unwrap_or(u32::MAX);
    slice.max(floor).max(MIN_BURST).min(per_minute).max(1)
}

impl RateLimitConfig {
    /// Overrides plans from `FREE=300/20000/20,PRO=…` (requests/complexity/jobs per minute).
    pub fn with_plan_overrides(mut self, spec: &str) -> anyhow::Result<Self> {
        for entry in spec.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (plan, numbers) = entry.split_once('=').with_context(|| {
                format!("PLAN_LIMITS entry {entry:?} is not PLAN=requests/complexity/jobs")
            })?;
            let named = plan.trim().to_ascii_uppercase();
            let plan = Plan::iter()
                .find(|plan| plan.to_value() == named)
                .with_context(|| format!("PLAN_LIMITS names an unknown plan {named:?}"))?;
            let numbers = numbers
                .split('/')
                .map(|n| n.trim().parse::<u32>().ok().filter(|n| *n > 0))
                .collect::<Option<Vec<_>>>();
            let Some(&[requests, complexity, jobs]) = numbers.as_deref() else {
                bail!("PLAN_LIMITS entry {entry:?} needs three positive numbers: requests/complexity/jobs");
            };
            self.plans.insert(
                plan,
                PlanQuota {
                    requests,
                    complexity,
                    jobs,
                },
            );
        }
        Ok(self)
    }
}

type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One bucket per key, refilling `per_minute` units evenly over a minute and holding at
/// most `burst` of them.
struct Rule<K: Hash + Eq + Clone> {
    /// The bucket's name in the shared tier.
    name: &'static str,
    per_minute: u32,
    burst: u32,
    limiter: Limiter<K>,
}

impl<K: Hash + Eq + Clone> Rule<K> {
    /// A bucket that may spend its whole minute at once.
    fn new(name: &'static str, per_minute: u32) -> Self {
        Self::with_burst(name, per_minute, per_minute)
    }

    /// A bucket that may spend [`burst`]`(per_minute, burst_seconds, floor)` at once.
    fn sliced(name: &'static str, per_minute: u32, burst_seconds: u32, floor: u32) -> Self {
        Self::with_burst(name, per_minute, burst(per_minute, burst_seconds, floor))
    }

    fn with_burst(name: &'static str, per_minute: u32, burst: u32) -> Self {
        let per_minute = per_minute.max(1);
        let burst = burst.clamp(1, per_minute);
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            name,
            per_minute,
            burst,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Takes `cost` units from the key's local bucket, or says how long until it could.
    fn take_local(&self, key: &K, cost: u32) -> Result<Allowance, AppError> {
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.limiter.check_key_n(key, cost) {
            Ok(Ok(state)) => {
                let refill_seconds = 60.0 / f64::from(self.per_minute);
                Ok(Allowance::of_bucket(
                    self.burst,
                    state.remaining_burst_capacity(),
                    refill_seconds,
                ))
            }
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(AppError::RateLimited {
                    retry_after_seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                })
            }
            Err(_) => Err(AppError::QueryTooComplex(
                format!(
                    "this operation costs {cost} units, more than the {} allowed at once",
                    self.burst
                )
                .into(),
            )),
        }
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Every bucket: governor's in this process, and with Redis the same buckets shared by
/// every replica. The local tier answers first (a refusal there needs no round trip) and
/// alone when Redis is unreachable.
pub struct RateLimits {
    org_requests: HashMap<Plan, Rule<Uuid>>,
    org_complexity: HashMap<Plan, Rule<Uuid>>,
    org_jobs: HashMap<Plan, Rule<Uuid>>,
    api_key_requests: Rule<Uuid>,
    anonymous_requests: Rule<ClientKey>,
    auth_attempts: Rule<ClientKey>,
    account_signins: Rule<String>,
    session_refreshes: Rule<Uuid>,
    pairing_attempts: Rule<Uuid>,
    shared: Option<SharedLimits>,
}

/// A client address as limits count it: an IPv4 address, or the /64 an IPv6 one is in
/// (one subscriber's block: counting single addresses would give it 2^64 buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(std::net::Ipv6Addr::from(
                    u128::from(v6) & !u128::from(u64::MAX),
                ))),
            },
            v4 => Self(v4),
        }
    }

    /// From the client address as requests record it; `None` when there is none.
    pub fn parse(ip: Option<&str>) -> Option<Self> {
        ip.and_then(|ip| ip.parse::<IpAddr>().ok()).map(Self::of)
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

/// What one operation is charged to.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub organization: Uuid,
    pub plan: Plan,
    pub api_key: Option<Uuid>,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig, shared: Option<SharedLimits>) -> Arc<Self> {
        let quota = |plan: Plan| {
            config.plans.get(&plan).copied().unwrap_or(PlanQuota {
                requests: 1,
                complexity: 1,
                jobs: 1,
            })
        };
        let seconds = config.burst_seconds;
        let per_plan = |name, pick: fn(PlanQuota) -> u32, floor| {
            Plan::iter()
                .map(|plan| (plan, Rule::sliced(name, pick(quota(plan)), seconds, floor)))
                .collect()
        };
        let limits = Arc::new(Self {
            org_requests: per_plan("org-requests", |quota| quota.requests, 0),
            org_complexity: per_plan(
                "org-complexity",
                |quota| quota.complexity,
                config.max_operation_cost,
            ),
            org_jobs: per_plan("org-jobs", |quota| quota.jobs, 0),
            api_key_requests: Rule::sliced(
                "api-key-requests",
                config.api_key_requests_per_minute,
                seconds,
                0,
            ),
            anonymous_requests: Rule::sliced(
                "anonymous-requests",
                config.anonymous_requests_per_minute,
                seconds,
                0,
            ),
            auth_attempts: Rule::new("auth-attempts", config.auth_attempts_per_minute),
            account_signins: Rule::new("account-signins", config.account_signins_per_minute),
            session_refreshes: Rule::new("session-refreshes", config.auth_attempts_per_minute),
            pairing_attempts: Rule::new("pairing-attempts", config.pairing_attempts_per_minute),
            shared,
        });
        forget_idle_keys(Arc::downgrade(&limits));
        limits
    }

    /// Charges one operation of `cost` complexity units: one request to the API key and the
    /// organization, and the cost to the organization's complexity budget. Returns the
    /// allowance nearest to running out, which is the one worth telling the client.
    pub async fn charge_operation(&self, caller: Caller, cost: u32) -> Result<Allowance, AppError> {
        let key = match caller.api_key {
            Some(key) => Some(self.take(&self.api_key_requests, &key, 1).await?),
            None => None,
        };
        let requests = self
            .take(rule(&self.org_requests, caller.plan)?, &caller.organization, 1)
            .await?;
        let complexity = self
            .take(
                rule(&self.org_complexity, caller.plan)?,
                &caller.organization,
                cost,
            )
            .await?;
        Ok([key, Some(requests)]
            .into_iter()
            .flatten()
            .fold(complexity, Allowance::tighter))
    }

    pub async fn charge_job_start(&self, organization: Uuid, plan: Plan) -> Result<(), AppError> {
        self.take(rule(&self.org_jobs, plan)?, &organization, 1)
            .await
            .map(drop)
    }

    /// Charges one operation with no tenant to its client address.
    pub async fn charge_anonymous(&self, client: Option<&str>) -> Result<(), AppError> {
        let Some(client) = ClientKey::parse(client) else {
            return Ok(());
        };
        self.take(&self.anonymous_requests, &client, 1).await.map(drop)
    }

    /// Charges one attempt at signing in (or pairing) from a client address.
    pub async fn charge_auth_attempt(&self, client: Option<&str>) -> Result<(), AppError> {
        let Some(client) = ClientKey::parse(client) else {
            return Ok(());
        };
        self.take(&self.auth_attempts, &client, 1).await.map(drop)
    }

    /// Charges one sign-in attempt to the account it names (by its normalized email), so
    /// guesses spread over many addresses still meet a limit.
    pub async fn charge_account_signin(&self, email: &str) -> Result<(), AppError> {
        let account = crate::auth::secret_token::sha256_hex(&Email::normalized(email));
        self.take(&self.account_signins, &account, 1).await.map(drop)
    }

    /// Charges one refresh to the sign-in (session family) it renews: one server refreshing
    /// for many people is limited per person, not per address.
    pub async fn charge_session_refresh(&self, family: Uuid) -> Result<(), AppError> {
        self.take(&self.session_refreshes, &family, 1).await.map(drop)
    }

    /// Charges one try of a pairing code: to the bot's key, and to its client address.
    pub async fn charge_pairing_attempt(&self, api_key: Uuid, client: Option<&str>) -> Result<(), AppError> {
        self.take(&self.pairing_attempts, &api_key, 1).await?;
        self.charge_auth_attempt(client).await
    }

    async fn take<K: Hash + Eq + Clone + std::fmt::Display>(
        &self,
        rule: &Rule<K>,
        key: &K,
        cost: u32,
    ) -> Result<Allowance, AppError> {
        let taken = match (rule.take_local(key, cost), &self.shared) {
            (Ok(local), Some(shared)) => shared
                .take(rule.name, &key.to_string(), rule.per_minute, rule.burst, cost)
                .await
                .unwrap_or(Ok(local)),
            (taken, _) => taken,
        };
        if let Err(AppError::RateLimited { .. }) = taken {
            metrics::rate_limited(rule.name);
        }
        taken
    }

    fn forget_idle(&self) {
        for rules in [&self.org_requests, &self.org_complexity, &self.org_jobs] {
            rules.values().for_each(Rule::forget_idle);
        }
        self.api_key_requests.forget_idle();
        self.anonymous_requests.forget_idle();
        self.auth_attempts.forget_idle();
        self.account_signins.forget_idle();
        self.session_refreshes.forget_idle();
        self.pairing_attempts.forget_idle();
    }
}

fn rule<K: Hash + Eq + Clone>(rules: &HashMap<Plan, Rule<K>>, plan: Plan) -> Result<&Rule<K>, AppError> {
    rules
        .get(&plan)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("no rate limit for plan {plan:?}")))
}

/// Buckets of keys not seen for a minute are full again: dropping them bounds the memory
/// that many one-off callers would otherwise hold. Ends with the limits themselves.
fn forget_idle_keys(limits: Weak<RateLimits>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            match limits.upgrade() {
                Some(limits) => limits.forget_idle(),
                None => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_its_minute_then_says_when_to_retry() {
        let rule = Rule::<Uuid>::new("test", 3);
        let key = Uuid::nil();
        let first = rule.take_local(&key, 1).unwrap();
        assert_eq!((first.limit, first.remaining), (3, 2));
        assert_eq!(first.reset_seconds, 20);
        rule.take_local(&key, 2).unwrap();
        match rule.take_local(&key, 1) {
            Err(AppError::RateLimited { retry_after_seconds }) => {
                assert!((1..=20).contains(&retry_after_seconds));
            }
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        // Another key has its own bucket.
        assert!(rule.take_local(&Uuid::max(), 3).is_ok());
        // A cost beyond a whole minute's allowance can never pass.
        assert!(matches!(
            rule.take_local(&Uuid::max(), 4),
            Err(AppError::QueryTooComplex(_))
        ));
    }

    #[test]
    fn bursts_are_a_few_seconds_of_the_minute_within_bounds() {
        // Ten seconds of FREE's 300 requests a minute.
        assert_eq!(burst(300, 10, 0), 50);
        // Never fewer than ten, nor more than the minute.
        assert_eq!(burst(20, 10, 0), 10);
        assert_eq!(burst(4, 10, 0), 4);
        // A complexity bucket holds the costliest operation.
        assert_eq!(burst(20_000, 10, 1_000), 3_333);
        assert_eq!(burst(3_000, 10, 1_000), 1_000);
        let rule = Rule::<Uuid>::with_burst("test", 600, 10);
        let key = Uuid::nil();
        assert_eq!(rule.take_local(&key, 10).unwrap().limit, 10);
        assert!(matches!(
            rule.take_local(&key, 1),
            Err(AppError::RateLimited { .. })
        ));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let key = |ip: &str| ClientKey::parse(Some(ip)).unwrap();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert!(ClientKey::parse(Some("not an address")).is_none());
    }

    #[test]
    fn plan_overrides_are_parsed_and_checked() {
        let config = RateLimitConfig::default()
            .with_plan_overrides("free=1/2/3, PRO=10/20/30")
            .unwrap();
        assert_eq!(
            config.plans[&Plan::Free],
            PlanQuota {
                requests: 1,
                complexity: 2,
                jobs: 3
            }
        );
        assert_eq!(config.plans[&Plan::Pro].jobs, 30);
        for bad in ["FREE=1/2", "GOLD=1/2/3", "FREE=0/1/1", "FREE"] {
            assert!(
                RateLimitConfig::default().with_plan_overrides(bad).is_err(),
                "{bad}"
            );
        }
    }
}
