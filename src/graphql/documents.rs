//! Parsed documents by their text, so that a query sent again (a bot's persisted query, a
//! page polling) is not parsed again. Bounded twice: the least recently used make room, and
//! only documents up to [`MAX_CACHED_BYTES`] are kept, so anyone's one-off megabyte cannot
//! fill memory. A cached document was measured (`governance::intake`) and checked for depth
//! when first parsed; each request still validates its own against its variables.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

const CAPACITY: usize = 1_000;
/// Queries that are sent again are small.
const MAX_CACHED_BYTES: usize = 16 * 1024;

pub struct DocumentCache(Mutex<lru::LruCache<String, Arc<ExecutableDocument>>>);

impl Default for DocumentCache {
    fn default() -> Self {
        Self(Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN),
        )))
    }
}

impl DocumentCache {
    /// A copy of the document parsed from `text`, made outside the lock.
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        let kept = self.lock().get(text).cloned()?;
        Some((*kept).clone())
    }

    /// The document `text` parses to, parsed now only if it is not kept; `None` if it does
    /// not parse.
    pub fn parsed(&self, text: &str) -> Option<ExecutableDocument> {
        if let Some(document) = self.get(text) {
            return Some(document);
        }
        let document = async_graphql::parser::parse_query(text).ok()?;
        self.keep(text, &document);
        Some(document)
    }

    pub fn keep(&self, text: &str, document: &ExecutableDocument) {
        if text.len() <= MAX_CACHED_BYTES {
            self.lock().put(text.to_owned(), Arc::new(document.clone()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Arc<ExecutableDocument>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
