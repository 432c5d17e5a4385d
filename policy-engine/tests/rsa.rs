//! RSA hardening: signatures whose integer is not below the modulus (the `s + n` twin of a valid
//! signature) are refused before any verifier sees them, and ROCA-weak moduli (CVE-2017-15361)
//! are refused at key import, while ordinary keys are not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use gateward_devkit::hostile::{self, plus_modulus, rsa_twin, AUD, NOW};
use gateward_devkit::{fixtures, KeyKind, SigningKey};
use policy_engine::keys::{has_roca_fingerprint, Key, KeyError, KeySet, PublicKey};
use policy_engine::verify::{check_rsa_range, verify_signature, SignatureError};
use policy_engine::{b64, Algorithm, Decision, DenyCode, Gate, Request};
use rsa::traits::PublicKeyParts;
use rsa::BigUint;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn decide(gate: &Gate, token: &str) -> Decision {
    let headers = vec![("authorization".to_string(), format!("Bearer {token}"))];
    let req = Request {
        method: "GET",
        path: "/",
        host: "h",
        headers: &headers,
    };
    gate.check(&req, &|id, _| gate.static_keys(id), NOW)
}

fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input, b64::decode(sig).unwrap())
}

fn rsa_a_public() -> PublicKey {
    let jwk = fixtures::rsa_a().public_jwk("a");
    Key::from_jwk(jwk.as_object().unwrap()).unwrap().key
}

// ---------------------------------------------------------------------------------------------
// s + n twins
// ---------------------------------------------------------------------------------------------

/// A genuine PS256 and RS256 token verify; their `s + n` twins (same byte length) are refused
/// with `signature_invalid`, the detail saying why. For PS256 the twin is a real one: rsa 0.9's
/// PSS verification alone accepts it (so before the range check, the gate allowed it).
#[test]
fn rsa_twins_with_s_plus_n_are_refused_and_the_originals_verify() {
    let gate = Gate::from_json(&hostile::pss_config().to_string()).unwrap();
    let key = rsa_a_public();
    let claims = gateward_devkit::claims::github_actions(NOW - 10, AUD);
    for (alg, kid) in [(Algorithm::PS256, "pss"), (Algorithm::RS256, "rsa")] {
        let (original, twin) = rsa_twin(&fixtures::rsa_a(), kid, alg.name(), &claims);
        let ((input, sig), (twin_input, twin_sig)) = (split(&original), split(&twin));
        assert_eq!(input, twin_input);
        assert_eq!(
            sig.len(),
            twin_sig.len(),
            "{alg}: the twin keeps the length"
        );
        assert_ne!(sig, twin_sig);

        assert!(
            decide(&gate, &original).is_allow(),
            "{alg}: {:?}",
            decide(&gate, &original)
        );
        assert!(verify_signature(alg, &key, input.as_bytes(), &sig));
        match decide(&gate, &twin) {
            Decision::Deny(d) => {
                assert_eq!(d.code, DenyCode::SignatureInvalid, "{alg}: {d:?}");
                assert!(
                    d.message.contains("not below the key's modulus")
                        && d.message.contains(&format!("key {kid:?}")),
                    "{alg}: {}",
                    d.message
                );
            }
            other => panic!("{alg}: the s + n twin was allowed: {other:?}"),
        }
        assert!(!verify_signature(alg, &key, input.as_bytes(), &twin_sig));
        assert_eq!(
            check_rsa_range(&key, &twin_sig),
            Err(SignatureError::RsaNotBelowModulus)
        );
        assert_eq!(check_rsa_range(&key, &sig), Ok(()));
    }

    // The premise: without the range check, the PSS twin verifies.
    let (original, twin) = rsa_twin(&fixtures::rsa_a(), "pss", "PS256", &claims);
    let (input, twin_sig) = split(&twin);
    assert!(rsa_crate_pss_accepts(input.as_bytes(), &twin_sig));
    assert!(rsa_crate_pss_accepts(input.as_bytes(), &split(&original).1));
}

fn rsa_crate_pss_accepts(message: &[u8], signature: &[u8]) -> bool {
    use jwt_compact::{Algorithm as _, AlgorithmSignature};
    let PublicKey::Rsa(k) = rsa_a_public() else {
        unreachable!()
    };
    let alg = jwt_compact::alg::Rsa::ps256();
    let sig =
        <jwt_compact::alg::RsaSignature as AlgorithmSignature>::try_from_slice(signature).unwrap();
    alg.verify_signature(&sig, &k, message)
}

/// The range check runs in the core before the host's verifier (Envoy's `verify_signature`
/// through `Gate::verify_with`): a verifier that accepts anything is never asked about a twin.
#[test]
fn the_host_verifier_never_sees_an_out_of_range_signature() {
    let gate = Gate::from_json(&hostile::pss_config().to_string()).unwrap();
    let claims = gateward_devkit::claims::github_actions(NOW - 10, AUD);
    for (alg, kid) in [(Algorithm::RS256, "rsa"), (Algorithm::PS256, "pss")] {
        let (original, twin) = rsa_twin(&fixtures::rsa_a(), kid, alg.name(), &claims);
        let asked = Rc::new(Cell::new(0));
        let counter = Rc::clone(&asked);
        let lenient = move |_: Algorithm, _: &PublicKey, _: &[u8], _: &[u8]| {
            counter.set(counter.get() + 1);
            true
        };
        let (parsed, id) = gate.route(&original).unwrap();
        let keys = gate.static_keys(id).unwrap();
        assert!(gate.verify_with(&parsed, id, keys, NOW, &lenient).is_ok());
        assert_eq!(asked.get(), 1);
        let (parsed, id) = gate.route(&twin).unwrap();
        let d = gate
            .verify_with(&parsed, id, keys, NOW, &lenient)
            .unwrap_err();
        assert_eq!(d.code, DenyCode::SignatureInvalid);
        assert_eq!(
            asked.get(),
            1,
            "{alg}: the host verifier was asked about a twin"
        );
    }
}

/// Signatures at and around the modulus: `n - 1` passes the range check, `n`, `n + 1` and the
/// all-ones value do not; shorter signatures are small integers (the verifiers judge the length).
#[test]
fn the_range_check_is_exact_at_the_modulus() {
    let key = rsa_a_public();
    let PublicKey::Rsa(k) = &key else {
        unreachable!()
    };
    let n = k.n().clone();
    let one = BigUint::from(1u32);
    let bytes = |v: &BigUint| v.to_bytes_be();
    assert_eq!(check_rsa_range(&key, &bytes(&(&n - &one))), Ok(()));
    for bad in [n.clone(), &n + &one] {
        assert_eq!(
            check_rsa_range(&key, &bytes(&bad)),
            Err(SignatureError::RsaNotBelowModulus)
        );
    }
    assert!(check_rsa_range(&key, &[0xff; 256]).is_err());
    assert!(check_rsa_range(&key, &[0xff; 16]).is_ok());
    assert_eq!(plus_modulus(&[0x00, 0x01], &[0x02]), Some(vec![0x00, 0x03]));
    assert_eq!(plus_modulus(&[0xff, 0xff], &[0x01]), None);
    // Other key families are not RSA: the check leaves them to their verifiers.
    let ec = Key::from_jwk(fixtures::p256().public_jwk("e").as_object().unwrap()).unwrap();
    assert_eq!(check_rsa_range(&ec.key, &[0xff; 64]), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// ROCA
// ---------------------------------------------------------------------------------------------

/// The modulus of Wycheproof's `jws_rsa_roca_key` (`testvectors_v1/json_web_key_test.json`,
/// C2SP/wycheproof, Apache-2.0): a 2048-bit key from a vulnerable Infineon library.
const WYCHEPROOF_ROCA_N: &str = "AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_HhFw16HGaTDUHqPrId7fe4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_MPsp7n0zs3Z5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9PjyaDGuRh7YXsX3iMUSP_wSyHQg_c_qHRtKUsNSGCT7OZg0hzm2KphtjnayKJvC64vAbROBR4Ubg6Bxg9IQVZ-QYyE";

fn roca_jwk(kid: &str) -> Value {
    json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": WYCHEPROOF_ROCA_N, "e": "AQAB"})
}

/// Wycheproof's ROCA key is refused at JWKS import with the key's kid and the reason; next to
/// a good key, it is skipped and the good key kept.
#[test]
fn a_roca_key_is_refused_at_jwks_import_naming_its_kid() {
    let n = b64::decode(WYCHEPROOF_ROCA_N).unwrap();
    assert!(has_roca_fingerprint(&n));
    assert_eq!(
        Key::from_jwk(roca_jwk("kid-rsa-roca-sign").as_object().unwrap()),
        Err(KeyError::RocaModulus)
    );
    let alone = json!({"keys": [roca_jwk("kid-rsa-roca-sign")]}).to_string();
    match KeySet::from_jwks(alone.as_bytes()) {
        Err(KeyError::NoUsableKey(why)) => assert!(
            why.contains("kid \"kid-rsa-roca-sign\"")
                && why.contains("ROCA")
                && why.contains("CVE-2017-15361"),
            "{why}"
        ),
        other => panic!("a ROCA-only key set was accepted: {other:?}"),
    }
    let mixed = json!({"keys": [roca_jwk("weak"), fixtures::rsa_a().public_jwk("good")]});
    let set = KeySet::from_jwks(mixed.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1);
    assert_eq!(set.keys[0].kid.as_deref(), Some("good"));
    assert!(
        set.skipped[0].contains("kid \"weak\"") && set.skipped[0].contains("ROCA"),
        "{:?}",
        set.skipped
    );
}

/// A ROCA key given as PEM in the configuration is a configuration error at its path, with its
/// kid; so is the same key inline as a JWK (the key set has no other key).
#[test]
fn a_roca_key_is_refused_in_the_configuration() {
    use base64::Engine as _;
    use rsa::pkcs8::EncodePublicKey;
    let n = BigUint::from_bytes_be(&b64::decode(WYCHEPROOF_ROCA_N).unwrap());
    let der = rsa::RsaPublicKey::new(n, BigUint::from(65537u32))
        .unwrap()
        .to_public_key_der()
        .unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
    assert_eq!(PublicKey::from_pem(&pem), Err(KeyError::RocaModulus));
    let config = json!({"issuers": [{
        "name": "g", "issuer": hostile::ISS, "audiences": [AUD],
        "pem_keys": [{"kid": "hsm-2017", "pem": pem}],
    }]});
    let err = Gate::from_json(&config.to_string())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("issuers[0].pem_keys[0].pem")
            && err.contains("key \"hsm-2017\"")
            && err.contains("ROCA"),
        "{err}"
    );
    let config = json!({"issuers": [{
        "name": "g", "issuer": hostile::ISS, "audiences": [AUD],
        "jwks": {"keys": [roca_jwk("hsm-2017")]},
    }]});
    let err = Gate::from_json(&config.to_string())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("kid \"hsm-2017\"") && err.contains("ROCA"),
        "{err}"
    );
}

/// `M`: the product of the primes up to 167, ROCA's primorial for 512-bit keys (a divisor of the
/// primorials of every larger size).
fn primorial() -> BigUint {
    (2u32..=167)
        .filter(|p| (2..*p).all(|d| p % d != 0))
        .fold(BigUint::from(1u32), |m, p| m * BigUint::from(p))
}

/// Deterministic bytes for the tests below.
fn stream(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut block = 0u32;
    while out.len() < len {
        out.extend(Sha256::digest(format!("{seed}/{block}")));
        block += 1;
    }
    out.truncate(len);
    out
}

/// Moduli built with RSALib's structure, `n = k * M + (65537^a mod M)` (a product of two
/// RSALib primes has this form too), are flagged and refused at every key size; breaking the
/// structure (`n + 2`) clears the flag.
#[test]
fn constructed_roca_moduli_are_refused() {
    let m = primorial();
    let g = BigUint::from(65537u32);
    for bits in [2048usize, 3072, 4096] {
        let floor = BigUint::from(1u32) << (bits - 1);
        for i in 0..8u32 {
            let a = BigUint::from_bytes_be(&stream(&format!("a{bits}/{i}"), 4));
            let jitter = BigUint::from_bytes_be(&stream(&format!("k{bits}/{i}"), 16));
            let k = &floor / &m + jitter;
            let n = &k * &m + g.modpow(&a, &m);
            assert_eq!(n.bits(), bits);
            let bytes = n.to_bytes_be();
            assert!(has_roca_fingerprint(&bytes), "{bits}-bit #{i}");
            assert_eq!(
                PublicKey::rsa(&bytes, &[1, 0, 1]),
                Err(KeyError::RocaModulus)
            );
            let other = (&n + BigUint::from(2u32)).to_bytes_be();
            assert!(!has_roca_fingerprint(&other), "{bits}-bit #{i} + 2");
        }
    }
}

/// No false positives: the repository's keys, freshly generated keys and thousands of random
/// odd moduli of every size pass (a random modulus passes at all 38 primes with probability
/// about 2^-28; Wycheproof's RSA moduli are checked in `vectors.rs`). Also times the check: it
/// runs once per key at import.
#[test]
fn ordinary_moduli_are_not_flagged_and_the_check_is_cheap() {
    let public = |k: &SigningKey| match k {
        SigningKey::Rsa(k) => k.n().to_bytes_be(),
        _ => unreachable!(),
    };
    for (name, key) in [
        ("rsa-a", fixtures::rsa_a()),
        ("rsa-b", fixtures::rsa_b()),
        ("rsa-weak-1024", fixtures::rsa_weak()),
    ] {
        assert!(!has_roca_fingerprint(&public(&key)), "devkit/keys/{name}");
    }
    for i in 0..4 {
        let key = SigningKey::generate(KeyKind::Rsa2048).unwrap();
        assert!(!has_roca_fingerprint(&public(&key)), "generated key {i}");
        let jwk = key.public_jwk("fresh");
        assert!(Key::from_jwk(jwk.as_object().unwrap()).is_ok());
    }
    let mut flagged = 0;
    for i in 0..3000 {
        let len = [256, 384, 512, 1024][i % 4];
        let mut n = stream(&format!("random/{i}"), len);
        n[0] |= 0x80;
        n[len - 1] |= 1;
        flagged += usize::from(has_roca_fingerprint(&n));
    }
    assert_eq!(flagged, 0, "random moduli flagged as ROCA");

    // Cost, on the largest modulus accepted (8192 bits): printed, and bounded loosely for an
    // unoptimised build on a shared machine.
    let n = stream("cost", 1024);
    let rounds = 200u32;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(has_roca_fingerprint(std::hint::black_box(&n)));
    }
    let each = started.elapsed() / rounds;
    println!("ROCA fingerprint check, 8192-bit modulus: {each:?} per key");
    assert!(each.as_millis() < 20, "{each:?} per key");
}
