//! One run of an agent for a project; always owned by the organization that started it,
//! even when the agent is shared by another.

use sea_orm::entity::prelude::*;

use crate::JobStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
#[sea_orm(table_name = "agent_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub project_id: Uuid,
    /// `None` once the agent is deleted: the job keeps its history.
    pub agent_id: Option<Uuid>,
    pub status: JobStatus,
    pub progress: i32,
    pub input: Json,
    pub output: Option<Json>,
    pub error: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// The highest event `seq` written so far; the next event gets `last_seq + 1`.
    pub last_seq: i64,
    pub cancel_requested: bool,
    /// A queued job is not claimed before this (retry backoff).
    pub run_after: DateTimeUtc,
    /// The worker holding the job while it runs, and until when its lease lasts.
    pub worker_id: Option<Uuid>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
