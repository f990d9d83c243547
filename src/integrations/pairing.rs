//! Pairing chat bots with projects: a project editor creates a six-digit code; a bot (an API
//! key of the same organization) presents it with the chat it serves, once, within 15 minutes.
//! Codes are stored hashed; guessing is limited per key and per client address.

use chrono::{DateTime, Duration, Utc};
use entity::{ProjectRole, chat_pairing, pairing_code};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::auth::secret_token::sha256_hex;
use crate::error::{AppError, AppResult};
use crate::ids::ProjectId;
use crate::tenancy::{Actor, Scoped};

const CODE_LIFETIME_MINUTES: i64 = 15;
const PLATFORMS: &[&str] = &["telegram", "slack", "discord", "whatsapp", "teams", "other"];

/// The code's hash, salted with its organization (one code may be live in two tenants).
fn code_hash(organization: Uuid, code: &str) -> String {
    sha256_hex(&format!("{organization}:{code}"))
}

/// A new code for `project`, and the code itself (shown once).
pub async fn create_code(scoped: &Scoped, project: ProjectId) -> AppResult<(pairing_code::Model, String)> {
    scoped.project_with_role(project, ProjectRole::Editor).await?;
    let code = format!("{:06}", rand::random_range(0..1_000_000u32));
    let org = scoped.context().org.0;
    let now = Utc::now();
    let row = pairing_code::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(org),
        project_id: Set(project.0),
        code_hash: Set(code_hash(org, &code)),
        expires_at: Set(now + Duration::minutes(CODE_LIFETIME_MINUTES)),
        used_at: Set(None),
        created_by: Set(scoped.context().actor.accountable_user().0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok((scoped.insert(row).await?, code))
}

pub struct PairRequest<'a> {
    pub code: &'a str,
    pub chat_id: &'a str,
    pub platform: &'a str,
}

/// Uses a code: the calling bot's chat is paired with the code's project (a chat paired
/// before moves to it). Unknown, expired and used codes are refused alike.
pub async fn pair(
    scoped: &Scoped,
    request: PairRequest<'_>,
    now: DateTime<Utc>,
) -> AppResult<chat_pairing::Model> {
    let Actor::ApiKey { id: api_key, .. } = scoped.context().actor else {
        return Err(AppError::forbidden("pairing is done by a bot, with its API key"));
    };
    let platform = request.platform.trim().to_ascii_lowercase();
    if !PLATFORMS.contains(&platform.as_str()) {
        return Err(AppError::bad_input(
            "platform",
            format!("one of {}", PLATFORMS.join(", ")),
        ));
    }
    let chat_id = request.chat_id.trim();
    if chat_id.is_empty() || chat_id.len() > 128 {
        return Err(AppError::bad_input("chatId", "1 to 128 characters"));
    }
    let invalid = || AppError::bad_input("code", "this code is not valid (wrong, expired or used)");
    if request.code.len() != 6 || !request.code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let org = scoped.context().org.0;
    let code = scoped
        .one(
            scoped
                .select::<pairing_code::Entity>()
                .filter(pairing_code::Column::CodeHash.eq(code_hash(org, request.code)))
                .filter(pairing_code::Column::UsedAt.is_null())
                .filter(pairing_code::Column::ExpiresAt.gt(now)),
        )
        .await?
        .ok_or_else(invalid)?;
    // Claims the code only if still unused, so two racing bots cannot both pair with it.
    let claimed = scoped
        .update_where(
            scoped
                .update_many::<pairing_code::Entity>()
                .col_expr(pairing_code::Column::UsedAt, Expr::value(now))
                .col_expr(pairing_code::Column::UpdatedAt, Expr::value(now))
                .filter(pairing_code::Column::Id.eq(code.id))
                .filter(pairing_code::Column::UsedAt.is_null()),
        )
        .await?;
    if claimed == 0 {
        return Err(invalid());
    }
    let existing = scoped
        .one(
            scoped
                .select::<chat_pairing::Entity>()
                .filter(chat_pairing::Column::Platform.eq(&platform))
                .filter(chat_pairing::Column::ChatId.eq(chat_id)),
        )
        .await?;
    match existing {
        Some(existing) => {
            let mut pairing = existing.into_active_model();
            pairing.project_id = Set(code.project_id);
            pairing.api_key_id = Set(api_key.0);
            pairing.updated_at = Set(now);
            scoped.update(pairing, "chat pairing").await
        }
        None => {
            let pairing = chat_pairing::ActiveModel {
                id: Set(Uuid::now_v7()),
                organization_id: Set(org),
                project_id: Set(code.project_id),
                platform: Set(platform),
                chat_id: Set(chat_id.to_owned()),
                api_key_id: Set(api_key.0),
                created_at: Set(now),
                updated_at: Set(now),
            };
            scoped.insert(pairing).await
        }
    }
}

/// The chats paired with a project.
pub async fn pairings(scoped: &Scoped, project: ProjectId) -> AppResult<Vec<chat_pairing::Model>> {
    let query = scoped.select_in_project::<chat_pairing::Entity>(project).await?;
    scoped.all(query).await
}
