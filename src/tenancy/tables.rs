//! Every tenant-owned table, declared once in deletion order, with the column holding its
//! tenant key: scoping, erasure and export follow it. A test compares it with the database
//! catalog: a table with `organization_id` missing here, or one without forced RLS on
//! PostgreSQL, fails.

use sea_orm::{EntityTrait, IdenStatic, ModelTrait};
use uuid::Uuid;

/// A sea-orm entity whose rows belong to one organization.
pub trait TenantEntity: EntityTrait<Model: serde::Serialize + Sync> {
    /// The resource's name in the audit trail, as its GraphQL type is named.
    const RESOURCE: &'static str;
    /// The column holding the owning organization's id.
    fn tenant_column() -> Self::Column;
    /// The primary key, a time-ordered UUID (v7), also the keyset order of lists.
    fn id_column() -> Self::Column;
    /// The project column, for rows that a project-restricted API key may only see
    /// within its project.
    fn project_column() -> Option<Self::Column> {
        None
    }
}

macro_rules! tenant_tables {
    ($($module:ident: $resource:literal, tenant = $tenant:ident $(, project = $project:ident)?;)*) => {
        $(impl TenantEntity for entity::$module::Entity {
            const RESOURCE: &'static str = $resource;
            fn tenant_column() -> Self::Column {
                entity::$module::Column::$tenant
            }
            fn id_column() -> Self::Column {
                entity::$module::Column::Id
            }
            $(fn project_column() -> Option<Self::Column> {
                Some(entity::$module::Column::$project)
            })?
        })*

        /// Visits every tenant table, children before their parents: the order rows are
        /// erased in.
        pub fn visit_tenant_tables(visitor: &mut impl TableVisitor) {
            $(visitor.visit::<entity::$module::Entity>();)*
        }
    };
}

// Every tenant table, in deletion order: the one list.
tenant_tables! {
    // Jobs first: a job of the organization still running stops at its next step.
    agent_job_event: "AgentJobEvent", tenant = OrganizationId, project = ProjectId;
    agent_job: "AgentJob", tenant = OrganizationId, project = ProjectId;
    // What jobs and people wrote, and the organization's links to the outside.
    post: "Post", tenant = OrganizationId, project = ProjectId;
    campaign: "Campaign", tenant = OrganizationId, project = ProjectId;
    integration: "Integration", tenant = OrganizationId;
    oauth_state: "OAuthState", tenant = OrganizationId;
    chat_pairing: "ChatPairing", tenant = OrganizationId, project = ProjectId;
    pairing_code: "PairingCode", tenant = OrganizationId, project = ProjectId;
    provider_credential: "ProviderCredential", tenant = OrganizationId;
    // Its usage and its own documents.
    usage_record: "UsageRecord", tenant = OrganizationId, project = ProjectId;
    trusted_document: "TrustedDocument", tenant = OrganizationId;
    // Agents, after what refers to them: shares and acceptances, then the agents.
    agent_share_acceptance: "AgentShareAcceptance", tenant = OrganizationId;
    agent_share: "AgentShare", tenant = OrganizationId;
    agent: "Agent", tenant = OrganizationId, project = ProjectId;
    // Who may act, then the projects and the organization itself.
    api_key: "ApiKey", tenant = OrganizationId, project = ProjectId;
    project_member: "ProjectMember", tenant = OrganizationId, project = ProjectId;
    project: "Project", tenant = OrganizationId, project = Id;
    organization_member: "OrganizationMember", tenant = OrganizationId;
    organization: "Organization", tenant = Id;
    // Last: the trail's rows may be deleted only once their organization is gone.
    audit_entry: "AuditEntry", tenant = OrganizationId;
}

/// Something done for every tenant table ([`visit_tenant_tables`]).
pub trait TableVisitor {
    fn visit<E: TenantEntity>(&mut self);
}

/// Every tenant table as `(table, tenant key column)`, in deletion order.
pub fn tenant_tables() -> Vec<(&'static str, &'static str)> {
    struct Names(Vec<(&'static str, &'static str)>);
    impl TableVisitor for Names {
        fn visit<E: TenantEntity>(&mut self) {
            self.0
                .push((E::default().table_name(), E::tenant_column().as_str()));
        }
    }
    let mut names = Names(Vec::new());
    visit_tenant_tables(&mut names);
    names.0
}

/// The id of a row of a tenant entity (every one has a UUID primary key).
pub(super) fn row_id<E: TenantEntity>(model: &E::Model) -> Uuid {
    as_uuid(model.get(E::id_column())).unwrap_or_default()
}

pub(super) fn as_uuid(value: sea_orm::Value) -> Option<Uuid> {
    <Uuid as sea_orm::sea_query::ValueType>::try_from(value).ok()
}
