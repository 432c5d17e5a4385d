//! Verification keys: JWKS documents (RFC 7517), PEM public keys, and choosing the key for a
//! token. Key documents come from the network and are treated as hostile: size and count are
//! bounded, weak or unusable keys are refused one by one with a reason, and a document with
//! duplicate `kid`s is refused whole because it makes key selection ambiguous.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::Engine as _;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};

use crate::alg::{Algorithm, KeyFamily};
use crate::{b64, json};

/// Largest JWKS document parsed (bytes).
pub const MAX_JWKS_BYTES: usize = 512 * 1024;
/// Most keys one JWKS may hold.
pub const MAX_KEYS: usize = 64;
/// Smallest RSA modulus accepted (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted: bounds the cost of one verification.
pub const MAX_RSA_BITS: usize = 8192;

/// Why a key or key document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("key set is {0} bytes, over the {MAX_JWKS_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not JSON, or not of the JWKS shape.
    #[error("malformed key set: {0}")]
    Malformed(String),
    /// More than [`MAX_KEYS`] keys.
    #[error("key set has {0} keys, over the limit of {MAX_KEYS}")]
    TooManyKeys(usize),
    /// Two keys share a `kid`.
    #[error("key set has two keys with kid {0:?}: selection would be ambiguous")]
    DuplicateKid(String),
    /// No key in the document can verify anything.
    #[error("key set has no usable signing key ({0})")]
    NoUsableKey(String),
    /// One key is unusable (weak, wrong shape, encryption-only, ...).
    #[error("{0}")]
    BadKey(String),
}

/// A public key of one of the supported families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An RSA key of at least [`MIN_RSA_BITS`].
    Rsa(Box<RsaPublicKey>),
    /// A P-256 point.
    P256(p256::ecdsa::VerifyingKey),
    /// A P-384 point.
    P384(p384::ecdsa::VerifyingKey),
    /// An Ed25519 point.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Fingerprints ([`PublicKey::fingerprint`]) of the development keys committed in
/// `devkit/keys/` (`rsa-a`, `rsa-b`, `p256`, `p384`, `ed25519`), whose private halves are public:
/// a configuration that trusts one gets a warning. Kept in step with the files by a devkit test.
pub const DEVELOPMENT_KEYS: [(&str, &str); 5] = [
    (
        "rsa-a",
        "c79b2c82cc7793b9613f6f640402aa15a24aadebc205f670099d0de899057704",
    ),
    (
        "rsa-b",
        "667ebdfcdcdcc5f99344a4a510bae3536741f59c2d575ad23058fe89bf35e24d",
    ),
    (
        "p256",
        "162a133868e0f372062d61dca5d0cba777ab8b18f14b3a83c6f3ea40a3e939e3",
    ),
    (
        "p384",
        "a32dd5ef4d66408df69839787cf86a8788ce635f9c07ba9718b670056b18c1ea",
    ),
    (
        "ed25519",
        "221d85be38d35e4e3264893f61d4edfe077b6089c890d5d9ea381d12e1377d9b",
    ),
];

impl PublicKey {
    /// SHA-256, in lower-case hex, over the key's family and public values (RSA: the modulus
    /// and exponent; EC: the uncompressed point; Ed25519: the point), to recognise a key however
    /// it was written (JWK or PEM).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        match self {
            PublicKey::Rsa(k) => {
                h.update(b"rsa\0");
                h.update(k.n().to_bytes_be());
                h.update(b"\0");
                h.update(k.e().to_bytes_be());
            }
            PublicKey::P256(k) => {
                h.update(b"p256\0");
                h.update(k.to_encoded_point(false).as_bytes());
            }
            PublicKey::P384(k) => {
                h.update(b"p384\0");
                h.update(k.to_encoded_point(false).as_bytes());
            }
            PublicKey::Ed25519(k) => {
                h.update(b"ed25519\0");
                h.update(k.as_bytes());
            }
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The committed development key this is, if any ([`DEVELOPMENT_KEYS`]).
    pub fn development_key(&self) -> Option<&'static str> {
        let f = self.fingerprint();
        DEVELOPMENT_KEYS
            .iter()
            .find(|(_, known)| *known == f)
            .map(|(name, _)| *name)
    }
    /// An RSA key as DER SubjectPublicKeyInfo, the form crypto libraries (Envoy's BoringSSL
    /// through `verify_signature`) import. None for other families.
    pub fn rsa_spki_der(&self) -> Option<Vec<u8>> {
        use rsa::pkcs8::EncodePublicKey;
        match self {
            PublicKey::Rsa(k) => k.to_public_key_der().ok().map(|d| d.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The family of algorithms this key verifies.
    pub fn family(&self) -> KeyFamily {
        match self {
            PublicKey::Rsa(_) => KeyFamily::Rsa,
            PublicKey::P256(_) => KeyFamily::P256,
            PublicKey::P384(_) => KeyFamily::P384,
            PublicKey::Ed25519(_) => KeyFamily::Ed25519,
        }
    }

    /// A short description (`RSA-2048`, `P-256`, ...) for logs; never key material.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa(k) => format!("RSA-{}", k.n().bits()),
            PublicKey::P256(_) => "P-256".to_string(),
            PublicKey::P384(_) => "P-384".to_string(),
            PublicKey::Ed25519(_) => "Ed25519".to_string(),
        }
    }

    /// Builds an RSA key from its modulus and exponent (big-endian), refusing weak ones.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<PublicKey, KeyError> {
        let e_bytes = e;
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        let bits = n.bits();
        if bits < MIN_RSA_BITS {
            return Err(KeyError::BadKey(format!(
                "RSA modulus is {bits} bits, under the {MIN_RSA_BITS}-bit minimum"
            )));
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyError::BadKey(format!(
                "RSA modulus is {bits} bits, over the {MAX_RSA_BITS}-bit maximum"
            )));
        }
        // e = 1 makes every "signature" valid; an even e is not an RSA key.
        if e < BigUint::from(3u32) || e_bytes.last().is_none_or(|b| b & 1 == 0) {
            return Err(KeyError::BadKey(
                "RSA public exponent must be odd and at least 3".to_string(),
            ));
        }
        RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
            .map(|k| PublicKey::Rsa(Box::new(k)))
            .map_err(|err| KeyError::BadKey(format!("invalid RSA key: {err}")))
    }

    /// Builds an EC key from its affine coordinates; the point must be on the curve.
    pub fn ec(family: KeyFamily, x: &[u8], y: &[u8]) -> Result<PublicKey, KeyError> {
        let size = match family {
            KeyFamily::P256 => 32,
            KeyFamily::P384 => 48,
            _ => return Err(KeyError::BadKey("not an EC key family".to_string())),
        };
        if x.len() != size || y.len() != size {
            return Err(KeyError::BadKey(format!(
                "EC coordinates must be {size} bytes each, found {} and {}",
                x.len(),
                y.len()
            )));
        }
        let mut sec1 = Vec::with_capacity(1 + 2 * size);
        sec1.push(0x04);
        sec1.extend_from_slice(x);
        sec1.extend_from_slice(y);
        let off_curve = |_| KeyError::BadKey("EC point is not on the curve".to_string());
        Ok(match family {
            KeyFamily::P256 => PublicKey::P256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(off_curve)?,
            ),
            _ => PublicKey::P384(
                p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(off_curve)?,
            ),
        })
    }

    /// Builds an Ed25519 key from its 32-byte encoding.
    pub fn ed25519(x: &[u8]) -> Result<PublicKey, KeyError> {
        let bytes: &[u8; 32] = x.try_into().map_err(|_| {
            KeyError::BadKey(format!("Ed25519 key must be 32 bytes, found {}", x.len()))
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(PublicKey::Ed25519)
            .map_err(|_| KeyError::BadKey("Ed25519 key is not a valid curve point".to_string()))
    }

    /// Parses a PEM public key: SPKI (`PUBLIC KEY`) for every family, or PKCS#1
    /// (`RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        use rsa::pkcs8::DecodePublicKey;

        let (label, der) = pem_decode(pem)?;
        match label.as_str() {
            "RSA PUBLIC KEY" => rsa_from_pkcs1(&der),
            "PUBLIC KEY" => {
                // RSA is read from the DER ourselves: the rsa crate's decoders cap the modulus at
                // 4096 bits, below our JWK limit, and one key must import the same either way.
                if let Some(pkcs1) = spki_rsa(&der) {
                    rsa_from_pkcs1(pkcs1)
                } else if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&der) {
                    Ok(PublicKey::P256(k))
                } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&der) {
                    Ok(PublicKey::P384(k))
                } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(&der) {
                    Ok(PublicKey::Ed25519(k))
                } else {
                    Err(KeyError::BadKey(
                        "PEM public key is not RSA, P-256, P-384 or Ed25519 (or is malformed)"
                            .to_string(),
                    ))
                }
            }
            l if l.contains("PRIVATE") => Err(KeyError::BadKey(
                "PEM holds a private key; give the public key only".to_string(),
            )),
            l => Err(KeyError::BadKey(format!(
                "PEM label {l:?} is not a public key (expected PUBLIC KEY or RSA PUBLIC KEY)"
            ))),
        }
    }
}

/// The PKCS#1 `RSAPublicKey` inside an SPKI whose algorithm is rsaEncryption.
fn spki_rsa(der: &[u8]) -> Option<&[u8]> {
    use rsa::pkcs8::der::Decode;
    let spki = rsa::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der).ok()?;
    (spki.algorithm.oid == rsa::pkcs1::ALGORITHM_OID).then(|| spki.subject_public_key.raw_bytes())
}

fn rsa_from_pkcs1(der: &[u8]) -> Result<PublicKey, KeyError> {
    use rsa::pkcs1::der::Decode;
    let k = rsa::pkcs1::RsaPublicKey::from_der(der)
        .map_err(|e| KeyError::BadKey(format!("invalid PKCS#1 RSA public key: {e}")))?;
    PublicKey::rsa(k.modulus.as_bytes(), k.public_exponent.as_bytes())
}

fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    let bad = |m: &str| KeyError::BadKey(format!("malformed PEM: {m}"));
    let text = pem.trim();
    let rest = text
        .strip_prefix("-----BEGIN ")
        .ok_or_else(|| bad("no BEGIN line"))?;
    let (label, rest) = rest
        .split_once("-----")
        .ok_or_else(|| bad("unterminated BEGIN line"))?;
    let footer = format!("-----END {label}-----");
    let body = rest
        .strip_suffix(footer.as_str())
        .ok_or_else(|| bad("END line missing or mismatched"))?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("body is not base64"))?;
    Ok((label.to_string(), der))
}

/// One verification key with the metadata that constrains its use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key id (`kid`), when known.
    pub kid: Option<String>,
    /// The one algorithm this key may be used with, when the JWK says (`alg`).
    pub alg: Option<Algorithm>,
    /// The key itself.
    pub key: PublicKey,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`: the families agree and, when the key
    /// names an algorithm, it is this one (never taken from the token alone).
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key.family() == alg.key_family() && self.alg.is_none_or(|a| a == alg)
    }
}

/// A set of verification keys (a parsed JWKS, or keys from config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// The usable keys.
    pub keys: Vec<Key>,
    /// Why each refused key was refused (`keys[2] (kid "x"): RSA modulus is 1024 bits ...`).
    pub skipped: Vec<String>,
}

impl KeySet {
    /// Parses a JWKS document (`{"keys": [...]}`), refusing hostile ones. Unusable keys are
    /// skipped with a reason in [`KeySet::skipped`]; a set with none left is an error.
    pub fn from_jwks(document: &[u8]) -> Result<KeySet, KeyError> {
        if document.len() > MAX_JWKS_BYTES {
            return Err(KeyError::TooLarge(document.len()));
        }
        let doc = json::parse_object(document).map_err(KeyError::Malformed)?;
        let keys = match doc.get("keys") {
            Some(Value::Array(keys)) => keys,
            Some(other) => {
                return Err(KeyError::Malformed(format!(
                    "keys must be an array, found {}",
                    json::kind(other)
                )))
            }
            None => return Err(KeyError::Malformed("no keys array".to_string())),
        };
        if keys.len() > MAX_KEYS {
            return Err(KeyError::TooManyKeys(keys.len()));
        }
        let mut set = KeySet::default();
        let mut kids: Vec<&str> = Vec::new();
        for (i, jwk) in keys.iter().enumerate() {
            let Value::Object(jwk) = jwk else {
                set.skipped.push(format!("keys[{i}]: not an object"));
                continue;
            };
            if let Some(Value::String(kid)) = jwk.get("kid") {
                if kids.contains(&kid.as_str()) {
                    return Err(KeyError::DuplicateKid(kid.clone()));
                }
                kids.push(kid);
            }
            match Key::from_jwk(jwk) {
                Ok(key) => set.keys.push(key),
                Err(err) => {
                    let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
                    set.skipped.push(format!("keys[{i}] (kid {kid:?}): {err}"));
                }
            }
        }
        if set.keys.is_empty() {
            return Err(KeyError::NoUsableKey(if set.skipped.is_empty() {
                "the keys array is empty".to_string()
            } else {
                set.skipped.join("; ")
            }));
        }
        Ok(set)
    }

    /// Keys that may verify a token with this `kid` and `alg`. With a `kid`, only keys with that
    /// exact `kid`; without one, every key that fits the algorithm.
    pub fn candidates<'s>(
        &'s self,
        kid: Option<&'s str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'s Key> {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)) && k.fits(alg))
    }

    /// Whether any key carries this `kid` (whatever its type).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

impl Key {
    /// Builds a key from one JWK object.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Result<Key, KeyError> {
        let text = |name: &str| -> Result<Option<&str>, KeyError> {
            match jwk.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(KeyError::BadKey(format!(
                    "{name} must be a string, found {}",
                    json::kind(other)
                ))),
            }
        };
        let bytes = |name: &str| -> Result<Vec<u8>, KeyError> {
            let s = text(name)?.ok_or_else(|| KeyError::BadKey(format!("missing {name}")))?;
            b64::decode(s).map_err(|e| KeyError::BadKey(format!("{name}: {e}")))
        };
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|f| jwk.contains_key(*f))
        {
            return Err(KeyError::BadKey(
                "holds private or symmetric key material: refused".to_string(),
            ));
        }
        if let Some(u) = text("use")? {
            if u != "sig" {
                return Err(KeyError::BadKey(format!("use is {u:?}, not \"sig\"")));
            }
        }
        if let Some(ops) = jwk.get("key_ops") {
            let verify = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
            if !verify {
                return Err(KeyError::BadKey(
                    "key_ops does not allow verify".to_string(),
                ));
            }
        }
        let alg = match text("alg")? {
            None => None,
            Some(name) => Some(Algorithm::from_name(name).ok_or_else(|| {
                KeyError::BadKey(format!(
                    "alg {name:?} is not a supported signature algorithm"
                ))
            })?),
        };
        let kty = text("kty")?.ok_or_else(|| KeyError::BadKey("missing kty".to_string()))?;
        let key = match kty {
            "RSA" => PublicKey::rsa(&bytes("n")?, &bytes("e")?)?,
            "EC" => {
                let family = match text("crv")? {
                    Some("P-256") => KeyFamily::P256,
                    Some("P-384") => KeyFamily::P384,
                    Some(c) => {
                        return Err(KeyError::BadKey(format!("EC curve {c:?} is not supported")))
                    }
                    None => return Err(KeyError::BadKey("EC key has no crv".to_string())),
                };
                PublicKey::ec(family, &bytes("x")?, &bytes("y")?)?
            }
            "OKP" => match text("crv")? {
                Some("Ed25519") => PublicKey::ed25519(&bytes("x")?)?,
                c => {
                    return Err(KeyError::BadKey(format!(
                        "OKP curve {c:?} is not supported"
                    )))
                }
            },
            "oct" => {
                return Err(KeyError::BadKey(
                    "symmetric (oct) keys are never used".to_string(),
                ))
            }
            other => return Err(KeyError::BadKey(format!("kty {other:?} is not supported"))),
        };
        if let Some(alg) = alg {
            if alg.key_family() != key.family() {
                return Err(KeyError::BadKey(format!(
                    "alg {alg} does not fit a {} key",
                    key.describe()
                )));
            }
        }
        Ok(Key {
            kid: text("kid")?.map(ToString::to_string),
            alg,
            key,
        })
    }
}
