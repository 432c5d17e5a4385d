//! Signature verification through jwt-compact's algorithm implementations (and our ES384).
//!
//! Mirrors the order of jwt-compact's own validator: the signature length is checked before the
//! signature is parsed, because some signature parsers panic on a wrong length.
//!
//! An RSA signature whose integer is not below the key's modulus is refused here, before any
//! verifier sees it ([`check_rsa_range`]): rsa 0.9's PSS verification lacks that check, so
//! `s + n` (same byte length for most moduli) would verify as a second spelling of one token.

use jwt_compact::{Algorithm as JwtAlgorithm, AlgorithmSignature};
use rsa::traits::PublicKeyParts;
use rsa::BigUint;

use crate::alg::{Algorithm, Es384};
use crate::keys::PublicKey;

/// A signature check: `(alg, key, message, signature) -> valid`. [`verify_signature`] is the
/// core's; hosts may supply a faster one with the same results ([`crate::Gate::verify_with`]).
pub type SignatureCheck = dyn Fn(Algorithm, &PublicKey, &[u8], &[u8]) -> bool;

/// Checks `signature` over `message` with `key` under `alg`. False for any mismatch between the
/// algorithm and the key's family, any malformed signature, and any invalid one.
pub fn verify_signature(alg: Algorithm, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
    if check_rsa_range(key, signature).is_err() {
        return false;
    }
    match (alg, key) {
        (_, PublicKey::Rsa(k)) => alg
            .rsa()
            .is_some_and(|rsa| check(&rsa, k, message, signature)),
        (Algorithm::ES256, PublicKey::P256(k)) => {
            check(&jwt_compact::alg::Es256, k, message, signature)
        }
        (Algorithm::ES384, PublicKey::P384(k)) => check(&Es384, k, message, signature),
        (Algorithm::EdDSA, PublicKey::Ed25519(k)) => {
            check(&jwt_compact::alg::Ed25519, k, message, signature)
        }
        _ => false,
    }
}

fn check<A: JwtAlgorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    if let Some(len) = <A::Signature as AlgorithmSignature>::LENGTH {
        if signature.len() != len.get() {
            return false;
        }
    }
    match <A::Signature as AlgorithmSignature>::try_from_slice(signature) {
        Ok(sig) => alg.verify_signature(&sig, key, message),
        Err(_) => false,
    }
}

/// Why a signature was refused before any verifier saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The RSA signature, read as a big-endian integer, is not below the key's modulus
    /// (RFC 8017 §8.1.2 / §8.2.2 step 2: "signature representative out of range").
    #[error("the RSA signature integer is not below the key's modulus (s >= n)")]
    RsaNotBelowModulus,
}

/// Refuses an RSA signature whose integer `s` is not below the key's modulus `n`; any other key
/// passes. Every signature check goes through this first: [`verify_signature`] and
/// [`crate::Gate::verify_with`], whatever verifier the host supplies (Envoy's BoringSSL).
/// Without it, `s + n` is a second valid spelling of a PSS signature (rsa 0.9's PSS `verify`
/// reduces `s` modulo `n`), hence of the token: another cache entry, another fingerprint.
pub fn check_rsa_range(key: &PublicKey, signature: &[u8]) -> Result<(), SignatureError> {
    match key {
        PublicKey::Rsa(k) if BigUint::from_bytes_be(signature) >= *k.n() => {
            Err(SignatureError::RsaNotBelowModulus)
        }
        _ => Ok(()),
    }
}
