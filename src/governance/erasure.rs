//! Erasing an organization: its rows (`tenancy::erasure`) and then its workspace files. Every
//! step can be repeated, so an erasure that stopped midway (a crash, a deploy) is finished by
//! running it again: `tenantql org delete`, or the server at its next start.

use entity::organization_erasure;

use crate::error::AppResult;
use crate::governance::audit::Origin;
use crate::ids::OrgId;
use crate::integrations::workspaces::Workspaces;
use crate::tenancy::{Actor, Db, erasure};

/// Erases `org` completely, or finishes its erasure if one was begun. Returns the rows
/// deleted by this call.
pub async fn erase_organization(
    db: &Db,
    workspaces: &Workspaces,
    org: OrgId,
    actor: Actor,
    origin: &Origin,
) -> AppResult<u64> {
    let erasure = erasure::begin(db, org, actor, origin).await?;
    if erasure.completed_at.is_some() {
        return Ok(0);
    }
    finish(db, workspaces, &erasure).await
}

async fn finish(db: &Db, workspaces: &Workspaces, erasure: &organization_erasure::Model) -> AppResult<u64> {
    let org = erasure.erased_organization_id;
    let deleted = erasure::delete_rows(db, erasure).await?;
    workspaces.remove(org).await?;
    erasure::complete(db, erasure).await?;
    tracing::info!(org.id = %org, rows = erasure.rows_deleted + deleted as i64, "organization erased");
    Ok(deleted)
}

/// Finishes every erasure that a stopped process left unfinished.
pub async fn resume_unfinished(db: &Db, workspaces: &Workspaces) -> AppResult<()> {
    for erasure in erasure::unfinished(db).await? {
        finish(db, workspaces, &erasure).await?;
    }
    Ok(())
}
