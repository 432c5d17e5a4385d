//! Development-only token minting: signs JWTs with throwaway keys for Gateward's tests, the
//! local demo and the dev issuer. Nothing here is used to verify anything.

use jwt_compact::Algorithm as _;
use policy_engine::alg::{Algorithm, Es384};
use policy_engine::b64;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

/// Why a key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum DevkitError {
    /// The PEM is not a PKCS#8 private key of a supported type.
    #[error("not a PKCS#8 RSA, P-256, P-384 or Ed25519 private key")]
    UnsupportedKey,
    /// The algorithm does not fit the key.
    #[error("{alg} does not fit a {key} key")]
    AlgMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The key's type.
        key: &'static str,
    },
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// A private key that can sign tokens.
#[derive(Clone)]
pub enum SigningKey {
    /// RSA.
    Rsa(Box<rsa::RsaPrivateKey>),
    /// ECDSA P-256.
    P256(p256::ecdsa::SigningKey),
    /// ECDSA P-384.
    P384(p384::ecdsa::SigningKey),
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "SigningKey({})", self.kind())
    }
}

/// Key types the devkit can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA-2048.
    Rsa2048,
    /// P-256.
    P256,
    /// P-384.
    P384,
    /// Ed25519.
    Ed25519,
}

impl SigningKey {
    /// Loads a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Result<SigningKey, DevkitError> {
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P384(k));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Ed25519(k));
        }
        Err(DevkitError::UnsupportedKey)
    }

    /// Generates a fresh key.
    pub fn generate(kind: KeyKind) -> Result<SigningKey, DevkitError> {
        let mut rng = rand_core::OsRng;
        Ok(match kind {
            KeyKind::Rsa2048 => SigningKey::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rng, 2048)
                    .map_err(|e| DevkitError::Generate(e.to_string()))?,
            )),
            KeyKind::P256 => SigningKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::P384 => SigningKey::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::Ed25519 => SigningKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
        })
    }

    /// `RSA`, `P-256`, `P-384` or `Ed25519`.
    pub fn kind(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "RSA",
            SigningKey::P256(_) => "P-256",
            SigningKey::P384(_) => "P-384",
            SigningKey::Ed25519(_) => "Ed25519",
        }
    }

    /// The usual algorithm for this key.
    pub fn default_alg(&self) -> Algorithm {
        match self {
            SigningKey::Rsa(_) => Algorithm::RS256,
            SigningKey::P256(_) => Algorithm::ES256,
            SigningKey::P384(_) => Algorithm::ES384,
            SigningKey::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// The public half as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self, kid: &str) -> Value {
        let alg = self.default_alg().name();
        match self {
            SigningKey::Rsa(k) => json!({
                "kty": "RSA", "kid": kid, "alg": alg, "use": "sig",
                "n": b64::encode(&k.n().to_bytes_be()), "e": b64::encode(&k.e().to_bytes_be()),
            }),
            SigningKey::P256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec_jwk("P-256", kid, alg, p.as_bytes())
            }
            SigningKey::P384(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                ec_jwk("P-384", kid, alg, p.as_bytes())
            }
            SigningKey::Ed25519(k) => json!({
                "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": alg, "use": "sig",
                "x": b64::encode(k.verifying_key().as_bytes()),
            }),
        }
    }

    /// Signs `message` with `alg`.
    pub fn sign(&self, alg: Algorithm, message: &[u8]) -> Result<Vec<u8>, DevkitError> {
        use jwt_compact::AlgorithmSignature;
        let mismatch = || DevkitError::AlgMismatch {
            alg,
            key: self.kind(),
        };
        Ok(match (self, alg) {
            (SigningKey::Rsa(k), _) => {
                let rsa = jwt_compact::alg::Rsa::from_str_name(alg.name()).ok_or_else(mismatch)?;
                rsa.sign(k, message).as_bytes().into_owned()
            }
            (SigningKey::P256(k), Algorithm::ES256) => jwt_compact::alg::Es256
                .sign(k, message)
                .as_bytes()
                .into_owned(),
            (SigningKey::P384(k), Algorithm::ES384) => {
                Es384.sign(k, message).as_bytes().into_owned()
            }
            (SigningKey::Ed25519(k), Algorithm::EdDSA) => jwt_compact::alg::Ed25519
                .sign(k, message)
                .as_bytes()
                .into_owned(),
            _ => return Err(mismatch()),
        })
    }
}

/// `sec1` is an uncompressed point: `04 || x || y`.
fn ec_jwk(crv: &str, kid: &str, alg: &str, sec1: &[u8]) -> Value {
    let coords = sec1.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    json!({
        "kty": "EC", "crv": crv, "kid": kid, "alg": alg, "use": "sig",
        "x": b64::encode(x), "y": b64::encode(y),
    })
}

trait RsaByName: Sized {
    fn from_str_name(name: &str) -> Option<Self>;
}

impl RsaByName for jwt_compact::alg::Rsa {
    fn from_str_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// Signs `claims` under `header` (which must carry `alg`), exactly as given: tests use this to
/// build hostile tokens.
pub fn sign_raw(
    header: &Value,
    claims: &Value,
    key: &SigningKey,
    alg: Algorithm,
) -> Result<String, DevkitError> {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = key.sign(alg, input.as_bytes())?;
    Ok(format!("{input}.{}", b64::encode(&sig)))
}

/// Mints a token: header `{"alg", "typ": "JWT", "kid"}` over `claims`.
pub fn mint(key: &SigningKey, kid: Option<&str>, claims: &Value) -> Result<String, DevkitError> {
    let alg = key.default_alg();
    let mut header = json!({"alg": alg.name(), "typ": "JWT"});
    if let (Some(kid), Some(h)) = (kid, header.as_object_mut()) {
        h.insert("kid".into(), kid.into());
    }
    sign_raw(&header, claims, key, alg)
}

/// A JWKS document holding the public halves of `keys` (kid, key).
pub fn jwks(keys: &[(&str, &SigningKey)]) -> Value {
    json!({ "keys": keys.iter().map(|(kid, k)| k.public_jwk(kid)).collect::<Vec<_>>() })
}

/// Throwaway fixed keys checked into `devkit/keys/` (public: never trust them).
pub mod fixtures {
    use super::SigningKey;

    fn load(pem: &str) -> SigningKey {
        match SigningKey::from_pem(pem) {
            Ok(k) => k,
            // The fixtures are part of this crate; a failure here is a broken checkout.
            #[allow(clippy::panic)]
            Err(e) => panic!("devkit fixture key: {e}"),
        }
    }

    /// RSA-2048 key A.
    pub fn rsa_a() -> SigningKey {
        load(include_str!("../keys/rsa-a.pem"))
    }
    /// RSA-2048 key B (an unrelated key: "wrong key" and rotation tests).
    pub fn rsa_b() -> SigningKey {
        load(include_str!("../keys/rsa-b.pem"))
    }
    /// RSA-1024: weak, must be refused.
    pub fn rsa_weak() -> SigningKey {
        load(include_str!("../keys/rsa-weak-1024.pem"))
    }
    /// P-256.
    pub fn p256() -> SigningKey {
        load(include_str!("../keys/p256.pem"))
    }
    /// P-384.
    pub fn p384() -> SigningKey {
        load(include_str!("../keys/p384.pem"))
    }
    /// Ed25519.
    pub fn ed25519() -> SigningKey {
        load(include_str!("../keys/ed25519.pem"))
    }
}

/// Realistic claims for CI providers, after `../shared/reference/ci-oidc-providers.md`.
pub mod claims {
    use serde_json::{json, Value};

    /// A GitHub Actions ID token's claims for `octo-org/deploy` on `main`, issued at `iat`.
    pub fn github_actions(iat: i64, aud: &str) -> Value {
        json!({
            "jti": "6f7c6d5e-1b7a-4a52-9c8e-2f5a0f3b9d11",
            "sub": "repo:octo-org/deploy:environment:prod",
            "aud": aud,
            "ref": "refs/heads/main",
            "sha": "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8",
            "repository": "octo-org/deploy",
            "repository_owner": "octo-org",
            "repository_owner_id": "9919",
            "repository_id": "74839201",
            "repository_visibility": "private",
            "run_id": "9055441234",
            "run_number": "42",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "deploy",
            "workflow_ref": "octo-org/deploy/.github/workflows/deploy.yml@refs/heads/main",
            "job_workflow_ref": "octo-org/deploy/.github/workflows/deploy.yml@refs/heads/main",
            "event_name": "push",
            "ref_type": "branch",
            "ref_protected": "true",
            "environment": "prod",
            "iss": "https://token.actions.githubusercontent.com",
            "nbf": iat - 600,
            "iat": iat,
            "exp": iat + 300,
        })
    }
}

/// Signs `claims` under `header` with HMAC-SHA-256 (or -512 when `sha512`) keyed by `secret`:
/// the key-confusion attack (an HS token keyed with the issuer's *public* key), for tests that
/// prove Gateward refuses it.
pub fn sign_hmac(header: &Value, claims: &Value, secret: &[u8], sha512: bool) -> String {
    use jwt_compact::AlgorithmSignature;
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = if sha512 {
        let key = jwt_compact::alg::Hs512Key::new(secret);
        jwt_compact::alg::Hs512
            .sign(&key, input.as_bytes())
            .as_bytes()
            .into_owned()
    } else {
        let key = jwt_compact::alg::Hs256Key::new(secret);
        jwt_compact::alg::Hs256
            .sign(&key, input.as_bytes())
            .as_bytes()
            .into_owned()
    };
    format!("{input}.{}", b64::encode(&sig))
}

/// The SPKI PEM of a key's public half (what a key-confusion attacker would use as an HMAC secret).
pub fn public_pem(key: &SigningKey) -> String {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    let pem = match key {
        SigningKey::Rsa(k) => k.to_public_key().to_public_key_pem(LineEnding::LF),
        SigningKey::P256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        SigningKey::P384(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        SigningKey::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
    };
    pem.unwrap_or_default()
}
