//! The filter's per-request path in the wasmtime host: the release module, driven as Envoy
//! drives it, without Envoy. Regressions in the module show here without a benchmark run
//! against a real Envoy (`cargo xtask bench`). The host has no `verify_signature` foreign
//! function, so the cold rows verify RS256 in pure Rust inside the module.
//!
//! `cargo bench -p gateward-host-tests --bench request`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use criterion::{criterion_group, criterion_main, Criterion};
use gateward_devkit::envoy::{gateward_config, workspace_root};
use gateward_devkit::{claims, fixtures, jwks, mint};
use gateward_host_tests::{Action, Host, Module, VmId};
use serde_json::{json, Value};

/// The host clock's start, in Unix seconds (`Host::new`).
const NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";

/// A configuration of `cargo xtask bench` (`envoy-config/bench/`) with `extra` merged into it.
fn config(file: &str, extra: &Value) -> String {
    let jwks = jwks(&[("k", &fixtures::rsa_a())]).to_string();
    let text = gateward_config(
        &workspace_root().join("envoy-config/bench").join(file),
        &[("JWKS", &jwks), ("MAX_LIFETIME", "86400")],
    )
    .unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        if let (Some(Value::Object(into)), Value::Object(v)) = (config.get_mut(k), v) {
            into.extend(v.clone());
        } else {
            config[k] = v.clone();
        }
    }
    config.to_string()
}

fn start(config: &str) -> (Host, VmId) {
    let mut host = Host::new(Module::gateward());
    let vm = host.start_vm(b"").unwrap();
    assert!(
        host.configure(vm, config.as_bytes()),
        "{:#?}",
        host.logs(vm)
    );
    (host, vm)
}

/// `POST /deploy` with the token through the filter; true when it went upstream.
fn deploy(host: &mut Host, vm: VmId, auth: &str) -> bool {
    let id = host.request(
        vm,
        &[
            (":authority", "api.internal"),
            (":path", "/deploy"),
            (":method", "POST"),
            (":scheme", "https"),
            ("authorization", auth),
        ],
    );
    let allowed = host.stream(id).action == Action::Continue;
    host.finish(id);
    allowed
}

fn bench(c: &mut Criterion) {
    // Optimised machine code, as V8's TurboFan gives Envoy (tests use Cranelift's `None` for
    // compile time). Set before the engine exists, while the process has one thread.
    if std::env::var_os("GATEWARD_WASM_OPT").is_none() {
        std::env::set_var("GATEWARD_WASM_OPT", "speed");
    }
    let token = mint(
        &fixtures::rsa_a(),
        Some("k"),
        &claims::github_actions(NOW - 10, AUD),
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    // Hot: the token and its decision are cached after the first request. Cold: no token
    // cache, so every request decodes, verifies and evaluates.
    let cold = json!({"token_cache_size": 0});
    let rows = [
        ("hot, policy library", "gateward-github.json", json!({})),
        ("cold, policy library", "gateward-github.json", cold.clone()),
        (
            "cold, policy library, compiled evaluator",
            "gateward-github.json",
            json!({"token_cache_size": 0, "policy": {"evaluator": "compiled"}}),
        ),
        ("cold, compact policy", "gateward-compact.json", cold),
    ];
    for (label, file, extra) in rows {
        let (mut host, vm) = start(&config(file, &extra));
        assert!(
            deploy(&mut host, vm, &auth),
            "{label}: {:#?}",
            host.logs(vm)
        );
        c.bench_function(&format!("filter {label}"), |b| {
            b.iter(|| deploy(&mut host, vm, &auth))
        });
        assert!(host.trap(vm).is_none(), "{label}: {:?}", host.trap(vm));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
