//! Writing the audit trail: each change leaves one row, written by the transaction that made
//! it, naming who acted, from where, on which resource, and the resource before and after
//! (redacted). `Scoped` writes a tenant's rows, the cross-tenant steps their own;
//! `governance::audit` reads them.

#![expect(
    clippy::disallowed_methods,
    reason = "the audit row is inserted by the transaction it records"
)]

use chrono::Utc;
use entity::{ActorKind, audit_entry};
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::Value as Json;
use uuid::Uuid;

use super::Actor;
use crate::error::AppResult;

/// Where a request came from, as far as the server can tell.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// The mutation a change is made for: its operation name and its caller's client.
#[derive(Debug, Clone)]
pub struct Origin {
    pub action: String,
    pub client: ClientInfo,
}

/// The resource a mutation changed, as the audit row shows it: the first row it wrote.
#[derive(Debug, Clone)]
pub struct Change {
    pub resource_type: &'static str,
    pub resource_id: Uuid,
    pub before: Option<Json>,
    pub after: Option<Json>,
}

impl Change {
    pub fn new<M: serde::Serialize>(
        resource_type: &'static str,
        resource_id: Uuid,
        before: Option<&M>,
        after: Option<&M>,
    ) -> Self {
        Self {
            resource_type,
            resource_id,
            before: before.map(redacted),
            after: after.map(redacted),
        }
    }
}

/// Words in field names whose values never reach the trail or an export.
const SECRET_MARKERS: &[&str] = &["password", "secret", "hash", "token", "ciphertext", "verifier"];
const REDACTED: &str = "[REDACTED]";

/// The row as JSON, with secret-bearing fields replaced: for the trail and for exports.
pub fn redacted<M: serde::Serialize>(model: &M) -> Json {
    let mut json = serde_json::to_value(model).unwrap_or(Json::Null);
    redact(&mut json);
    json
}

fn redact(json: &mut Json) {
    match json {
        Json::Object(fields) => {
            for (name, value) in fields.iter_mut() {
                if names_a_secret(name) {
                    if !value.is_null() {
                        *value = Json::String(REDACTED.into());
                    }
                } else {
                    redact(value);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Whether a field name has a secret's word in it: `access_token` and `pkceVerifier` do,
/// `tokens` and `maxTokens` (counts) do not.
fn names_a_secret(name: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in name.chars() {
        if c == '_' || c == '-' || c.is_ascii_uppercase() {
            words.push(std::mem::take(&mut word));
        }
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        }
    }
    words.push(word);
    words.iter().any(|word| SECRET_MARKERS.contains(&word.as_str()))
}

/// The audit row of one mutation.
fn entry(
    origin: &Origin,
    organization: Option<Uuid>,
    actor: Actor,
    change: Option<Change>,
) -> AppResult<audit_entry::ActiveModel> {
    let (actor_kind, actor_id) = match actor {
        Actor::User(user) => (ActorKind::User, user.0),
        Actor::ApiKey { id, .. } => (ActorKind::ApiKey, id.0),
        Actor::Job { id, .. } => (ActorKind::Job, id.0),
        Actor::Operator => (ActorKind::Operator, Uuid::nil()),
    };
    let (resource_type, resource_id, before, after) = match change {
        Some(change) => (
            Some(change.resource_type.to_owned()),
            Some(change.resource_id),
            change.before,
            change.after,
        ),
        None => (None, None, None, None),
    };
    let client = &origin.client;
    Ok(audit_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        organization_id: Set(organization),
        actor_kind: Set(actor_kind),
        actor_id: Set(actor_id),
        action: Set(origin.action.clone()),
        resource_type: Set(resource_type),
        resource_id: Set(resource_id),
        before: Set(before),
        after: Set(after),
        ip: Set(client.ip.clone()),
        user_agent: Set(client.user_agent.as_deref().map(|agent| truncate(agent, 512))),
        request_id: Set(client.request_id.clone()),
        created_at: Set(Utc::now()),
    })
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Writes the audit row of one change inside the transaction `txn` that made it, so the two
/// commit together or not at all.
pub(super) async fn append(
    txn: &impl ConnectionTrait,
    origin: &Origin,
    organization: Option<Uuid>,
    actor: Actor,
    change: Option<Change>,
) -> AppResult<()> {
    let row = entry(origin, organization, actor, change)?;
    audit_entry::Entity::insert(row)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut json = serde_json::json!({
            "name": "bot",
            "secret_hash": "abc",
            "nested": { "password_hash": "x", "kept": 1, "refresh_token": null },
            "list": [{ "access_token": "t", "clientSecret": "s", "pkceVerifier": "v" }],
            "tokens": 1200,
            "config": { "maxTokens": 256, "secret": "s" }
        });
        redact(&mut json);
        assert_eq!(
            json,
            serde_json::json!({
                "name": "bot",
                "secret_hash": REDACTED,
                "nested": { "password_hash": REDACTED, "kept": 1, "refresh_token": null },
                "list": [{ "access_token": REDACTED, "clientSecret": REDACTED, "pkceVerifier": REDACTED }],
                "tokens": 1200,
                "config": { "maxTokens": 256, "secret": REDACTED }
            })
        );
    }
}
