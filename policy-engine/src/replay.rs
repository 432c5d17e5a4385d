//! Replay protection: the record of tokens already let through, kept by the host in fixed-size
//! buckets (the Envoy filter: one shared-data value per bucket, updated with compare-and-swap,
//! so every worker of one Envoy sees the same record).
//!
//! A bucket is a byte string of 24-byte entries: 16 bytes of SHA-256 over `(issuer name, jti)`,
//! then the time (Unix seconds, little endian) after which the token can no longer verify and
//! the entry may go. Entries are dropped only once expired; a bucket with no room left refuses
//! new tokens rather than forget one, so a full record fails closed.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::config::ReplayConfig;

/// Bytes per entry: the key, then the expiry.
pub const ENTRY_BYTES: usize = 24;

/// The smallest and largest `replay.max_tokens` a configuration may set.
pub const CAPACITY_RANGE: core::ops::RangeInclusive<usize> = 1_024..=1_000_000;

/// Entries per bucket the layout aims for: a bucket stays a small value to copy and rewrite.
const PER_BUCKET: usize = 64;

/// A token's identity in the record (not the token: a digest of its issuer and `jti`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; 16]);

impl Key {
    /// The key of `jti` from the issuer configured as `issuer`.
    pub fn new(issuer: &str, jti: &str) -> Key {
        let mut h = Sha256::new();
        h.update((issuer.len() as u64).to_le_bytes());
        h.update(issuer.as_bytes());
        h.update(jti.as_bytes());
        let digest = h.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
        Key(key)
    }
}

/// How the record is split: how many buckets, and how many entries each holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of buckets.
    pub buckets: u32,
    /// Entries one bucket holds.
    pub per_bucket: usize,
}

impl Layout {
    /// The layout for `config.max_tokens` (at least that many entries in all).
    pub fn new(config: &ReplayConfig) -> Layout {
        let total = config.max_tokens.max(1);
        let buckets = total.div_ceil(PER_BUCKET).max(1);
        Layout {
            buckets: u32::try_from(buckets).unwrap_or(u32::MAX),
            per_bucket: total.div_ceil(buckets),
        }
    }

    /// The bucket `key` lives in.
    pub fn bucket(&self, key: &Key) -> u32 {
        let [a, b, c, d, ..] = key.0;
        u32::from_le_bytes([a, b, c, d]) % self.buckets.max(1)
    }
}

/// One token to record: its key, bucket and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The token's key.
    pub key: Key,
    /// Its bucket.
    pub bucket: u32,
    /// When the entry may be dropped: the token's `exp` plus the issuer's leeway.
    pub expires_at: i64,
}

/// What recording a token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// First use: the bucket's new contents, to write back.
    Admitted(Vec<u8>),
    /// The token was let through before and has not expired.
    Replayed,
    /// The bucket holds `per_bucket` unexpired tokens.
    Full,
}

/// A bucket's bytes that are not a whole number of entries (written by something else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt {
    /// The bucket's length in bytes.
    pub len: usize,
}

impl core::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "replay record bucket of {} bytes is not a whole number of {ENTRY_BYTES}-byte entries",
            self.len
        )
    }
}

/// Records `entry` in a bucket whose current bytes are `bucket` (empty when it does not exist
/// yet), dropping entries expired at `now`.
pub fn admit(
    bucket: &[u8],
    entry: &Entry,
    now: i64,
    per_bucket: usize,
) -> Result<Admission, Corrupt> {
    if !bucket.len().is_multiple_of(ENTRY_BYTES) {
        return Err(Corrupt { len: bucket.len() });
    }
    let mut kept = Vec::with_capacity(bucket.len() + ENTRY_BYTES);
    for chunk in bucket.chunks_exact(ENTRY_BYTES) {
        let (key, expiry) = chunk.split_at(16);
        let expires_at = i64::from_le_bytes(expiry.try_into().unwrap_or([0; 8]));
        if expires_at < now {
            continue;
        }
        if key == entry.key.0 {
            return Ok(Admission::Replayed);
        }
        kept.extend_from_slice(chunk);
    }
    if kept.len() / ENTRY_BYTES >= per_bucket {
        return Ok(Admission::Full);
    }
    kept.extend_from_slice(&entry.key.0);
    kept.extend_from_slice(&entry.expires_at.to_le_bytes());
    Ok(Admission::Admitted(kept))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    fn entry(jti: &str, expires_at: i64) -> Entry {
        let key = Key::new("github", jti);
        Entry {
            key,
            bucket: 0,
            expires_at,
        }
    }

    fn admitted(a: Admission) -> Vec<u8> {
        match a {
            Admission::Admitted(b) => b,
            other => panic!("expected admission, got {other:?}"),
        }
    }

    #[test]
    fn a_token_is_admitted_once_until_it_expires() {
        let e = entry("j1", 1_000);
        let b = admitted(admit(&[], &e, 900, 4).unwrap());
        assert_eq!(b.len(), ENTRY_BYTES);
        assert_eq!(admit(&b, &e, 950, 4).unwrap(), Admission::Replayed);
        assert_eq!(admit(&b, &e, 1_000, 4).unwrap(), Admission::Replayed);
        // Past its expiry the entry is dropped (the token itself no longer verifies then).
        let again = admitted(admit(&b, &e, 1_001, 4).unwrap());
        assert_eq!(again.len(), ENTRY_BYTES);
    }

    #[test]
    fn keys_separate_issuers_and_jtis() {
        assert_ne!(Key::new("github", "x"), Key::new("gitlab", "x"));
        assert_ne!(Key::new("github", "x"), Key::new("github", "y"));
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(Key::new("ab", "c"), Key::new("a", "bc"));
    }

    #[test]
    fn a_full_bucket_refuses_until_entries_expire() {
        let mut b = Vec::new();
        for i in 0..3 {
            b = admitted(admit(&b, &entry(&alloc::format!("j{i}"), 100 + i), 50, 3).unwrap());
        }
        let late = entry("late", 500);
        assert_eq!(admit(&b, &late, 50, 3).unwrap(), Admission::Full);
        // Once the first has expired there is room, and the expired entry is gone.
        let b = admitted(admit(&b, &late, 101, 3).unwrap());
        assert_eq!(b.len(), 3 * ENTRY_BYTES);
        assert_eq!(
            admit(&b, &entry("j0", 100), 101, 3).unwrap(),
            Admission::Full
        );
        let b = admitted(admit(&b, &entry("j0", 100), 103, 3).unwrap());
        assert_eq!(
            b.len(),
            2 * ENTRY_BYTES,
            "j1 and j2 expired, late and j0 kept"
        );
        assert_eq!(admit(&b, &late, 103, 3).unwrap(), Admission::Replayed);
    }

    #[test]
    fn a_corrupt_bucket_is_an_error_not_an_empty_record() {
        assert_eq!(
            admit(&[0; 25], &entry("j", 1), 0, 4),
            Err(Corrupt { len: 25 })
        );
    }

    #[test]
    fn the_layout_holds_at_least_max_tokens_in_small_buckets() {
        for max_tokens in [1_024, 65_536, 100_000, 1_000_000] {
            let l = Layout::new(&ReplayConfig {
                jti: true,
                max_tokens,
            });
            assert!(l.buckets as usize * l.per_bucket >= max_tokens);
            assert!(l.per_bucket <= PER_BUCKET);
            let k = Key::new("i", "j");
            assert!(l.bucket(&k) < l.buckets);
        }
    }
}
