//! Envoy's calls failing under the module: each failure decides the request (closed), and the
//! VM keeps serving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::*;
use gateward_devkit::fixtures;
use gateward_host_tests::ForeignError;
use serde_json::json;

/// A `verify_signature` that fails on the host's side (not NotFound) leaves the decision to the
/// pure-Rust path; an answer the module cannot read is a rejection, never an allow.
#[test]
fn a_failing_host_signature_check_falls_back_to_rust_and_garbage_rejects() {
    let (mut host, vm) = start(&static_config(json!({})));
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    host.register_foreign_function("verify_signature", move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        Err(ForeignError::InternalFailure)
    });
    let good = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    assert!(host.stream(good).is_allowed(), "{:?}", host.stream(good));
    let forged = deploy(&mut host, vm, &token(&fixtures::rsa_b(), "a"));
    assert_eq!(code(&host, forged), "signature_invalid");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the host was asked each time"
    );

    // A truncated protobuf answer: result unreadable, signature refused.
    host.register_foreign_function("verify_signature", |_| Ok(vec![0x08]));
    let other = token_with(&fixtures::rsa_a(), "a", |c| c["jti"] = json!("another"));
    let s = deploy(&mut host, vm, &other);
    assert_eq!(code(&host, s), "signature_invalid");
    assert_no_trap(&host, &[vm]);
}

/// Envoy refusing an edit of the request headers (removing the token, replacing identity
/// headers) fails that request closed with a 500, logged as such; the VM keeps serving. The
/// SDK's own header calls would have panicked (a trapped VM) instead.
#[test]
fn a_refused_header_edit_fails_the_request_closed_and_the_vm_keeps_serving() {
    for config in [
        static_config(json!({})),
        static_config(json!({"mode": "report"})),
    ] {
        let (mut host, vm) = start(&config);
        let t = token(&fixtures::rsa_a(), "a");
        host.refuse_header_edits(vm, true);
        let s = deploy(&mut host, vm, &t);
        assert!(!host.stream(s).is_allowed(), "{config}");
        assert_eq!(code(&host, s), "internal_error");
        assert_eq!(host.stream(s).local_reply.as_ref().unwrap().status, 500);
        let logged = decisions(&host, vm);
        assert_eq!(
            logged.last().unwrap()["code"],
            "internal_error",
            "{logged:?}"
        );
        assert!(host
            .logs(vm)
            .iter()
            .all(|l| !l.message.contains(&t[t.len() - 40..])));

        host.refuse_header_edits(vm, false);
        let s = deploy(&mut host, vm, &t);
        assert!(host.stream(s).is_allowed());
        assert_no_trap(&host, &[vm]);
    }
}

/// A host clock at the epoch (unreadable, or never set) would put every `exp` in the future:
/// an expired token without `iat` or `nbf` would pass. Requests are refused instead (500) until
/// the clock reads a plausible time.
#[test]
fn a_clock_at_the_epoch_refuses_requests_instead_of_accepting_expired_tokens() {
    let config = json!({"issuers": [{
        "name": "plain", "issuer": "https://issuer.example", "audiences": ["api"],
        "jwks": gateward_devkit::jwks(&[("a", &fixtures::rsa_a())]),
    }]});
    let (mut host, vm) = start(&config);
    let expired = gateward_devkit::mint(
        &fixtures::rsa_a(),
        Some("a"),
        &json!({"iss": "https://issuer.example", "aud": "api", "sub": "x", "exp": NOW - 100}),
    )
    .unwrap();
    let s = deploy(&mut host, vm, &expired);
    assert_eq!(code(&host, s), "expired");

    host.set_now_ms(0);
    let s = deploy(&mut host, vm, &expired);
    assert_eq!(code(&host, s), "internal_error");
    assert_eq!(host.stream(s).local_reply.as_ref().unwrap().status, 500);
    assert_no_trap(&host, &[vm]);
}
