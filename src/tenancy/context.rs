//! The tenant context of one request: who acts, in which organization, with which role.

use entity::{OrgRole, ProjectRole};

use crate::ids::{ApiKeyId, JobId, OrgId, ProjectId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    ApiKey {
        id: ApiKeyId,
        created_by: UserId,
    },
    /// A worker acting for a job, on behalf of whoever started it.
    Job {
        id: JobId,
        started_by: UserId,
    },
    /// Someone at the server's command line; acts on whole organizations, never inside one.
    Operator,
}

impl Actor {
    /// The person accountable for the action: the user, or the creator of the API key.
    pub fn accountable_user(&self) -> UserId {
        match *self {
            Actor::User(user) => user,
            Actor::ApiKey { created_by, .. } => created_by,
            Actor::Job { started_by, .. } => started_by,
            Actor::Operator => UserId(uuid::Uuid::nil()),
        }
    }
}

/// Resolved once per request, before any resolver runs.
#[derive(Debug, Clone)]
pub struct TenantContext {
    pub actor: Actor,
    pub org: OrgId,
    /// The actor's role in `org`; for an API key, the key's own role.
    pub role: OrgRole,
    /// Set for an API key restricted to one project: nothing outside it is visible.
    pub only_project: Option<ProjectId>,
}

impl TenantContext {
    /// The project role this context holds without a project membership row:
    /// organization owners and admins act as project admins everywhere, and an API key's
    /// role maps onto the project it may reach. `None` means a membership row decides.
    pub fn implied_project_role(&self) -> Option<ProjectRole> {
        match (self.actor, self.role) {
            (_, OrgRole::Owner | OrgRole::Admin) => Some(ProjectRole::Admin),
            (Actor::ApiKey { .. } | Actor::Job { .. }, OrgRole::Member) => Some(ProjectRole::Editor),
            (Actor::Operator, _) => None,
            (_, OrgRole::Viewer) => Some(ProjectRole::Viewer),
            (Actor::User(_), OrgRole::Member) => None,
        }
    }
}
