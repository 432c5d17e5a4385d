//! Third-party test vectors fed through Gateward's own verification path (`keys`, `jws`,
//! `verify`), never through the crypto crates directly.
//!
//! Sources (copied into `testdata/` at the workspace root; `testdata/MANIFEST.md` names each
//! file's upstream, version, license and SHA-256, and a missing file FAILS these tests):
//! - Project Wycheproof, C2SP/wycheproof@dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166,
//!   `testvectors_v1/` (Apache-2.0): RSASSA-PKCS1-v1_5, RSASSA-PSS, ECDSA (P1363), Ed25519, and
//!   the JWS / JWK files.
//! - RFC 7520 (JOSE Cookbook), ietf-jose/cookbook@13692b68bfc18b99557a5b1ed311fd5077bfff04
//!   (Unlicense), including the RFC 8037 Ed25519 example.
//! - RFC 7515 Appendix A and RFC 8037 Appendix A.4, transcribed as `rfc-jose/*.json`.
//! - `extra_nonjws_params/`: Wycheproof `testvectors_v1/` files whose parameters RFC 7518 does
//!   not allow for JWS.
//!
//! Two paths are exercised for compact JWS vectors:
//! - the JWT path: `jws::parse` (which demands a JSON-object payload, as a JWT gate must),
//!   `KeySet::from_jwks`, `KeySet::candidates`, `verify_signature`;
//! - the crypto path: the same strict base64url / header JSON / `alg` allow-list / key selection /
//!   `verify_signature`, but without the "payload is a JSON object" and header-rule checks, so that
//!   the cryptography is still tested on vectors whose payload is not JWT claims (`foo`, ...).
//!
//! Run with `cargo test -p policy-engine --test vectors -- --nocapture` to see the summaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use policy_engine::alg::{Algorithm, KeyFamily};
use policy_engine::jws::{self, JwsError};
use policy_engine::keys::{Key, KeyError, KeySet, PublicKey};
use policy_engine::verify::verify_signature;
use policy_engine::{b64, json};
use serde_json::{json, Map, Value};

/// The repository's third-party test data (`<workspace>/testdata`).
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata");

/// The token size limit used throughout (the brief's `1 << 20`).
const MAX_TOKEN: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn vector_path(rel: &str) -> PathBuf {
    PathBuf::from(VECTORS).join(rel)
}

/// Reads a vector file; a missing file is a test FAILURE with a clear message.
fn load(rel: &str) -> Value {
    let path = vector_path(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read test vector file {} ({e}): the file is listed in testdata/MANIFEST.md \
             and must be in the repository; these tests fail rather than pass without it.",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex string {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex {s:?}")))
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("vector field {key:?} missing or not a string in {v}"))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("vector field {key:?} missing or not an array"))
}

fn tc_id(t: &Value) -> u64 {
    t["tcId"].as_u64().expect("tcId")
}

fn object(v: &Value) -> &Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, found {v}"))
}

/// A JWKS document (`{"keys": [...]}`) from either one JWK or a whole JWKS.
fn jwks_bytes(jwk_or_set: &Value) -> Vec<u8> {
    if jwk_or_set.get("keys").is_some() {
        serde_json::to_vec(jwk_or_set).unwrap()
    } else {
        serde_json::to_vec(&json!({ "keys": [jwk_or_set] })).unwrap()
    }
}

/// The public part of a JWK that carries private members (the cookbook keys do): what a JWKS
/// endpoint would publish.
fn public_part(jwk: &Value) -> Value {
    let mut m = object(jwk).clone();
    for f in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        m.remove(f);
    }
    Value::Object(m)
}

/// `[(reason, tcIds)]` → `{tcId: reason}`.
fn table(rows: &[(&str, &[u64])]) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for (reason, ids) in rows {
        for id in *ids {
            assert!(
                out.insert(*id, (*reason).to_string()).is_none(),
                "tcId {id} listed twice"
            );
        }
    }
    out
}

/// Prints both maps' differences and panics when they differ.
fn assert_same_exceptions(
    what: &str,
    actual: &BTreeMap<u64, String>,
    expected: &BTreeMap<u64, String>,
) {
    if actual == expected {
        return;
    }
    let mut msg = format!("{what}: the exceptions changed.\n");
    let ids: BTreeSet<u64> = actual.keys().chain(expected.keys()).copied().collect();
    for id in ids {
        let (a, e) = (actual.get(&id), expected.get(&id));
        if a != e {
            msg.push_str(&format!("  tcId {id}: expected {e:?}, got {a:?}\n"));
        }
    }
    panic!("{msg}");
}

// ---------------------------------------------------------------------------------------------
// 1. Wycheproof primitive files (`*_verify` schemas): PublicKey construction + verify_signature
// ---------------------------------------------------------------------------------------------

/// Test cases the project answers "wrongly" on purpose, as `(file, tcId, reason)`. Every entry
/// must be justified; the harness asserts the exact set, so any change is noticed.
///
/// Empty: every `valid` case is accepted and every `invalid` case is rejected in every supported
/// file.
///
/// Key-import policy notes (keys.rs: RSA modulus 2048..=8192 bits, public exponent odd and ≥ 3):
/// - The `SmallPublicKey` groups with e = 3 (rsa_signature_2048_sha256 groups 1 and 2,
///   rsa_signature_2048_sha512 group 1, rsa_signature_3072_sha256 group 1,
///   rsa_signature_3072_sha512 group 1; one `valid` case each) are IMPORTED: e = 3 is odd and
///   ≥ 3, RFC 7518 does not forbid it, and with a strict encode-and-compare PKCS#1 v1.5 verifier
///   (jwt-compact/rsa) the Bleichenbacher'06 low-exponent forgery does not apply (Wycheproof's
///   `invalid` cases in the same files check exactly that). So their `valid` cases must pass.
/// - rsa_signature_8192_sha256 (8192 bits) is within `MAX_RSA_BITS` and imported.
///
/// The harness asserts the import decision per group against this policy.
const PRIMITIVE_EXCEPTIONS: &[(&str, u64, &str)] = &[];

/// The Wycheproof `SmallPublicKey` (e = 3) groups, per file: imported under the project's policy
/// (see above), and their `valid` cases accepted.
const SMALL_EXPONENT_GROUPS: &[(&str, usize)] = &[
    ("rsa_signature_2048_sha256_test.json", 2),
    ("rsa_signature_2048_sha512_test.json", 1),
    ("rsa_signature_3072_sha256_test.json", 1),
    ("rsa_signature_3072_sha512_test.json", 1),
];

#[derive(Default)]
struct Tally {
    cases: usize,
    valid: usize,
    valid_accepted: usize,
    invalid: usize,
    invalid_rejected: usize,
    acceptable: usize,
    acceptable_accepted: usize,
    groups: usize,
    groups_refused: usize,
    /// `tcId → description` of answers that contradict the vector.
    wrong: BTreeMap<u64, String>,
}

impl Tally {
    fn record(&mut self, t: &Value, accepted: bool, why_rejected: &str) {
        self.cases += 1;
        let result = text(t, "result");
        let ok = match result {
            "valid" => {
                self.valid += 1;
                self.valid_accepted += usize::from(accepted);
                accepted
            }
            "invalid" => {
                self.invalid += 1;
                self.invalid_rejected += usize::from(!accepted);
                !accepted
            }
            "acceptable" => {
                self.acceptable += 1;
                self.acceptable_accepted += usize::from(accepted);
                true
            }
            other => panic!("unknown result {other:?}"),
        };
        if !ok {
            let flags = t.get("flags").map(Value::to_string).unwrap_or_default();
            let verdict = if accepted {
                "accepted".to_string()
            } else {
                format!("rejected ({why_rejected})")
            };
            self.wrong.insert(
                tc_id(t),
                format!(
                    "{result} case {verdict}; comment {:?}, flags {flags}",
                    text(t, "comment")
                ),
            );
        }
    }

    fn summary(&self, name: &str) -> String {
        format!(
            "{name}: {} cases, valid accepted {}/{}, invalid rejected {}/{}, acceptable {} \
             (accepted {}); {} key groups, {} refused at import",
            self.cases,
            self.valid_accepted,
            self.valid,
            self.invalid_rejected,
            self.invalid,
            self.acceptable,
            self.acceptable_accepted,
            self.groups,
            self.groups_refused,
        )
    }
}

/// The group's key from its non-JWK fields: `publicKey{modulus,publicExponent}`,
/// `publicKey{uncompressed}` (or `wx`/`wy`) or `publicKey{pk}`.
fn key_from_fields(family: KeyFamily, group: &Value) -> Result<PublicKey, KeyError> {
    let pk = &group["publicKey"];
    match family {
        KeyFamily::Rsa => {
            PublicKey::rsa(&hex(text(pk, "modulus")), &hex(text(pk, "publicExponent")))
        }
        KeyFamily::P256 | KeyFamily::P384 => {
            let size = if family == KeyFamily::P256 { 32 } else { 48 };
            if let Some(u) = pk.get("uncompressed").and_then(Value::as_str) {
                let u = hex(u);
                assert_eq!(u.len(), 1 + 2 * size, "uncompressed point length");
                assert_eq!(u[0], 0x04, "uncompressed point prefix");
                PublicKey::ec(family, &u[1..=size], &u[1 + size..])
            } else {
                // wx / wy are ASN.1-style integers: strip or left-pad to the field size.
                let fixed = |h: &str| {
                    let mut b = hex(h);
                    while b.len() > size && b[0] == 0 {
                        b.remove(0);
                    }
                    let mut out = vec![0u8; size.saturating_sub(b.len())];
                    out.extend_from_slice(&b);
                    out
                };
                PublicKey::ec(family, &fixed(text(pk, "wx")), &fixed(text(pk, "wy")))
            }
        }
        KeyFamily::Ed25519 => PublicKey::ed25519(&hex(text(pk, "pk"))),
    }
}

/// What keys.rs's documented policy says about an RSA key: import iff 2048 ≤ bits ≤ 8192 and the
/// exponent is odd and ≥ 3.
fn rsa_policy_allows(group: &Value) -> bool {
    let pk = &group["publicKey"];
    let n = hex(text(pk, "modulus"));
    let e = hex(text(pk, "publicExponent"));
    let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
    let bits = n.first().map_or(0, |top| {
        (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
    });
    let e: Vec<u8> = e.into_iter().skip_while(|b| *b == 0).collect();
    let e_odd = e.last().is_some_and(|b| b & 1 == 1);
    let e_ge_3 = e.len() > 1 || e.first().is_some_and(|b| *b >= 3);
    (2048..=8192).contains(&bits) && e_odd && e_ge_3
}

/// Builds the group's key the way the project would: from the JWK (`publicKeyJwk` / `keyJwk`)
/// through `Key::from_jwk`, falling back to the `publicKey` fields. Cross-checks that the JWK,
/// the PEM and the raw fields give the same key (or are all refused).
fn group_key(rel: &str, gi: usize, alg: Algorithm, group: &Value) -> Result<PublicKey, String> {
    let family = alg.key_family();
    let from_fields = key_from_fields(family, group);
    let from_pem = group
        .get("publicKeyPem")
        .and_then(Value::as_str)
        .map(PublicKey::from_pem);
    let jwk = group.get("publicKeyJwk").or_else(|| group.get("keyJwk"));
    let chosen = match jwk {
        Some(jwk) => match Key::from_jwk(object(jwk)) {
            Ok(key) => {
                assert!(
                    key.fits(alg),
                    "{rel} group {gi}: JWK key does not fit {alg}: {jwk}"
                );
                Ok(key.key)
            }
            Err(e) => Err(e),
        },
        // tcId 253-262 of the ECDSA P1363 files have no JWK (their groups lack `publicKeyJwk`).
        None => from_fields.clone(),
    };
    assert_eq!(
        chosen.as_ref().ok(),
        from_fields.as_ref().ok(),
        "{rel} group {gi}: the JWK and the publicKey fields give different keys ({chosen:?} vs {from_fields:?})"
    );
    if let Some(pem) = &from_pem {
        // One key imports the same from PEM as from its JWK (up to 8192-bit RSA included).
        assert_eq!(
            chosen.as_ref().ok(),
            pem.as_ref().ok(),
            "{rel} group {gi}: the JWK and the PEM give different keys ({pem:?})"
        );
    }
    if family == KeyFamily::Rsa {
        assert_eq!(
            chosen.is_ok(),
            rsa_policy_allows(group),
            "{rel} group {gi}: RSA import decision contradicts the documented policy: {chosen:?}"
        );
    }
    chosen.map_err(|e| format!("key refused: {e}"))
}

fn run_signature_file(rel: &str, alg: Algorithm) -> Tally {
    let doc = load(rel);
    let mut tally = Tally::default();
    let mut small_e_imported = 0usize;
    for (gi, group) in list(&doc, "testGroups").iter().enumerate() {
        tally.groups += 1;
        // Sanity: the PSS files this test uses pin sLen to the hash length with MGF1 of the same
        // hash, as RFC 7518 §3.5 requires.
        if let Some(slen) = group.get("sLen").and_then(Value::as_u64) {
            let hash_len = match alg {
                Algorithm::PS256 => 32,
                Algorithm::PS384 => 48,
                Algorithm::PS512 => 64,
                _ => panic!("{rel}: sLen in a non-PSS file"),
            };
            assert_eq!(slen, hash_len, "{rel}: not a JWS-conformant PSS file");
            assert_eq!(group["sha"], group["mgfSha"], "{rel}: MGF hash differs");
        }
        let key = group_key(rel, gi, alg, group);
        if key.is_err() {
            tally.groups_refused += 1;
        }
        let small_e = alg.key_family() == KeyFamily::Rsa
            && hex(text(&group["publicKey"], "publicExponent"))
                .iter()
                .skip_while(|b| **b == 0)
                .eq([3u8].iter());
        if small_e {
            assert!(
                key.is_ok(),
                "{rel} group {gi}: an e = 3 key was refused: {key:?}"
            );
            small_e_imported += 1;
        }
        for t in list(group, "tests") {
            let msg = hex(text(t, "msg"));
            let sig = hex(text(t, "sig"));
            match &key {
                Ok(key) => tally.record(t, verify_signature(alg, key, &msg, &sig), "bad signature"),
                Err(why) => tally.record(t, false, why),
            }
        }
    }
    let declared = doc["numberOfTests"].as_u64().unwrap_or(0);
    assert_eq!(
        tally.cases as u64, declared,
        "{rel}: numberOfTests disagrees with the cases read"
    );
    assert!(tally.cases > 0, "{rel}: no test cases read");
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let e3_note = if small_e_imported > 0 {
        format!("; e=3 groups imported {small_e_imported}")
    } else {
        String::new()
    };
    println!("{}{e3_note}", tally.summary(file));
    let expected_e3 = SMALL_EXPONENT_GROUPS
        .iter()
        .find(|(f, _)| *f == file)
        .map_or(0, |(_, n)| *n);
    assert_eq!(
        small_e_imported, expected_e3,
        "{file}: e = 3 groups imported"
    );

    let expected: BTreeSet<u64> = PRIMITIVE_EXCEPTIONS
        .iter()
        .filter(|(f, _, _)| *f == file)
        .map(|(_, id, _)| *id)
        .collect();
    let actual: BTreeSet<u64> = tally.wrong.keys().copied().collect();
    if actual != expected {
        let mut msg =
            format!("{file}: wrong answers differ from the listed exceptions {expected:?}:\n");
        for (id, what) in &tally.wrong {
            msg.push_str(&format!("  tcId {id}: {what}\n"));
        }
        for id in expected.difference(&actual) {
            msg.push_str(&format!(
                "  tcId {id}: listed as an exception but now answered as the vector says\n"
            ));
        }
        panic!("{msg}");
    }
    tally
}

macro_rules! wycheproof_signature_tests {
    ($($name:ident => $file:literal, $alg:ident;)*) => {
        $(
            #[test]
            fn $name() {
                run_signature_file(concat!("wycheproof/testvectors_v1/", $file), Algorithm::$alg);
            }
        )*
    };
}

wycheproof_signature_tests! {
    wycheproof_rs256_2048 => "rsa_signature_2048_sha256_test.json", RS256;
    wycheproof_rs256_3072 => "rsa_signature_3072_sha256_test.json", RS256;
    wycheproof_rs256_4096 => "rsa_signature_4096_sha256_test.json", RS256;
    wycheproof_rs256_8192 => "rsa_signature_8192_sha256_test.json", RS256;
    wycheproof_rs384_2048 => "rsa_signature_2048_sha384_test.json", RS384;
    wycheproof_rs384_3072 => "rsa_signature_3072_sha384_test.json", RS384;
    wycheproof_rs384_4096 => "rsa_signature_4096_sha384_test.json", RS384;
    wycheproof_rs512_2048 => "rsa_signature_2048_sha512_test.json", RS512;
    wycheproof_rs512_3072 => "rsa_signature_3072_sha512_test.json", RS512;
    wycheproof_rs512_4096 => "rsa_signature_4096_sha512_test.json", RS512;
    wycheproof_ps256_2048 => "rsa_pss_2048_sha256_mgf1_32_test.json", PS256;
    wycheproof_ps256_3072 => "rsa_pss_3072_sha256_mgf1_32_test.json", PS256;
    wycheproof_ps384_2048 => "rsa_pss_2048_sha384_mgf1_48_test.json", PS384;
    wycheproof_ps384_4096 => "rsa_pss_4096_sha384_mgf1_48_test.json", PS384;
    wycheproof_ps512_4096 => "rsa_pss_4096_sha512_mgf1_64_test.json", PS512;
    wycheproof_es256_p1363 => "ecdsa_secp256r1_sha256_p1363_test.json", ES256;
    wycheproof_es384_p1363 => "ecdsa_secp384r1_sha384_p1363_test.json", ES384;
    wycheproof_ed25519 => "ed25519_test.json", EdDSA;
}

/// A wrong signature length must be refused for every algorithm and key family, including the
/// ones whose signature parser would panic on it (see verify.rs).
#[test]
fn wycheproof_wrong_algorithm_or_family_is_refused() {
    let doc = load("wycheproof/testvectors_v1/ecdsa_secp256r1_sha256_p1363_test.json");
    let group = &list(&doc, "testGroups")[0];
    let key = group_key("es256", 0, Algorithm::ES256, group).unwrap();
    let t = list(group, "tests")
        .iter()
        .find(|t| text(t, "result") == "valid")
        .unwrap();
    let (msg, sig) = (hex(text(t, "msg")), hex(text(t, "sig")));
    assert!(verify_signature(Algorithm::ES256, &key, &msg, &sig));
    for alg in Algorithm::ALL
        .into_iter()
        .filter(|a| *a != Algorithm::ES256)
    {
        assert!(
            !verify_signature(alg, &key, &msg, &sig),
            "{alg} accepted an ES256 signature"
        );
    }
    for len in [0, 1, 63, 65, 96, 128, 256] {
        let sig = vec![1u8; len];
        for alg in Algorithm::ALL {
            assert!(
                !verify_signature(alg, &key, &msg, &sig),
                "{alg} accepted a {len}-byte signature"
            );
        }
    }
}

/// Curves the project does not support (P-521 = ES512, secp256k1 = ES256K, Ed448): every group's
/// key is refused at import, in JWK and in PEM form, so every case is rejected.
#[test]
fn wycheproof_unsupported_curves_are_refused_at_key_import() {
    for file in [
        "ecdsa_secp521r1_sha512_p1363_test.json",
        "ecdsa_secp256k1_sha256_p1363_test.json",
        "ed448_test.json",
    ] {
        let doc = load(&format!("wycheproof/testvectors_v1/{file}"));
        let mut tally = Tally::default();
        for group in list(&doc, "testGroups") {
            tally.groups += 1;
            if let Some(jwk) = group.get("publicKeyJwk") {
                let r = Key::from_jwk(object(jwk));
                assert!(r.is_err(), "{file}: unsupported-curve JWK imported: {jwk}");
            }
            let pem = PublicKey::from_pem(text(group, "publicKeyPem"));
            assert!(
                pem.is_err(),
                "{file}: unsupported-curve PEM imported: {pem:?}"
            );
            tally.groups_refused += 1;
            for t in list(group, "tests") {
                tally.record(t, false, "unsupported curve");
            }
        }
        for name in ["ES512", "ES256K", "Ed448", "EdDSA448"] {
            assert_eq!(
                Algorithm::from_name(name),
                None,
                "{name} must not be a supported alg"
            );
        }
        println!(
            "{} [unsupported: every case rejected by design]",
            tally.summary(file)
        );
        assert_eq!(tally.valid_accepted + tally.acceptable_accepted, 0);
        assert_eq!(tally.invalid_rejected, tally.invalid);
    }
}

/// Parameter sets RFC 7518 does not allow (`extra_nonjws_params/`): PSS whose salt length is not
/// the hash length or whose MGF hash differs, and DER-encoded ECDSA. Their `valid` cases must be
/// REJECTED by a JWS verifier; cases whose parameters happen to be JWS-conformant (e.g. the misc
/// sweep's SHA-256/MGF1-SHA-256/sLen 32 group) must be answered as the vector says.
#[test]
fn wycheproof_non_jws_parameters_are_rejected() {
    for file in [
        "rsa_pss_2048_sha256_mgf1_0_test.json",
        "rsa_pss_4096_sha512_mgf1_32_test.json",
        "rsa_pss_2048_sha256_mgf1_32_params_test.json",
        "rsa_pss_misc_test.json",
    ] {
        let doc = load(&format!("wycheproof/extra_nonjws_params/{file}"));
        let (mut cases, mut conformant, mut conformant_ok, mut other, mut other_rejected) =
            (0, 0, 0, 0, 0);
        let mut resigned_accepted = Vec::new();
        for (gi, group) in list(&doc, "testGroups").iter().enumerate() {
            let key = key_from_fields(KeyFamily::Rsa, group)
                .unwrap_or_else(|e| panic!("{file} group {gi}: key refused: {e}"));
            let (sha, mgf_sha) = (text(group, "sha"), text(group, "mgfSha"));
            let slen = group["sLen"].as_u64().unwrap();
            let jws_alg = match (sha, slen) {
                ("SHA-256", 32) if mgf_sha == sha => Some(Algorithm::PS256),
                ("SHA-384", 48) if mgf_sha == sha => Some(Algorithm::PS384),
                ("SHA-512", 64) if mgf_sha == sha => Some(Algorithm::PS512),
                _ => None,
            };
            // The PS algorithm with the group's message hash is the one that could be fooled;
            // a group hashing with SHA-1/SHA-224 is tried under all three. (Trying every
            // algorithm on every case would triple the RSA work in debug builds.)
            let algs: Vec<Algorithm> = match sha {
                "SHA-256" => vec![Algorithm::PS256],
                "SHA-384" => vec![Algorithm::PS384],
                "SHA-512" => vec![Algorithm::PS512],
                _ => vec![Algorithm::PS256, Algorithm::PS384, Algorithm::PS512],
            };
            for t in list(group, "tests") {
                cases += 1;
                let (msg, sig) = (hex(text(t, "msg")), hex(text(t, "sig")));
                for &alg in &algs {
                    let accepted = verify_signature(alg, &key, &msg, &sig);
                    if Some(alg) == jws_alg {
                        conformant += 1;
                        let want = text(t, "result") == "valid";
                        assert_eq!(
                            accepted,
                            want,
                            "{file} tcId {}: conformant {alg} case",
                            tc_id(t)
                        );
                        conformant_ok += 1;
                    } else if text(t, "result") == "valid" {
                        // A signature valid under the file's non-JWS parameters must not verify
                        // under any JWS PSS algorithm.
                        other += 1;
                        assert!(
                            !accepted,
                            "{file} tcId {} ({sha}, MGF1-{mgf_sha}, sLen {slen}) accepted as {alg}",
                            tc_id(t)
                        );
                        other_rejected += 1;
                    } else if accepted {
                        // An `invalid` label refers to the file's own parameters. The one kind of
                        // such case a JWS verifier may accept is a signature re-made with the JWS
                        // salt length ("s_len changed to 32" under SHA-256 is a genuine PS256
                        // signature); anything else is a wrong answer.
                        let hash_len = match alg {
                            Algorithm::PS256 => 32,
                            Algorithm::PS384 => 48,
                            _ => 64,
                        };
                        assert_eq!(
                            text(t, "comment"),
                            format!("s_len changed to {hash_len}"),
                            "{file} tcId {} accepted as {alg}",
                            tc_id(t)
                        );
                        assert_eq!(
                            format!("SHA-{}", hash_len * 8),
                            sha,
                            "{file} tcId {}",
                            tc_id(t)
                        );
                        assert_eq!(mgf_sha, sha, "{file} tcId {}", tc_id(t));
                        resigned_accepted.push(tc_id(t));
                    }
                }
            }
        }
        println!(
            "{file} [non-JWS params]: {cases} cases; valid-under-non-JWS-params (case, alg) pairs \
             rejected {other_rejected}/{other}; JWS-conformant pairs answered as labelled \
             {conformant_ok}/{conformant}; `invalid` cases that are genuine JWS PSS signatures \
             (accepted, correctly): {resigned_accepted:?}"
        );
    }

    // DER-encoded ECDSA: JWS uses the fixed-width r || s form, so no DER signature may verify.
    let file = "ecdsa_secp256r1_sha256_test.json";
    let doc = load(&format!("wycheproof/extra_nonjws_params/{file}"));
    let (mut cases, mut rejected) = (0, 0);
    for group in list(&doc, "testGroups") {
        let key = key_from_fields(KeyFamily::P256, group).unwrap();
        for t in list(group, "tests") {
            cases += 1;
            let accepted = verify_signature(
                Algorithm::ES256,
                &key,
                &hex(text(t, "msg")),
                &hex(text(t, "sig")),
            );
            assert!(
                !accepted,
                "{file} tcId {}: DER signature accepted as ES256",
                tc_id(t)
            );
            rejected += 1;
        }
    }
    println!(
        "{file} [DER ECDSA, non-JWS]: {cases} cases, all rejected as ES256: {rejected}/{cases}"
    );
}

// ---------------------------------------------------------------------------------------------
// Compact JWS paths
// ---------------------------------------------------------------------------------------------

/// The `alg` a token's header names, for labelling refusals (best effort).
fn header_alg_name(token: &str) -> String {
    token
        .split('.')
        .next()
        .and_then(|h| b64::decode(h).ok())
        .and_then(|h| json::parse_object(&h).ok())
        .and_then(|h| {
            h.get("alg")
                .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
        })
        .unwrap_or_else(|| "?".to_string())
}

fn label_jws_error(err: &JwsError, token: &str) -> String {
    match err {
        JwsError::TooLarge { .. } => "too-large".to_string(),
        JwsError::Shape(_) => "shape".to_string(),
        JwsError::Encoding { segment, .. } => format!("base64:{segment}"),
        JwsError::Json { segment, .. } => format!("{segment}-not-json-object"),
        JwsError::Algorithm(_) => format!("alg-refused:{}", header_alg_name(token)),
        JwsError::Header(_) => "header-rule".to_string(),
    }
}

/// Picks the candidate keys by `kid` / `alg` and verifies, as the gate does.
fn verify_with(
    set: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
    message: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let mut candidates = set.candidates(kid, alg).peekable();
    if candidates.peek().is_none() {
        return Err("no-candidate-key".to_string());
    }
    if candidates.any(|k| verify_signature(alg, &k.key, message, sig)) {
        Ok(())
    } else {
        Err("bad-signature".to_string())
    }
}

/// The JWT path: `jws::parse` + `KeySet::from_jwks` + candidates + `verify_signature`.
fn jwt_path(token: &str, jwks: &[u8]) -> Result<(), String> {
    let t = jws::parse(token, MAX_TOKEN).map_err(|e| label_jws_error(&e, token))?;
    let set = KeySet::from_jwks(jwks).map_err(|_| "keyset-refused".to_string())?;
    verify_with(
        &set,
        t.kid.as_deref(),
        t.alg,
        t.signing_input.as_bytes(),
        &t.signature,
    )
}

/// The crypto path: like `jws::parse` (three non-empty segments except the payload, strict
/// base64url, a strict-JSON header, the `alg` allow-list) but the payload need not be a JSON
/// object and the header rules (`crit`, `typ`, `cty`, `b64`) are not applied.
fn crypto_path(token: &str, jwks: &[u8]) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, p, s] = parts.as_slice() else {
        return Err("shape".to_string());
    };
    if h.is_empty() || s.is_empty() {
        return Err("shape".to_string());
    }
    let header = b64::decode(h).map_err(|_| "base64:header".to_string())?;
    b64::decode(p).map_err(|_| "base64:payload".to_string())?;
    let sig = b64::decode(s).map_err(|_| "base64:signature".to_string())?;
    let header = json::parse_object(&header).map_err(|_| "header-not-json-object".to_string())?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .ok_or_else(|| format!("alg-refused:{}", header_alg_name(token)))?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err("header-rule".to_string()),
    };
    let set = KeySet::from_jwks(jwks).map_err(|_| "keyset-refused".to_string())?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    verify_with(&set, kid, alg, signing_input.as_bytes(), &sig)
}

#[derive(Default)]
struct PathTally {
    cases: usize,
    valid: usize,
    valid_accepted: usize,
    invalid: usize,
    invalid_rejected: usize,
    /// Valid cases rejected: `tcId → reason label`.
    valid_rejected: BTreeMap<u64, String>,
    /// Invalid cases accepted: `tcId → comment`.
    invalid_accepted: BTreeMap<u64, String>,
    /// Reasons the invalid cases were rejected for, with counts.
    invalid_reasons: BTreeMap<String, usize>,
}

impl PathTally {
    fn record(&mut self, t: &Value, outcome: &Result<(), String>) {
        self.cases += 1;
        match (text(t, "result"), outcome) {
            ("valid", Ok(())) => {
                self.valid += 1;
                self.valid_accepted += 1;
            }
            ("valid", Err(why)) => {
                self.valid += 1;
                self.valid_rejected.insert(tc_id(t), why.clone());
            }
            ("invalid", Ok(())) => {
                self.invalid += 1;
                self.invalid_accepted
                    .insert(tc_id(t), text(t, "comment").to_string());
            }
            ("invalid", Err(why)) => {
                self.invalid += 1;
                self.invalid_rejected += 1;
                *self.invalid_reasons.entry(why.clone()).or_default() += 1;
            }
            (other, _) => panic!("unexpected result {other:?} in a JWS/JWK vector"),
        }
    }

    fn summary(&self, name: &str) -> String {
        format!(
            "{name}: {} cases, valid accepted {}/{}, invalid rejected {}/{}, acceptable 0\n    \
             invalid rejected because: {:?}",
            self.cases,
            self.valid_accepted,
            self.valid,
            self.invalid_rejected,
            self.invalid,
            self.invalid_reasons
        )
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Wycheproof json_web_signature_test.json
// ---------------------------------------------------------------------------------------------

/// Valid cases of json_web_signature_test.json rejected on the JWT path, with the first reason.
/// Every one of the 46 `valid` cases is here: none of their payloads is a JWT claims object.
fn jws_file_jwt_path_exceptions() -> BTreeMap<u64, String> {
    table(&[
        // Payloads `foo`, zero bytes, `a`, `Test`, 0xe0.., `123400` (a JSON number) and RFC 7520's
        // "It’s a dangerous business, Frodo..." text: a JWT gate must refuse non-claims payloads.
        // (346/350 would also fail the key-alg pin below; the payload check comes first.)
        (
            "payload-not-json-object",
            &[
                18, 33, 260, 261, 262, 263, 265, 266, 267, 269, 270, 271, 273, 274, 275, 287, 288,
                321, 322, 323, 326, 327, 328, 345, 346, 349, 350, 378,
            ],
        ),
        // emptyPayload: an empty payload segment is refused outright by jws::parse.
        ("shape", &[259, 264, 268, 272, 320, 325]),
        // HMAC is unrepresentable by design (alg.rs); 357 is also one of the contradictory
        // issue-#236 rows (byte-identical to invalid 367 and 370).
        ("alg-refused:HS256", &[1, 348, 352, 357, 358, 359, 376, 377]),
        // RFC 7520 Figure 27: ES512 (P-521) is not supported.
        ("alg-refused:ES512", &[347, 351]),
        // C2SP/wycheproof#236: `?` inserted into the header / payload yet labelled valid; strict
        // RFC 7515 base64url refuses it.
        ("base64:header", &[372]),
        ("base64:payload", &[373]),
    ])
}

/// Valid cases of json_web_signature_test.json rejected on the crypto path (payload not
/// required to be a JSON object).
fn jws_file_crypto_path_exceptions() -> BTreeMap<u64, String> {
    table(&[
        // HMAC is never accepted (by design).
        ("alg-refused:HS256", &[1, 348, 352, 357, 358, 359, 376, 377]),
        // ES512 unsupported.
        ("alg-refused:ES512", &[347, 351]),
        // RFC 7520 Figure 20 quirk: the group's key says "alg":"PS256" while the token is PS384;
        // the project pins a key to its declared alg (Key::fits), so no key may verify it.
        ("no-candidate-key", &[346, 350]),
        // Issue #236 rows (strict base64url).
        ("base64:header", &[372]),
        ("base64:payload", &[373]),
    ])
}

#[test]
fn wycheproof_json_web_signature() {
    let rel = "wycheproof/testvectors_v1/json_web_signature_test.json";
    let doc = load(rel);
    let (mut jwt, mut crypto) = (PathTally::default(), PathTally::default());
    for group in list(&doc, "testGroups") {
        // The group's verification key: `public` when given, else the `private` JWK (only the
        // HMAC groups lack `public`; the project refuses their `oct` keys).
        let jwk = group.get("public").unwrap_or_else(|| &group["private"]);
        let jwks = jwks_bytes(jwk);
        for t in list(group, "tests") {
            let token = text(t, "jws");
            jwt.record(t, &jwt_path(token, &jwks));
            crypto.record(t, &crypto_path(token, &jwks));
        }
    }
    assert_eq!(jwt.cases as u64, doc["numberOfTests"].as_u64().unwrap());
    println!(
        "{}",
        jwt.summary("json_web_signature_test.json [JWT path: jws::parse]")
    );
    println!(
        "{}",
        crypto.summary("json_web_signature_test.json [crypto path: payload may be any bytes]")
    );

    assert!(
        jwt.invalid_accepted.is_empty(),
        "JWT path accepted invalid cases: {:?}",
        jwt.invalid_accepted
    );
    assert!(
        crypto.invalid_accepted.is_empty(),
        "crypto path accepted invalid cases: {:?}",
        crypto.invalid_accepted
    );
    assert_same_exceptions(
        "json_web_signature JWT path",
        &jwt.valid_rejected,
        &jws_file_jwt_path_exceptions(),
    );
    assert_same_exceptions(
        "json_web_signature crypto path",
        &crypto.valid_rejected,
        &jws_file_crypto_path_exceptions(),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Wycheproof json_web_key_test.json: key-set policy
// ---------------------------------------------------------------------------------------------

#[test]
fn wycheproof_json_web_key() {
    let rel = "wycheproof/testvectors_v1/json_web_key_test.json";
    let doc = load(rel);
    let (mut jwt, mut crypto) = (PathTally::default(), PathTally::default());
    // `tcId → what KeySet::from_jwks made of the group's key set`.
    let mut keysets: BTreeMap<u64, String> = BTreeMap::new();
    for group in list(&doc, "testGroups") {
        let set = group.get("public").unwrap_or_else(|| &group["private"]);
        let jwks = jwks_bytes(set);
        let parsed = match KeySet::from_jwks(&jwks) {
            Ok(s) => format!("ok:{}-usable,{}-skipped", s.keys.len(), s.skipped.len()),
            Err(KeyError::DuplicateKid(_)) => "err:duplicate-kid".to_string(),
            Err(KeyError::NoUsableKey(why)) if why.contains("ROCA") => "err:roca".to_string(),
            Err(KeyError::NoUsableKey(_)) => "err:no-usable-key".to_string(),
            Err(e) => format!("err:{e}"),
        };
        for t in list(group, "tests") {
            let token = text(t, "jws");
            keysets.insert(tc_id(t), parsed.clone());
            jwt.record(t, &jwt_path(token, &jwks));
            crypto.record(t, &crypto_path(token, &jwks));
        }
    }
    assert_eq!(jwt.cases as u64, doc["numberOfTests"].as_u64().unwrap());
    println!("{}", jwt.summary("json_web_key_test.json [JWT path]"));
    println!("{}", crypto.summary("json_web_key_test.json [crypto path]"));

    // The key-set policy itself, per case (group comment in brackets).
    let expected_keysets = table(&[
        // [jws_mixedSymmetryKeyset] the oct key is skipped, the EC key kept; the HS256 token is
        // then refused for its alg.
        ("ok:1-usable,1-skipped", &[1]),
        // [rs256] a normal RSA signing key.
        ("ok:1-usable,0-skipped", &[5]),
        // [jws_duplicate_kid] refused whole: selection would be ambiguous.
        ("err:duplicate-kid", &[4]),
        // [jws_keyset] HS only; [rs256 use=enc]; [keysize_too_small] 1024-bit RSA;
        // [exponentOne] e = 1; [HS*] short/long/empty oct keys; [wrong_algorithm] ES521 on P-256;
        // [invalid_algorithm] ES224; [invalid_use] use=enc; [invalid_point] off-curve point;
        // [wrong_curve] P-256 coordinates claimed as P-384; [wrong_kty] EC fields with kty RSA;
        // [invalid_aes_*] AES keys.
        (
            "err:no-usable-key",
            &[
                2, 3, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
            ],
        ),
    ]);
    // [jws_rsa_roca_key] refused: its modulus has the ROCA fingerprint (CVE-2017-15361).
    let mut expected_keysets = expected_keysets;
    expected_keysets.insert(7, "err:roca".to_string());
    assert_same_exceptions("json_web_key key sets", &keysets, &expected_keysets);

    // Every invalid case is rejected on the JWT path (all payloads are `foo`, and most key sets
    // are refused before that matters).
    assert!(
        jwt.invalid_accepted.is_empty(),
        "JWT path accepted invalid cases: {:?}",
        jwt.invalid_accepted
    );
    assert_same_exceptions(
        "json_web_key JWT path",
        &jwt.valid_rejected,
        &table(&[
            // HMAC by design (the valid HS cases of the keyset / long-key groups).
            ("alg-refused:HS256", &[2, 13]),
            ("alg-refused:HS384", &[14]),
            ("alg-refused:HS512", &[15]),
            // Payload `foo` is not JWT claims.
            ("payload-not-json-object", &[5]),
        ]),
    );
    // On the crypto path the RS256 case verifies; the HMAC ones stay refused.
    assert_same_exceptions(
        "json_web_key crypto path",
        &crypto.valid_rejected,
        &table(&[
            ("alg-refused:HS256", &[2, 13]),
            ("alg-refused:HS384", &[14]),
            ("alg-refused:HS512", &[15]),
        ]),
    );
    // tcId 7 (rejectsKeyWithRocaVulnerability) is a genuine RS256 signature by a ROCA-weak
    // (CVE-2017-15361) 2048-bit key: KeySet::from_jwks refuses the key, so even the crypto path
    // (which ignores the non-JSON payload) rejects it.
    assert!(
        crypto.invalid_accepted.is_empty(),
        "crypto path accepted invalid cases: {:?}",
        crypto.invalid_accepted
    );
}

/// No Wycheproof RSA modulus but the ROCA key's has the ROCA fingerprint: the distinct moduli
/// of every `rsa_*` file and every RSA JWK in the JSON web files (false-positive check).
#[test]
fn wycheproof_rsa_moduli_are_flagged_as_roca_only_when_they_are() {
    use policy_engine::keys::has_roca_fingerprint;
    let dir = vector_path("wycheproof/testvectors_v1");
    let mut moduli: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    fn walk(v: &Value, found: &mut BTreeMap<Vec<u8>, String>) {
        match v {
            Value::Object(m) if m.get("kty") == Some(&json!("RSA")) => {
                if let Some(n) = m.get("n").and_then(Value::as_str) {
                    let kid = m.get("kid").and_then(Value::as_str).unwrap_or("");
                    found.insert(b64::decode(n).unwrap(), kid.to_string());
                }
            }
            Value::Object(m) => m.values().for_each(|v| walk(v, found)),
            Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let rel = format!("wycheproof/testvectors_v1/{name}");
        if name.starts_with("rsa_") {
            for group in list(&load(&rel), "testGroups") {
                let n = hex(text(&group["publicKey"], "modulus"));
                moduli.insert(n, name.clone());
            }
        } else if name.starts_with("json_web_") {
            walk(&load(&rel), &mut moduli);
        }
    }
    let flagged: Vec<&String> = moduli
        .iter()
        .filter(|(n, _)| has_roca_fingerprint(n))
        .map(|(_, from)| from)
        .collect();
    println!(
        "{} distinct Wycheproof RSA moduli, ROCA-flagged: {flagged:?}",
        moduli.len()
    );
    assert!(moduli.len() >= 20, "only {} moduli", moduli.len());
    assert_eq!(flagged, ["kid-rsa-roca-sign"]);
}

// ---------------------------------------------------------------------------------------------
// 4. RFC 7515 Appendix A, RFC 8037 A.4 and the RFC 7520 cookbook
// ---------------------------------------------------------------------------------------------

fn rfc_case<'a>(doc: &'a Value, id: &str) -> &'a Value {
    list(doc, "tests")
        .iter()
        .find(|t| text(t, "id") == id)
        .unwrap_or_else(|| panic!("{id} missing from rfc-jose vectors"))
}

/// A token whose payload is JWT claims: accepted end to end, claims readable.
fn assert_jwt_accepted(name: &str, token: &str, jwk: &Value, alg: Algorithm) {
    let jwks = jwks_bytes(jwk);
    let parsed =
        jws::parse(token, MAX_TOKEN).unwrap_or_else(|e| panic!("{name}: parse refused: {e}"));
    assert_eq!(parsed.alg, alg, "{name}");
    assert_eq!(parsed.issuer(), Some("joe"), "{name}: claims");
    assert_eq!(jwt_path(token, &jwks), Ok(()), "{name}: JWT path");
    // Tampering with the signature must break it.
    let mut sig = parsed.signature.clone();
    sig[0] ^= 1;
    let set = KeySet::from_jwks(&jwks).unwrap();
    assert!(
        verify_with(
            &set,
            parsed.kid.as_deref(),
            alg,
            parsed.signing_input.as_bytes(),
            &sig
        )
        .is_err(),
        "{name}: a modified signature verified"
    );
    println!("{name}: {alg} accepted through jws::parse + KeySet + verify_signature");
}

/// A token whose payload is not JWT claims: the signature verifies on the signing input, and
/// `jws::parse` refuses the payload.
fn assert_signature_ok_but_not_a_jwt(name: &str, token: &str, jwk: &Value, alg: Algorithm) {
    let jwks = jwks_bytes(jwk);
    assert_eq!(
        crypto_path(token, &jwks),
        Ok(()),
        "{name}: signature over the signing input"
    );
    // The same check spelled out with the project's primitives.
    let key = Key::from_jwk(object(jwk)).unwrap_or_else(|e| panic!("{name}: key refused: {e}"));
    assert!(key.fits(alg), "{name}: key does not fit {alg}");
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64::decode(sig).unwrap();
    assert!(
        verify_signature(alg, &key.key, input.as_bytes(), &sig),
        "{name}: verify_signature"
    );
    let mut bad = sig.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(
        !verify_signature(alg, &key.key, input.as_bytes(), &bad),
        "{name}: modified signature verified"
    );
    match jws::parse(token, MAX_TOKEN) {
        Err(JwsError::Json {
            segment: "payload", ..
        }) => {}
        other => panic!("{name}: jws::parse must refuse the non-JSON payload, got {other:?}"),
    }
    assert!(jwt_path(token, &jwks).is_err(), "{name}: JWT path");
    println!("{name}: {alg} signature verified on the signing input; jws::parse refuses the non-claims payload");
}

/// An ES512 token: refused at every layer (alg allow-list, key import).
fn assert_es512_refused(name: &str, token: &str, jwk: &Value) {
    assert_eq!(Algorithm::from_name("ES512"), None);
    assert!(
        Key::from_jwk(object(jwk)).is_err(),
        "{name}: a P-521 key was imported"
    );
    assert!(
        KeySet::from_jwks(&jwks_bytes(jwk)).is_err(),
        "{name}: a P-521 key set was accepted"
    );
    match jws::parse(token, MAX_TOKEN) {
        Err(JwsError::Algorithm(_)) => {}
        other => panic!("{name}: ES512 must be refused as unsupported, got {other:?}"),
    }
    assert_eq!(
        crypto_path(token, &jwks_bytes(jwk)),
        Err("alg-refused:ES512".to_string()),
        "{name}"
    );
    println!("{name}: ES512 rejected as unsupported (alg allow-list and key import)");
}

#[test]
fn rfc7515_appendix_a_and_rfc8037() {
    let doc = load("rfc-jose/rfc7515_rfc8037_examples.json");

    // A.1 HS256: HMAC is never accepted.
    let a1 = rfc_case(&doc, "RFC7515-A.1");
    assert!(matches!(
        jws::parse(text(a1, "jws"), MAX_TOKEN),
        Err(JwsError::Algorithm(_))
    ));
    assert!(
        Key::from_jwk(object(&a1["jwk"])).is_err(),
        "A.1: oct key imported"
    );
    println!("RFC7515-A.1: HS256 rejected (HMAC never accepted)");

    let a2 = rfc_case(&doc, "RFC7515-A.2");
    assert_jwt_accepted("RFC7515-A.2", text(a2, "jws"), &a2["jwk"], Algorithm::RS256);
    let a3 = rfc_case(&doc, "RFC7515-A.3");
    assert_jwt_accepted("RFC7515-A.3", text(a3, "jws"), &a3["jwk"], Algorithm::ES256);

    let a4 = rfc_case(&doc, "RFC7515-A.4");
    assert_es512_refused("RFC7515-A.4", text(a4, "jws"), &a4["jwk"]);

    // A.5: an unsecured token is never accepted, whatever keys are configured.
    let a5 = rfc_case(&doc, "RFC7515-A.5");
    assert_eq!(text(a5, "result"), "invalid");
    let none = text(a5, "jws");
    assert!(jws::parse(none, MAX_TOKEN).is_err(), "A.5: alg none parsed");
    // With a trailing signature appended it is still refused for its alg.
    let with_sig = format!("{none}AAAA");
    assert!(matches!(
        jws::parse(&with_sig, MAX_TOKEN),
        Err(JwsError::Algorithm(_))
    ));
    assert!(jwt_path(none, &jwks_bytes(&a2["jwk"])).is_err());
    println!("RFC7515-A.5: alg none rejected");

    let ed = rfc_case(&doc, "RFC8037-A.4");
    assert_signature_ok_but_not_a_jwt("RFC8037-A.4", text(ed, "jws"), &ed["jwk"], Algorithm::EdDSA);
}

#[test]
fn rfc7520_cookbook() {
    let check_file = |rel: &str| -> (Value, String, Value) {
        let doc = load(rel);
        let compact = text(&doc["output"], "compact").to_string();
        // The vector is self-consistent: compact = sig-input "." sig.
        let signing = &doc["signing"];
        assert_eq!(
            compact,
            format!("{}.{}", text(signing, "sig-input"), text(signing, "sig")),
            "{rel}"
        );
        let key = doc["input"]["key"].clone();
        // The cookbook JWKs carry private members: the project refuses such a key outright...
        assert!(
            Key::from_jwk(object(&key)).is_err(),
            "{rel}: a JWK with private members was imported"
        );
        // ...so verify with its public part, as a JWKS endpoint would publish it.
        (doc, compact, public_part(&key))
    };

    // 4.1 RSA v1.5 (RS256), and 4.2 RSA-PSS (PS384): the payload is Tolkien, not JWT claims.
    let (doc, compact, key) = check_file("jose-cookbook/jws/4_1.rsa_v15_signature.json");
    assert_eq!(text(&doc["input"], "alg"), "RS256");
    assert_signature_ok_but_not_a_jwt("RFC7520-4.1", &compact, &key, Algorithm::RS256);
    let (doc, compact, key) = check_file("jose-cookbook/jws/4_2.rsa-pss_signature.json");
    assert_eq!(text(&doc["input"], "alg"), "PS384");
    assert_signature_ok_but_not_a_jwt("RFC7520-4.2", &compact, &key, Algorithm::PS384);
    // The same PS384 token under a key pinned to PS256 (Wycheproof's rfc7520 group) is refused.
    let mut pinned = key.clone();
    pinned["alg"] = json!("PS256");
    assert_eq!(
        crypto_path(&compact, &jwks_bytes(&pinned)),
        Err("no-candidate-key".to_string())
    );

    // 4.3 ECDSA P-521 (ES512): unsupported.
    let (doc, compact, key) = check_file("jose-cookbook/jws/4_3.ecdsa_signature.json");
    assert_eq!(text(&doc["input"], "alg"), "ES512");
    assert_es512_refused("RFC7520-4.3", &compact, &key);

    // RFC 8037 A.4 as carried by the cookbook repository.
    let (doc, compact, key) = check_file("jose-cookbook/curve25519/jws.json");
    assert_eq!(text(&doc["input"], "alg"), "EdDSA");
    let rfc = load("rfc-jose/rfc7515_rfc8037_examples.json");
    assert_eq!(
        compact,
        text(rfc_case(&rfc, "RFC8037-A.4"), "jws"),
        "cookbook and RFC 8037 disagree"
    );
    assert_signature_ok_but_not_a_jwt("RFC8037-A.4 (cookbook)", &compact, &key, Algorithm::EdDSA);
}

/// `testdata/MANIFEST.md` cannot drift: every file it lists exists with the SHA-256 it states,
/// and every file under `testdata/` is listed.
#[test]
fn testdata_manifest_matches_the_files() {
    use sha2::{Digest, Sha256};

    let manifest_path = vector_path("MANIFEST.md");
    let manifest = std::fs::read_to_string(&manifest_path)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let mut listed = BTreeMap::new();
    for (n, line) in manifest.lines().enumerate() {
        // Data rows: `| `<path>` | upstream | version | license | `<sha256>` |`.
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(
            cells.len(),
            7,
            "MANIFEST.md line {}: 5 columns expected",
            n + 1
        );
        let file = cells[1].trim_matches('`');
        let sha = cells[5].trim_matches('`');
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "MANIFEST.md line {}: {sha:?} is not a SHA-256",
            n + 1
        );
        assert!(
            listed.insert(file.to_string(), sha.to_string()).is_none(),
            "MANIFEST.md lists {file} twice"
        );
    }
    assert!(!listed.is_empty(), "MANIFEST.md lists no files");
    for (file, sha) in &listed {
        let bytes = std::fs::read(vector_path(file))
            .unwrap_or_else(|e| panic!("testdata/{file} (listed in MANIFEST.md): {e}"));
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            &actual, sha,
            "testdata/{file}: SHA-256 differs from MANIFEST.md"
        );
    }

    let mut on_disk = BTreeSet::new();
    let mut dirs = vec![PathBuf::from(VECTORS)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(VECTORS).unwrap();
                on_disk.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    on_disk.remove("MANIFEST.md");
    let unlisted: Vec<_> = on_disk
        .iter()
        .filter(|f| !listed.contains_key(*f))
        .collect();
    assert!(
        unlisted.is_empty(),
        "files under testdata/ missing from MANIFEST.md: {unlisted:?}"
    );
}
