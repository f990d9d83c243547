//! Which tenant a request acts in: its principal's memberships and the organization it names.

use entity::Plan;
use uuid::Uuid;

use super::Principal;
use crate::error::{AppError, AppResult};
use crate::ids::OrgId;
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

/// Naming an organization the caller does not belong to is `FORBIDDEN` whether or not it
/// exists; a user in several organizations who names none gets `TENANT_REQUIRED`.
/// Returns the organization's plan with the context, for its limits.
pub async fn resolve_tenant(
    db: &Db,
    principal: &Principal,
    hints: &OrganizationHints,
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
            let memberships = unscoped::accounts::memberships_of(db, user.id).await?;
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
