//! Declarative role checks for fields: `#[graphql(guard = "OrgRoleGuard(OrgRole::Admin)")]`.

use async_graphql::{Context, Guard, Result};
use entity::OrgRole;

use crate::error::AppError;
use crate::graphql::context::ContextExt;

/// The caller acts in a resolved organization with at least this role.
pub struct OrgRoleGuard(pub OrgRole);

impl Guard for OrgRoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let tenant = ctx.request()?.tenant_context()?;
        if tenant.role < self.0 {
            return Err(AppError::forbidden(format!("this needs the {:?} role or above", self.0)).into());
        }
        Ok(())
    }
}

/// The caller is a signed-in person (API keys are refused).
pub struct UserGuard;

impl Guard for UserGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        ctx.user()?;
        Ok(())
    }
}
