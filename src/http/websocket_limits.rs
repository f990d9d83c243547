//! Caps on websockets, which hold memory for as long as they stay open: connections per
//! client address (an IPv6 /64) and per caller, and operations per connection. A connection
//! holds its admissions and gives them back when it closes.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use uuid::Uuid;

use crate::governance::rate_limits::ClientKey;

/// How many of each are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebsocketLimits {
    pub connections_per_address: usize,
    pub connections_per_caller: usize,
    pub operations_per_connection: usize,
}

/// Open connections by client address and by caller (a user's or an API key's id).
pub struct OpenWebsockets {
    pub limits: WebsocketLimits,
    by_address: Arc<Counts<ClientKey>>,
    by_caller: Arc<Counts<Uuid>>,
}

impl OpenWebsockets {
    pub fn new(limits: WebsocketLimits) -> Self {
        Self {
            limits,
            by_address: Arc::default(),
            by_caller: Arc::default(),
        }
    }

    /// Admits one more connection from `address`, or `None` when it has its fill.
    pub fn admit_address(&self, address: ClientKey) -> Option<Admission> {
        Counts::admit(&self.by_address, address, self.limits.connections_per_address)
    }

    /// Admits one more connection of `caller`, or `None` when they have their fill.
    pub fn admit_caller(&self, caller: Uuid) -> Option<Admission> {
        Counts::admit(&self.by_caller, caller, self.limits.connections_per_caller)
    }
}

struct Counts<K>(Mutex<HashMap<K, usize>>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Counts<K> {
    fn admit(counts: &Arc<Self>, key: K, limit: usize) -> Option<Admission> {
        let mut open = counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key.clone()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        let counts = counts.clone();
        Some(Admission(Some(Box::new(move || counts.release(&key)))))
    }

    fn release(&self, key: &K) {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                open.remove(key);
            }
        }
    }
}

/// One counted connection; dropping it gives the place back.
pub struct Admission(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_count_up_to_the_limit_and_come_back_when_dropped() {
        let open = OpenWebsockets::new(WebsocketLimits {
            connections_per_address: 2,
            connections_per_caller: 1,
            operations_per_connection: 1,
        });
        let address = ClientKey::parse(Some("2001:db8::1")).unwrap();
        let neighbour = ClientKey::parse(Some("2001:db8::2")).unwrap();
        let first = open.admit_address(address).unwrap();
        let _second = open.admit_address(neighbour).unwrap();
        assert!(open.admit_address(address).is_none(), "the same /64");
        drop(first);
        assert!(open.admit_address(address).is_some());
        let caller = Uuid::now_v7();
        let held = open.admit_caller(caller).unwrap();
        assert!(open.admit_caller(caller).is_none());
        assert!(open.admit_caller(Uuid::now_v7()).is_some());
        drop(held);
        assert!(open.admit_caller(caller).is_some());
        assert!(
            open.by_caller.0.lock().unwrap().is_empty(),
            "released keys are forgotten"
        );
    }
}
