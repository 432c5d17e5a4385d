//! Registered-claim checks (RFC 7519 §4.1) for a token whose signature has been verified.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::decision::DenyCode;
use crate::json;

/// The largest NumericDate we accept (year 10000): keeps arithmetic far from overflow.
const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// What one issuer demands of a token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// The exact `iss`.
    pub issuer: String,
    /// `aud` must contain at least one of these.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: u64,
    /// Upper bound on `exp - iat` (or `exp - nbf`, or `exp - now` when neither is present).
    pub max_lifetime_seconds: Option<u64>,
    /// Claims that must be present and not null.
    pub require: Vec<String>,
}

/// A claim check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimError {
    /// The deny code.
    pub code: DenyCode,
    /// What was wrong.
    pub message: String,
}

fn fail(code: DenyCode, message: String) -> ClaimError {
    ClaimError { code, message }
}

/// Reads a NumericDate claim: a JSON number (integer or not), within 0..=year 10000. Any other
/// type is an error, never "absent" (CVE-2026-25537's family).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ClaimError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let secs = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f <= MAX_NUMERIC_DATE as f64)
                // Truncation toward zero: fractional seconds do not matter at our granularity.
                .map(|f| f as i64)
        }),
        _ => None,
    };
    match secs {
        Some(s) if (0..=MAX_NUMERIC_DATE).contains(&s) => Ok(Some(s)),
        _ => Err(fail(
            DenyCode::ClaimInvalid,
            format!(
                "{name} must be a NumericDate (seconds since 1970), found {}",
                describe(v)
            ),
        )),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        other => String::from(json::kind(other)),
    }
}

/// Checks `iss`, `aud`, `exp`, `nbf`, `iat`, the lifetime and required claims at time `now`
/// (Unix seconds). Returns the token's expiry on success.
pub fn check(claims: &Map<String, Value>, rules: &ClaimRules, now: i64) -> Result<i64, ClaimError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => {}
        Some(Value::String(iss)) => {
            return Err(fail(
                DenyCode::IssuerUntrusted,
                format!("iss {iss:?} is not {:?}", rules.issuer),
            ))
        }
        _ => {
            return Err(fail(
                DenyCode::IssuerUntrusted,
                String::from("token has no string iss"),
            ))
        }
    }
    check_audience(claims, &rules.audiences)?;

    let leeway = i64::try_from(rules.leeway_seconds)
        .unwrap_or(i64::MAX / 4)
        .min(MAX_NUMERIC_DATE);
    let exp = numeric_date(claims, "exp")?
        .ok_or_else(|| fail(DenyCode::ClaimMissing, String::from("token has no exp")))?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    if now >= exp.saturating_add(leeway) {
        return Err(fail(
            DenyCode::Expired,
            format!("token expired {} s ago", now.saturating_sub(exp)),
        ));
    }
    if let Some(nbf) = nbf {
        if nbf > now.saturating_add(leeway) {
            return Err(fail(
                DenyCode::NotYetValid,
                format!(
                    "token not valid for another {} s (nbf)",
                    nbf.saturating_sub(now)
                ),
            ));
        }
    }
    if let Some(iat) = iat {
        if iat > now.saturating_add(leeway) {
            return Err(fail(
                DenyCode::NotYetValid,
                format!(
                    "token issued {} s in the future (iat)",
                    iat.saturating_sub(now)
                ),
            ));
        }
    }
    if let Some(max) = rules.max_lifetime_seconds {
        let (from, what) = match (iat, nbf) {
            (Some(iat), _) => (iat, "exp - iat"),
            (None, Some(nbf)) => (nbf, "exp - nbf"),
            (None, None) => (now, "exp - now"),
        };
        let lifetime = exp.saturating_sub(from);
        if lifetime > i64::try_from(max).unwrap_or(i64::MAX) {
            return Err(fail(
                DenyCode::LifetimeExceeded,
                format!("token lifetime ({what}) is {lifetime} s, over the {max} s maximum"),
            ));
        }
    }
    for name in &rules.require {
        if claims.get(name).is_none_or(Value::is_null) {
            return Err(fail(
                DenyCode::ClaimMissing,
                format!("required claim {name} is missing"),
            ));
        }
    }
    Ok(exp)
}

fn check_audience(claims: &Map<String, Value>, accepted: &[String]) -> Result<(), ClaimError> {
    let ok = |a: &str| accepted.iter().any(|x| x == a);
    match claims.get("aud") {
        Some(Value::String(a)) if ok(a) => Ok(()),
        Some(Value::String(a)) => Err(fail(
            DenyCode::AudienceMismatch,
            format!("aud {a:?} is not accepted"),
        )),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                match item {
                    Value::String(a) => found |= ok(a),
                    other => {
                        return Err(fail(
                            DenyCode::ClaimInvalid,
                            format!("aud array holds {}, not only strings", json::kind(other)),
                        ))
                    }
                }
            }
            if found {
                Ok(())
            } else {
                Err(fail(
                    DenyCode::AudienceMismatch,
                    String::from("no aud value is accepted"),
                ))
            }
        }
        Some(other) => Err(fail(
            DenyCode::ClaimInvalid,
            format!(
                "aud must be a string or an array of strings, found {}",
                json::kind(other)
            ),
        )),
        None => Err(fail(
            DenyCode::AudienceMismatch,
            String::from("token has no aud"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn extreme_clocks_give_answers_not_overflows() {
        let rules = ClaimRules {
            issuer: "i".into(),
            audiences: vec!["a".into()],
            leeway_seconds: u64::MAX,
            max_lifetime_seconds: Some(1),
            require: vec![],
        };
        let claims = match serde_json::json!({"iss": "i", "aud": "a", "exp": 10, "iat": 0}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        for now in [i64::MIN, -1, 0, i64::MAX] {
            let _ = check(&claims, &rules, now);
        }
        assert_eq!(
            check(&claims, &rules, 0).unwrap_err().code,
            DenyCode::LifetimeExceeded
        );
    }
}
