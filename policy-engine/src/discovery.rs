//! OIDC discovery documents (OpenID Connect Discovery 1.0 §3, §4.3): only the two fields a
//! verifier needs, checked against what the config trusts.

use alloc::format;
use alloc::string::{String, ToString};

use serde_json::Value;

use crate::json;

/// Largest discovery document parsed (bytes).
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// Over [`MAX_DISCOVERY_BYTES`].
    #[error("discovery document is {0} bytes, over the {MAX_DISCOVERY_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a JSON object, or a field of the wrong type.
    #[error("malformed discovery document: {0}")]
    Malformed(String),
    /// `issuer` differs from the configured issuer (§4.3: it MUST be identical).
    #[error("discovery document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's.
        found: String,
    },
    /// `jwks_uri` is not a URL we fetch from.
    #[error(
        "discovery document's jwks_uri {0:?} is not an https:// URL (http:// only on loopback)"
    )]
    BadJwksUri(String),
}

/// Reads `jwks_uri` from a discovery document fetched for `issuer`. The document's `issuer`
/// must equal the configured one exactly, and `jwks_uri` must be fetchable.
pub fn jwks_uri(document: &[u8], issuer: &str) -> Result<String, DiscoveryError> {
    if document.len() > MAX_DISCOVERY_BYTES {
        return Err(DiscoveryError::TooLarge(document.len()));
    }
    let doc = json::parse_object(document).map_err(DiscoveryError::Malformed)?;
    let text = |name: &str| match doc.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(other) => Err(DiscoveryError::Malformed(format!(
            "{name} must be a string, found {}",
            json::kind(other)
        ))),
        None => Err(DiscoveryError::Malformed(format!("no {name}"))),
    };
    let found = text("issuer")?;
    if found != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_string(),
            found: found.chars().take(200).collect(),
        });
    }
    let uri = text("jwks_uri")?;
    if !is_fetchable_url(uri) {
        return Err(DiscoveryError::BadJwksUri(uri.chars().take(200).collect()));
    }
    Ok(uri.to_string())
}

/// `https://…`, or `http://` to a loopback host (local development and tests).
pub fn is_fetchable_url(url: &str) -> bool {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    url.starts_with("https://")
        || loopback.iter().any(|l| {
            url.strip_prefix(l).is_some_and(|rest| {
                // A port, if any, is digits up to the path: `http://127.0.0.1:80@evil.example`
                // names evil.example as the host (userinfo `127.0.0.1:80`).
                let path = match rest.strip_prefix(':') {
                    Some(after) => {
                        let end = after.find('/').unwrap_or(after.len());
                        let (port, path) = after.split_at(end);
                        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                            return false;
                        }
                        path
                    }
                    None => rest,
                };
                path.is_empty() || path.starts_with('/')
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn accepts_matching_documents_and_refuses_the_rest() {
        let ok = br#"{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"https://token.actions.githubusercontent.com/.well-known/jwks","subject_types_supported":["public"]}"#;
        assert_eq!(
            jwks_uri(ok, ISS).unwrap(),
            format!("{ISS}/.well-known/jwks")
        );
        let other = br#"{"issuer":"https://evil.example","jwks_uri":"https://evil.example/jwks"}"#;
        assert!(matches!(
            jwks_uri(other, ISS),
            Err(DiscoveryError::IssuerMismatch { .. })
        ));
        let slash = br#"{"issuer":"https://token.actions.githubusercontent.com/","jwks_uri":"https://x/jwks"}"#;
        assert!(matches!(
            jwks_uri(slash, ISS),
            Err(DiscoveryError::IssuerMismatch { .. })
        ));
        let http = br#"{"issuer":"https://token.actions.githubusercontent.com","jwks_uri":"http://evil.example/jwks"}"#;
        assert!(matches!(
            jwks_uri(http, ISS),
            Err(DiscoveryError::BadJwksUri(_))
        ));
        assert!(matches!(
            jwks_uri(b"[]", ISS),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            jwks_uri(br#"{"issuer":1}"#, ISS),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            jwks_uri(br#"{"issuer":"a","issuer":"b"}"#, ISS),
            Err(DiscoveryError::Malformed(_))
        ));
        let huge = alloc::vec![b' '; MAX_DISCOVERY_BYTES + 1];
        assert!(matches!(
            jwks_uri(&huge, ISS),
            Err(DiscoveryError::TooLarge(_))
        ));
    }

    #[test]
    fn fetchable_urls() {
        assert!(is_fetchable_url("https://x.example/jwks"));
        assert!(is_fetchable_url("http://127.0.0.1:8080/jwks"));
        assert!(is_fetchable_url("http://localhost/jwks"));
        assert!(!is_fetchable_url("http://localhost.evil.example/jwks"));
        assert!(!is_fetchable_url("http://127.0.0.1.evil.example/"));
        assert!(!is_fetchable_url("ftp://x"));
        // Userinfo: the host is evil.example, not loopback. A port is digits.
        assert!(!is_fetchable_url("http://127.0.0.1:80@evil.example/jwks"));
        assert!(!is_fetchable_url("http://[::1]:1@evil.example/jwks"));
        assert!(!is_fetchable_url("http://127.0.0.1:/jwks"));
        assert!(!is_fetchable_url("http://127.0.0.1:8x/jwks"));
        assert!(is_fetchable_url("http://[::1]:9"));
    }
}
