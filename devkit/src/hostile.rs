//! The malicious-token checklist as data: each [`Case`] is a gate configuration, an
//! `Authorization` value and what the gate must answer. The cases follow public attack catalogues:
//! the exploit modes and playbook of `jwt_tool` (<https://github.com/ticarpi/jwt_tool>), the
//! PortSwigger Web Security Academy JWT labs (<https://portswigger.net/web-security/jwt>), the
//! JWT-library CVEs listed in `docs/threat-model.md` §4.2, and RFC 7515 / RFC 7519 / RFC 8725
//! (JWT Best Current Practices) for the header and claim rules.
//!
//! The core (`policy-engine/tests/hostile.rs`), the Envoy filter in the wasmtime host
//! (`host-tests/tests/scenarios/hostile.rs`) and the OpenBao method
//! (`plugin/openbao-auth/tests/hostile.rs`) run the same cases, so a front end cannot drift
//! from the core.
// Test data built from fixed fixtures: a failure here is a broken fixture, not input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use policy_engine::{b64, Algorithm, DenyCode};
use serde_json::{json, Value};

use crate::{fixtures, jwks, public_pem, sign_hmac, sign_raw, SigningKey};

/// What the gate must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A denial with one of these codes.
    Deny(Vec<DenyCode>),
    /// An allow (edge cases inside the rules).
    Allow,
    /// Either, as long as it is a decision (a high-S ECDSA signature, say).
    Either,
}

/// One case of the checklist.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it tries.
    pub name: String,
    /// The gate configuration it runs against ([`config`] or a variant).
    pub config: Value,
    /// The `Authorization` header value.
    pub authorization: String,
    /// The answer.
    pub expect: Expect,
}

impl Case {
    fn allowed(config: &Value, name: &str, authorization: String) -> Case {
        Case {
            name: name.to_string(),
            config: config.clone(),
            authorization,
            expect: Expect::Allow,
        }
    }

    fn either(config: &Value, name: &str, authorization: String) -> Case {
        Case {
            expect: Expect::Either,
            ..Case::allowed(config, name, authorization)
        }
    }
}

impl Case {
    /// Checks a front end's answer: `code` is the deny code it gave (`None`: it allowed).
    pub fn judge(&self, code: Option<&str>) -> Result<(), String> {
        let ok = match (&self.expect, code) {
            (Expect::Either, _) | (Expect::Allow, None) => true,
            (Expect::Deny(codes), Some(c)) => codes.iter().any(|k| k.as_str() == c),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{}: got {}, want {:?}",
                self.name,
                code.unwrap_or("ALLOWED"),
                self.expect
            ))
        }
    }
}

fn deny(config: &Value, cases: Vec<(&str, String, &[DenyCode])>) -> Vec<Case> {
    cases
        .into_iter()
        .map(|(name, authorization, codes)| Case {
            name: name.to_string(),
            config: config.clone(),
            authorization,
            expect: Expect::Deny(codes.to_vec()),
        })
        .collect()
}

/// Every case, group by group.
pub fn all() -> Vec<Case> {
    [
        baseline_tokens_are_allowed(),
        alg_attacks(),
        signature_attacks(),
        key_confusion_is_impossible(),
        embedded_keys_are_never_used(),
        kid_tricks(),
        structure_and_encoding(),
        header_semantics(),
        claim_attacks(),
    ]
    .concat()
}

/// The time every case is judged at (Unix seconds).
pub const NOW: i64 = 1_760_000_000;
/// The configured audience.
pub const AUD: &str = "https://github.com/octo-org";
/// The GitHub Actions issuer the configuration trusts.
pub const ISS: &str = "https://token.actions.githubusercontent.com";

/// The gate configuration most cases run against: the GitHub preset with an RSA and a P-256
/// key inline, RS256 and ES256 allowed, no policy.
pub fn config(max_token_bytes: usize) -> Value {
    json!({
        "issuers": [{
            "name": "github", "preset": "github-actions", "audiences": [AUD],
            "algorithms": ["RS256", "ES256"],
            "jwks": jwks(&[("rsa", &fixtures::rsa_a()), ("ec", &fixtures::p256())]),
        }],
        "max_token_bytes": max_token_bytes,
    })
}

fn good_claims() -> Value {
    crate::claims::github_actions(NOW - 10, AUD)
}

fn header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "typ": "JWT", "kid": kid})
}

fn signed(h: &Value, c: &Value, key: &SigningKey, alg: Algorithm) -> String {
    sign_raw(h, c, key, alg).unwrap()
}

fn rsa_token() -> String {
    signed(
        &header("RS256", "rsa"),
        &good_claims(),
        &fixtures::rsa_a(),
        Algorithm::RS256,
    )
}

fn es_token() -> String {
    signed(
        &header("ES256", "ec"),
        &good_claims(),
        &fixtures::p256(),
        Algorithm::ES256,
    )
}

fn seg(s: &Value) -> String {
    b64::encode(s.to_string().as_bytes())
}

fn with_signature(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64::encode(sig))
}

fn signature(token: &str) -> Vec<u8> {
    b64::decode(token.rsplit_once('.').unwrap().1).unwrap()
}

fn bearer(t: impl AsRef<str>) -> String {
    format!("Bearer {}", t.as_ref())
}

use DenyCode::*;

/// The `baseline_tokens_are_allowed` cases.
pub fn baseline_tokens_are_allowed() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    out.push(Case::allowed(&g, "RS256 baseline", bearer(rsa_token())));
    out.push(Case::allowed(&g, "ES256 baseline", bearer(es_token())));
    out
}

/// The `alg_attacks` cases.
pub fn alg_attacks() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let t = rsa_token();
    let (_, payload_sig) = t.split_once('.').unwrap();
    let payload = payload_sig.split('.').next().unwrap();
    let mut cases = vec![];
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = seg(&json!({"alg": none, "typ": "JWT"}));
        cases.push((
            "alg none, empty signature",
            bearer(format!("{h}.{payload}.")),
            &[TokenMalformed, AlgNotAllowed][..],
        ));
        cases.push((
            "alg none, original signature",
            bearer(format!("{h}.{payload}.{}", t.rsplit_once('.').unwrap().1)),
            &[AlgNotAllowed][..],
        ));
    }
    let h = seg(&json!({"alg": "none"}));
    cases.push((
        "two-segment none",
        bearer(format!("{h}.{payload}")),
        &[TokenMalformed][..],
    ));
    for (name, hdr) in [
        ("missing alg", json!({"typ": "JWT", "kid": "rsa"})),
        ("alg array", json!({"alg": ["RS256"], "kid": "rsa"})),
        ("alg null", json!({"alg": null, "kid": "rsa"})),
        ("alg lowercase", json!({"alg": "rs256", "kid": "rsa"})),
    ] {
        let sig = t.rsplit_once('.').unwrap().1;
        cases.push((
            name,
            bearer(format!("{}.{payload}.{sig}", seg(&hdr))),
            &[AlgNotAllowed][..],
        ));
    }
    // Outside the issuer's allow-list (RS256, ES256), though the key could verify it.
    cases.push((
        "RS384 not allowed",
        bearer(signed(
            &header("RS384", "rsa"),
            &good_claims(),
            &fixtures::rsa_a(),
            Algorithm::RS384,
        )),
        &[AlgNotAllowed][..],
    ));
    let mut pinned = fixtures::rsa_a().public_jwk("rsa");
    pinned["alg"] = json!("RS256");
    let g_ps = json!({"issuers": [{"name": "g", "issuer": ISS, "audiences": [AUD], "algorithms": ["RS256", "PS256"], "jwks": {"keys": [pinned]}}]});
    out.extend(deny(&g, cases));
    out.extend(deny(
        &g_ps,
        vec![
            (
                "PS256 token, RS256-pinned key",
                bearer(signed(
                    &header("PS256", "rsa"),
                    &good_claims(),
                    &fixtures::rsa_a(),
                    Algorithm::PS256,
                )),
                &[KeyNotFound][..],
            ),
            (
                "RS256 bytes labelled PS256",
                bearer(with_signature(
                    &format!("{}.{}.x", seg(&header("PS256", "rsa")), seg(&good_claims())),
                    &signature(&rsa_token()),
                )),
                &[KeyNotFound, SignatureInvalid][..],
            ),
        ],
    ));
    out
}

/// The `signature_attacks` cases.
pub fn signature_attacks() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let t = rsa_token();
    let e = es_token();
    // P-256 group order n.
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r0s1 = vec![0u8; 64];
    r0s1[63] = 1;
    let der = {
        let sig = p256::ecdsa::Signature::from_slice(&signature(&e)).unwrap();
        sig.to_der().as_bytes().to_vec()
    };
    let mut long = signature(&e);
    long.push(0);
    let (input, _) = t.rsplit_once('.').unwrap();
    let truncated = &t[..t.len() - 4];
    out.extend(deny(
        &g,
        vec![
            (
                "stripped",
                bearer(format!("{input}.")),
                &[TokenMalformed][..],
            ),
            (
                "truncated",
                bearer(truncated),
                &[SignatureInvalid, TokenMalformed][..],
            ),
            (
                "DER ECDSA",
                bearer(with_signature(&e, &der)),
                &[SignatureInvalid][..],
            ),
            (
                "65-byte ES256",
                bearer(with_signature(&e, &long)),
                &[SignatureInvalid][..],
            ),
            (
                "r = s = 0",
                bearer(with_signature(&e, &[0u8; 64])),
                &[SignatureInvalid][..],
            ),
            (
                "r = s = n",
                bearer(with_signature(&e, &[n.clone(), n.clone()].concat())),
                &[SignatureInvalid][..],
            ),
            (
                "r = 0, s = 1",
                bearer(with_signature(&e, &r0s1)),
                &[SignatureInvalid][..],
            ),
            (
                "bit flip",
                bearer(with_signature(&t, &{
                    let mut s = signature(&t);
                    s[10] ^= 1;
                    s
                })),
                &[SignatureInvalid][..],
            ),
        ],
    ));
    // High-S: a valid ECDSA signature in its other form. Either answer is acceptable; it must
    // simply not panic and must be a decision.
    let sig = p256::ecdsa::Signature::from_slice(&signature(&e)).unwrap();
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
    out.push(Case::either(
        &g,
        "high-S ES256",
        bearer(with_signature(&e, &high.to_bytes())),
    ));
    // RSA signature malleability: `s + n` (same byte length) is a second spelling of a valid
    // signature; rsa 0.9's PSS verification would take it. The original is allowed, the twin
    // refused, for PSS and PKCS#1 v1.5 alike.
    let g_pss = pss_config();
    for (config, alg, kid) in [(&g_pss, "PS256", "pss"), (&g, "RS256", "rsa")] {
        let (original, twin) = rsa_twin(&fixtures::rsa_a(), kid, alg, &good_claims());
        out.push(Case::allowed(
            config,
            &format!("{alg} original of an s + n twin"),
            bearer(original),
        ));
        out.extend(deny(
            config,
            vec![("RSA s + n twin", bearer(twin), &[SignatureInvalid][..])],
        ));
    }
    out
}

/// [`config`] with a second copy of the RSA key, kid `pss`, pinned to PS256 (allowed too).
pub fn pss_config() -> Value {
    let mut g = config(8192);
    let mut pss = fixtures::rsa_a().public_jwk("pss");
    pss["alg"] = json!("PS256");
    g["issuers"][0]["algorithms"] = json!(["RS256", "ES256", "PS256"]);
    g["issuers"][0]["jwks"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(pss);
    g
}

/// `s + n` in `signature`'s byte length: an RSA signature plus the key's modulus, both
/// big-endian; None when the sum needs another byte.
pub fn plus_modulus(signature: &[u8], modulus: &[u8]) -> Option<Vec<u8>> {
    let pad = signature.len().checked_sub(modulus.len())?;
    let mut out = signature.to_vec();
    let mut carry = 0u16;
    for i in (0..out.len()).rev() {
        let m = if i >= pad { modulus[i - pad] } else { 0 };
        let sum = u16::from(out[i]) + u16::from(m) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    (carry == 0).then_some(out)
}

/// A token signed by the RSA `key` under `alg` (`RS256`, `PS256`, ...; header kid `kid`) and
/// its twin with signature `s + n` in the same byte length. Signatures are drawn until one
/// leaves room for `n` (PSS signatures are randomised; for PKCS#1 v1.5 the `jti` changes per
/// attempt).
pub fn rsa_twin(key: &SigningKey, kid: &str, alg: &str, claims: &Value) -> (String, String) {
    use rsa::traits::PublicKeyParts;
    let alg = Algorithm::from_name(alg).unwrap();
    let SigningKey::Rsa(k) = key else {
        panic!("rsa_twin needs an RSA key, not {}", key.kind());
    };
    let n = k.n().to_bytes_be();
    for attempt in 0..1000 {
        let mut c = claims.clone();
        if attempt > 0 {
            c["jti"] = json!(format!("twin-{attempt}"));
        }
        let original = signed(&header(alg.name(), kid), &c, key, alg);
        if let Some(twin) = plus_modulus(&signature(&original), &n) {
            let twin = with_signature(&original, &twin);
            return (original, twin);
        }
    }
    panic!("no {alg} signature left room for s + n in 1000 attempts");
}

/// The `key_confusion_is_impossible` cases.
pub fn key_confusion_is_impossible() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let key = fixtures::rsa_a();
    let pem = public_pem(&key);
    let jwk = key.public_jwk("rsa").to_string();
    let secrets: Vec<Vec<u8>> = vec![
        pem.clone().into_bytes(),
        pem.trim_end().as_bytes().to_vec(),
        jwk.into_bytes(),
        b64::decode(key.public_jwk("rsa")["n"].as_str().unwrap()).unwrap(),
        vec![],
    ];
    let mut cases = vec![];
    for secret in &secrets {
        for (alg, sha512) in [("HS256", false), ("HS512", true)] {
            for kid in ["rsa", ""] {
                let t = sign_hmac(&header(alg, kid), &good_claims(), secret, sha512);
                cases.push((
                    "HMAC keyed with public material",
                    bearer(t),
                    &[AlgNotAllowed][..],
                ));
            }
        }
    }
    out.extend(deny(&g, cases));
    out
}

/// The `embedded_keys_are_never_used` cases.
pub fn embedded_keys_are_never_used() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let attacker = fixtures::rsa_b();
    let ec_attacker = SigningKey::generate(crate::KeyKind::P256).unwrap();
    let mut cases = vec![];
    for (name, extra) in [
        ("jwk header", json!({"jwk": attacker.public_jwk("rsa")})),
        ("jku header", json!({"jku": "https://evil.example/jwks"})),
        ("x5u header", json!({"x5u": "https://evil.example/cert"})),
        ("x5c header", json!({"x5c": ["MIIB"]})),
    ] {
        let mut h = header("RS256", "rsa");
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        cases.push((
            name,
            bearer(signed(&h, &good_claims(), &attacker, Algorithm::RS256)),
            &[SignatureInvalid][..],
        ));
    }
    let mut h = header("ES256", "ec");
    h["jwk"] = ec_attacker.public_jwk("ec");
    cases.push((
        "EC jwk header",
        bearer(signed(&h, &good_claims(), &ec_attacker, Algorithm::ES256)),
        &[SignatureInvalid][..],
    ));
    out.extend(deny(&g, cases));
    out
}

/// The `kid_tricks` cases.
pub fn kid_tricks() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let attacker = fixtures::rsa_b();
    let mut cases = vec![];
    for kid in [
        "",
        "../../../../../../dev/null",
        "/dev/null",
        "|sleep 10",
        "x' UNION SELECT '1';--",
        "rsa\u{0}",
        "RSA",
        "ec",
    ] {
        cases.push((
            kid,
            bearer(signed(
                &header("RS256", kid),
                &good_claims(),
                &attacker,
                Algorithm::RS256,
            )),
            &[KeyNotFound, SignatureInvalid][..],
        ));
    }
    for kid in [
        json!(1),
        json!(null),
        json!({"a": 1}),
        json!("k".repeat(300)),
    ] {
        let mut h = header("RS256", "x");
        h["kid"] = kid;
        cases.push((
            "non-string kid",
            bearer(signed(
                &h,
                &good_claims(),
                &fixtures::rsa_a(),
                Algorithm::RS256,
            )),
            &[TokenMalformed][..],
        ));
    }
    cases.push((
        "HS256 empty kid, empty secret",
        bearer(sign_hmac(&header("HS256", ""), &good_claims(), b"", false)),
        &[AlgNotAllowed][..],
    ));
    // The right key, named by the other key's kid: the EC key cannot verify RS256.
    cases.push((
        "kid names the other key",
        bearer(signed(
            &header("RS256", "ec"),
            &good_claims(),
            &fixtures::rsa_a(),
            Algorithm::RS256,
        )),
        &[KeyNotFound][..],
    ));
    out.extend(deny(&g, cases));
    out
}

/// The `structure_and_encoding` cases.
pub fn structure_and_encoding() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let t = rsa_token();
    let parts: Vec<&str> = t.split('.').collect();
    let padded = format!("{}==.{}.{}", parts[0], parts[1], parts[2]);
    let std_alphabet = t.replace('-', "+").replace('_', "/");
    let mut noncanonical = t.clone();
    // The header's final character carries unused bits; bump it to a non-canonical neighbour.
    let last = parts[0].chars().last().unwrap();
    let bumped = if last == 'A' { 'B' } else { 'A' };
    noncanonical.replace_range(parts[0].len() - 1..parts[0].len(), &bumped.to_string());
    let json_serialization =
        json!({"payload": parts[1], "protected": parts[0], "signature": parts[2]}).to_string();
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    out.extend(deny(
        &g,
        vec![
            ("empty", bearer(""), &[TokenMalformed][..]),
            (
                "four segments",
                bearer(format!("{t}.x")),
                &[TokenMalformed][..],
            ),
            (
                "five segments (JWE)",
                bearer(format!("{t}.x.y")),
                &[TokenMalformed][..],
            ),
            (
                "JSON serialization",
                bearer(json_serialization),
                &[TokenMalformed][..],
            ),
            (
                "leading whitespace",
                format!("Bearer  {t}"),
                &[TokenMalformed][..],
            ),
            (
                "trailing whitespace",
                format!("Bearer {t} "),
                &[TokenMalformed][..],
            ),
            (
                "Bearer left in",
                bearer(format!("Bearer {t}")),
                &[TokenMalformed][..],
            ),
            ("padding", bearer(padded), &[TokenMalformed][..]),
            (
                "+/ alphabet",
                bearer(std_alphabet),
                &[TokenMalformed, SignatureInvalid][..],
            ),
            (
                "non-canonical final character",
                bearer(noncanonical),
                &[TokenMalformed, SignatureInvalid][..],
            ),
            (
                "100k dots",
                bearer(".".repeat(100_000)),
                &[TokenTooLarge][..],
            ),
            (
                "1 MiB header",
                bearer(format!("{}.{}.{}", "A".repeat(1 << 20), parts[1], parts[2])),
                &[TokenTooLarge][..],
            ),
        ],
    ));
    // With a generous size limit, the deep structures reach the parser and are still refused.
    let big = config(65_536);
    out.extend(deny(
        &big,
        vec![
            (
                "JSON nested 10k deep in the header",
                bearer(format!(
                    "{}.{}.{}",
                    b64::encode(nested.as_bytes()),
                    parts[1],
                    parts[2]
                )),
                &[TokenMalformed][..],
            ),
            (
                "100k dots under the limit",
                bearer(".".repeat(60_000)),
                &[TokenMalformed][..],
            ),
        ],
    ));
    out
}

/// The `header_semantics` cases.
pub fn header_semantics() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let key = fixtures::rsa_a();
    let mut cases = vec![];
    for (name, extra) in [
        ("unknown crit", json!({"crit": ["exp"], "exp": 1})),
        (
            "b64 false with crit",
            json!({"crit": ["b64"], "b64": false}),
        ),
        ("b64 false", json!({"b64": false})),
        ("cty JWT", json!({"cty": "JWT"})),
        ("cty cbor", json!({"cty": "cbor"})),
        ("typ at+jwt", json!({"typ": "at+jwt"})),
    ] {
        let mut h = header("RS256", "rsa");
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        cases.push((
            name,
            bearer(signed(&h, &good_claims(), &key, Algorithm::RS256)),
            &[TokenMalformed][..],
        ));
    }
    let raw = |h: &str, p: &[u8]| {
        let input = format!("{}.{}", b64::encode(h.as_bytes()), b64::encode(p));
        let sig = key.sign(Algorithm::RS256, input.as_bytes()).unwrap();
        bearer(format!("{input}.{}", b64::encode(&sig)))
    };
    let claims = good_claims().to_string();
    cases.push((
        "duplicate alg",
        raw(
            r#"{"alg":"RS256","alg":"RS256","kid":"rsa"}"#,
            claims.as_bytes(),
        ),
        &[TokenMalformed][..],
    ));
    cases.push((
        "header is an array",
        raw(r#"["RS256"]"#, claims.as_bytes()),
        &[TokenMalformed][..],
    ));
    cases.push((
        "payload not JSON",
        raw(r#"{"alg":"RS256","kid":"rsa"}"#, b"not json"),
        &[TokenMalformed][..],
    ));
    cases.push((
        "payload a JSON string",
        raw(r#"{"alg":"RS256","kid":"rsa"}"#, b"\"claims\""),
        &[TokenMalformed][..],
    ));
    cases.push((
        "payload invalid UTF-8",
        raw(r#"{"alg":"RS256","kid":"rsa"}"#, b"{\"iss\":\"\xff\"}"),
        &[TokenMalformed][..],
    ));
    let dup_claim = claims.replacen('{', "{\"repository\":\"evil-org/app\",", 1);
    cases.push((
        "duplicate claim",
        raw(r#"{"alg":"RS256","kid":"rsa"}"#, dup_claim.as_bytes()),
        &[TokenMalformed][..],
    ));
    out.extend(deny(&g, cases));
    out
}

/// The `claim_attacks` cases.
pub fn claim_attacks() -> Vec<Case> {
    let mut out = Vec::new();
    let g = config(8192);
    let key = fixtures::rsa_a();
    let token = |edit: &dyn Fn(&mut Value)| {
        let mut c = good_claims();
        edit(&mut c);
        bearer(signed(&header("RS256", "rsa"), &c, &key, Algorithm::RS256))
    };
    let remove = |name: &'static str| {
        move |c: &mut Value| {
            c.as_object_mut().unwrap().remove(name);
        }
    };
    let set = |name: &'static str, v: Value| move |c: &mut Value| c[name] = v.clone();
    out.extend(deny(
        &g,
        vec![
            (
                "expired",
                token(&set("exp", json!(NOW - 61))),
                &[Expired][..],
            ),
            ("exp missing", token(&remove("exp")), &[ClaimMissing][..]),
            (
                "nbf future",
                token(&set("nbf", json!(NOW + 61))),
                &[NotYetValid][..],
            ),
            (
                "iat future",
                token(&set("iat", json!(NOW + 61))),
                &[NotYetValid][..],
            ),
            (
                "exp string",
                token(&set("exp", json!("2000000000"))),
                &[ClaimInvalid][..],
            ),
            (
                "nbf string",
                token(&set("nbf", json!("0"))),
                &[ClaimInvalid][..],
            ),
            (
                "exp negative",
                token(&set("exp", json!(-1))),
                &[ClaimInvalid][..],
            ),
            (
                "exp 2^70",
                raw_exp("1180591620717411303424"),
                &[ClaimInvalid][..],
            ),
            ("exp 1e400", raw_exp("1e400"), &[TokenMalformed][..]),
            (
                "iss lookalike",
                token(&set(
                    "iss",
                    json!("https://token.actions.githubusercontent.com.evil.example"),
                )),
                &[IssuerUntrusted][..],
            ),
            (
                "iss trailing slash",
                token(&set("iss", json!(format!("{ISS}/")))),
                &[IssuerUntrusted][..],
            ),
            ("iss missing", token(&remove("iss")), &[IssuerUntrusted][..]),
            (
                "aud wrong",
                token(&set("aud", json!("https://github.com/evil"))),
                &[AudienceMismatch][..],
            ),
            (
                "aud array without us",
                token(&set("aud", json!(["a", "b"]))),
                &[AudienceMismatch][..],
            ),
            (
                "aud []",
                token(&set("aud", json!([]))),
                &[AudienceMismatch][..],
            ),
            (
                "aud [\"\"]",
                token(&set("aud", json!([""]))),
                &[AudienceMismatch][..],
            ),
            (
                "aud missing",
                token(&remove("aud")),
                &[AudienceMismatch][..],
            ),
            (
                "aud number",
                token(&set("aud", json!(7))),
                &[ClaimInvalid][..],
            ),
            (
                "10k extra claims",
                token(&|c| {
                    for i in 0..10_000 {
                        c[format!("c{i}")] = json!(i);
                    }
                }),
                &[TokenTooLarge][..],
            ),
        ],
    ));
    // exp as a fractional NumericDate is a number: accepted when in range.
    out.push(Case::allowed(
        &g,
        "fractional exp in range",
        token(&set("exp", json!((NOW + 100) as f64 + 0.5))),
    ));
    // Exactly at the leeway edge: exp + leeway == now is expired.
    out.extend(deny(
        &g,
        vec![(
            "exp + leeway == now",
            token(&set("exp", json!(NOW - 60))),
            &[Expired][..],
        )],
    ));
    out.push(Case::allowed(
        &g,
        "exp + leeway == now + 1",
        token(&set("exp", json!(NOW - 59))),
    ));
    out
}

/// A validly signed token whose `exp` is written as `exp` literally (numbers serde_json cannot build).
fn raw_exp(exp: &str) -> String {
    let key = fixtures::rsa_a();
    let mut c = good_claims();
    c["exp"] = json!("EXP");
    let claims = c.to_string().replace("\"EXP\"", exp);
    let input = format!(
        "{}.{}",
        seg(&header("RS256", "rsa")),
        b64::encode(claims.as_bytes())
    );
    let sig = key.sign(Algorithm::RS256, input.as_bytes()).unwrap();
    bearer(format!("{input}.{}", b64::encode(&sig)))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
