//! Replay protection's record in Envoy shared data: one value per bucket of
//! [`policy_engine::replay`], updated with compare-and-swap, so every worker VM with the same
//! `vm_id` sees the tokens the others let through.
//!
//! Envoy's shared data cannot create a key atomically (a write to a missing key always
//! succeeds), so the buckets are created empty at configuration, before traffic, and a write
//! that had to create one reads it back to check that its entry survived.

use policy_engine::replay::{self, Admission, Entry, Layout};
use policy_engine::{Deny, DenyCode, Gate};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::log;

/// Compare-and-swap attempts before a busy bucket fails closed.
const ATTEMPTS: usize = 16;

fn bucket_key(layout: &Layout, bucket: u32) -> String {
    // The layout is in the name: filters that split the record differently keep separate ones.
    format!(
        "gateward.v1.replay.{}x{}.{bucket}",
        layout.buckets, layout.per_bucket
    )
}

/// Creates the record's missing buckets (empty), so traffic only ever updates existing ones.
pub fn prepare(layout: &Layout) {
    for b in 0..layout.buckets {
        let key = bucket_key(layout, b);
        if let Ok((None, _)) = hostcalls::get_shared_data(&key) {
            let _ = hostcalls::set_shared_data(&key, Some(&[]), None);
        }
    }
}

/// Records an allowed request's token; the denial to answer with instead when it was let
/// through before or the record cannot take it. `now` is Unix seconds.
pub fn record(gate: &Gate, entry: &Entry, now: i64) -> Result<(), Deny> {
    let Some(layout) = gate.replay_layout() else {
        return Ok(());
    };
    let key = bucket_key(&layout, entry.bucket);
    for _ in 0..ATTEMPTS {
        let (bytes, cas) = hostcalls::get_shared_data(&key)
            .map_err(|s| unavailable(&format!("cannot read the replay record: {s:?}")))?;
        let current = bytes.unwrap_or_default();
        let next = match replay::admit(&current, entry, now, layout.per_bucket) {
            Ok(Admission::Admitted(next)) => next,
            Ok(Admission::Replayed) => {
                return Err(Deny::new(
                    DenyCode::TokenReplayed,
                    "this token was already used (replay protection is on)",
                ))
            }
            Ok(Admission::Full) => {
                return Err(unavailable("the replay record is full of unexpired tokens"))
            }
            Err(corrupt) => {
                log::error(&format!("{key}: {corrupt}"));
                return Err(unavailable("the replay record is unreadable"));
            }
        };
        match hostcalls::set_shared_data(&key, Some(&next), cas) {
            Ok(()) if cas.is_some() => return Ok(()),
            // The bucket was missing, so the write was unconditional: keep it only if no
            // other worker's write replaced it meanwhile.
            Ok(()) if still_holds(&key, entry) => return Ok(()),
            Ok(()) | Err(Status::CasMismatch) => continue,
            Err(s) => {
                return Err(unavailable(&format!(
                    "cannot write the replay record: {s:?}"
                )))
            }
        }
    }
    Err(unavailable("the replay record stayed busy"))
}

fn still_holds(key: &str, entry: &Entry) -> bool {
    matches!(
        hostcalls::get_shared_data(key),
        Ok((Some(bytes), _)) if bytes
            .chunks_exact(replay::ENTRY_BYTES)
            .any(|e| e.starts_with(&entry.key.0))
    )
}

fn unavailable(why: &str) -> Deny {
    Deny::new(DenyCode::ReplayUnavailable, why)
}
