//! RSA signature checks through the host's crypto: Envoy registers the foreign function
//! `verify_signature` (BoringSSL), about 30 times faster than RSA in pure Rust inside the VM
//! (`docs/envoy.md#signature-checks`).
//!
//! Only RS256/RS384/RS512 (PKCS#1 v1.5) go to the host; ES*, PS* and EdDSA stay on the pure-Rust
//! path. The host is asked once per VM whether it has the function; hosts without it (the
//! wasmtime test host, other proxies) use the pure-Rust path for everything. Both paths accept
//! the same signatures: the key reaching the host is one the core already validated (size,
//! exponent), and a test runs Wycheproof's RSA vectors through both in a real Envoy.

use std::cell::Cell;

use policy_engine::verify::verify_signature;
use policy_engine::{Algorithm, PublicKey};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::log;

/// The foreign function's name in Envoy.
const FUNCTION: &str = "verify_signature";

thread_local! {
    /// Whether the host has `verify_signature` (None: not asked yet).
    static HOST_HAS_IT: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Which implementation checked a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Envoy's BoringSSL, through `verify_signature`.
    Host,
    /// The core's pure-Rust implementation.
    Rust,
}

/// Checks `signature` over `message`, on the host when it can; same contract as
/// [`verify_signature`].
pub fn verify(alg: Algorithm, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    verify_reporting(alg, key, message, signature).0
}

/// [`verify`], also saying which path decided.
pub fn verify_reporting(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> (bool, Path) {
    if HOST_HAS_IT.get() != Some(false) {
        if let Some(ok) = on_host(alg, key, message, signature) {
            return (ok, Path::Host);
        }
    }
    (verify_signature(alg, key, message, signature), Path::Rust)
}

/// The host's verdict, or None when the host cannot give one (no such function, an
/// algorithm or key it is not used for, or a host-side failure: the pure-Rust path decides).
fn on_host(alg: Algorithm, key: &PublicKey, message: &[u8], signature: &[u8]) -> Option<bool> {
    let hash = match alg {
        Algorithm::RS256 => "sha256",
        Algorithm::RS384 => "sha384",
        Algorithm::RS512 => "sha512",
        _ => return None,
    };
    let der = key.rsa_spki_der()?;
    let mut args = Vec::with_capacity(der.len() + signature.len() + message.len() + 32);
    field(&mut args, 1, hash.as_bytes());
    field(&mut args, 2, &der);
    field(&mut args, 3, signature);
    field(&mut args, 4, message);
    match hostcalls::call_foreign_function(FUNCTION, Some(&args)) {
        Ok(result) => {
            if HOST_HAS_IT.get().is_none() {
                HOST_HAS_IT.set(Some(true));
                log::info("signature checks: RSA through Envoy's verify_signature (BoringSSL)");
            }
            // proto3 leaves a false `result` out: an empty answer is a rejection.
            Some(result_is_true(result.as_deref().unwrap_or_default()))
        }
        Err(Status::NotFound) => {
            HOST_HAS_IT.set(Some(false));
            log::info("signature checks: pure Rust (the host has no verify_signature)");
            None
        }
        Err(status) => {
            log::debug(&format!(
                "verify_signature failed ({status:?}); checking in Rust"
            ));
            None
        }
    }
}

/// Appends a length-delimited protobuf field (wire type 2).
fn field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads `VerifySignatureResult.result` (field 1, bool). Anything malformed is a rejection.
fn result_is_true(mut msg: &[u8]) -> bool {
    let mut result = false;
    while !msg.is_empty() {
        let Some(tag) = read_varint(&mut msg) else {
            return false;
        };
        match (tag >> 3, tag & 7) {
            (1, 0) => match read_varint(&mut msg) {
                Some(v) => result = v != 0,
                None => return false,
            },
            (_, 0) => {
                if read_varint(&mut msg).is_none() {
                    return false;
                }
            }
            (_, 2) => {
                let Some(len) = read_varint(&mut msg).and_then(|l| usize::try_from(l).ok()) else {
                    return false;
                };
                let Some(rest) = msg.get(len..) else {
                    return false;
                };
                msg = rest;
            }
            _ => return false,
        }
    }
    result
}

fn read_varint(msg: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = msg.split_first()?;
        *msg = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_protobuf_fields_in_order() {
        let mut out = Vec::new();
        field(&mut out, 1, b"sha256");
        field(&mut out, 4, &[7u8; 200]);
        assert_eq!(&out[..8], &[0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6']);
        // Field 4, wire type 2, length 200 as a two-byte varint.
        assert_eq!(&out[8..11], &[0x22, 0xc8, 0x01]);
        assert_eq!(out.len(), 11 + 200);
    }

    #[test]
    fn results_are_read_strictly() {
        assert!(result_is_true(&[0x08, 0x01]));
        assert!(!result_is_true(&[]), "proto3 omits false");
        assert!(!result_is_true(&[0x08, 0x00]));
        // `error` (field 2) beside result=false.
        assert!(!result_is_true(&[0x12, 0x02, b'n', b'o']));
        assert!(result_is_true(&[0x12, 0x02, b'o', b'k', 0x08, 0x01]));
        // Truncated or unknown wire types reject.
        assert!(!result_is_true(&[0x08]));
        assert!(!result_is_true(&[0x12, 0x05, b'x']));
        assert!(!result_is_true(&[0x0d, 1, 0, 0, 0]));
    }
}
