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
        // Managing the organization (members, keys, settings, sharing) reaches beyond any one
        // project, so a project-restricted API key may not, whatever its role.
        if self.0 >= OrgRole::Admin && tenant.only_project.is_some() {
            return Err(AppError::forbidden("this API key is restricted to one project").into());
        }
        Ok(())
    }
}

/// The caller is not restricted to one project (for organization-wide reads such as members).
pub struct OrganizationWideGuard;

impl Guard for OrganizationWideGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        if ctx.request()?.tenant_context()?.only_project.is_some() {
            return Err(AppError::forbidden("this API key is restricted to one project").into());
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
