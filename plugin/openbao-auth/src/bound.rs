//! `bound_claims`, `bound_subject` and `claim_mappings` with the semantics of OpenBao's built-in
//! `jwt` auth method (OpenBao's `internal/builtin/credential/jwt/claims.go`,
//! <https://github.com/openbao/openbao/blob/main/internal/builtin/credential/jwt/claims.go>; the
//! role parameters are documented at <https://openbao.org/api-docs/auth/jwt/>), so a role migrates
//! without changing meaning:
//!
//! - AND across keys; for each key, OR across the expected values; a list-valued claim matches
//!   when any element matches any expected value.
//! - A key starting with `/` is an RFC 6901 JSON pointer into nested claims.
//! - `string` type: typed equality. Strings, booleans and numbers never equal one another. A
//!   top-level numeric claim is truncated to an integer first (`5.9` matches a bound `5`); numbers
//!   *inside* a list claim are not, and never match a bound number (Go compares `float64` with
//!   `json.Number`).
//! - `glob` type: bound values must be strings; non-string claim values are skipped; globbing per
//!   [`crate::glob`].
//! - A missing (or `null`) claim fails with `claim "x" is missing`; an object-valued claim fails.
//! - `claim_mappings` copies string claims into metadata; a non-string value is an error, a
//!   missing claim is skipped.
//!
//! [`parity_cases`] lists cases with the built-in method's outcome, for parity tests against a
//! real `bao` (the same table is in `tests/data/bound_claims_cases.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How `bound_claims` values are compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundClaimsType {
    /// Typed equality.
    #[default]
    String,
    /// go-glob patterns (`*` only).
    Glob,
}

impl BoundClaimsType {
    /// Parses `"string"` / `"glob"`.
    pub fn parse(s: &str) -> Option<BoundClaimsType> {
        match s {
            "string" => Some(BoundClaimsType::String),
            "glob" => Some(BoundClaimsType::Glob),
            _ => None,
        }
    }

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            BoundClaimsType::String => "string",
            BoundClaimsType::Glob => "glob",
        }
    }
}

/// A value as Go's `interface{}` comparison sees it in `matchFound`.
#[derive(Debug, Clone, PartialEq)]
enum Typed<'a> {
    Str(&'a str),
    Bool(bool),
    /// A `json.Number`: bound numbers, and top-level token numbers (truncated to an integer).
    Number(String),
    /// A `float64`: numbers inside a token's list claim.
    Float(f64),
    Null,
    /// Lists and objects inside lists: never equal to anything here.
    Other,
}

/// Go's `int(float64)` on amd64: truncation, and the minimum for values out of range.
fn go_int(f: f64) -> i64 {
    if f.is_finite() && f > -9.223_372_036_854_776e18 && f < 9.223_372_036_854_776e18 {
        f.trunc() as i64
    } else {
        i64::MIN
    }
}

/// A token value after `getClaim`: top-level numbers become integer `json.Number`s.
fn top_level(v: &Value) -> Typed<'_> {
    match v {
        Value::String(s) => Typed::Str(s),
        Value::Bool(b) => Typed::Bool(*b),
        Value::Number(n) => Typed::Number(match n.as_i64() {
            Some(i) => i.to_string(),
            None => go_int(n.as_f64().unwrap_or(f64::NAN)).to_string(),
        }),
        Value::Null => Typed::Null,
        _ => Typed::Other,
    }
}

/// A token list element (raw: numbers stay floats).
fn element(v: &Value) -> Typed<'_> {
    match v {
        Value::String(s) => Typed::Str(s),
        Value::Bool(b) => Typed::Bool(*b),
        Value::Number(n) => Typed::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::Null => Typed::Null,
        _ => Typed::Other,
    }
}

/// A bound value (decoded with `UseNumber`: numbers are `json.Number` text).
fn bound(v: &Value) -> Typed<'_> {
    match v {
        Value::String(s) => Typed::Str(s),
        Value::Bool(b) => Typed::Bool(*b),
        Value::Number(n) => Typed::Number(n.to_string()),
        Value::Null => Typed::Null,
        _ => Typed::Other,
    }
}

/// Looks a claim up: a plain name, or an RFC 6901 pointer when it starts with `/`.
pub fn get_claim<'c>(claims: &'c Map<String, Value>, key: &str) -> Option<&'c Value> {
    let Some(pointer) = key.strip_prefix('/') else {
        return claims.get(key);
    };
    let mut parts = pointer
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"));
    let first = parts.next()?;
    let mut cur = claims.get(&first)?;
    for part in parts {
        cur = match cur {
            Value::Object(m) => m.get(&part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Checks every bound claim; the error reads as the built-in method's
/// (`claim "ref" does not match any associated bound claim values`).
pub fn validate_bound_claims(
    kind: BoundClaimsType,
    bound_claims: &Map<String, Value>,
    claims: &Map<String, Value>,
) -> Result<(), String> {
    for (key, expected) in bound_claims {
        let actual = match get_claim(claims, key) {
            None | Some(Value::Null) => return Err(format!("claim {key:?} is missing")),
            Some(v) => v,
        };
        // `aud` as a single string is a one-element list (RFC 7519 §4.1.3), as getClaim does.
        let actual_values: Vec<Typed<'_>> = match actual {
            Value::Array(items) => items.iter().map(element).collect(),
            Value::Object(_) => {
                return Err(format!(
                    "received claim is not a string, bool, int or list: {actual}"
                ))
            }
            v => vec![top_level(v)],
        };
        let expected_values: Vec<Typed<'_>> = match expected {
            Value::Array(items) => items.iter().map(bound).collect(),
            Value::Object(_) | Value::Null => {
                return Err(format!(
                    "bound claim is not a string, bool, int or list: {expected}"
                ))
            }
            v => vec![bound(v)],
        };
        if !match_found(&expected_values, &actual_values, kind)? {
            return Err(format!(
                "claim {key:?} does not match any associated bound claim values"
            ));
        }
    }
    Ok(())
}

fn match_found(
    expected: &[Typed<'_>],
    actual: &[Typed<'_>],
    kind: BoundClaimsType,
) -> Result<bool, String> {
    for e in expected {
        for a in actual {
            let hit = match kind {
                BoundClaimsType::Glob => {
                    let Typed::Str(pattern) = e else {
                        return Err(String::from("received claim is not a glob string"));
                    };
                    matches!(a, Typed::Str(s) if crate::glob::glob(pattern, s))
                }
                BoundClaimsType::String => match (e, a) {
                    (Typed::Str(x), Typed::Str(y)) => x == y,
                    (Typed::Bool(x), Typed::Bool(y)) => x == y,
                    (Typed::Number(x), Typed::Number(y)) => x == y,
                    (Typed::Float(x), Typed::Float(y)) => x == y,
                    (Typed::Null, Typed::Null) => true,
                    _ => false,
                },
            };
            if hit {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Role-write check of `bound_claims` (the built-in's): values must be scalars or lists, and
/// strings only for globs.
pub fn check_bound_claims(
    kind: BoundClaimsType,
    bound_claims: &Map<String, Value>,
) -> Result<(), String> {
    for (key, v) in bound_claims {
        if key.is_empty() {
            return Err(String::from("bound_claims: a claim name must not be empty"));
        }
        let values: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::String(_) | Value::Bool(_) | Value::Number(_) => vec![v],
            _ => return Err(format!("claim is not a string or list: {v}")),
        };
        for value in values {
            match (kind, value) {
                (BoundClaimsType::Glob, Value::String(_)) => {}
                (BoundClaimsType::Glob, other) => {
                    return Err(format!("claim is not a string: {other}"))
                }
                (BoundClaimsType::String, Value::Object(_) | Value::Array(_) | Value::Null) => {
                    return Err(format!(
                        "bound_claims[{key:?}]: values must be strings, booleans or numbers"
                    ))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// `claim_mappings`: metadata from string claims (missing claims skipped).
pub fn extract_metadata(
    claims: &Map<String, Value>,
    mappings: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (source, target) in mappings {
        match get_claim(claims, source) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                out.insert(target.clone(), s.clone());
            }
            Some(_) => return Err(format!("error converting claim '{source}' to string")),
        }
    }
    Ok(out)
}

/// The role's `bound_audiences` against the token's `aud`, as the built-in method checks them
/// (OpenBao `builtin/credential/jwt/path_login.go`, `pathLogin`, and `claims.go`,
/// `getClaim`): with bound audiences, one of them must be in `aud` (a string or a list);
/// without, a token that names any audience (a string, or a non-empty list) is refused, so a
/// role never accepts tokens minted for another audience of the same issuer.
pub fn validate_bound_audiences(
    bound: &[String],
    claims: &Map<String, Value>,
) -> Result<(), String> {
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if bound.is_empty() {
        let names_one = match claims.get("aud") {
            Some(Value::String(_)) => true,
            Some(Value::Array(a)) => !a.is_empty(),
            _ => false,
        };
        if names_one {
            return Err(String::from(
                "audience claim found in JWT but no audiences bound to the role",
            ));
        }
        return Ok(());
    }
    if auds.iter().any(|a| bound.iter().any(|b| b == a)) {
        Ok(())
    } else {
        Err(String::from(
            "error validating token: invalid audience (aud) claim: audience claim does not match any of the role's bound_audiences",
        ))
    }
}

/// One bound-claims case and the built-in `jwt` method's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParityCase {
    /// What it shows.
    pub name: String,
    /// `string` or `glob`.
    pub bound_claims_type: BoundClaimsType,
    /// The role's `bound_claims`.
    pub bound_claims: Map<String, Value>,
    /// Claims to add to (or, when `null`, remove from) a baseline GitHub Actions token.
    pub claims: Map<String, Value>,
    /// Whether the built-in method lets the login through.
    pub allowed: bool,
    /// For denials: a substring of the built-in method's error.
    pub error: Option<String>,
    /// `observed` (on a real OpenBao) or `source` (read from its code).
    pub source: String,
    /// The role's `bound_audiences`; absent: the baseline token's `aud` (the case is about
    /// `bound_claims`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_audiences: Option<Vec<String>>,
}

impl ParityCase {
    /// The role's `bound_audiences` for this case.
    pub fn role_audiences(&self) -> Vec<String> {
        match &self.bound_audiences {
            Some(a) => a.clone(),
            None => parity_baseline()
                .get("aud")
                .and_then(Value::as_str)
                .map(|a| vec![a.to_string()])
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
struct ParityDoc {
    baseline_claims: Map<String, Value>,
    cases: Vec<ParityCase>,
}

fn parity_doc() -> Option<ParityDoc> {
    serde_json::from_str(PARITY_JSON).ok()
}

/// The claims every parity case starts from (a GitHub Actions token's, trimmed), to which
/// [`ParityCase::claims`] are applied.
pub fn parity_baseline() -> Map<String, Value> {
    parity_doc().map(|d| d.baseline_claims).unwrap_or_default()
}

/// The bound-claims parity table (see the module docs). Outcomes are those observed on
/// OpenBao 2.7.2's built-in `jwt` method or read from its source (`claims.go`); the OpenBao
/// plugin's e2e test `bound_claims_match_the_builtin_jwt_method` replays them on a real `bao`.
pub fn parity_cases() -> Vec<ParityCase> {
    // Kept as JSON so the same file drives the transport's parity test against a real `bao`.
    parity_doc().map(|d| d.cases).unwrap_or_default()
}

/// The parity table as JSON (`tests/data/bound_claims_cases.json`).
pub const PARITY_JSON: &str = include_str!("../tests/data/bound_claims_cases.json");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_parity_table_parses_and_every_case_holds() {
        let cases = parity_cases();
        assert!(cases.len() >= 30, "{} cases", cases.len());
        for c in &cases {
            let mut claims = parity_baseline();
            assert!(claims.contains_key("sub"));
            for (k, v) in &c.claims {
                if v.is_null() {
                    claims.remove(k);
                } else {
                    claims.insert(k.clone(), v.clone());
                }
            }
            // In the built-in method's order: audiences, then bound claims.
            let got = check_bound_claims(c.bound_claims_type, &c.bound_claims)
                .and_then(|()| validate_bound_audiences(&c.role_audiences(), &claims))
                .and_then(|()| {
                    validate_bound_claims(c.bound_claims_type, &c.bound_claims, &claims)
                });
            assert_eq!(got.is_ok(), c.allowed, "{}: {got:?}", c.name);
            if let (Some(want), Err(e)) = (&c.error, &got) {
                assert!(
                    e.contains(want.as_str()),
                    "{}: {e:?} lacks {want:?}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn pointers_and_metadata() {
        let claims =
            json!({"nested": {"team": "platform", "a/b": "slash", "list": ["x", "y"]}, "n": 5})
                .as_object()
                .unwrap()
                .clone();
        assert_eq!(get_claim(&claims, "/nested/team"), Some(&json!("platform")));
        assert_eq!(get_claim(&claims, "/nested/a~1b"), Some(&json!("slash")));
        assert_eq!(get_claim(&claims, "/nested/list/1"), Some(&json!("y")));
        assert_eq!(get_claim(&claims, "/nested/list/7"), None);
        assert_eq!(get_claim(&claims, "/missing/x"), None);
        assert_eq!(get_claim(&claims, "nested/team"), None);
        let mut m = BTreeMap::new();
        m.insert("/nested/team".to_string(), "team".to_string());
        m.insert("absent".to_string(), "x".to_string());
        let md = extract_metadata(&claims, &m).unwrap();
        assert_eq!(md.get("team").map(String::as_str), Some("platform"));
        assert!(!md.contains_key("x"));
        m.insert("n".to_string(), "n".to_string());
        assert_eq!(
            extract_metadata(&claims, &m).unwrap_err(),
            "error converting claim 'n' to string"
        );
    }
}
