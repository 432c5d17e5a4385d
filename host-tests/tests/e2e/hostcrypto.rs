//! Envoy's `verify_signature` (BoringSSL) and the pure-Rust path accept exactly the same RSA
//! signatures: every Wycheproof RSASSA-PKCS1-v1_5 vector goes through both inside a real Envoy
//! (the module's `selftest` build, run by `envoy --mode validate`, which calls on_configure).

use std::collections::BTreeMap;

use gateward_devkit::envoy::{self, Envoy};
use serde_json::{json, Value};

const FILES: [(&str, &str); 10] = [
    ("rsa_signature_2048_sha256_test.json", "RS256"),
    ("rsa_signature_2048_sha384_test.json", "RS384"),
    ("rsa_signature_2048_sha512_test.json", "RS512"),
    ("rsa_signature_3072_sha256_test.json", "RS256"),
    ("rsa_signature_3072_sha384_test.json", "RS384"),
    ("rsa_signature_3072_sha512_test.json", "RS512"),
    ("rsa_signature_4096_sha256_test.json", "RS256"),
    ("rsa_signature_4096_sha384_test.json", "RS384"),
    ("rsa_signature_4096_sha512_test.json", "RS512"),
    ("rsa_signature_8192_sha256_test.json", "RS256"),
];

#[test]
fn envoy_boringssl_and_pure_rust_agree_on_every_wycheproof_rsa_vector() {
    let root = envoy::workspace_root();
    let vectors = root.join("testdata/wycheproof/testvectors_v1");
    let mut groups = Vec::new();
    // Case id → (file, Wycheproof's verdict); ids are renumbered to be unique across files.
    let mut expected: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let mut next_id = 0u64;
    for (file, alg) in FILES {
        let text = std::fs::read_to_string(vectors.join(file)).unwrap_or_else(|e| {
            panic!("testdata/wycheproof/testvectors_v1/{file}: {e} (see testdata/MANIFEST.md)")
        });
        let doc: Value = serde_json::from_str(&text).unwrap();
        for group in doc["testGroups"].as_array().unwrap() {
            let mut cases = Vec::new();
            for t in group["tests"].as_array().unwrap() {
                next_id += 1;
                expected.insert(
                    next_id,
                    (
                        format!("{file} tcId {}", t["tcId"]),
                        t["result"].as_str().unwrap().to_string(),
                    ),
                );
                cases.push(json!({"id": next_id, "msg": t["msg"], "sig": t["sig"]}));
            }
            groups.push(json!({
                "alg": alg,
                "n": group["publicKey"]["modulus"],
                "e": group["publicKey"]["publicExponent"],
                "cases": cases,
            }));
        }
    }
    let wasm =
        envoy::build_module_variant(Some(&envoy::module_target_dir()), "selftest", &["selftest"])
            .unwrap_or_else(|e| panic!("{e}"));
    let template = std::fs::read_to_string(root.join("envoy-config/demo.yaml")).unwrap();
    let config = json!({ "selftest": groups }).to_string();
    let yaml = envoy::render(
        &template,
        &[
            ("ADMIN_PORT", "0"),
            ("LISTEN_PORT", "0"),
            ("ISSUER_PORT", "1"),
            ("UPSTREAM_PORT", "1"),
            ("WASM", &envoy::yaml_string(&wasm.display().to_string())),
            ("GATEWARD_CONFIG", &envoy::yaml_string(&config)),
        ],
    )
    .unwrap();
    let (ok, output) =
        Envoy::validate(&yaml, &root.join("target/gateward-e2e/hostcrypto")).unwrap();
    assert!(ok, "{}", tail(&output));

    // Envoy may run on_configure more than once in validate mode: keep one answer per case,
    // and every repeat must be the same answer.
    let mut results: BTreeMap<u64, (bool, bool, String)> = BTreeMap::new();
    for line in output.lines() {
        let Some(at) = line.find("selftest {") else {
            continue;
        };
        let r: Value = serde_json::from_str(&line[at + "selftest ".len()..]).unwrap();
        let Some(id) = r["id"].as_u64() else {
            panic!("the core refused a Wycheproof RSA key: {r}");
        };
        let got = (
            r["host"].as_bool().unwrap(),
            r["rust"].as_bool().unwrap(),
            r["path"].as_str().unwrap().to_string(),
        );
        if let Some(earlier) = results.insert(id, got.clone()) {
            assert_eq!(earlier, got, "case {id} answered differently twice");
        }
    }
    assert_eq!(results.len(), expected.len(), "{}", tail(&output));
    let mut disagreements = Vec::new();
    for (id, (host, rust, path)) in &results {
        let (case, verdict) = &expected[id];
        assert_eq!(
            path, "host",
            "{case}: Envoy's verify_signature was not used"
        );
        if host != rust {
            disagreements.push(format!("{case}: host {host}, rust {rust}"));
        }
        match verdict.as_str() {
            "valid" => assert!(host, "{case}: a valid signature was rejected"),
            "invalid" => assert!(!host, "{case}: an invalid signature was accepted"),
            _ => {} // "acceptable": either answer, as long as both paths agree
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
    eprintln!(
        "{} Wycheproof RSA PKCS#1 v1.5 vectors: Envoy's BoringSSL and pure Rust agree on all",
        results.len()
    );
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
