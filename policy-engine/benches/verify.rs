//! Native cost of one decision per algorithm: parse + verify + claims + a realistic policy.
//! `cargo bench -p policy-engine --bench verify`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use criterion::{criterion_group, criterion_main, Criterion};
use gateward_devkit::{claims, fixtures, jwks, mint, SigningKey};
use policy_engine::{Gate, Request};
use serde_json::json;

const NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";

fn gate_for(key: &SigningKey, policy: bool) -> Gate {
    let mut config = json!({
        "issuers": [{
            "name": "github", "preset": "github-actions", "audiences": [AUD],
            "algorithms": [key.default_alg().name()],
            "jwks": jwks(&[("k", key)]),
        }],
    });
    if policy {
        config["policy"] =
            json!({"modules": [{"rego": include_str!("../../examples/deploy.rego")}]});
    }
    Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// The `cargo xtask bench` Envoy configurations (`envoy-config/bench/`), for the native cost of
/// the policy library's GitHub example and of the compact policy.
fn bench_config(key: &SigningKey, file: &str, evaluator: &str) -> Gate {
    let path = gateward_devkit::envoy::workspace_root()
        .join("envoy-config/bench")
        .join(file);
    let jwks = jwks(&[("k", key)]).to_string();
    let config = gateward_devkit::envoy::gateward_config(
        &path,
        &[("JWKS", &jwks), ("MAX_LIFETIME", "86400")],
    )
    .unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    config["policy"]["evaluator"] = json!(evaluator);
    Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// `Authorization: Bearer <a GitHub Actions token signed by key>`, for `POST /deploy`.
fn deploy_headers(key: &SigningKey) -> Vec<(String, String)> {
    let token = mint(key, Some("k"), &claims::github_actions(NOW - 10, AUD)).unwrap();
    vec![("authorization".to_string(), format!("Bearer {token}"))]
}

fn deploy(headers: &[(String, String)]) -> Request<'_> {
    Request {
        method: "POST",
        path: "/deploy",
        host: "api",
        headers,
    }
}

fn bench(c: &mut Criterion) {
    let keys = [
        ("RS256", fixtures::rsa_a()),
        ("ES256", fixtures::p256()),
        ("ES384", fixtures::p384()),
        ("EdDSA", fixtures::ed25519()),
    ];
    for (name, key) in keys {
        let headers = deploy_headers(&key);
        let req = deploy(&headers);
        for (label, with_policy) in [("verify", false), ("verify+policy", true)] {
            let gate = gate_for(&key, with_policy);
            assert!(gate
                .check(&req, &|id, _| gate.static_keys(id), NOW)
                .is_allow());
            c.bench_function(&format!("{name} {label}"), |b| {
                b.iter(|| gate.check(&req, &|id, _| gate.static_keys(id), NOW))
            });
        }
    }
    let key = fixtures::rsa_a();
    let headers = deploy_headers(&key);
    let req = deploy(&headers);
    for (label, file, evaluator) in [
        ("policy library", "gateward-github.json", "interpreter"),
        (
            "policy library, compiled",
            "gateward-github.json",
            "compiled",
        ),
        ("compact policy", "gateward-compact.json", "interpreter"),
        (
            "compact policy, compiled",
            "gateward-compact.json",
            "compiled",
        ),
    ] {
        let gate = bench_config(&key, file, evaluator);
        let decision = gate.check(&req, &|id, _| gate.static_keys(id), NOW);
        assert!(decision.is_allow(), "{label}: {decision:?}");
        c.bench_function(&format!("RS256 verify+{label}"), |b| {
            b.iter(|| gate.check(&req, &|id, _| gate.static_keys(id), NOW))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
