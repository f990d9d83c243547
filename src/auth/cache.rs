//! A small cache of database answers that expire after a while and that a change can
//! forget at once: least recently used entries make room, so it stays bounded whatever
//! the keys. A lookup that raced with a forget is not kept: every forget starts a new
//! generation, and an answer read under an older one is returned but not stored.

use std::borrow::Borrow;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct TtlCache<K: Hash + Eq, V> {
    entries: Mutex<lru::LruCache<K, (Instant, V)>>,
    ttl: Duration,
    generation: AtomicU64,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            ttl,
            generation: AtomicU64::new(0),
        }
    }

    /// The answer for `key` if it is younger than the cache's lifetime.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < self.ttl => Some(value.clone()),
            _ => None,
        }
    }

    /// `read` the answer for `key` and keep it, unless something was forgotten meanwhile.
    pub async fn read<E>(&self, key: K, read: impl Future<Output = Result<V, E>>) -> Result<V, E> {
        let generation = self.generation.load(Ordering::Acquire);
        let value = read.await?;
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) == generation {
            entries.put(key, (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Keeps `value` for `key` from now.
    pub fn put(&self, key: K, value: V) {
        self.lock().put(key, (Instant::now(), value));
    }

    /// Forgets every entry `forget` picks.
    pub fn forget(&self, forget: impl Fn(&K, &V) -> bool)
    where
        K: Clone,
    {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        let picked: Vec<K> = entries
            .iter()
            .filter(|(key, (_, value))| forget(key, value))
            .map(|(key, _)| key)
            .cloned()
            .collect();
        for key in picked {
            entries.pop(&key);
        }
    }

    /// Forgets the entry of `key`.
    pub fn forget_key<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.pop(key);
    }

    fn lock(&self) -> MutexGuard<'_, lru::LruCache<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_read_while_something_was_forgotten_is_not_kept() {
        let cache = TtlCache::new(8, Duration::from_secs(60));
        let raced = cache
            .read("key".to_owned(), async {
                cache.forget_key("key");
                Ok::<_, ()>(1)
            })
            .await;
        assert_eq!(raced, Ok(1));
        assert_eq!(cache.get("key"), None);
        cache
            .read("key".to_owned(), async { Ok::<_, ()>(2) })
            .await
            .unwrap();
        assert_eq!(cache.get("key"), Some(2));
        cache.forget(|_, value| *value == 2);
        assert_eq!(cache.get("key"), None);
    }

    #[test]
    fn answers_expire() {
        let cache = TtlCache::new(8, Duration::ZERO);
        cache.put("key", 1);
        assert_eq!(cache.get("key"), None);
    }
}
