//! Erasing an organization: its rows (`tenancy::erasure`) and then its workspace files. Every
//! step can be repeated, so an erasure that stopped midway (a crash, a deploy) is finished by
//! running it again: `tenantql org delete`, or the server at its next start.

use entity::organization_erasure;

use crate::error::{AppError, AppResult};
use crate::ids::OrgId;
use crate::integrations::workspaces::Workspaces;
use crate::tenancy::audit::Origin;
use crate::tenancy::{Actor, Db, erasure};

/// Erases `org` completely, or finishes its erasure if one was begun. `begun` runs once
/// nobody can act in the organization any more (to end its live streams). The rest runs on
/// its own task: a caller that goes away (a closed request) does not stop it midway.
pub async fn erase_organization(
    db: &Db,
    workspaces: &Workspaces,
    org: OrgId,
    actor: Actor,
    origin: &Origin,
    begun: impl FnOnce(),
) -> AppResult<()> {
    let erasure = erasure::begin(db, org, actor, origin).await?;
    begun();
    if erasure.completed_at.is_some() {
        return Ok(());
    }
    let (db, workspaces) = (db.clone(), workspaces.clone());
    tokio::spawn(async move { finish(&db, &workspaces, &erasure).await })
        .await
        .map_err(AppError::internal)?
        .map(drop)
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
        if let Err(error) = finish(db, workspaces, &erasure).await {
            tracing::warn!(
                org.id = %erasure.erased_organization_id,
                error = format!("{error:#}"),
                "finishing an interrupted erasure failed; the next start tries again"
            );
        }
    }
    Ok(())
}
