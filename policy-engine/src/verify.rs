//! Signature verification through jwt-compact's algorithm implementations (and our ES384).
//!
//! Mirrors the order of jwt-compact's own validator: the signature length is checked before the
//! signature is parsed, because some signature parsers panic on a wrong length.

use jwt_compact::{Algorithm as JwtAlgorithm, AlgorithmSignature};

use crate::alg::{Algorithm, Es384};
use crate::keys::PublicKey;

/// A signature check: `(alg, key, message, signature) -> valid`. [`verify_signature`] is the
/// core's; hosts may supply a faster one with the same results ([`crate::Gate::verify_with`]).
pub type SignatureCheck = dyn Fn(Algorithm, &PublicKey, &[u8], &[u8]) -> bool;

/// Checks `signature` over `message` with `key` under `alg`. False for any mismatch between the
/// algorithm and the key's family, any malformed signature, and any invalid one.
pub fn verify_signature(alg: Algorithm, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
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
