//! RSA signatures whose integer is not below the modulus (`s + n`, the twin of a valid
//! signature) are refused by the filter, on the pure-Rust path and before Envoy's
//! `verify_signature` (BoringSSL) is asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;
use gateward_devkit::hostile::rsa_twin;
use gateward_devkit::{claims, fixtures};
use serde_json::json;

/// [`static_config`] with PS256 allowed and the RSA key also under kid `p`, pinned to PS256.
fn pss_config() -> serde_json::Value {
    let mut c = static_config(json!({}));
    let mut pss = fixtures::rsa_a().public_jwk("p");
    pss["alg"] = json!("PS256");
    c["issuers"][0]["algorithms"] = json!(["RS256", "PS256"]);
    c["issuers"][0]["jwks"]["keys"]
        .as_array_mut()
        .unwrap()
        .push(pss);
    c
}

fn twins() -> [(&'static str, String, String); 2] {
    let c = claims::github_actions(NOW - 10, AUD);
    [("PS256", "p"), ("RS256", "a")].map(|(alg, kid)| {
        let (original, twin) = rsa_twin(&fixtures::rsa_a(), kid, alg, &c);
        (alg, original, twin)
    })
}

/// Without a host verifier (the pure-Rust path), the original PS256 and RS256 tokens are
/// allowed and their `s + n` twins refused as `signature_invalid`.
#[test]
fn rsa_twins_are_refused_on_the_rust_path() {
    let (mut host, vm) = start(&pss_config());
    for (alg, original, twin) in twins() {
        let s = deploy(&mut host, vm, &original);
        assert!(host.stream(s).is_allowed(), "{alg}: {:?}", host.stream(s));
        let s = deploy(&mut host, vm, &twin);
        assert_eq!(code(&host, s), "signature_invalid", "{alg}");
        let body = host.stream(s).local_reply.as_ref().unwrap().body_json();
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("not below the key's modulus")),
            "{alg}: {body}"
        );
    }
    assert_no_trap(&host, &[vm]);
}

/// With a host `verify_signature` that accepts anything (RS* go to it), the twin is still
/// refused, and the host is never asked about it: the range check runs in the core first.
#[test]
fn rsa_twins_never_reach_the_hosts_verify_signature() {
    let mut host = gateward_host_tests::Host::new(gateward_host_tests::Module::gateward());
    host.add_cluster("github");
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    host.register_foreign_function("verify_signature", move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(vec![0x08, 0x01])
    });
    let vm = host.start_vm(b"").unwrap();
    assert!(host.configure(vm, pss_config().to_string().as_bytes()));
    let [_, (_, original, twin)] = twins();
    let s = deploy(&mut host, vm, &original);
    assert!(host.stream(s).is_allowed(), "{:?}", host.stream(s));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "RS256 goes to the host");
    let s = deploy(&mut host, vm, &twin);
    assert_eq!(code(&host, s), "signature_invalid");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the host was asked about the s + n twin"
    );
    assert_no_trap(&host, &[vm]);
}
