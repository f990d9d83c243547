//! argon2id password hashing, run off the async runtime because it is deliberately slow.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{AppError, AppResult};

pub async fn hash(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("argon2: {error}"))
    })
    .await
    .context("password hashing task")
    .and_then(|result| result)
    .map_err(AppError::Internal)
}

/// Checks `password` against `stored`. With no stored hash it still does the same work
/// against a fixed hash, so response time does not tell whether an account exists.
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    let known_account = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
    let matches = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), stored.as_str())
            .is_ok()
    })
    .await
    .context("password verification task")
    .map_err(AppError::Internal)?;
    Ok(known_account && matches)
}

/// An argon2id hash (default parameters) of a random password nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1nGkKT2fA0gGpcRbT1xTqmMlDNQnb7uVKHEG7VZ0B0Q";
