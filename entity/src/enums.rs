//! Enumerations stored as short strings, shared by several tables.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A member's role in an organization; the derived order is the order of power.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrgRole {
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
    #[sea_orm(string_value = "MEMBER")]
    Member,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "OWNER")]
    Owner,
}

/// A member's role in one project; the derived order is the order of power.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProjectRole {
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
    #[sea_orm(string_value = "EDITOR")]
    Editor,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrgKind {
    #[sea_orm(string_value = "CLIENT")]
    Client,
    #[sea_orm(string_value = "SOLUTION")]
    Solution,
    #[sea_orm(string_value = "INDUSTRY")]
    Industry,
    #[sea_orm(string_value = "PLATFORM")]
    Platform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Plan {
    #[sea_orm(string_value = "FREE")]
    Free,
    #[sea_orm(string_value = "STARTER")]
    Starter,
    #[sea_orm(string_value = "PRO")]
    Pro,
    #[sea_orm(string_value = "ENTERPRISE")]
    Enterprise,
}

/// Who may use an agent besides its own organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentSharing {
    /// Only the owning organization.
    #[sea_orm(string_value = "PRIVATE")]
    Private,
    /// Every organization, read-only.
    #[sea_orm(string_value = "GLOBAL")]
    Global,
    /// The organizations listed in `agent_shares`, read-only.
    #[sea_orm(string_value = "SELECTIVE")]
    Selective,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl JobStatus {
    /// A job in a terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// Who made a change recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorKind {
    #[sea_orm(string_value = "USER")]
    User,
    #[sea_orm(string_value = "API_KEY")]
    ApiKey,
    #[sea_orm(string_value = "JOB")]
    Job,
    #[sea_orm(string_value = "OPERATOR")]
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PostStatus {
    #[sea_orm(string_value = "DRAFT")]
    Draft,
    #[sea_orm(string_value = "APPROVED")]
    Approved,
    #[sea_orm(string_value = "PUBLISHED")]
    Published,
}
