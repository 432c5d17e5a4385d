//! The one outcome every front end acts on.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Serialize;

/// A stable, machine-readable reason for a denial. The `snake_case` names are API: logs, metrics,
/// response bodies and tests match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// No token in any configured place.
    TokenMissing,
    /// Not a well-formed compact JWS, or a header rule was broken.
    TokenMalformed,
    /// Over `max_token_bytes`.
    TokenTooLarge,
    /// Tokens in more than one configured place.
    TokenAmbiguous,
    /// `alg` not on the issuer's allow-list.
    AlgNotAllowed,
    /// The signature does not verify.
    SignatureInvalid,
    /// No key with the token's `kid` (or of its type) in the issuer's key set.
    KeyNotFound,
    /// `iss` names no configured issuer.
    IssuerUntrusted,
    /// `aud` holds none of the configured audiences.
    AudienceMismatch,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// The token lives longer than `max_lifetime_seconds`.
    LifetimeExceeded,
    /// A claim the issuer requires is absent.
    ClaimMissing,
    /// A claim has the wrong type or shape.
    ClaimInvalid,
    /// The policy said no.
    PolicyDenied,
    /// The policy failed to evaluate, or returned something that is not a decision.
    PolicyError,
    /// The issuer's keys could not be obtained.
    KeysUnavailable,
    /// Replay protection is on and this token (its `jti`) was let through before.
    TokenReplayed,
    /// Replay protection is on and the record cannot take the token (full, or not writable).
    ReplayUnavailable,
    /// A bug: caught at a host boundary and turned into a denial.
    InternalError,
    /// The request path may mean another path upstream: a `.` or `..` segment (also with `;`
    /// parameters, `..;`), a percent-encoded `.`, `/`, `\` or control character, a backslash
    /// or a control character.
    PathAmbiguous,
    /// The method is not an upper-case RFC 9110 token (`post`, `GE T`).
    MethodInvalid,
}

impl DenyCode {
    /// The code as it appears in JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyCode::TokenMissing => "token_missing",
            DenyCode::TokenMalformed => "token_malformed",
            DenyCode::TokenTooLarge => "token_too_large",
            DenyCode::TokenAmbiguous => "token_ambiguous",
            DenyCode::AlgNotAllowed => "alg_not_allowed",
            DenyCode::SignatureInvalid => "signature_invalid",
            DenyCode::KeyNotFound => "key_not_found",
            DenyCode::IssuerUntrusted => "issuer_untrusted",
            DenyCode::AudienceMismatch => "audience_mismatch",
            DenyCode::Expired => "expired",
            DenyCode::NotYetValid => "not_yet_valid",
            DenyCode::LifetimeExceeded => "lifetime_exceeded",
            DenyCode::ClaimMissing => "claim_missing",
            DenyCode::ClaimInvalid => "claim_invalid",
            DenyCode::PolicyDenied => "policy_denied",
            DenyCode::PolicyError => "policy_error",
            DenyCode::KeysUnavailable => "keys_unavailable",
            DenyCode::TokenReplayed => "token_replayed",
            DenyCode::ReplayUnavailable => "replay_unavailable",
            DenyCode::InternalError => "internal_error",
            DenyCode::PathAmbiguous => "path_ambiguous",
            DenyCode::MethodInvalid => "method_invalid",
        }
    }

    /// The HTTP status: 401 for token problems (RFC 6750), 403 for policy denials and policy
    /// errors (fail closed, as Envoy's ext_authz does), 503 when keys or the replay record are
    /// unavailable, 400 for a method or path refused before the token is looked at.
    pub const fn status(self) -> u16 {
        match self {
            DenyCode::PathAmbiguous | DenyCode::MethodInvalid => 400,
            DenyCode::PolicyDenied | DenyCode::PolicyError => 403,
            DenyCode::KeysUnavailable | DenyCode::ReplayUnavailable => 503,
            DenyCode::InternalError => 500,
            _ => 401,
        }
    }
}

/// A request let through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allow {
    /// The configured name of the issuer that signed the token.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The token's `jti`.
    pub jti: Option<String>,
    /// Headers to set on the upstream request (claim headers, then policy headers).
    #[serde(serialize_with = "as_object")]
    pub headers: Vec<(String, String)>,
    /// Headers to remove from the upstream request before `headers` are set: every configured
    /// claim header (so clients cannot forge them) and the token's header unless forwarded.
    pub remove_headers: Vec<String>,
    /// How to remove the token from the upstream request (None when `forward_token`).
    pub strip_token: Option<crate::gate::Strip>,
    /// The policy's reason, when it gave one.
    pub reason: Option<String>,
    /// The token's `exp` (bounds caches of this decision).
    pub expires_at: i64,
}

/// Serializes header pairs as a JSON object (names are unique: later pairs win).
fn as_object<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// A request refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deny {
    /// HTTP status for the local reply.
    pub status: u16,
    /// Stable reason code.
    pub code: DenyCode,
    /// Human-readable detail; never contains the token or key material.
    pub message: String,
    /// Issuer config name, once the token was routed to one.
    pub issuer: Option<String>,
    /// `sub`, once the token was verified.
    pub subject: Option<String>,
    /// Extra headers for the local reply (from the policy).
    #[serde(serialize_with = "as_object")]
    pub response_headers: Vec<(String, String)>,
}

impl Deny {
    /// A denial with the code's default status.
    pub fn new(code: DenyCode, message: impl Into<String>) -> Deny {
        Deny {
            status: code.status(),
            code,
            message: message.into(),
            issuer: None,
            subject: None,
            response_headers: Vec::new(),
        }
    }

    /// The RFC 6750 `WWW-Authenticate` value for a 401: no `error` attribute when no token was
    /// sent (§3.1), `invalid_token` otherwise. None for other statuses.
    pub fn www_authenticate(&self, realm: &str) -> Option<String> {
        if self.status != 401 {
            return None;
        }
        let realm = quoted(realm);
        Some(if self.code == DenyCode::TokenMissing {
            format!("Bearer realm=\"{realm}\"")
        } else {
            format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                quoted(&self.message)
            )
        })
    }
}

/// Keeps only characters RFC 6750 allows in a quoted attribute (%x20-21 / %x23-5B / %x5D-7E).
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .take(256)
        .collect()
}

/// The outcome of checking one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Let the request through.
    Allow(Allow),
    /// Refuse it.
    Deny(Deny),
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The deny code, if denied.
    pub fn code(&self) -> Option<DenyCode> {
        match self {
            Decision::Allow(_) => None,
            Decision::Deny(d) => Some(d.code),
        }
    }
}

impl From<Deny> for Decision {
    fn from(d: Deny) -> Decision {
        Decision::Deny(d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn www_authenticate_follows_rfc6750() {
        let missing = Deny::new(DenyCode::TokenMissing, "no token");
        assert_eq!(
            missing.www_authenticate("api").unwrap(),
            "Bearer realm=\"api\""
        );
        let bad = Deny::new(DenyCode::Expired, "token \"expired\"\r\n");
        assert_eq!(
            bad.www_authenticate("api").unwrap(),
            "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token 'expired'??\""
        );
        assert_eq!(
            Deny::new(DenyCode::PolicyDenied, "no").www_authenticate("api"),
            None
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(DenyCode::SignatureInvalid.status(), 401);
        assert_eq!(DenyCode::PolicyDenied.status(), 403);
        assert_eq!(DenyCode::PolicyError.status(), 403);
        assert_eq!(DenyCode::KeysUnavailable.status(), 503);
        assert_eq!(
            serde_json::to_value(DenyCode::KeyNotFound).unwrap(),
            "key_not_found"
        );
    }
}
