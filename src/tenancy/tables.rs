//! Every tenant-owned table and the column holding its tenant key. A test compares this list
//! with the database catalog: a table with `organization_id` missing here, or one without
//! forced RLS on PostgreSQL, fails the build.

use sea_orm::{EntityTrait, ModelTrait};
use uuid::Uuid;

/// `(table, tenant key column)`.
pub const TENANT_TABLES: &[(&str, &str)] = &[
    ("organizations", "id"),
    ("organization_members", "organization_id"),
    ("projects", "organization_id"),
    ("project_members", "organization_id"),
    ("api_keys", "organization_id"),
    ("agents", "organization_id"),
    ("agent_shares", "organization_id"),
    ("agent_share_acceptances", "organization_id"),
    ("agent_jobs", "organization_id"),
    ("agent_job_events", "organization_id"),
    ("audit_log", "organization_id"),
    ("trusted_documents", "organization_id"),
    ("usage_records", "organization_id"),
    ("provider_credentials", "organization_id"),
    ("pairing_codes", "organization_id"),
    ("chat_pairings", "organization_id"),
    ("oauth_states", "organization_id"),
    ("integrations", "organization_id"),
    ("campaigns", "organization_id"),
    ("posts", "organization_id"),
];

/// A sea-orm entity whose rows belong to one organization.
pub trait TenantEntity: EntityTrait<Model: serde::Serialize> {
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

macro_rules! tenant_entity {
    ($module:ident, $resource:literal, tenant = $tenant:ident $(, project = $project:ident)?) => {
        impl TenantEntity for entity::$module::Entity {
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
        }
    };
}

tenant_entity!(organization, "Organization", tenant = Id);
tenant_entity!(organization_member, "OrganizationMember", tenant = OrganizationId);
tenant_entity!(project, "Project", tenant = OrganizationId, project = Id);
tenant_entity!(
    project_member,
    "ProjectMember",
    tenant = OrganizationId,
    project = ProjectId
);
tenant_entity!(api_key, "ApiKey", tenant = OrganizationId, project = ProjectId);
tenant_entity!(agent, "Agent", tenant = OrganizationId, project = ProjectId);
tenant_entity!(agent_share, "AgentShare", tenant = OrganizationId);
tenant_entity!(
    agent_share_acceptance,
    "AgentShareAcceptance",
    tenant = OrganizationId
);
tenant_entity!(
    agent_job,
    "AgentJob",
    tenant = OrganizationId,
    project = ProjectId
);
tenant_entity!(
    agent_job_event,
    "AgentJobEvent",
    tenant = OrganizationId,
    project = ProjectId
);
tenant_entity!(audit_entry, "AuditEntry", tenant = OrganizationId);
tenant_entity!(trusted_document, "TrustedDocument", tenant = OrganizationId);
tenant_entity!(
    usage_record,
    "UsageRecord",
    tenant = OrganizationId,
    project = ProjectId
);
tenant_entity!(provider_credential, "ProviderCredential", tenant = OrganizationId);
tenant_entity!(
    pairing_code,
    "PairingCode",
    tenant = OrganizationId,
    project = ProjectId
);
tenant_entity!(
    chat_pairing,
    "ChatPairing",
    tenant = OrganizationId,
    project = ProjectId
);
tenant_entity!(oauth_state, "OAuthState", tenant = OrganizationId);
tenant_entity!(integration, "Integration", tenant = OrganizationId);
tenant_entity!(campaign, "Campaign", tenant = OrganizationId, project = ProjectId);
tenant_entity!(post, "Post", tenant = OrganizationId, project = ProjectId);

/// The id of a row of a tenant entity (every one has a UUID primary key).
pub(super) fn row_id<E: TenantEntity>(model: &E::Model) -> Uuid {
    as_uuid(model.get(E::id_column())).unwrap_or_default()
}

pub(super) fn as_uuid(value: sea_orm::Value) -> Option<Uuid> {
    <Uuid as sea_orm::sea_query::ValueType>::try_from(value).ok()
}
