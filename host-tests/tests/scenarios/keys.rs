//! Remote keys through the real filter: fetched through an Envoy cluster while requests wait,
//! shared between VMs, refreshed, rotated, and kept (or given up) when fetches fail.
use crate::common::*;
use gateward_devkit::{fixtures, jwks};
use gateward_host_tests::{Action, CallFailure, Host, HttpCall, Module, Response, StreamId};
use serde_json::json;

fn only_call(host: &Host) -> HttpCall {
    let calls = host.pending_calls();
    assert_eq!(calls.len(), 1, "expected one pending call: {calls:?}");
    calls.into_iter().next().unwrap()
}

/// Advances the clock in tick steps until a call is pending (at most `max_ms`).
fn advance_until_call(host: &mut Host, max_ms: u64) -> HttpCall {
    let mut waited = 0;
    while host.pending_calls().is_empty() {
        assert!(waited < max_ms, "no fetch within {max_ms} ms");
        host.advance(100);
        waited += 100;
    }
    only_call(host)
}

#[test]
fn first_request_waits_for_the_jwks_then_is_allowed() {
    let (mut host, vm) = start(&remote_config(json!({})));
    let t = token(&fixtures::rsa_a(), "a");
    let s = deploy(&mut host, vm, &t);
    assert_eq!(host.stream(s).action, Action::Pause);
    assert!(host.stream(s).local_reply.is_none());

    let call = only_call(&host);
    assert_eq!(call.cluster, "github");
    assert_eq!(call.path(), GITHUB_JWKS_PATH);
    assert_eq!(call.authority(), "token.actions.githubusercontent.com");
    assert_eq!(call.header(":method"), Some("GET"));
    assert_eq!(call.timeout_ms, 5_000);
    host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));

    let stream = host.stream(s);
    assert!(stream.resumed, "paused request not resumed");
    assert!(stream.is_allowed());
    assert_eq!(stream.header("x-ci-repository"), Some("octo-org/deploy"));
    assert_eq!(stream.header("authorization"), None);
    assert_eq!(host.metric("gateward.jwks_fetch_success"), Some(1));

    // Keys are cached: the next request is decided at once, without a fetch.
    let t2 = token_with(&fixtures::rsa_a(), "a", |c| c["run_id"] = json!("7"));
    let s2 = deploy(&mut host, vm, &t2);
    assert_eq!(host.stream(s2).action, Action::Continue);
    assert!(host.pending_calls().is_empty());
    assert_no_trap(&host, &[vm]);
}

#[test]
fn two_vms_share_one_fetch() {
    let config = remote_config(json!({}));
    let mut host = Host::new(Module::gateward());
    host.add_cluster("github");
    let vms: Vec<_> = (0..2).map(|_| host.start_vm(b"").unwrap()).collect();
    for vm in &vms {
        assert!(host.configure(*vm, config.to_string().as_bytes()));
    }
    let t = token(&fixtures::rsa_a(), "a");
    let s1 = deploy(&mut host, vms[0], &t);
    let s2 = deploy(&mut host, vms[1], &t);
    assert_eq!(host.stream(s1).action, Action::Pause);
    assert_eq!(host.stream(s2).action, Action::Pause);
    let call = only_call(&host);
    assert_eq!(call.id.vm, vms[0], "the first VM to need the keys fetches");
    host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    assert!(host.stream(s1).is_allowed());

    // The other VM picks the shared key set up on its next tick.
    host.advance(100);
    assert!(host.stream(s2).resumed && host.stream(s2).is_allowed());
    assert!(host.pending_calls().is_empty());
    assert_eq!(host.metric("gateward.jwks_fetch_success"), Some(1));
    assert_no_trap(&host, &vms);
}

#[test]
fn unknown_kid_refetches_once_then_is_rate_limited() {
    let (mut host, vm) = start(&remote_config(json!({"min_refetch_seconds": 30})));
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    let call = only_call(&host);
    host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    assert!(host.stream(s).is_allowed());

    // The issuer rotates: a token signed by a new key `b`.
    host.advance(31_000);
    let rotated = token(&fixtures::rsa_b(), "b");
    let s = deploy(&mut host, vm, &rotated);
    assert_eq!(
        host.stream(s).action,
        Action::Pause,
        "unknown kid should refetch"
    );
    let call = only_call(&host);
    host.respond(
        call.id,
        jwks_response(&[("a", &fixtures::rsa_a()), ("b", &fixtures::rsa_b())]),
    );
    assert!(host.stream(s).resumed && host.stream(s).is_allowed());

    // Another unknown kid right after: no second fetch inside the interval.
    let bogus = token(&fixtures::rsa_b(), "c");
    let s = deploy(&mut host, vm, &bogus);
    assert!(host.pending_calls().is_empty(), "refetch not rate limited");
    assert_eq!(code(&host, s), "key_not_found");

    // After the interval, one more refetch; the kid is still unknown.
    host.advance(31_000);
    let s = deploy(&mut host, vm, &bogus);
    let call = only_call(&host);
    host.respond(
        call.id,
        jwks_response(&[("a", &fixtures::rsa_a()), ("b", &fixtures::rsa_b())]),
    );
    assert_eq!(code(&host, s), "key_not_found");
    assert_no_trap(&host, &[vm]);
}

#[test]
fn rotation_reverifies_cached_tokens_against_the_new_key_set() {
    let (mut host, vm) = start(&remote_config(json!({"cache_seconds": 60})));
    let t = token(&fixtures::rsa_a(), "a");
    let s = deploy(&mut host, vm, &t);
    host.respond(
        only_call(&host).id,
        jwks_response(&[("a", &fixtures::rsa_a())]),
    );
    assert!(host.stream(s).is_allowed());
    // Background refresh at 90% of cache_seconds; the new set drops key `a`.
    let call = advance_until_call(&mut host, 60_000);
    host.respond(call.id, jwks_response(&[("b", &fixtures::rsa_b())]));
    let s = deploy(&mut host, vm, &t);
    assert_eq!(
        code(&host, s),
        "key_not_found",
        "a cached token outlived its key"
    );
    assert_no_trap(&host, &[vm]);
}

#[test]
fn issuer_down_at_start_fails_closed_then_recovers() {
    let (mut host, vm) = start(&remote_config(json!({"retry_seconds": 5})));
    let t = token(&fixtures::rsa_a(), "a");
    let s = deploy(&mut host, vm, &t);
    host.fail(only_call(&host).id, CallFailure::ConnectionRefused);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body_json()["code"], "keys_unavailable");
    assert_eq!(host.metric("gateward.jwks_fetch_failure"), Some(1));

    // Within retry_seconds: refused at once, no new fetch.
    let s = deploy(&mut host, vm, &t);
    assert_eq!(code(&host, s), "keys_unavailable");
    assert!(host.pending_calls().is_empty());

    // The tick retries by itself; once the issuer answers, requests pass.
    let call = advance_until_call(&mut host, 6_000);
    host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    let s = deploy(&mut host, vm, &t);
    assert!(host.stream(s).is_allowed());
    assert_no_trap(&host, &[vm]);
}

#[test]
fn an_unanswered_fetch_times_out_into_keys_unavailable() {
    let (mut host, vm) = start(&remote_config(json!({"timeout_ms": 2_000})));
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    assert_eq!(only_call(&host).timeout_ms, 2_000);
    host.advance(3_500);
    assert_eq!(code(&host, s), "keys_unavailable");
    assert!(host
        .logs(vm)
        .iter()
        .any(|l| l.message.contains("504") && l.message.contains("keys for github")));
    assert_no_trap(&host, &[vm]);
}

/// At most 4096 requests wait for keys per VM; the next is refused at once (503) rather than
/// held, and the waiting ones are still finished when the keys arrive.
#[test]
fn past_the_waiter_cap_requests_are_refused_at_once_and_the_waiting_ones_finish() {
    let (mut host, vm) = start(&remote_config(json!({"timeout_ms": 10_000})));
    let token = token(&fixtures::rsa_a(), "a");
    let waiting: Vec<StreamId> = (0..4096).map(|_| deploy(&mut host, vm, &token)).collect();
    assert!(waiting.iter().all(|s| host.stream(*s).is_paused()));
    let over = deploy(&mut host, vm, &token);
    assert_eq!(code(&host, over), "keys_unavailable");
    assert_eq!(host.stream(over).local_reply.as_ref().unwrap().status, 503);
    assert!(host
        .logs(vm)
        .iter()
        .any(|l| l.message.contains("too many requests waiting for keys")));
    host.respond(
        only_call(&host).id,
        jwks_response(&[("a", &fixtures::rsa_a())]),
    );
    assert!(waiting.iter().all(|s| host.stream(*s).is_allowed()));
    let after = deploy(&mut host, vm, &token);
    assert!(host.stream(after).is_allowed());
    assert_no_trap(&host, &[vm]);
}

#[test]
fn failed_refreshes_serve_the_last_good_keys_until_max_stale() {
    let fetch = json!({"cache_seconds": 20, "max_stale_seconds": 60, "retry_seconds": 5, "timeout_ms": 1000});
    let (mut host, vm) = start(&remote_config(fetch));
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    host.respond(
        only_call(&host).id,
        jwks_response(&[("a", &fixtures::rsa_a())]),
    );
    assert!(host.stream(s).is_allowed());

    // Refreshes fail (500) from 18 s on; the old keys keep serving.
    let mut failures = 0;
    while host.now_ms() < 1_760_000_055_000 {
        host.advance(100);
        for call in host.pending_calls() {
            host.respond(call.id, Response::json(500, "{}"));
            failures += 1;
        }
    }
    assert!(failures >= 5, "{failures} refresh attempts");
    let fresh = token_with(&fixtures::rsa_a(), "a", |c| {
        c["iat"] = json!(NOW + 50);
        c["exp"] = json!(NOW + 300);
    });
    let s = deploy(&mut host, vm, &fresh);
    assert!(host.stream(s).is_allowed(), "stale keys not served");
    assert!(host
        .logs(vm)
        .iter()
        .any(|l| l.message.contains("serving the previous key set")));

    // Past max_stale_seconds the old keys are no longer trusted.
    while host.now_ms() < 1_760_000_062_000 {
        host.advance(100);
        for call in host.pending_calls() {
            host.respond(call.id, Response::json(500, "{}"));
        }
    }
    let s = deploy(&mut host, vm, &fresh);
    if host.stream(s).action == Action::Pause {
        // A retry was under way: it fails too.
        let call = advance_until_call(&mut host, 6_000);
        host.respond(call.id, Response::json(500, "{}"));
    }
    assert_eq!(code(&host, s), "keys_unavailable");
    assert_no_trap(&host, &[vm]);
}

#[test]
fn hostile_key_documents_are_rejected_and_the_last_good_set_kept() {
    let fetch = json!({"cache_seconds": 10, "retry_seconds": 1});
    let (mut host, vm) = start(&remote_config(fetch));
    let t = token(&fixtures::rsa_a(), "a");
    let s = deploy(&mut host, vm, &t);
    host.respond(
        only_call(&host).id,
        jwks_response(&[("a", &fixtures::rsa_a())]),
    );
    assert!(host.stream(s).is_allowed());

    let good = jwks(&[("a", &fixtures::rsa_a())]);
    let mut duplicate = good.clone();
    let first = duplicate["keys"][0].clone();
    duplicate["keys"].as_array_mut().unwrap().push(first);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("too large", vec![b' '; 600 * 1024]),
        ("malformed", b"{\"keys\": [".to_vec()),
        ("duplicate kid", duplicate.to_string().into_bytes()),
        (
            "weak key only",
            jwks(&[("w", &fixtures::rsa_weak())])
                .to_string()
                .into_bytes(),
        ),
        (
            "symmetric key only",
            br#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#.to_vec(),
        ),
        ("not an object", b"[1,2,3]".to_vec()),
    ];
    for (i, (what, body)) in hostile.into_iter().enumerate() {
        let call = advance_until_call(&mut host, 12_000);
        host.respond(
            call.id,
            Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
            },
        );
        assert_eq!(
            host.metric("gateward.jwks_fetch_failure"),
            Some(i64::try_from(i).unwrap() + 1),
            "{what} accepted"
        );
        let fresh = token_with(&fixtures::rsa_a(), "a", |c| {
            c["run_id"] = json!(i.to_string())
        });
        let s = deploy(&mut host, vm, &fresh);
        assert!(
            host.stream(s).is_allowed(),
            "{what}: last good key set lost"
        );
    }
    assert_eq!(host.metric("gateward.jwks_fetch_success"), Some(1));
    assert_no_trap(&host, &[vm]);
}

#[test]
fn discovery_finds_the_jwks_and_refuses_a_mismatched_issuer() {
    let iss = "https://issuer.example";
    let config = json!({
        "issuers": [{
            "name": "dev",
            "issuer": iss,
            "audiences": [AUD],
            "discovery": true,
            "fetch": {"cluster": "issuer", "jwks_cluster": "keys"},
        }],
        "policy": {"modules": [{"rego": POLICY}]},
    });
    let mut host = Host::new(Module::gateward());
    host.add_cluster("issuer");
    host.add_cluster("keys");
    let vm = host.start_vm(b"").unwrap();
    assert!(host.configure(vm, config.to_string().as_bytes()));
    let t = token_with(&fixtures::rsa_a(), "a", |c| c["iss"] = json!(iss));

    let s = deploy(&mut host, vm, &t);
    let call = only_call(&host);
    assert_eq!(call.cluster, "issuer");
    assert_eq!(call.path(), "/.well-known/openid-configuration");
    assert_eq!(call.authority(), "issuer.example");
    let doc = json!({"issuer": iss, "jwks_uri": "https://keys.example/v1/jwks"});
    host.respond(call.id, Response::json(200, &doc.to_string()));
    let call = only_call(&host);
    assert_eq!(call.cluster, "keys");
    assert_eq!(call.authority(), "keys.example");
    assert_eq!(call.path(), "/v1/jwks");
    host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    assert!(host.stream(s).is_allowed());

    // A fresh host whose discovery document names another issuer.
    let mut host = Host::new(Module::gateward());
    host.add_cluster("issuer");
    host.add_cluster("keys");
    let vm = host.start_vm(b"").unwrap();
    assert!(host.configure(vm, config.to_string().as_bytes()));
    let s = deploy(&mut host, vm, &t);
    let doc = json!({"issuer": "https://evil.example", "jwks_uri": "https://keys.example/jwks"});
    host.respond(only_call(&host).id, Response::json(200, &doc.to_string()));
    assert!(host.pending_calls().is_empty());
    assert_eq!(code(&host, s), "keys_unavailable");
    assert!(host
        .logs(vm)
        .iter()
        .any(|l| l.message.contains("evil.example")));
    assert_no_trap(&host, &[vm]);
}

#[test]
fn a_request_gone_while_waiting_does_not_strand_the_others() {
    let (mut host, vm) = start(&remote_config(json!({})));
    let t = token(&fixtures::rsa_a(), "a");
    let first = deploy(&mut host, vm, &t);
    let second = deploy(&mut host, vm, &t);
    assert_eq!(host.stream(second).action, Action::Pause);
    let lost = only_call(&host);
    // The client of the request that started the fetch goes away.
    host.finish(first);
    // Envoy may still deliver the lost call's response, to nobody.
    if host.pending_calls().iter().any(|c| c.id == lost.id) {
        host.respond(lost.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    }
    if !host.stream(second).resumed {
        let call = advance_until_call(&mut host, 1_000);
        host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    }
    assert!(host.stream(second).resumed && host.stream(second).is_allowed());
    assert_no_trap(&host, &[vm]);
}

#[test]
fn unknown_cluster_is_reported_and_fails_closed() {
    let config = remote_config(json!({"cluster": "nope"}));
    let mut host = Host::new(Module::gateward());
    let vm = host.start_vm(b"").unwrap();
    assert!(host.configure(vm, config.to_string().as_bytes()));
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    assert_eq!(code(&host, s), "keys_unavailable");
    assert!(host
        .logs(vm)
        .iter()
        .any(|l| l.message.contains("is cluster \"nope\" defined?")));
    assert_no_trap(&host, &[vm]);
}

#[test]
fn a_vm_configured_during_a_fetch_does_not_start_another() {
    let config = remote_config(json!({}));
    let mut host = Host::new(Module::gateward());
    host.add_cluster("github");
    let first = host.start_vm(b"").unwrap();
    assert!(host.configure(first, config.to_string().as_bytes()));
    let t = token(&fixtures::rsa_a(), "a");
    let s1 = deploy(&mut host, first, &t);
    let call = only_call(&host);
    // A worker VM starts while the first one holds the fetch lease.
    let late = host.start_vm(b"").unwrap();
    assert!(host.configure(late, config.to_string().as_bytes()));
    let s2 = deploy(&mut host, late, &t);
    host.advance(300);
    assert_eq!(only_call(&host).id, call.id, "the late VM fetched too");
    host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
    host.advance(100);
    assert!(host.stream(s1).is_allowed() && host.stream(s2).is_allowed());
    assert_no_trap(&host, &[first, late]);
}
