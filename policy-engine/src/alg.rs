//! JWS signature algorithms Gateward accepts, and the one jwt-compact lacks (ES384).
//!
//! The set is closed: `none` and every HMAC algorithm are unrepresentable, so no configuration,
//! key or token can make the verifier accept them.

use alloc::borrow::Cow;
use core::fmt;
use core::num::NonZeroUsize;

use jwt_compact::{Algorithm as JwtAlgorithm, AlgorithmSignature};
use p384::ecdsa::signature::DigestVerifier;
use sha2::{Digest, Sha384};

/// An asymmetric JWS algorithm (RFC 7518 §3) that Gateward verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 (salt length 32).
    PS256,
    /// RSASSA-PSS with SHA-384 (salt length 48).
    PS384,
    /// RSASSA-PSS with SHA-512 (salt length 64).
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519 (RFC 8037).
    EdDSA,
}

/// The family of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC`, `crv: P-256`.
    P256,
    /// `kty: EC`, `crv: P-384`.
    P384,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm, in a stable order.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The JWS `alg` name.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a JWS `alg` name. Matching is exact (`rs256` is not `RS256`), as RFC 7515 requires.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The key family this algorithm verifies with.
    pub const fn key_family(self) -> KeyFamily {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::P256,
            Algorithm::ES384 => KeyFamily::P384,
            Algorithm::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// The jwt-compact RSA algorithm for the RSA variants.
    pub(crate) fn rsa(self) -> Option<jwt_compact::alg::Rsa> {
        use jwt_compact::alg::Rsa;
        Some(match self {
            Algorithm::RS256 => Rsa::rs256(),
            Algorithm::RS384 => Rsa::rs384(),
            Algorithm::RS512 => Rsa::rs512(),
            Algorithm::PS256 => Rsa::ps256(),
            Algorithm::PS384 => Rsa::ps384(),
            Algorithm::PS512 => Rsa::ps512(),
            _ => return None,
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// `ES384` for jwt-compact, which ships only ES256 and ES256K: ECDSA on P-384 with SHA-384,
/// signatures in the fixed-width JWS form `r || s` (96 bytes).
#[derive(Debug, Default, Clone, Copy)]
pub struct Es384;

/// An ES384 signature (a newtype: the orphan rule keeps us from implementing jwt-compact's trait
/// on p384's type).
#[derive(Debug)]
pub struct Es384Signature(p384::ecdsa::Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(96);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        // p384 rejects r or s equal to zero or not below the group order here.
        p384::ecdsa::Signature::try_from(slice)
            .map(Es384Signature)
            .map_err(|_| anyhow::anyhow!("malformed ES384 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl JwtAlgorithm for Es384 {
    type SigningKey = p384::ecdsa::SigningKey;
    type VerifyingKey = p384::ecdsa::VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        use p384::ecdsa::signature::DigestSigner;
        let digest = Sha384::new_with_prefix(message);
        Es384Signature(signing_key.sign_digest(digest))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        let digest = Sha384::new_with_prefix(message);
        verifying_key.verify_digest(digest, &signature.0).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        for bad in ["none", "None", "HS256", "rs256", "ES512", "", "EdDSA "] {
            assert_eq!(Algorithm::from_name(bad), None, "{bad}");
        }
    }
}
