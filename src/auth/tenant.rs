//! Which tenant a request acts in: its principal's memberships and the organization it names.

use std::sync::Arc;
use std::time::Duration;

use entity::{OrgRole, Plan, organization};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Principal;
use super::cache::TtlCache;
use super::principal::Lookup;
use crate::error::{AppError, AppResult};
use crate::ids::{OrgId, UserId};
use crate::tenancy::unscoped;
use crate::tenancy::{Actor, Db, TenantContext};

/// Where the request named an organization, highest precedence first: the
/// `X-Organization-Id` header, the subdomain of BASE_DOMAIN, the `organization_id` cookie.
#[derive(Debug, Default, Clone)]
pub struct OrganizationHints {
    pub header: Option<String>,
    pub subdomain: Option<String>,
    pub cookie: Option<String>,
}

impl OrganizationHints {
    fn named(&self) -> Option<&str> {
        [&self.header, &self.subdomain, &self.cookie]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .next()
    }
}

fn names(named: &str, id: Uuid, slug: &str) -> bool {
    Uuid::parse_str(named).map_or(named.eq_ignore_ascii_case(slug), |named_id| named_id == id)
}

/// How long a person's memberships are reused without asking the database again, unless a
/// notice that access to one of their organizations changed comes first.
pub const MEMBERSHIP_CACHE_TTL: Duration = Duration::from_secs(5);
const MEMBERSHIP_CACHE_CAPACITY: usize = 10_000;

type Memberships = Vec<(organization::Model, OrgRole)>;

/// Signed-in people's memberships for a few seconds, so each request of theirs skips a
/// database round trip. An access notice (a member removed or demoted, an organization
/// erased, relayed between replicas) forgets everyone of that organization at once; a
/// lookup that raced with the notice is not kept ([`TtlCache`]).
/// Gaining access (a new membership, a new organization) forgets the person on this
/// replica, and shows on the others within [`MEMBERSHIP_CACHE_TTL`].
pub struct MembershipCache(TtlCache<UserId, Memberships>);

impl Default for MembershipCache {
    fn default() -> Self {
        Self(TtlCache::new(MEMBERSHIP_CACHE_CAPACITY, MEMBERSHIP_CACHE_TTL))
    }
}

impl MembershipCache {
    async fn memberships(&self, db: &Db, user: UserId, lookup: Lookup) -> AppResult<Memberships> {
        if lookup == Lookup::Cached
            && let Some(memberships) = self.0.get(&user)
        {
            return Ok(memberships);
        }
        self.0
            .read(user, unscoped::accounts::memberships_of(db, user))
            .await
    }

    /// Someone's access to `org` changed: everyone cached as its member is read again.
    pub fn forget_organization(&self, org: Uuid) {
        self.0
            .forget(|_, memberships| memberships.iter().any(|(member_of, _)| member_of.id == org));
    }

    /// `user` gained access somewhere: read their memberships again.
    pub fn forget_user(&self, user: UserId) {
        self.0.forget_key(&user);
    }

    /// Access notices arrived faster than they were read: forget everyone.
    pub fn forget_all(&self) {
        self.0.forget(|_, _| true);
    }
}

/// Forgets, on every access notice (local or relayed from another replica), the members of
/// the organization it names, until the notices end with the server.
pub async fn follow_access_notices(mut notices: broadcast::Receiver<Uuid>, cache: Arc<MembershipCache>) {
    loop {
        match notices.recv().await {
            Ok(org) => cache.forget_organization(org),
            Err(broadcast::error::RecvError::Lagged(_)) => cache.forget_all(),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Naming an organization the caller does not belong to is `FORBIDDEN` whether or not it
/// exists; a user in several organizations who names none gets `TENANT_REQUIRED`.
/// Returns the organization's plan with the context, for its limits.
pub async fn resolve_tenant(
    db: &Db,
    memberships: &MembershipCache,
    principal: &Principal,
    hints: &OrganizationHints,
    lookup: Lookup,
) -> AppResult<(TenantContext, Plan)> {
    let not_a_member = || AppError::forbidden("you are not a member of the named organization");
    match principal {
        Principal::ApiKey(key) => {
            if let Some(named) = hints.named()
                && !names(named, key.org.0, &key.org_slug)
            {
                return Err(not_a_member());
            }
            let context = TenantContext {
                actor: Actor::ApiKey {
                    id: key.id,
                    created_by: key.created_by,
                },
                org: key.org,
                role: key.role,
                only_project: key.project,
            };
            Ok((context, key.org_plan))
        }
        Principal::User(user) => {
            let memberships = memberships.memberships(db, user.id, lookup).await?;
            let (org, role) = match hints.named() {
                Some(named) => memberships
                    .into_iter()
                    .find(|(org, _)| names(named, org.id, &org.slug))
                    .ok_or_else(not_a_member)?,
                None if memberships.len() == 1 => {
                    memberships.into_iter().next().ok_or(AppError::TenantRequired)?
                }
                None => return Err(AppError::TenantRequired),
            };
            let context = TenantContext {
                actor: Actor::User(user.id),
                org: OrgId(org.id),
                role,
                only_project: None,
            };
            Ok((context, org.plan))
        }
    }
}
