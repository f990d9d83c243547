//! argon2id password hashing, run off the async runtime because it is deliberately slow, and
//! bounded: each hash holds 19 MiB, so a flood of sign-ins must queue or be turned away, not
//! exhaust memory or the blocking threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Hashes waiting for a slot, per slot; beyond that a sign-in is refused at once.
const QUEUE_PER_SLOT: usize = 8;

/// The bounded pool every password hash and check goes through.
pub struct Passwords {
    slots: Arc<Semaphore>,
    /// Hashes running or waiting for a slot.
    admitted: AtomicUsize,
    max_admitted: usize,
}

/// Releases an admission when its hash is done (or its request went away).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Passwords {
    /// At most `concurrency` hashes at once, and a queue of a few per slot.
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            admitted: AtomicUsize::new(0),
            max_admitted: concurrency * (1 + QUEUE_PER_SLOT),
        }
    }

    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|error| anyhow::anyhow!("argon2: {error}"))
        })
        .await
        .and_then(|hashed| hashed.map_err(AppError::Internal))
    }

    /// Checks `password` against `stored`. With no stored hash it still does the same work
    /// against a fixed hash, so response time does not tell whether an account exists.
    pub async fn verify(&self, password: String, stored: Option<String>) -> AppResult<bool> {
        let known_account = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let matches = self
            .run(move || {
                Argon2::default()
                    .verify_password(password.as_bytes(), stored.as_str())
                    .is_ok()
            })
            .await?;
        Ok(known_account && matches)
    }

    /// Runs `work` on a blocking thread once a slot is free; `RATE_LIMITED` when the queue
    /// is full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::RateLimited {
                retry_after_seconds: 1,
            });
        }
        let _admission = Admission(&self.admitted);
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .context("the password hashing pool is closed")
            .map_err(AppError::Internal)?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .context("password hashing task")
        .map_err(AppError::Internal)
    }
}

/// An argon2id hash (default parameters) of a random password nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1nGkKT2fA0gGpcRbT1xTqmMlDNQnb7uVKHEG7VZ0B0Q";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_beyond_the_queue_are_refused_not_piled_up() {
        let passwords = Arc::new(Passwords::new(1));
        let hash = passwords.hash("Correct-horse-42".into()).await.unwrap();
        assert!(
            passwords
                .verify("Correct-horse-42".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!passwords.verify("anything".into(), None).await.unwrap());

        // One slot and eight waiting: of twenty at once, at least eleven are turned away.
        let attempts: Vec<_> = (0..20)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.hash("Correct-horse-42".into()).await })
            })
            .collect();
        let mut refused = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(_) => {}
                Err(AppError::RateLimited { .. }) => refused += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(refused >= 11, "{refused} refused");
        assert_eq!(
            passwords.admitted.load(Ordering::Acquire),
            0,
            "every admission was released"
        );
    }
}
