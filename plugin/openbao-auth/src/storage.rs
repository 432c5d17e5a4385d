//! The mount's storage: what OpenBao's `pb.Storage` service offers a plugin (keys are relative
//! to the mount; OpenBao isolates mounts), and an in-memory one for tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

/// A storage operation failed (the transport's message; never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(pub String);

/// Key-value storage of one mount. `list(prefix)` returns the names directly under `prefix`,
/// folders with a trailing `/`, as OpenBao's `List` does.
pub trait Storage: Send + Sync {
    /// The value at `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;
    /// Stores `value` at `key`.
    fn put(&self, key: &str, value: &[u8])
        -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Removes `key` (absent is fine).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Names under `prefix` (one level; sub-folders end with `/`).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;
}

/// A [`Storage`] in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Every key, sorted (for assertions).
    pub fn keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A poisoned lock only means another test thread panicked; the map is still whole.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.lock().insert(key.to_string(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        for key in self.lock().keys() {
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            let name = match rest.find('/') {
                Some(i) => rest.get(..=i).unwrap_or(rest),
                None => rest,
            };
            if !name.is_empty() && out.last().map(String::as_str) != Some(name) {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }
}
