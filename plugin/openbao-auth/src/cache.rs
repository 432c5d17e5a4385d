//! One mount's caches: the compiled config, compiled roles, fetched key sets. Compiled items
//! are keyed by a digest of the stored bytes they came from, so a cache can never serve a
//! config or role other than the one in storage (another node's write, a restore); `invalidate`
//! only frees memory early.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use policy_engine::Gate;
use sha2::{Digest, Sha256};

use crate::fetch::KeyCache;
use crate::role::CompiledRole;

/// Most compiled roles kept (each holds a compiled Rego policy).
const MAX_ROLES: usize = 256;

type Digest32 = [u8; 32];

pub(crate) fn digest(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

#[derive(Debug, Default)]
pub(crate) struct Caches {
    gate: Mutex<Option<(Digest32, Arc<Gate>)>>,
    roles: Mutex<HashMap<String, (Digest32, Arc<CompiledRole>)>>,
    pub(crate) keys: KeyCache,
}

impl Caches {
    pub(crate) fn gate(&self, d: &Digest32) -> Option<Arc<Gate>> {
        let slot = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|(k, _)| k == d)
            .map(|(_, g)| g.clone())
    }

    pub(crate) fn put_gate(&self, d: Digest32, gate: Arc<Gate>) {
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = Some((d, gate));
    }

    pub(crate) fn role(&self, name: &str, d: &Digest32) -> Option<Arc<CompiledRole>> {
        let roles = self.roles.lock().unwrap_or_else(PoisonError::into_inner);
        roles
            .get(name)
            .filter(|(k, _)| k == d)
            .map(|(_, r)| r.clone())
    }

    pub(crate) fn put_role(&self, name: &str, d: Digest32, role: Arc<CompiledRole>) {
        let mut roles = self.roles.lock().unwrap_or_else(PoisonError::into_inner);
        if roles.len() >= MAX_ROLES && !roles.contains_key(name) {
            roles.clear();
        }
        roles.insert(name.to_string(), (d, role));
    }

    pub(crate) fn invalidate(&self, key: &str) {
        if key == crate::paths::CONFIG_KEY {
            *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = None;
        } else if let Some(name) = key.strip_prefix(crate::paths::ROLE_PREFIX) {
            self.roles
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(name);
        }
    }

    pub(crate) fn clear(&self) {
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.roles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.keys.clear();
    }
}
