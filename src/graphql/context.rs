//! What every resolver can reach: the services, and the request's principal and tenant.

use std::sync::Arc;

use async_graphql::Context;

use crate::auth::Principal;
use crate::auth::jwt::JwtKeys;
use crate::auth::principal::{ApiKeyCache, UserPrincipal, authenticate};
use crate::error::{AppError, AppResult};
use crate::tenancy::resolve::{OrganizationHints, resolve_tenant};
use crate::tenancy::{Db, Tenant, TenantContext};

/// Schema-wide services.
pub struct Services {
    pub db: Db,
    pub jwt: Arc<JwtKeys>,
    pub api_keys: ApiKeyCache,
}

/// Resolved once per request (or once per websocket connection), before any resolver.
/// Failures are kept rather than raised, so operations that need no identity (signup,
/// login, refreshSession) still work with a stale token in the headers.
pub struct RequestContext {
    principal: AppResult<Principal>,
    tenant: AppResult<Arc<TenantContext>>,
}

impl RequestContext {
    pub async fn resolve(services: &Services, credential: Option<&str>, hints: &OrganizationHints) -> Self {
        let Some(credential) = credential else {
            return Self {
                principal: Err(AppError::Unauthenticated),
                tenant: Err(AppError::Unauthenticated),
            };
        };
        let principal = authenticate(&services.db, &services.jwt, &services.api_keys, credential).await;
        let tenant = match &principal {
            Ok(principal) => resolve_tenant(&services.db, principal, hints).await.map(Arc::new),
            Err(_) => Err(AppError::Unauthenticated),
        };
        Self { principal, tenant }
    }

    pub fn principal(&self) -> AppResult<&Principal> {
        self.principal.as_ref().map_err(replay)
    }

    pub fn tenant_context(&self) -> AppResult<&Arc<TenantContext>> {
        self.tenant.as_ref().map_err(replay)
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

pub trait ContextExt {
    fn services(&self) -> &Services;
    fn request(&self) -> AppResult<&RequestContext>;
    fn principal(&self) -> AppResult<&Principal>;
    /// The signed-in person; API keys are `FORBIDDEN` here.
    fn user(&self) -> AppResult<&UserPrincipal>;
    /// The request's tenant, offering only scoped transactions.
    fn tenant(&self) -> AppResult<Tenant>;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Services {
        self.data_unchecked::<Services>()
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
        Ok(Tenant::new(self.services().db.clone(), ctx.clone()))
    }
}
