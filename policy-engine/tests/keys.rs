//! Hostile key documents: each refused with a reason, never a panic; usable keys survive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use gateward_devkit::{fixtures, jwks, public_pem};
use policy_engine::keys::{KeyError, KeySet, PublicKey, DEVELOPMENT_KEYS, MAX_KEYS};
use policy_engine::Algorithm;
use serde_json::{json, Value};

fn parse(v: &Value) -> Result<KeySet, KeyError> {
    KeySet::from_jwks(v.to_string().as_bytes())
}

fn skipped_reason(v: Value) -> String {
    let good = fixtures::rsa_a().public_jwk("good");
    let set = parse(&json!({"keys": [good, v]})).unwrap();
    assert_eq!(
        set.keys.len(),
        1,
        "the bad key must be skipped, the good one kept"
    );
    set.skipped.join("; ")
}

#[test]
fn documents_refused_whole() {
    let a = fixtures::rsa_a().public_jwk("a");
    assert!(matches!(
        KeySet::from_jwks(&vec![b' '; 600 * 1024]),
        Err(KeyError::TooLarge(_))
    ));
    assert!(matches!(
        KeySet::from_jwks(b"not json"),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(
        KeySet::from_jwks(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).as_bytes()),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(
        parse(&json!({"keys": {"a": 1}})),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(
        parse(&json!({"nokeys": []})),
        Err(KeyError::Malformed(_))
    ));
    assert!(matches!(
        parse(&json!({"keys": []})),
        Err(KeyError::NoUsableKey(_))
    ));
    assert!(
        matches!(parse(&json!({"keys": [a.clone(), a.clone()]})), Err(KeyError::DuplicateKid(k)) if k == "a")
    );
    let many: Vec<Value> = (0..=MAX_KEYS)
        .map(|i| fixtures::p256().public_jwk(&format!("k{i}")))
        .collect();
    assert!(matches!(
        parse(&json!({"keys": many})),
        Err(KeyError::TooManyKeys(_))
    ));
    assert!(matches!(
        KeySet::from_jwks(br#"{"keys":[],"keys":[]}"#),
        Err(KeyError::Malformed(_))
    ));
    // Every key unusable: refused, with each reason.
    let weak = fixtures::rsa_weak().public_jwk("weak");
    let err = parse(&json!({"keys": [weak, {"kty": "oct", "k": "c2VjcmV0"}]}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1024 bits") && err.contains("symmetric"),
        "{err}"
    );
}

#[test]
fn weak_and_unusable_keys_are_skipped_with_reasons() {
    let rsa = fixtures::rsa_a().public_jwk("r");
    let mut e1 = rsa.clone();
    e1["e"] = json!("AQ"); // e = 1
    assert!(skipped_reason(e1).contains("exponent"));
    let mut even = rsa.clone();
    even["e"] = json!("AQAA"); // 65536
    assert!(skipped_reason(even).contains("exponent"));
    assert!(
        skipped_reason(fixtures::rsa_weak().public_jwk("w")).contains("under the 2048-bit minimum")
    );
    let mut enc = rsa.clone();
    enc["use"] = json!("enc");
    assert!(skipped_reason(enc).contains("use"));
    let mut ops = rsa.clone();
    ops["key_ops"] = json!(["encrypt"]);
    assert!(skipped_reason(ops).contains("key_ops"));
    let mut private = rsa.clone();
    private["d"] = json!("AQAB");
    assert!(skipped_reason(private).contains("private"));
    let mut mismatch = rsa.clone();
    mismatch["alg"] = json!("ES256");
    assert!(skipped_reason(mismatch).contains("does not fit"));
    let mut hs = rsa.clone();
    hs["alg"] = json!("HS256");
    assert!(skipped_reason(hs).contains("not a supported"));
    let mut off_curve = fixtures::p256().public_jwk("ec");
    off_curve["y"] = off_curve["x"].clone();
    assert!(skipped_reason(off_curve).contains("not on the curve"));
    let mut wrong_curve = fixtures::p256().public_jwk("ec2");
    wrong_curve["crv"] = json!("P-521");
    assert!(skipped_reason(wrong_curve).contains("not supported"));
    let mut short = fixtures::p256().public_jwk("ec3");
    short["x"] = json!("AAAA");
    assert!(skipped_reason(short).contains("32 bytes"));
    assert!(skipped_reason(json!({"kty": "RSA", "n": 5, "e": "AQAB"})).contains("must be a string"));
    assert!(skipped_reason(json!({"kty": "RSA", "n": "a+b/", "e": "AQAB"})).contains("base64url"));
    assert!(skipped_reason(json!("not an object")).contains("not an object"));
    assert!(
        skipped_reason(json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"}))
            .contains("not supported")
    );
}

#[test]
fn mixed_key_types_select_by_kid_and_alg() {
    let set = parse(&jwks(&[
        ("r", &fixtures::rsa_a()),
        ("e", &fixtures::p256()),
        ("e384", &fixtures::p384()),
        ("ed", &fixtures::ed25519()),
    ]))
    .unwrap();
    assert_eq!(set.keys.len(), 4);
    assert_eq!(set.candidates(Some("r"), Algorithm::RS256).count(), 1);
    assert_eq!(set.candidates(Some("r"), Algorithm::ES256).count(), 0);
    assert_eq!(set.candidates(None, Algorithm::ES384).count(), 1);
    assert_eq!(set.candidates(None, Algorithm::EdDSA).count(), 1);
    // The RSA JWK says alg RS256: PS256 may not use it.
    assert_eq!(set.candidates(Some("r"), Algorithm::PS256).count(), 0);
}

#[test]
fn pem_keys_of_every_family() {
    for key in [
        fixtures::rsa_a(),
        fixtures::p256(),
        fixtures::p384(),
        fixtures::ed25519(),
    ] {
        let pk = PublicKey::from_pem(&public_pem(&key)).unwrap();
        assert_eq!(pk.family(), key.default_alg().key_family());
    }
    let weak = PublicKey::from_pem(&public_pem(&fixtures::rsa_weak())).unwrap_err();
    assert!(weak.to_string().contains("2048"));
    let private = PublicKey::from_pem(include_str!("../../devkit/keys/p256.pem")).unwrap_err();
    assert!(private.to_string().contains("private key"), "{private}");
    assert!(PublicKey::from_pem("garbage").is_err());
    assert!(
        PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----").is_err()
    );
}

/// `DEVELOPMENT_KEYS` names exactly the committed `devkit/keys/` keys (not the weak one, which no
/// configuration can load), whether given as a JWK or as PEM.
#[test]
fn the_development_key_list_matches_the_committed_keys() {
    let committed = [
        ("rsa-a", fixtures::rsa_a()),
        ("rsa-b", fixtures::rsa_b()),
        ("p256", fixtures::p256()),
        ("p384", fixtures::p384()),
        ("ed25519", fixtures::ed25519()),
    ];
    for (name, key) in &committed {
        let set = parse(&jwks(&[("k", key)])).unwrap();
        let from_jwk = &set.keys[0].key;
        let from_pem = PublicKey::from_pem(&public_pem(key)).unwrap();
        assert_eq!(from_jwk.fingerprint(), from_pem.fingerprint(), "{name}");
        assert_eq!(
            from_jwk.development_key(),
            Some(*name),
            "{name}: fingerprint {}",
            from_jwk.fingerprint()
        );
    }
    assert_eq!(DEVELOPMENT_KEYS.len(), committed.len());
    let fresh = gateward_devkit::SigningKey::generate(gateward_devkit::KeyKind::P256).unwrap();
    let set = parse(&jwks(&[("k", &fresh)])).unwrap();
    assert_eq!(set.keys[0].key.development_key(), None);
}
