//! Gateward's fuzz targets. Each takes arbitrary bytes and must not panic; each also checks a
//! property that matters to a security gate:
//!
//! - [`token`]: the gate allows only tokens an independent verifier accepts (differential, over
//!   the `Authorization` header a client controls).
//! - [`key_documents`]: hostile JWKS and discovery documents are refused within their limits.
//! - [`config`]: any configuration text is accepted or refused with errors, never a panic.
//! - [`request`]: a token in any configured place is found, and once stripped none is left for
//!   the upstream, however the query or cookies are written.
//!
//! libFuzzer drives them (`cargo xtask fuzz`, coverage-guided); `tests/regressions.rs` replays
//! the seeds and every input in `fuzz/regressions/<target>/` in `cargo test`.

// A target reports a finding by panicking (that is what libFuzzer catches), and indexes JSON
// values with `value["name"]`, which gives Null rather than panicking.
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::sync::OnceLock;

use base64::Engine as _;
use gateward_devkit::{claims, fixtures, jwks, mint, SigningKey};
use policy_engine::request::{cookies, percent_decode, strip_query_param};
use policy_engine::{discovery, Decision, Gate, KeySet, PublicKey, Request, Strip, TokenSource};
use serde_json::{json, Value};

/// A target: its name (the folder under `fuzz/regressions/`) and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("token", token),
    ("key_documents", key_documents),
    ("config", config),
    ("request", request),
];

/// The fixed "now" of every target (tokens are minted around it).
const NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";
const ISS: &str = "https://token.actions.githubusercontent.com";

struct Fixture {
    gate: Gate,
    rsa: rsa::RsaPublicKey,
    p256: p256::ecdsa::VerifyingKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let config = json!({
            "issuers": [{
                "name": "github", "preset": "github-actions", "audiences": [AUD],
                "algorithms": ["RS256", "ES256"],
                "jwks": jwks(&[("rsa", &fixtures::rsa_a()), ("ec", &fixtures::p256())]),
                "leeway_seconds": 30,
            }],
        });
        let gate = match Gate::from_json(&config.to_string()) {
            Ok(g) => g,
            Err(e) => unreachable(&format!("fixture config: {e}")),
        };
        let set = match KeySet::from_jwks(
            jwks(&[("rsa", &fixtures::rsa_a()), ("ec", &fixtures::p256())])
                .to_string()
                .as_bytes(),
        ) {
            Ok(s) => s,
            Err(e) => unreachable(&format!("fixture keys: {e}")),
        };
        let mut rsa = None;
        let mut p256 = None;
        for k in &set.keys {
            match (&k.key, k.kid.as_deref()) {
                (PublicKey::Rsa(key), Some("rsa")) => rsa = Some((**key).clone()),
                (PublicKey::P256(key), Some("ec")) => p256 = Some(*key),
                _ => {}
            }
        }
        match (rsa, p256) {
            (Some(rsa), Some(p256)) => Fixture { gate, rsa, p256 },
            _ => unreachable("fixture keys: RSA or P-256 key missing"),
        }
    })
}

fn unreachable(why: &str) -> ! {
    panic!("{why}")
}

/// Fails the target: the fuzzer records the input as a finding.
fn finding(what: &str, input: &[u8]) -> ! {
    panic!("{what}; input: {:?}", String::from_utf8_lossy(input))
}

/// `Authorization: <bytes>` through the whole gate. An allow must be a token that a verifier
/// written independently of the gate (the `rsa` and `p256` crates, strict base64url, the claim
/// rules spelt out here) accepts too.
pub fn token(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let headers = vec![("authorization".to_string(), value.to_string())];
    let req = deploy(&headers);
    if let Decision::Allow(_) = f.gate.check(&req, &|id, _| f.gate.static_keys(id), NOW) {
        let located = match f.gate.locate(&req) {
            Ok(l) => l.token,
            Err(_) => finding("allowed, but no token is located", data),
        };
        if let Err(why) = reference_accepts(f, located) {
            finding(
                &format!("allowed a token the reference refuses: {why}"),
                data,
            );
        }
    }
}

/// Whether the [`token`] target's gate allows `Authorization: <value>` (its seeds must be, so
/// that the differential check runs from the start).
pub fn token_allowed(value: &str) -> bool {
    let f = fixture();
    let headers = vec![("authorization".to_string(), value.to_string())];
    f.gate
        .check(&deploy(&headers), &|id, _| f.gate.static_keys(id), NOW)
        .is_allow()
}

fn deploy(headers: &[(String, String)]) -> Request<'_> {
    Request {
        method: "POST",
        path: "/deploy",
        host: "api.internal",
        headers,
    }
}

/// The reference verifier: exactly three segments of strict unpadded base64url, header
/// `{"alg": "RS256"|"ES256", "kid": ..}` with a matching key, a valid signature over the first
/// two segments as written, `iss`, `aud`, and `exp`/`nbf`/`iat` within the leeway.
fn reference_accepts(f: &Fixture, token: &str) -> Result<(), String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err(format!("{} segments", parts.len()));
    };
    let decode = |seg: &str| b64.decode(seg).map_err(|e| format!("base64: {e}"));
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(c)?).map_err(|e| e.to_string())?;
    let signature = decode(s)?;
    let signing_input = format!("{h}.{c}");
    match (header["alg"].as_str(), header["kid"].as_str()) {
        (Some("RS256"), Some("rsa")) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(signing_input.as_bytes());
            f.rsa
                .verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &digest,
                    &signature,
                )
                .map_err(|e| format!("RS256: {e}"))?;
        }
        (Some("ES256"), Some("ec")) => {
            use p256::ecdsa::signature::Verifier;
            let sig = p256::ecdsa::Signature::from_slice(&signature)
                .map_err(|e| format!("ES256 signature: {e}"))?;
            f.p256
                .verify(signing_input.as_bytes(), &sig)
                .map_err(|e| format!("ES256: {e}"))?;
        }
        other => return Err(format!("alg/kid {other:?}")),
    }
    if claims["iss"] != ISS {
        return Err("iss".into());
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == AUD,
        Value::Array(a) => a.iter().any(|x| x == AUD),
        _ => false,
    };
    if !aud_ok {
        return Err("aud".into());
    }
    let leeway = 30;
    let time = |name: &str| claims[name].as_f64();
    if !time("exp").is_some_and(|exp| exp + f64::from(leeway) > NOW as f64) {
        return Err("exp".into());
    }
    for name in ["nbf", "iat"] {
        if time(name).is_some_and(|t| t - f64::from(leeway) > NOW as f64) {
            return Err(name.into());
        }
    }
    Ok(())
}

/// A JWKS document, and a discovery document for the GitHub issuer. An accepted key set holds
/// between 1 and 64 keys, none of them a weak RSA key; an accepted discovery document names
/// the configured issuer and a fetchable `jwks_uri`.
pub fn key_documents(data: &[u8]) {
    if let Ok(set) = KeySet::from_jwks(data) {
        if set.keys.is_empty() || set.keys.len() > policy_engine::keys::MAX_KEYS {
            finding(
                &format!("key set of {} keys accepted", set.keys.len()),
                data,
            );
        }
        for k in &set.keys {
            if let PublicKey::Rsa(key) = &k.key {
                use rsa::traits::PublicKeyParts;
                let bits = key.n().bits();
                let e = key.e();
                if bits < policy_engine::keys::MIN_RSA_BITS
                    || e <= &rsa::BigUint::from(1u8)
                    || e % 2u8 == rsa::BigUint::from(0u8)
                {
                    finding(&format!("weak RSA key accepted ({bits} bits)"), data);
                }
            }
        }
    }
    if let Ok(uri) = discovery::jwks_uri(data, ISS) {
        let doc: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
        if doc["issuer"] != ISS || !discovery::is_fetchable_url(&uri) || doc["jwks_uri"] != uri {
            finding(
                "discovery document accepted with the wrong issuer or jwks_uri",
                data,
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKey::from_pem(text);
    }
}

/// A whole configuration: accepted or refused with errors.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = Gate::from_json(text) {
            if errors.0.is_empty() {
                finding("refused with no error", data);
            }
        }
    }
}

/// A request (`path`, then `name: value` header lines) to a gate that reads tokens from the
/// `authorization` header, the `access_token` query parameter and the `ci_token` cookie. When
/// exactly one token is found, the request as rewritten for the upstream holds none: neither
/// the parameter (however its name is encoded) nor the cookie.
pub fn request(data: &[u8]) {
    static GATE: OnceLock<Gate> = OnceLock::new();
    let gate = GATE.get_or_init(|| {
        let config = json!({
            "issuers": [{"name": "github", "preset": "github-actions", "audiences": [AUD],
                         "jwks": jwks(&[("rsa", &fixtures::rsa_a())])}],
            "token_sources": [{"header": "authorization"}, {"query": "access_token"},
                              {"cookie": "ci_token"}],
        });
        match Gate::from_json(&config.to_string()) {
            Ok(g) => g,
            Err(e) => unreachable(&format!("fixture config: {e}")),
        }
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let path = lines.next().unwrap_or("");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let req = Request {
        method: "GET",
        path,
        host: "api.internal",
        headers: &headers,
    };
    let Ok(located) = gate.locate(&req) else {
        return;
    };
    match gate.strip(&req, &located) {
        Some(Strip::Path(rewritten)) => {
            let query = rewritten.split_once('?').map_or("", |(_, q)| q);
            let left = query.split('&').any(|kv| {
                percent_decode(kv.split_once('=').map_or(kv, |(k, _)| k)) == "access_token"
            });
            if left || rewritten != strip_query_param(&rewritten, "access_token") {
                finding("an access_token parameter is left for the upstream", data);
            }
        }
        Some(Strip::Cookie(rest)) => {
            if rest
                .as_deref()
                .is_some_and(|r| cookies(r).any(|(k, _)| k == "ci_token"))
            {
                finding("a ci_token cookie is left for the upstream", data);
            }
        }
        Some(Strip::Header(name)) => {
            if !name.eq_ignore_ascii_case("authorization") {
                finding("strips a header that is not the token's", data);
            }
        }
        None => finding("a located token with nothing to strip", data),
    }
    let _ = TokenSource::bearer().find(&req);
}

/// Starting inputs for each target: real tokens, key documents, configs and requests, so the
/// fuzzer begins from valid structure.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let rsa = fixtures::rsa_a();
    let ec = fixtures::p256();
    let good = claims::github_actions(NOW - 10, AUD);
    let mint_with = |key: &SigningKey, kid: &str| mint(key, Some(kid), &good).unwrap_or_default();
    for t in [mint_with(&rsa, "rsa"), mint_with(&ec, "ec")] {
        out.push(("token", format!("Bearer {t}").into_bytes()));
        out.push((
            "request",
            format!("/deploy?x=1&access_token={t}\ncookie: a=b").into_bytes(),
        ));
        out.push((
            "request",
            format!("/deploy\ncookie: a=b; ci_token={t}; c=d").into_bytes(),
        ));
        out.push((
            "request",
            format!("/deploy\nauthorization: Bearer {t}").into_bytes(),
        ));
    }
    let set = jwks(&[
        ("rsa", &rsa),
        ("ec", &ec),
        ("ed", &fixtures::ed25519()),
        ("p384", &fixtures::p384()),
    ]);
    out.push(("key_documents", set.to_string().into_bytes()));
    out.push((
        "key_documents",
        json!({"issuer": ISS, "jwks_uri": "https://token.actions.githubusercontent.com/.well-known/jwks"})
            .to_string()
            .into_bytes(),
    ));
    out.push((
        "key_documents",
        gateward_devkit::public_pem(&rsa).into_bytes(),
    ));
    let config = include_str!("../../../examples/github-deploy.json");
    out.push(("config", config.as_bytes().to_vec()));
    out.push((
        "config",
        json!({
            "issuers": [{"name": "g", "preset": "gitlab", "audiences": ["a"],
                         "jwks_uri": "https://gitlab.com/oauth/discovery/keys"}],
            "policy": {"modules": [{"rego": "package gateward\nimport rego.v1\ndecision := true\n"}],
                       "max_evaluation_ms": 50},
            "replay": {"jti": true},
            "token_sources": [{"query": "t"}],
        })
        .to_string()
        .into_bytes(),
    ));
    out
}
