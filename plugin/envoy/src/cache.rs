//! The verified-token cache: a CI job reuses its token for many requests, and re-verifying an
//! RSA signature each time is the most expensive step. Entries are keyed by the token's SHA-256
//! (the token itself is not kept), bounded in number, and evicted oldest first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use policy_engine::{Decision, Verified};

/// A token's decisions by request key, oldest first.
pub type Decisions = VecDeque<([u8; 32], Decision)>;

/// Decisions kept per token: a CI job calls a handful of routes.
pub const DECISIONS_PER_TOKEN: usize = 8;

/// One cached verification.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The verified token (claims, issuer, `exp`).
    pub verified: Rc<Verified>,
    /// The key-set generation it was verified with: after a rotation it is verified again.
    pub generation: u64,
    /// Policy decisions made for this token, by [`policy_engine::Gate::decision_key`]: the
    /// same token on an equal request gets the same decision without evaluating the policy.
    pub decisions: Rc<RefCell<Decisions>>,
}

impl Entry {
    /// A fresh entry for a verification.
    pub fn new(verified: Rc<Verified>, generation: u64) -> Entry {
        Entry {
            verified,
            generation,
            decisions: Rc::default(),
        }
    }

    /// The decision made earlier for a request with this key.
    pub fn decision(&self, key: &[u8; 32]) -> Option<Decision> {
        self.decisions
            .borrow()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, d)| d.clone())
    }

    /// Remembers a decision, forgetting the oldest beyond [`DECISIONS_PER_TOKEN`].
    pub fn remember(&self, key: [u8; 32], decision: Decision) {
        let mut d = self.decisions.borrow_mut();
        if d.len() >= DECISIONS_PER_TOKEN {
            d.pop_front();
        }
        d.push_back((key, decision));
    }
}

/// A bounded map from token hash to its verification.
#[derive(Debug, Default)]
pub struct TokenCache {
    capacity: usize,
    map: HashMap<[u8; 32], Entry>,
    /// Insertion order, for eviction. May hold keys already removed from `map`.
    order: VecDeque<[u8; 32]>,
}

impl TokenCache {
    /// A cache of at most `capacity` entries (0 disables it).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The entry for a token hash.
    pub fn get(&self, key: &[u8; 32]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// Forgets a token (expired, or verified under an older key set).
    pub fn remove(&mut self, key: &[u8; 32]) {
        self.map.remove(key);
    }

    /// Remembers a verification, evicting the oldest entries when full.
    pub fn insert(&mut self, key: [u8; 32], entry: Entry) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key, entry).is_some() {
            return;
        }
        self.order.push_back(key);
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // Removed entries leave their keys in `order`; compact so it stays bounded too.
        if self.order.len() > self.capacity.saturating_mul(2) {
            let map = &self.map;
            let mut seen = std::collections::HashSet::new();
            self.order
                .retain(|k| map.contains_key(k) && seen.insert(*k));
        }
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn entry() -> Entry {
        Entry::new(
            Rc::new(Verified {
                issuer: 0,
                header: Map::new(),
                claims: Map::new(),
                expires_at: 0,
            }),
            0,
        )
    }

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_le_bytes());
        k
    }

    #[test]
    fn evicts_oldest_first_and_stays_bounded() {
        let mut c = TokenCache::new(3);
        for i in 0..5 {
            c.insert(key(i), entry());
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(0)).is_none() && c.get(&key(1)).is_none());
        assert!(c.get(&key(4)).is_some());
    }

    #[test]
    fn removals_do_not_grow_the_order_queue_without_bound() {
        let mut c = TokenCache::new(4);
        for i in 0..10_000 {
            c.insert(key(i), entry());
            c.remove(&key(i));
        }
        assert!(c.order.len() <= 8, "order grew to {}", c.order.len());
        assert!(c.is_empty());
    }

    #[test]
    fn decisions_per_token_are_bounded_and_found_by_key() {
        let e = entry();
        for i in 0..20 {
            let d = policy_engine::Deny::new(policy_engine::DenyCode::PolicyDenied, format!("{i}"));
            e.remember(key(i), Decision::Deny(d));
        }
        assert_eq!(e.decisions.borrow().len(), DECISIONS_PER_TOKEN);
        assert!(e.decision(&key(0)).is_none());
        assert!(matches!(e.decision(&key(19)), Some(Decision::Deny(d)) if d.message == "19"));
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = TokenCache::new(0);
        c.insert(key(1), entry());
        assert!(c.get(&key(1)).is_none());
    }
}
