//! What every resolver can reach: the services, and the request's principal and tenant.

use std::sync::Arc;

use async_graphql::Context;
use entity::{Plan, api_key};

use crate::auth::Principal;
use crate::auth::jwt::JwtKeys;
use crate::auth::password::Passwords;
use crate::auth::principal::{ApiKeyCache, Lookup, UserPrincipal, authenticate};
use crate::auth::tenant::{MembershipCache, OrganizationHints, resolve_tenant};
use crate::error::{AppError, AppResult};
use crate::governance::persisted::{PersistedQueries, Requested, Resolved};
use crate::governance::rate_limits::{Caller, RateLimits};
use crate::graphql::documents::DocumentCache;
use crate::graphql::loaders::{Relations, TenantRelations};
use crate::ids::{OrgId, UserId};
use crate::integrations::crypto::Keyring;
use crate::integrations::oauth::OAuth;
use crate::integrations::workspaces::Workspaces;
use crate::jobs::Jobs;
use crate::jobs::stream::Liveness;
use crate::tenancy::audit::{ClientInfo, Origin};
use crate::tenancy::{Actor, Db, Scoped, SharedRead, Tenant, TenantContext, TenantDb};

/// Schema-wide services.
pub struct Services {
    /// The owner's pool, which only the named cross-tenant steps use (ARCHITECTURE.md).
    pub db: Db,
    /// The tenant pool every [`Tenant`] runs on.
    pub tenant_db: TenantDb,
    pub jwt: Arc<JwtKeys>,
    pub passwords: Passwords,
    pub api_keys: ApiKeyCache,
    pub memberships: Arc<MembershipCache>,
    pub jobs: Arc<Jobs>,
    pub rate_limits: Arc<RateLimits>,
    pub persisted: Arc<PersistedQueries>,
    pub keyring: Arc<Keyring>,
    pub oauth: Arc<OAuth>,
    pub workspaces: Workspaces,
    /// Parsed documents, for the schema and for the HTTP endpoint's look before it runs one.
    pub documents: Arc<DocumentCache>,
}

impl Services {
    /// After someone's access to `org` was reduced (a member removed or demoted, a key
    /// revoked, the organization erased): these keys are forgotten by this replica's cache
    /// at once, and every replica's live streams of the organization re-check their callers.
    pub fn access_changed(&self, org: OrgId, keys: &[api_key::Model]) {
        for key in keys {
            self.api_keys.forget(&key.prefix);
        }
        self.memberships.forget_organization(org.0);
        self.jobs.bus.access_changed(org.0);
    }

    /// After `org`'s slug or plan changed: every replica reads its members' memberships
    /// again, which carry both (the slug names the organization, the plan sets its limits).
    pub fn organization_changed(&self, org: OrgId) {
        self.access_changed(org, &[]);
    }

    /// After `user` gained access somewhere (a new membership or organization): this
    /// replica reads their memberships again at once, others within the cache's lifetime.
    pub fn access_gained(&self, user: UserId) {
        self.memberships.forget_user(user);
    }
}

/// Resolved once per request (or once per websocket connection), before any resolver.
/// Failures are kept rather than raised, so operations that need no identity (signup,
/// login, refreshSession) still work with a stale token in the headers.
pub struct RequestContext {
    principal: AppResult<Principal>,
    tenant: AppResult<Arc<TenantContext>>,
    /// The tenant's plan, which sets its rate limits.
    plan: Option<Plan>,
    /// Kept so a long-lived subscription can check the caller again later.
    credential: Option<String>,
    hints: OrganizationHints,
    client: ClientInfo,
}

impl RequestContext {
    pub async fn resolve(
        services: &Services,
        credential: Option<&str>,
        hints: &OrganizationHints,
        client: ClientInfo,
    ) -> Self {
        Self::resolve_with(services, credential, hints, client, Lookup::Cached).await
    }

    async fn resolve_with(
        services: &Services,
        credential: Option<&str>,
        hints: &OrganizationHints,
        client: ClientInfo,
        lookup: Lookup,
    ) -> Self {
        let Some(credential) = credential else {
            return Self {
                principal: Err(AppError::Unauthenticated),
                tenant: Err(AppError::Unauthenticated),
                plan: None,
                credential: None,
                hints: hints.clone(),
                client,
            };
        };
        let principal = authenticate(
            &services.db,
            &services.jwt,
            &services.api_keys,
            credential,
            lookup,
        )
        .await;
        let resolved = match &principal {
            Ok(principal) => {
                resolve_tenant(&services.db, &services.memberships, principal, hints, lookup).await
            }
            Err(_) => Err(AppError::Unauthenticated),
        };
        let (tenant, plan) = match resolved {
            Ok((tenant, plan)) => (Ok(Arc::new(tenant)), Some(plan)),
            Err(error) => (Err(error), None),
        };
        Self {
            principal,
            tenant,
            plan,
            credential: Some(credential.to_owned()),
            hints: hints.clone(),
            client,
        }
    }

    /// What ends a live stream of this caller: the access token's (or API key's) expiry, or
    /// a resolution from the database, past any cache, that fails (credential revoked,
    /// membership removed) or yields less access.
    pub fn liveness(&self, services: Arc<Services>) -> AppResult<Liveness> {
        let before = self.tenant_context()?.clone();
        let expires_at = match self.principal()? {
            Principal::User(user) => Some(user.expires_at),
            Principal::ApiKey(key) => key.expires_at,
        };
        let (credential, hints, client) = (self.credential.clone(), self.hints.clone(), self.client.clone());
        let recheck = move || {
            let (services, before, credential, hints, client) = (
                services.clone(),
                before.clone(),
                credential.clone(),
                hints.clone(),
                client.clone(),
            );
            Box::pin(async move {
                let now =
                    Self::resolve_with(&services, credential.as_deref(), &hints, client, Lookup::Fresh).await;
                let after = now.tenant_context()?;
                if after.org != before.org
                    || after.role < before.role
                    || after.only_project != before.only_project
                {
                    return Err(AppError::forbidden("your access to this organization changed"));
                }
                Ok(())
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = AppResult<()>> + Send>>
        };
        Ok(Liveness {
            expires_at,
            recheck: Box::new(recheck),
        })
    }

    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal.as_ref().map_err(replay)
    }

    pub fn tenant_context(&self) -> AppResult<&Arc<TenantContext>> {
        self.tenant.as_ref().map_err(replay)
    }

    pub fn client(&self) -> &ClientInfo {
        &self.client
    }

    /// The text to run for what the client sent (see `governance::persisted`); a
    /// persisted-only API key gets trusted documents or nothing.
    pub async fn document(&self, services: &Services, requested: Requested) -> AppResult<Resolved> {
        let trusted_only = match &self.principal {
            Ok(Principal::ApiKey(key)) if key.persisted_only => Some(Tenant::new(
                services.tenant_db.clone(),
                self.tenant_context()?.clone(),
            )),
            _ => None,
        };
        services.persisted.resolve(requested, trusted_only.as_ref()).await
    }

    /// The operation's batched relation reads, in `shared` when its fields share one read
    /// transaction; `None` before a tenant is known.
    pub fn relations(&self, services: &Services, shared: Option<&Arc<SharedRead>>) -> Option<Relations> {
        let tenant = Tenant::new(services.tenant_db.clone(), self.tenant_context().ok()?.clone());
        Some(TenantRelations::loader(tenant.sharing(shared.cloned())))
    }

    /// Whom this request's operations are charged to; `None` before a tenant is known.
    pub fn caller(&self) -> Option<Caller> {
        let tenant = self.tenant.as_ref().ok()?;
        Some(Caller {
            organization: tenant.org.0,
            plan: self.plan?,
            api_key: match tenant.actor {
                Actor::ApiKey { id, .. } => Some(id.0),
                _ => None,
            },
        })
    }
}

/// The stored error again, for each resolver that asks.
fn replay(error: &AppError) -> AppError {
    match error {
        AppError::Forbidden(message) => AppError::Forbidden(message.clone()),
        AppError::TenantRequired => AppError::TenantRequired,
        _ => AppError::Unauthenticated,
    }
}

/// Runs `work` in a transaction of the request's tenant that only reads.
pub async fn tenant_read<T>(
    ctx: &Context<'_>,
    work: impl for<'s> AsyncFnOnce(&'s Scoped) -> AppResult<T>,
) -> AppResult<T> {
    ctx.tenant()?.read(work).await
}

/// Runs `work` in a transaction of the request's tenant, audited as this field's operation.
pub async fn tenant_write<T>(
    ctx: &Context<'_>,
    work: impl for<'s> AsyncFnOnce(&'s Scoped) -> AppResult<T>,
) -> AppResult<T> {
    ctx.tenant()?.write(work).await
}

pub trait ContextExt {
    fn services(&self) -> &Arc<Services>;
    fn request(&self) -> AppResult<&RequestContext>;
    fn principal(&self) -> AppResult<&Principal>;
    /// The signed-in person; API keys are `FORBIDDEN` here.
    fn user(&self) -> AppResult<&UserPrincipal>;
    /// The request's tenant, offering only scoped transactions; its writes are audited
    /// as this field's operation.
    fn tenant(&self) -> AppResult<Tenant>;
    /// The audit origin of a change made by this field's operation.
    fn origin(&self) -> Origin;
    /// The operation's batched relation reads (see `graphql::loaders`).
    fn relations(&self) -> AppResult<&Relations>;
    /// Counts a job start against the organization's jobs per minute.
    fn charge_job_start(&self) -> impl Future<Output = AppResult<()>> + Send;
    /// Counts a sign-in attempt against the client address's allowance.
    fn charge_auth_attempt(&self) -> impl Future<Output = AppResult<()>> + Send;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Arc<Services> {
        self.data_unchecked::<Arc<Services>>()
    }

    fn request(&self) -> AppResult<&RequestContext> {
        self.data::<RequestContext>()
            .map_err(|_| AppError::Unauthenticated)
    }

    fn principal(&self) -> AppResult<&Principal> {
        self.request()?.principal()
    }

    fn user(&self) -> AppResult<&UserPrincipal> {
        match self.principal()? {
            Principal::User(user) => Ok(user),
            Principal::ApiKey(_) => Err(AppError::forbidden(
                "this operation needs a signed-in user, not an API key",
            )),
        }
    }

    fn tenant(&self) -> AppResult<Tenant> {
        let ctx = self.request()?.tenant_context()?;
        let tenant = Tenant::new(self.services().tenant_db.clone(), ctx.clone()).audited(self.origin());
        Ok(tenant.sharing(self.data_opt::<Arc<SharedRead>>().cloned()))
    }

    fn relations(&self) -> AppResult<&Relations> {
        self.request()?.tenant_context()?;
        self.data::<Relations>()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("an operation ran without its relation loader")))
    }

    async fn charge_job_start(&self) -> AppResult<()> {
        let caller = self.request()?.caller().ok_or(AppError::Unauthenticated)?;
        self.services()
            .rate_limits
            .charge_job_start(caller.organization, caller.plan)
            .await
    }

    async fn charge_auth_attempt(&self) -> AppResult<()> {
        let ip = self
            .request()
            .ok()
            .and_then(|request| request.client().ip.as_deref());
        self.services().rate_limits.charge_auth_attempt(ip).await
    }

    fn origin(&self) -> Origin {
        Origin {
            action: self.field().name().to_owned(),
            client: self
                .request()
                .map(|request| request.client().clone())
                .unwrap_or_default(),
        }
    }
}
