//! Parsed documents by their text, so that a query sent again (a bot's persisted query, a
//! page polling) is not parsed again. Bounded: the least recently used make room. A cached
//! document was measured (`governance::intake`) and checked for depth when first parsed;
//! each request still validates its own against its variables.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

const CAPACITY: usize = 1_000;

pub struct DocumentCache(Mutex<lru::LruCache<String, ExecutableDocument>>);

impl Default for DocumentCache {
    fn default() -> Self {
        Self(Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
        )))
    }
}

impl DocumentCache {
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.lock().get(text).cloned()
    }

    pub fn keep(&self, text: &str, document: &ExecutableDocument) {
        self.lock().put(text.to_owned(), document.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, ExecutableDocument>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
