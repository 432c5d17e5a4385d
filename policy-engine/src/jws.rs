//! Compact JWS parsing (RFC 7515 §7.1) with every structural check done before any key is looked
//! at: size first, then shape, strict base64url, strict JSON, and the header rules.
//!
//! Only the compact serialization of a signed token is accepted. JWE (five segments), the JSON
//! serializations and unsecured tokens (`alg: none`) are refused. Keys offered by the token itself
//! (`jwk`, `jku`, `x5u`, `x5c`) are never read.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::{b64, json};

/// The largest `kid` we look up; a longer one cannot name a key we hold.
pub const MAX_KID_BYTES: usize = 256;

/// Why a token could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Longer than the configured `max_token_bytes`; checked before decoding anything.
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// Not three dot-separated segments.
    #[error("{0}")]
    Shape(&'static str),
    /// A segment is not strict base64url.
    #[error("{segment} is not valid base64url: {error}")]
    Encoding {
        /// `header`, `payload` or `signature`.
        segment: &'static str,
        /// What was wrong.
        error: b64::B64Error,
    },
    /// The header or payload is not a JSON object (or has duplicate keys).
    #[error("{segment} is not a JSON object: {error}")]
    Json {
        /// `header` or `payload`.
        segment: &'static str,
        /// What was wrong.
        error: String,
    },
    /// `alg` is missing, not a string, `none`, HMAC or unknown.
    #[error("{0}")]
    Algorithm(String),
    /// Another header rule (`crit`, `typ`, `cty`, `b64`, `kid`).
    #[error("{0}")]
    Header(String),
}

/// A parsed token whose signature has **not** been checked. Nothing in it is trustworthy until
/// [`crate::verify`] accepts it.
#[derive(Debug, Clone)]
pub struct UntrustedToken<'a> {
    /// The bytes the signature covers: `base64url(header) "." base64url(payload)`.
    pub signing_input: &'a str,
    /// The JWS `alg`.
    pub alg: Algorithm,
    /// The JWS `kid`, when present.
    pub kid: Option<String>,
    /// The whole protected header.
    pub header: Map<String, Value>,
    /// The whole payload (the claims).
    pub claims: Map<String, Value>,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl UntrustedToken<'_> {
    /// The `iss` claim when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

/// Parses a compact JWS of at most `max_bytes` bytes.
pub fn parse(token: &str, max_bytes: usize) -> Result<UntrustedToken<'_>, JwsError> {
    if token.len() > max_bytes {
        return Err(JwsError::TooLarge {
            len: token.len(),
            max: max_bytes,
        });
    }
    if token.is_empty() {
        return Err(JwsError::Shape("token is empty"));
    }
    // splitn bounds the work on a token of many dots (CVE-2025-30204's family).
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(match token.bytes().filter(|b| *b == b'.').count() {
            4 => JwsError::Shape("token has five segments: JWE is not accepted"),
            0 if token.starts_with('{') => {
                JwsError::Shape("JSON serialization is not accepted, only compact JWS")
            }
            _ => JwsError::Shape("token must have exactly three dot-separated segments"),
        });
    };
    if h.is_empty() || p.is_empty() {
        return Err(JwsError::Shape("header or payload segment is empty"));
    }
    if s.is_empty() {
        return Err(JwsError::Shape("signature segment is empty"));
    }
    let decode = |segment: &'static str, text: &str| {
        b64::decode(text).map_err(|error| JwsError::Encoding { segment, error })
    };
    let header_bytes = decode("header", h)?;
    let payload_bytes = decode("payload", p)?;
    let signature = decode("signature", s)?;

    let header = json::parse_object(&header_bytes).map_err(|error| JwsError::Json {
        segment: "header",
        error,
    })?;
    let alg = header_alg(&header)?;
    check_header_rules(&header)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= MAX_KID_BYTES => Some(k.clone()),
        Some(Value::String(_)) => {
            return Err(JwsError::Header(alloc::format!(
                "kid is longer than {MAX_KID_BYTES} bytes"
            )))
        }
        Some(other) => {
            return Err(JwsError::Header(alloc::format!(
                "kid must be a string, found {}",
                json::kind(other)
            )))
        }
    };
    let claims = json::parse_object(&payload_bytes).map_err(|error| JwsError::Json {
        segment: "payload",
        error,
    })?;
    let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or(token);
    Ok(UntrustedToken {
        signing_input,
        alg,
        kid,
        header,
        claims,
        signature,
    })
}

fn header_alg(header: &Map<String, Value>) -> Result<Algorithm, JwsError> {
    let alg = match header.get("alg") {
        Some(Value::String(a)) => a,
        Some(other) => {
            return Err(JwsError::Algorithm(alloc::format!(
                "alg must be a string, found {}",
                json::kind(other)
            )))
        }
        None => return Err(JwsError::Algorithm("header has no alg".to_owned())),
    };
    Algorithm::from_name(alg).ok_or_else(|| {
        JwsError::Algorithm(if alg.eq_ignore_ascii_case("none") {
            "unsecured tokens (alg none) are never accepted".to_owned()
        } else if alg.starts_with("HS") || alg.starts_with("hs") {
            alloc::format!("alg {alg}: HMAC tokens are never accepted")
        } else {
            alloc::format!("alg {alg:?} is not supported")
        })
    })
}

fn check_header_rules(header: &Map<String, Value>) -> Result<(), JwsError> {
    // RFC 7515 §4.1.11: a recipient MUST reject a token whose `crit` names an extension it does
    // not understand. We understand none, so any `crit` is refused (CVE-2026-32597's family).
    if header.contains_key("crit") {
        return Err(JwsError::Header(
            "crit lists header extensions Gateward does not process".to_owned(),
        ));
    }
    // RFC 7797 unencoded payloads change what the signature covers.
    if header.get("b64").is_some_and(|v| v != &Value::Bool(true)) {
        return Err(JwsError::Header(
            "b64 (unencoded payload) is not accepted".to_owned(),
        ));
    }
    // A content type means a nested token (`JWT`) or a non-JSON payload (`cbor`): never claims.
    if let Some(cty) = header.get("cty") {
        return Err(JwsError::Header(alloc::format!(
            "cty {cty} is not accepted: the payload must be the JWT claims themselves"
        )));
    }
    // ID tokens are `JWT` (SPIRE may say `JOSE`); other types (e.g. `at+jwt` access tokens) are
    // different tokens that happen to be signed by the same keys.
    match header.get("typ") {
        None => Ok(()),
        Some(Value::String(t))
            if ["JWT", "JOSE", "application/jwt"]
                .iter()
                .any(|ok| t.eq_ignore_ascii_case(ok)) =>
        {
            Ok(())
        }
        Some(other) => Err(JwsError::Header(alloc::format!(
            "typ {other} is not accepted: expected JWT"
        ))),
    }
}

/// SHA-256 of the token text: what token caches are keyed by (the token itself is not kept).
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

/// A short, non-reversible token identifier for logs: the first 8 bytes of its SHA-256, in hex.
/// It lets operators correlate log lines of one token without the token ever being logged.
pub fn fingerprint(token: &str) -> String {
    fingerprint_of(&token_hash(token))
}

/// [`fingerprint`] from an already computed [`token_hash`].
pub fn fingerprint_of(hash: &[u8; 32]) -> String {
    use core::fmt::Write;
    let mut out = String::with_capacity(16);
    for b in hash.iter().take(8) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod fingerprint_tests {
    #[test]
    fn fingerprint_is_short_stable_and_not_the_token() {
        let fp = super::fingerprint("a.b.c");
        assert_eq!(fp.len(), 16);
        assert_eq!(fp, super::fingerprint("a.b.c"));
        assert_ne!(fp, super::fingerprint("a.b.d"));
    }
}
