//! The real filter module in the wasmtime proxy-wasm host: configuration, and each request's
//! outcome (allow with headers rewritten, every deny code as Envoy's client would see it).
use crate::common::*;
use gateward_devkit::fixtures;
use gateward_host_tests::{Action, Host, LogLevel, Module};
use serde_json::json;

#[test]
fn valid_token_is_allowed_with_claim_headers_and_without_the_token() {
    let (mut host, vm) = start(&static_config(json!({})));
    let t = token(&fixtures::rsa_a(), "a");
    let auth = format!("Bearer {t}");
    let s = request(
        &mut host,
        vm,
        "POST",
        "/deploy",
        &[
            ("authorization", &auth),
            // A client's attempt to forge identity headers is overwritten.
            ("x-ci-repository", "evil/repo"),
            ("x-ci-ref", "refs/heads/forged"),
        ],
    );
    let stream = host.stream(s);
    assert_eq!(stream.action, Action::Continue);
    assert!(stream.is_allowed());
    assert_eq!(stream.header("authorization"), None, "token forwarded");
    assert_eq!(stream.header("x-ci-repository"), Some("octo-org/deploy"));
    assert_eq!(
        stream.header("x-ci-subject"),
        Some("repo:octo-org/deploy:environment:prod")
    );
    assert_eq!(stream.header("x-ci-ref"), Some("refs/heads/main"));
    let forged = stream
        .request_headers
        .iter()
        .filter(|(k, _)| k == "x-ci-repository")
        .count();
    assert_eq!(forged, 1);
    assert_eq!(host.metric("gateward.allowed"), Some(1));

    let log = decisions(&host, vm);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["decision"], "allow");
    assert_eq!(log[0]["issuer"], "github");
    assert_eq!(log[0]["sub"], "repo:octo-org/deploy:environment:prod");
    assert_eq!(log[0]["jti"], "6f7c6d5e-1b7a-4a52-9c8e-2f5a0f3b9d11");
    assert_eq!(log[0]["reason"], "deploy from main");
    assert_eq!(log[0]["token"].as_str().unwrap().len(), 16);
    assert!(log[0]["latency_us"].is_u64());
    let signature = t.rsplit('.').next().unwrap();
    for line in host.logs(vm) {
        assert!(!line.message.contains(signature), "token logged: {line:?}");
    }
    assert_no_trap(&host, &[vm]);
}

#[test]
fn every_deny_code_reaches_the_client_with_status_body_and_challenge() {
    let (mut host, vm) = start(&static_config(json!({})));
    let a = fixtures::rsa_a();
    let cases: Vec<(String, &str, &str, u32)> = vec![
        ("not-a-token".into(), "/deploy", "token_malformed", 401),
        ("x".repeat(9000), "/deploy", "token_too_large", 401),
        (
            token_with(&a, "a", |c| c["exp"] = json!(NOW - 120)),
            "/deploy",
            "expired",
            401,
        ),
        (
            token_with(&a, "a", |c| c["nbf"] = json!(NOW + 3600)),
            "/deploy",
            "not_yet_valid",
            401,
        ),
        (
            token_with(&a, "a", |c| c["aud"] = json!("https://github.com/evil")),
            "/deploy",
            "audience_mismatch",
            401,
        ),
        (
            token_with(&a, "a", |c| c["iss"] = json!("https://evil.example")),
            "/deploy",
            "issuer_untrusted",
            401,
        ),
        (
            token(&fixtures::rsa_b(), "a"),
            "/deploy",
            "signature_invalid",
            401,
        ),
        (
            token(&fixtures::rsa_b(), "zzz"),
            "/deploy",
            "key_not_found",
            401,
        ),
        (
            token(&fixtures::p256(), "a"),
            "/deploy",
            "alg_not_allowed",
            401,
        ),
        (
            token_with(&a, "a", |c| c["exp"] = json!(NOW + 86_400)),
            "/deploy",
            "lifetime_exceeded",
            401,
        ),
        (
            token_with(&a, "a", |c| {
                c.as_object_mut().unwrap().remove("repository_owner_id");
            }),
            "/deploy",
            "claim_missing",
            401,
        ),
        (
            token_with(&a, "a", |c| c["exp"] = json!("soon")),
            "/deploy",
            "claim_invalid",
            401,
        ),
        (
            token_with(&a, "a", |c| c["ref"] = json!("refs/heads/feature")),
            "/deploy",
            "policy_denied",
            403,
        ),
    ];
    for (t, path, code, status) in &cases {
        let auth = format!("Bearer {t}");
        let s = request(&mut host, vm, "POST", path, &[("authorization", &auth)]);
        let stream = host.stream(s);
        assert!(!stream.is_allowed(), "{code}: allowed");
        let reply = stream.local_reply.as_ref().expect("a local reply");
        assert_eq!(reply.status, *status, "{code}");
        let body = reply.body_json();
        assert_eq!(body["code"], *code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let challenge = reply.header("www-authenticate");
        if *status == 401 {
            let c = challenge.expect("WWW-Authenticate on a 401");
            assert!(c.starts_with("Bearer realm=\"gateward\""), "{c}");
            assert!(c.contains("error=\"invalid_token\""), "{c}");
        } else {
            assert_eq!(challenge, None, "{code}");
        }
        host.finish(s);
    }
    assert_eq!(
        host.metric("gateward.denied"),
        Some(i64::try_from(cases.len()).unwrap())
    );
    assert_eq!(host.metric("gateward.denied.expired"), Some(1));
    assert_eq!(host.metric("gateward.allowed").unwrap_or(0), 0);
    assert_no_trap(&host, &[vm]);
}

#[test]
fn no_token_is_a_bare_challenge_and_two_tokens_are_ambiguous() {
    let (mut host, vm) = start(&static_config(json!({
        "token_sources": [{"header": "authorization"}, {"query": "access_token"}],
    })));
    let s = request(&mut host, vm, "POST", "/deploy", &[]);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body_json()["code"], "token_missing");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"gateward\"")
    );

    let t = token(&fixtures::rsa_a(), "a");
    let auth = format!("Bearer {t}");
    // Repeated `authorization` headers reach the filter joined by "," as in Envoy.
    let s = request(
        &mut host,
        vm,
        "POST",
        "/deploy",
        &[("authorization", &auth), ("authorization", &auth)],
    );
    assert_eq!(
        host.stream(s).header("authorization"),
        Some(format!("{auth},{auth}").as_str())
    );
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.body_json()["code"], "token_ambiguous");

    let path = format!("/deploy?access_token={t}");
    let s = request(&mut host, vm, "POST", &path, &[("authorization", &auth)]);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.body_json()["code"], "token_ambiguous");
    assert_no_trap(&host, &[vm]);
}

#[test]
fn query_and_cookie_tokens_are_removed_before_the_upstream() {
    let (mut host, vm) = start(&static_config(json!({
        "token_sources": [{"query": "access_token"}, {"cookie": "ci_token"}],
    })));
    let t = token(&fixtures::rsa_a(), "a");
    let s = request(
        &mut host,
        vm,
        "POST",
        &format!("/deploy?env=prod&access_token={t}&x=1"),
        &[],
    );
    assert!(host.stream(s).is_allowed());
    assert_eq!(host.stream(s).header(":path"), Some("/deploy?env=prod&x=1"));
    // The decision log has the path without its query (and so without the token).
    assert_eq!(decisions(&host, vm)[0]["path"], "/deploy");
    assert!(host.logs(vm).iter().all(|l| !l.message.contains(&t)));

    let cookie = format!("session=abc; ci_token={t}; theme=dark");
    let s = request(&mut host, vm, "POST", "/deploy", &[("cookie", &cookie)]);
    assert!(host.stream(s).is_allowed());
    assert_eq!(
        host.stream(s).header("cookie"),
        Some("session=abc; theme=dark")
    );

    // HTTP/2 style: one header per cookie, the token in the second.
    let token_cookie = format!("ci_token={t}");
    let s = request(
        &mut host,
        vm,
        "POST",
        "/deploy",
        &[("cookie", "session=abc"), ("cookie", &token_cookie)],
    );
    assert!(host.stream(s).is_allowed());
    let cookies: Vec<&str> = host
        .stream(s)
        .request_headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["session=abc"]);
    assert_no_trap(&host, &[vm]);
}

#[test]
fn forward_token_keeps_it() {
    let (mut host, vm) = start(&static_config(json!({"forward_token": true})));
    let t = token(&fixtures::rsa_a(), "a");
    let s = deploy(&mut host, vm, &t);
    assert!(host.stream(s).is_allowed());
    assert_eq!(
        host.stream(s).header("authorization"),
        Some(format!("Bearer {t}").as_str())
    );
}

#[test]
fn policy_status_and_response_headers_reach_the_client() {
    let (mut host, vm) = start(&static_config(json!({})));
    let t = token(&fixtures::rsa_a(), "a");
    let auth = format!("Bearer {t}");
    let s = request(&mut host, vm, "GET", "/busy", &[("authorization", &auth)]);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("30"));
    assert_eq!(reply.body_json()["message"], "slow down");
}

#[test]
fn policy_error_fails_closed() {
    // A result that is neither a boolean nor a decision object.
    let bad = "package gateward\nimport rego.v1\ndecision := \"allow\"\n";
    let config = static_config(json!({
        "policy": {"modules": [{"name": "bad.rego", "rego": bad}]},
    }));
    let (mut host, vm) = start(&config);
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body_json()["code"], "policy_error");
    assert_eq!(host.metric("gateward.policy_error"), Some(1));
    assert_no_trap(&host, &[vm]);
}

#[test]
fn a_policy_past_its_evaluation_budget_is_denied_and_the_vm_keeps_serving() {
    // Sixteen million iterations; the module's clock (WASI monotonic) stops it after 20 ms.
    let slow = r#"
package gateward
import rego.v1
default decision := false
decision if {
    input.request.path == "/slow"
    count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i + j]) > 0
}
decision if input.request.path == "/fast"
"#;
    let config = static_config(json!({
        "policy": {"modules": [{"name": "slow.rego", "rego": slow}], "max_evaluation_ms": 20},
    }));
    let (mut host, vm) = start(&config);
    let auth = format!("Bearer {}", token(&fixtures::rsa_a(), "a"));
    let s = request(&mut host, vm, "GET", "/slow", &[("authorization", &auth)]);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body_json()["code"], "policy_error");
    assert_eq!(host.metric("gateward.policy_error"), Some(1));
    let s = request(&mut host, vm, "GET", "/fast", &[("authorization", &auth)]);
    assert!(
        host.stream(s).local_reply.is_none(),
        "the next request is served"
    );
    assert_no_trap(&host, &[vm]);
}

#[test]
fn with_replay_protection_a_token_is_let_through_once_across_workers() {
    let config = static_config(json!({"replay": {"jti": true}}));
    let (mut host, vm) = start(&config);
    let other = host.start_vm(b"").unwrap();
    assert!(host.configure(other, config.to_string().as_bytes()));
    let t = token_with(&fixtures::rsa_a(), "a", |c| {
        c["jti"] = json!("run-1-attempt-1")
    });

    let s = deploy(&mut host, vm, &t);
    assert!(
        host.stream(s).local_reply.is_none(),
        "first use is let through"
    );
    // Again on the same worker (a token-cache and decision hit), then on another worker.
    for worker in [vm, other] {
        let s = deploy(&mut host, worker, &t);
        let reply = host.stream(s).local_reply.clone().unwrap();
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body_json()["code"], "token_replayed");
    }
    assert_eq!(host.metric("gateward.denied.token_replayed"), Some(2));

    // Another jti is another token; one without a jti cannot be recorded.
    let t2 = token_with(&fixtures::rsa_a(), "a", |c| {
        c["jti"] = json!("run-1-attempt-2")
    });
    let s = deploy(&mut host, other, &t2);
    assert!(host.stream(s).local_reply.is_none());
    let bare = token_with(&fixtures::rsa_a(), "a", |c| {
        c.as_object_mut().unwrap().remove("jti");
    });
    let s = deploy(&mut host, vm, &bare);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.body_json()["code"], "claim_missing");

    // A denied request does not spend its token.
    let t3 = token_with(&fixtures::rsa_a(), "a", |c| c["jti"] = json!("run-2"));
    let auth = format!("Bearer {t3}");
    let s = request(
        &mut host,
        vm,
        "POST",
        "/elsewhere",
        &[("authorization", &auth)],
    );
    assert_eq!(host.stream(s).local_reply.clone().unwrap().status, 403);
    let s = deploy(&mut host, vm, &t3);
    assert!(host.stream(s).local_reply.is_none());

    // Once the token has expired (and the leeway passed) its entry is dropped, and the token
    // itself is refused as expired, not as replayed.
    host.advance(3_600_000);
    let s = deploy(&mut host, vm, &t);
    assert_eq!(
        host.stream(s).local_reply.clone().unwrap().body_json()["code"],
        "expired"
    );
    assert_no_trap(&host, &[vm, other]);
}

#[test]
fn an_unreadable_replay_record_fails_closed() {
    let config = static_config(json!({"replay": {"jti": true, "max_tokens": 1024}}));
    let (mut host, vm) = start(&config);
    // The record is 16 buckets created empty at configuration; spoil every one of them.
    let buckets: Vec<String> = (0..16)
        .map(|b| format!("gateward.v1.replay.16x64.{b}"))
        .collect();
    for key in &buckets {
        assert_eq!(host.shared_data(key).map(|(v, _)| v), Some(vec![]), "{key}");
        host.put_shared_data(key, b"not a record");
    }
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body_json()["code"], "replay_unavailable");
    assert_no_trap(&host, &[vm]);
}

#[test]
fn report_mode_logs_the_denial_and_lets_the_request_through_without_forged_identity() {
    let (mut host, vm) = start(&static_config(json!({"mode": "report"})));
    let t = token_with(&fixtures::rsa_a(), "a", |c| {
        c["ref"] = json!("refs/heads/feature")
    });
    let auth = format!("Bearer {t}");
    let s = request(
        &mut host,
        vm,
        "POST",
        "/deploy",
        &[("authorization", &auth), ("x-ci-repository", "forged")],
    );
    let stream = host.stream(s);
    assert!(stream.is_allowed(), "report mode must not block");
    assert_eq!(stream.header("x-ci-repository"), None);
    assert_eq!(
        stream.header("authorization"),
        None,
        "the token went upstream"
    );
    let log = decisions(&host, vm);
    assert_eq!(log[0]["decision"], "deny (report only)");
    assert_eq!(log[0]["code"], "policy_denied");
    assert_eq!(host.metric("gateward.report_only_denied"), Some(1));
    assert_eq!(host.metric("gateward.denied").unwrap_or(0), 0);
}

#[test]
fn declared_policy_headers_never_reach_the_upstream_from_the_client() {
    // A feature-branch token: denied by the policy, let through by report mode, with a client's
    // `x-ci-ref`, the header the policy's allow sets.
    let t = token_with(&fixtures::rsa_a(), "a", |c| {
        c["ref"] = json!("refs/heads/feature")
    });
    let auth = format!("Bearer {t}");
    let forged = [
        ("authorization", auth.as_str()),
        ("x-ci-ref", "refs/heads/main"),
    ];
    let upstream_ref = |declared: bool| {
        let mut config = static_config(json!({"mode": "report"}));
        if declared {
            config["policy"]["headers"] = json!(["x-ci-ref"]);
        }
        let (mut host, vm) = start(&config);
        let s = request(&mut host, vm, "POST", "/deploy", &forged);
        assert!(host.stream(s).is_allowed(), "report mode must not block");
        assert_eq!(decisions(&host, vm)[0]["code"], "policy_denied");
        host.stream(s).header("x-ci-ref").map(str::to_string)
    };
    // Undeclared, only a decision that sets the header removes it (threat model §6.1).
    assert_eq!(upstream_ref(false).as_deref(), Some("refs/heads/main"));
    assert_eq!(upstream_ref(true), None);
}

#[test]
fn cors_preflight_bypasses_only_when_configured() {
    let preflight = [
        ("origin", "https://ci.example"),
        ("access-control-request-method", "POST"),
    ];
    let (mut host, vm) = start(&static_config(json!({})));
    let s = request(&mut host, vm, "OPTIONS", "/deploy", &preflight);
    assert_eq!(
        host.stream(s).local_reply.as_ref().map(|r| r.status),
        Some(401)
    );

    let (mut host, vm) = start(&static_config(json!({"allow_cors_preflight": true})));
    let forged = [&preflight[..], &[("x-ci-repository", "octo-org/deploy")]].concat();
    let s = request(&mut host, vm, "OPTIONS", "/deploy", &forged);
    assert!(host.stream(s).is_allowed());
    assert_eq!(decisions(&host, vm)[0]["decision"], "bypass");
    assert_eq!(
        host.stream(s).header("x-ci-repository"),
        None,
        "a forged identity went upstream with the preflight"
    );
    let s = request(&mut host, vm, "OPTIONS", "/deploy", &preflight[..1]);
    assert!(
        !host.stream(s).is_allowed(),
        "not a preflight without the method header"
    );
}

#[test]
fn repeated_token_is_served_from_the_cache_until_it_expires() {
    let (mut host, vm) = start(&static_config(json!({})));
    let t = token(&fixtures::rsa_a(), "a");
    for _ in 0..3 {
        let s = deploy(&mut host, vm, &t);
        assert!(host.stream(s).is_allowed());
        host.finish(s);
    }
    assert_eq!(host.metric("gateward.token_cache_miss"), Some(1));
    assert_eq!(host.metric("gateward.token_cache_hit"), Some(2));
    let log = decisions(&host, vm);
    assert_eq!(log[0]["cache"], "miss");
    // The same token on the same request: the decision itself is reused.
    assert_eq!(log[2]["cache"], "decision");

    // exp is NOW + 290; with 60 s leeway the cached entry dies at NOW + 350.
    host.set_now_ms(u64::try_from(NOW + 351).unwrap() * 1000);
    let s = deploy(&mut host, vm, &t);
    assert_eq!(
        host.stream(s).local_reply.as_ref().unwrap().body_json()["code"],
        "expired"
    );
    // A different request path still runs the policy on a cached token.
    host.set_now_ms(u64::try_from(NOW).unwrap() * 1000);
    let t2 = token_with(&fixtures::rsa_a(), "a", |c| c["run_id"] = json!("2"));
    let auth = format!("Bearer {t2}");
    let s = request(
        &mut host,
        vm,
        "POST",
        "/deploy",
        &[("authorization", &auth)],
    );
    assert!(host.stream(s).is_allowed());
    let s = request(&mut host, vm, "POST", "/other", &[("authorization", &auth)]);
    assert_eq!(
        host.stream(s).local_reply.as_ref().unwrap().body_json()["code"],
        "policy_denied"
    );
    assert_no_trap(&host, &[vm]);
}

#[test]
fn decisions_are_reused_only_for_requests_the_policy_cannot_tell_apart() {
    // Reads a header and the clock: both become part of the reuse key.
    let policy = r#"
package gateward
import rego.v1

decision := {"allow": true} if {
    input.request.headers["x-env"] == "prod"
    input.now < 1760000100
}
"#;
    let (mut host, vm) = start(&static_config(
        json!({"policy": {"modules": [{"name": "p.rego", "rego": policy}]}}),
    ));
    let auth = format!("Bearer {}", token(&fixtures::rsa_a(), "a"));
    let send = |host: &mut Host, env: &str| {
        let s = request(
            host,
            vm,
            "GET",
            "/x",
            // A fixed request id: the host (like Envoy) would otherwise generate a new one per
            // request, and a policy that reads headers would never see two equal requests.
            &[
                ("authorization", &auth),
                ("x-env", env),
                ("x-request-id", "r-1"),
            ],
        );
        let allowed = host.stream(s).is_allowed();
        host.finish(s);
        allowed
    };
    assert!(send(&mut host, "prod"));
    assert!(
        !send(&mut host, "dev"),
        "another header value is evaluated anew"
    );
    assert!(send(&mut host, "prod"));
    // The clock moved past the policy's limit: not the earlier decision.
    host.set_now_ms(u64::try_from(NOW + 101).unwrap() * 1000);
    assert!(!send(&mut host, "prod"));
    let caches: Vec<serde_json::Value> = decisions(&host, vm)
        .iter()
        .map(|d| d["cache"].clone())
        .collect();
    assert_eq!(
        caches,
        [json!("miss"), json!("hit"), json!("decision"), json!("hit")]
    );

    // A policy with a non-deterministic builtin is evaluated every time.
    let random = "package gateward\nimport rego.v1\ndecision := rand.intn(\"k\", 1) == 0\n";
    let (mut host, vm) = start(&static_config(
        json!({"policy": {"modules": [{"name": "r.rego", "rego": random}]}}),
    ));
    for _ in 0..2 {
        let s = request(&mut host, vm, "GET", "/x", &[("authorization", &auth)]);
        assert!(host.stream(s).is_allowed());
        host.finish(s);
    }
    let caches: Vec<serde_json::Value> = decisions(&host, vm)
        .iter()
        .map(|d| d["cache"].clone())
        .collect();
    assert_eq!(caches, [json!("miss"), json!("hit")]);
    assert_no_trap(&host, &[vm]);
}

#[test]
fn invalid_configuration_is_refused_with_every_error_logged() {
    let mut host = Host::new(Module::gateward());
    let vm = host.start_vm(b"").unwrap();
    assert!(!host.configure(vm, b"not json"));
    assert!(host
        .logs(vm)
        .iter()
        .any(|l| l.level == LogLevel::Error && l.message.contains("configuration rejected")));

    let mut bad = remote_config(json!({}));
    bad["issuers"][0]["audiences"] = json!([]);
    bad["issuers"][0]["fetch"] = json!({});
    bad["policy"]["modules"][0]["rego"] = json!("package gateward\nthis is not rego");
    assert!(!host.configure(vm, bad.to_string().as_bytes()));
    let errors: Vec<String> = host
        .take_logs(vm)
        .into_iter()
        .filter(|l| l.level == LogLevel::Error)
        .map(|l| l.message)
        .collect();
    let all = errors.join("\n");
    assert!(
        all.contains("issuers[0].audiences: must not be empty"),
        "{all}"
    );

    // Envoy-specific: remote keys need a cluster.
    let no_cluster = remote_config(json!({"cluster": null}));
    assert!(!host.configure(vm, no_cluster.to_string().as_bytes()));
    let all: String = host
        .take_logs(vm)
        .into_iter()
        .map(|l| l.message + "\n")
        .collect();
    assert!(all.contains("issuers[0].fetch.cluster: required"), "{all}");

    let s = request(&mut host, vm, "GET", "/", &[]);
    let reply = host.stream(s).local_reply.clone().unwrap();
    assert_eq!(reply.status, 500, "no configuration must fail closed");
    assert_no_trap(&host, &[vm]);
}

#[test]
fn reconfiguration_replaces_the_policy_and_a_bad_one_keeps_the_old() {
    let (mut host, vm) = start(&static_config(json!({})));
    let t = token(&fixtures::rsa_a(), "a");
    let auth = format!("Bearer {t}");
    let s = request(&mut host, vm, "POST", "/other", &[("authorization", &auth)]);
    assert!(!host.stream(s).is_allowed());

    let open = "package gateward\nimport rego.v1\ndecision := {\"allow\": true}\n";
    let new = static_config(json!({"policy": {"modules": [{"rego": open}]}}));
    assert!(host.replace_root(vm, new.to_string().as_bytes()));
    let s = request(&mut host, vm, "POST", "/other", &[("authorization", &auth)]);
    assert!(host.stream(s).is_allowed());

    assert!(!host.configure(vm, b"{\"issuers\": 5}"));
    let s = request(&mut host, vm, "POST", "/other", &[("authorization", &auth)]);
    assert!(
        host.stream(s).is_allowed(),
        "a rejected update keeps the old config"
    );
    assert_no_trap(&host, &[vm]);
}
