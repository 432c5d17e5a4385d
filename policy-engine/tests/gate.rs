//! The gate end to end: config → locate → route → verify → authorize, with real signed tokens.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use gateward_devkit::{claims, fixtures, jwks, mint, SigningKey};
use policy_engine::{Config, Decision, DenyCode, Gate, Request};
use serde_json::{json, Value};

const NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";
const POLICY: &str = r#"
package gateward
import rego.v1

default decision := {"allow": false, "reason": "only octo-org/deploy on main may deploy"}

decision := {"allow": true, "headers": {"x-ci-ref": input.token.claims.ref}} if {
    input.token.claims.repository_owner_id == "9919"
    input.token.claims.repository == "octo-org/deploy"
    input.token.claims.ref == "refs/heads/main"
    input.request.method == "POST"
    input.request.path == "/deploy"
}
"#;

fn config(extra: Value) -> Value {
    let mut c = json!({
        "issuers": [{
            "name": "github",
            "preset": "github-actions",
            "audiences": [AUD],
            "jwks": jwks(&[("a", &fixtures::rsa_a()), ("p", &fixtures::p256())]),
        }],
        "policy": {"modules": [{"name": "deploy.rego", "rego": POLICY}]},
        "claims_to_headers": [{"claim": "repository", "header": "x-ci-repository"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn gate(extra: Value) -> Gate {
    Gate::from_json(&config(extra).to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn token_with(key: &SigningKey, kid: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut c = claims::github_actions(NOW - 10, AUD);
    edit(&mut c);
    mint(key, Some(kid), &c).unwrap()
}

fn check(gate: &Gate, method: &str, path: &str, headers: &[(&str, &str)]) -> Decision {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let req = Request {
        method,
        path,
        host: "api.internal",
        headers: &headers,
    };
    gate.check(&req, &|id, _| gate.static_keys(id), NOW)
}

fn deny_code(d: &Decision) -> DenyCode {
    d.code()
        .unwrap_or_else(|| panic!("expected a denial, got {d:?}"))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[test]
fn allowed_deploy_gets_claim_and_policy_headers_and_token_stripped() {
    let g = gate(json!({}));
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let d = check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]);
    let Decision::Allow(a) = d else {
        panic!("{d:?}")
    };
    assert_eq!(a.issuer, "github");
    assert_eq!(
        a.subject.as_deref(),
        Some("repo:octo-org/deploy:environment:prod")
    );
    assert!(a
        .headers
        .contains(&("x-ci-repository".into(), "octo-org/deploy".into())));
    assert!(a
        .headers
        .contains(&("x-ci-ref".into(), "refs/heads/main".into())));
    assert!(a.remove_headers.contains(&"x-ci-repository".into()));
    assert_eq!(
        a.strip_token,
        Some(policy_engine::Strip::Header("authorization".into()))
    );
}

#[test]
fn array_claims_reach_headers_as_rfc_8941_lists_that_keep_items_apart() {
    let g = gate(json!({"claims_to_headers": [{"claim": "groups", "header": "X-CI-Groups"}]}));
    let header = |groups: Value| {
        let t = token_with(&fixtures::rsa_a(), "a", |c| c["groups"] = groups);
        let d = check(
            &g,
            "POST",
            "/deploy",
            &[("authorization", &bearer(&t)), ("x-ci-groups", "forged")],
        );
        let Decision::Allow(a) = d else {
            panic!("{d:?}")
        };
        // Set or not, the client's copy is removed.
        assert!(a.remove_headers.contains(&"x-ci-groups".into()));
        let mut set = a.headers.into_iter().filter(|(k, _)| k == "x-ci-groups");
        let value = set.next().map(|(_, v)| v);
        assert_eq!(set.next(), None);
        value
    };
    // A comma inside a branch name no longer reads as two items.
    assert_eq!(header(json!(["a,b"])).as_deref(), Some(r#""a,b""#));
    assert_eq!(header(json!(["a", "b"])).as_deref(), Some(r#""a", "b""#));
    assert_eq!(
        header(json!([r#"x" , "admin"#, r"\"])).as_deref(),
        Some(r#""x\" , \"admin", "\\""#)
    );
    assert_eq!(header(json!([7, true])).as_deref(), Some("7, ?1"));
    // No exact form: no header, never a partial list.
    assert_eq!(header(json!(["dev", "caf\u{e9}"])), None);
    assert_eq!(header(json!([])), None);
    // A string claim is sent as it is.
    assert_eq!(header(json!("a,b")).as_deref(), Some("a,b"));

    // The old separator setting is refused, naming why.
    let e = Gate::from_json(&config(json!({"claims_header_separator": ";"})).to_string())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("claims_header_separator") && e.contains("RFC 8941"),
        "{e}"
    );
}

#[test]
fn es256_key_in_the_same_set_works() {
    let g = gate(json!({"issuers": [{
        "name": "github", "preset": "github-actions", "audiences": [AUD], "algorithms": ["RS256", "ES256"],
        "jwks": jwks(&[("a", &fixtures::rsa_a()), ("p", &fixtures::p256())]),
    }]}));
    let t = token_with(&fixtures::p256(), "p", |_| {});
    assert!(check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]).is_allow());
}

#[test]
fn every_deny_code_with_its_status() {
    let g = gate(json!({}));
    let a = fixtures::rsa_a();
    let cases: Vec<(String, &str, DenyCode)> = vec![
        ("not-a-token".into(), "/deploy", DenyCode::TokenMalformed),
        ("x".repeat(9000), "/deploy", DenyCode::TokenTooLarge),
        (
            token_with(&a, "a", |c| c["exp"] = json!(NOW - 120)),
            "/deploy",
            DenyCode::Expired,
        ),
        (
            token_with(&a, "a", |c| c["nbf"] = json!(NOW + 3600)),
            "/deploy",
            DenyCode::NotYetValid,
        ),
        (
            token_with(&a, "a", |c| c["iat"] = json!(NOW + 3600)),
            "/deploy",
            DenyCode::NotYetValid,
        ),
        (
            token_with(&a, "a", |c| c["aud"] = json!("https://github.com/evil")),
            "/deploy",
            DenyCode::AudienceMismatch,
        ),
        (
            token_with(&a, "a", |c| {
                c["iss"] = json!("https://token.actions.githubusercontent.com/")
            }),
            "/deploy",
            DenyCode::IssuerUntrusted,
        ),
        (
            token_with(&fixtures::rsa_b(), "a", |_| {}),
            "/deploy",
            DenyCode::SignatureInvalid,
        ),
        (
            token_with(&fixtures::rsa_b(), "zzz", |_| {}),
            "/deploy",
            DenyCode::KeyNotFound,
        ),
        (
            token_with(&fixtures::p256(), "p", |_| {}),
            "/deploy",
            DenyCode::AlgNotAllowed,
        ),
        (
            token_with(&a, "a", |c| c["exp"] = json!(NOW + 86_400)),
            "/deploy",
            DenyCode::LifetimeExceeded,
        ),
        (
            token_with(&a, "a", |c| {
                c.as_object_mut().unwrap().remove("repository_owner_id");
            }),
            "/deploy",
            DenyCode::ClaimMissing,
        ),
        (
            token_with(&a, "a", |c| c["exp"] = json!("soon")),
            "/deploy",
            DenyCode::ClaimInvalid,
        ),
        (
            token_with(&a, "a", |c| c["ref"] = json!("refs/heads/feature")),
            "/deploy",
            DenyCode::PolicyDenied,
        ),
        (
            token_with(&a, "a", |_| {}),
            "/other",
            DenyCode::PolicyDenied,
        ),
    ];
    for (token, path, want) in cases {
        let d = check(&g, "POST", path, &[("authorization", &bearer(&token))]);
        assert_eq!(deny_code(&d), want, "{d:?}");
        let Decision::Deny(deny) = d else {
            unreachable!()
        };
        assert_eq!(deny.status, want.status());
        let www = deny.www_authenticate(g.realm());
        if want.status() == 401 {
            assert!(www.unwrap().contains("error=\"invalid_token\""));
        } else {
            assert_eq!(www, None);
        }
        assert!(
            !deny.message.contains(&token[..token.len().min(40)]),
            "message leaks the token"
        );
    }
    let d = check(&g, "POST", "/deploy", &[]);
    assert_eq!(deny_code(&d), DenyCode::TokenMissing);
    let Decision::Deny(deny) = d else {
        unreachable!()
    };
    assert_eq!(
        deny.www_authenticate("gateward").unwrap(),
        "Bearer realm=\"gateward\""
    );
}

#[test]
fn policy_deny_carries_reason_and_policy_errors_fail_closed() {
    let g = gate(json!({}));
    let t = token_with(&fixtures::rsa_a(), "a", |c| {
        c["ref"] = json!("refs/heads/dev")
    });
    let Decision::Deny(d) = check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]) else {
        panic!()
    };
    assert_eq!(d.message, "only octo-org/deploy on main may deploy");

    let broken = "package gateward\nimport rego.v1\ndecision := x if { x := 1 / 0 }\n";
    let g = gate(json!({"policy": {"modules": [{"rego": broken}]}}));
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let d = check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]);
    assert!(
        matches!(
            deny_code(&d),
            DenyCode::PolicyError | DenyCode::PolicyDenied
        ),
        "{d:?}"
    );
    assert!(!d.is_allow());
}

#[test]
fn a_policy_that_runs_past_its_budget_is_stopped_and_denies_with_policy_error() {
    // Sixteen million iterations: minutes in a debug build, stopped after 20 ms.
    let slow = r#"
package gateward
import rego.v1
decision if {
    count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i + j]) > 0
}
"#;
    let g = gate(json!({"policy": {"modules": [{"rego": slow}], "max_evaluation_ms": 20}}));
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let Decision::Deny(d) = check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]) else {
        panic!("a policy past its budget must deny")
    };
    assert_eq!(d.code, DenyCode::PolicyError);
    assert!(
        d.message.contains("time limit of 20 ms"),
        "the reason names the budget: {}",
        d.message
    );

    // The same gate still answers the next request (the timer restarts per evaluation).
    let fast = "package gateward
import rego.v1
decision := true
";
    let g = gate(json!({"policy": {"modules": [{"rego": fast}], "max_evaluation_ms": 20}}));
    assert!(check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]).is_allow());

    for bad in [0, 10_001] {
        let e = Gate::from_json(
            &config(json!({"policy": {"modules": [{"rego": fast}], "max_evaluation_ms": bad}}))
                .to_string(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("policy.max_evaluation_ms"), "{e}");
    }
}

/// n² iterations of a comprehension: `n` = 1500 takes half a minute unbounded in a debug build.
const COSTLY: &str = r#"
package gateward
import rego.v1
decision if {
    count([x | some i in numbers.range(1, input.n); some j in numbers.range(1, input.n); x := i + j]) > 0
}
"#;

#[test]
fn concurrent_evaluations_each_run_under_their_own_budget() {
    use policy_engine::policy::{Evaluator, Module, Policy};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    let module = [Module {
        name: "costly.rego".into(),
        text: COSTLY.into(),
    }];
    let policy = |limit: Option<u64>, evaluator: Evaluator| {
        let p = Policy::compile(&module, None, "data.gateward.decision")
            .unwrap()
            .with_time_limit(limit.map(Duration::from_millis))
            .with_evaluator(evaluator);
        assert_eq!(p.evaluator(), evaluator);
        p
    };
    use Evaluator::{Compiled as Rvm, Interpreter};
    // (budget ms, evaluator, n, evaluations). Over budget: 20 ms on each evaluator, and 400 ms,
    // which the 20 ms ones must not cut short. Within budget: unbounded evaluations that take
    // far more than 20 ms; and, until the others are done, streams of cheap ones (unbounded and
    // 10 s) whose starts and ends interleave with everything else's.
    let over = [
        (20, Interpreter, 1500, 5),
        (20, Rvm, 1500, 5),
        (400, Interpreter, 1500, 2),
    ];
    let within = [(None, Interpreter, 120, 3), (None, Rvm, 200, 3)];
    let cheap = [None, Some(10_000)];

    let threads = over.len() + within.len() + cheap.len();
    let start = Arc::new(Barrier::new(threads));
    let done = Arc::new(AtomicBool::new(false));
    let evaluate = |p: &Policy, n: u32| {
        let began = Instant::now();
        let result = p.evaluate(regorus::Value::from(json!({"n": n})));
        (result, began.elapsed())
    };
    std::thread::scope(|scope| {
        let mut bounded = Vec::new();
        for (ms, evaluator, n, times) in over {
            let (p, start) = (policy(Some(ms), evaluator), Arc::clone(&start));
            bounded.push(scope.spawn(move || {
                start.wait();
                for _ in 0..times {
                    let (result, took) = evaluate(&p, n);
                    let e = result.expect_err("over its budget");
                    let what = format!("{evaluator:?}, {ms} ms, after {took:?}: {e}");
                    assert!(e.contains(&format!("time limit of {ms} ms")), "{what}");
                    // Stopped by its own budget: not before it, not long after it.
                    assert!(took >= Duration::from_millis(ms), "{what}");
                    assert!(took < Duration::from_secs(5), "{what}");
                }
            }));
        }
        for (ms, evaluator, n, times) in within {
            let (p, start) = (policy(ms, evaluator), Arc::clone(&start));
            bounded.push(scope.spawn(move || {
                start.wait();
                for _ in 0..times {
                    let (result, took) = evaluate(&p, n);
                    let what = format!("{evaluator:?}, unbounded, after {took:?}");
                    assert!(result.expect(&what).allow, "{what}");
                }
            }));
        }
        let mut streams = Vec::new();
        for ms in cheap {
            let (p, start, done) = (policy(ms, Interpreter), Arc::clone(&start), &done);
            streams.push(scope.spawn(move || {
                start.wait();
                let mut count = 0;
                while count < 20 || !done.load(Ordering::Relaxed) {
                    let (result, took) = evaluate(&p, 3);
                    assert!(result.expect("a cheap evaluation").allow, "{took:?}");
                    count += 1;
                }
                count
            }));
        }
        // regorus's process-wide fallback timer is never set: a budget set there by one
        // evaluation would be read by whichever other one starts meanwhile.
        let watcher = scope.spawn(|| {
            let mut samples = 0_u64;
            while !done.load(Ordering::Relaxed) {
                let global = regorus::utils::limits::fallback_execution_timer_config();
                assert_eq!(global, None, "after {samples} samples");
                samples += 1;
                std::thread::yield_now();
            }
        });
        for t in bounded {
            t.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        for t in streams {
            assert!(t.join().unwrap() >= 20);
        }
    });
}

#[test]
fn tokens_in_two_places_are_ambiguous_and_query_and_cookie_sources_work() {
    let g = gate(
        json!({"token_sources": [{"header": "authorization"}, {"query": "access_token"}, {"cookie": "ci_token"}]}),
    );
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let d = check(
        &g,
        "POST",
        &format!("/deploy?access_token={t}"),
        &[("authorization", &bearer(&t))],
    );
    assert_eq!(deny_code(&d), DenyCode::TokenAmbiguous);
    // Two credentials in one header: repeated, or joined with a comma by a proxy (Envoy joins
    // repeated `authorization` headers).
    for headers in [
        vec![("authorization", bearer(&t)), ("authorization", bearer(&t))],
        vec![("authorization", format!("{},{}", bearer(&t), bearer(&t)))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let d = check(&g, "POST", "/deploy", &headers);
        assert_eq!(deny_code(&d), DenyCode::TokenAmbiguous);
    }
    let Decision::Allow(a) = check(&g, "POST", &format!("/deploy?x=1&access_token={t}"), &[])
    else {
        panic!()
    };
    assert_eq!(
        a.strip_token,
        Some(policy_engine::Strip::Path("/deploy?x=1".into()))
    );
    let cookie = format!("theme=dark; ci_token={t}");
    let Decision::Allow(a) = check(&g, "POST", "/deploy", &[("cookie", &cookie)]) else {
        panic!()
    };
    assert_eq!(
        a.strip_token,
        Some(policy_engine::Strip::Cookie(Some("theme=dark".into())))
    );
}

#[test]
fn policy_input_has_the_documented_shape_and_never_the_token() {
    let rego = r#"
package gateward
import rego.v1
decision := {"allow": true, "headers": {"x-input": json.marshal(input)}}
"#;
    let g = gate(json!({"policy": {"modules": [{"rego": rego}]}}));
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let Decision::Allow(a) = check(
        &g,
        "GET",
        "/x/y?a=1&a=2&b=%2F",
        &[("authorization", &bearer(&t)), ("X-Trace", "t1")],
    ) else {
        panic!()
    };
    let (_, input) = a.headers.iter().find(|(k, _)| k == "x-input").unwrap();
    let input: Value = serde_json::from_str(input).unwrap();
    assert_eq!(input["token"]["issuer"], "github");
    assert_eq!(input["token"]["header"]["kid"], "a");
    assert_eq!(input["token"]["claims"]["repository"], "octo-org/deploy");
    assert_eq!(input["request"]["method"], "GET");
    assert_eq!(input["request"]["path"], "/x/y");
    assert_eq!(
        input["request"]["query"],
        json!({"a": ["1", "2"], "b": ["/"]})
    );
    assert_eq!(input["request"]["headers"]["x-trace"], "t1");
    assert_eq!(input["now"], NOW);
    assert!(
        !input.to_string().contains(&t),
        "the token reached the policy input"
    );
}

#[test]
fn config_errors_are_all_reported_with_paths() {
    let bad = json!({
        "issuers": [
            {"name": "a", "issuer": "https://a.example", "audiences": [], "jwks_uri": "http://evil.example/jwks"},
            {"name": "a", "preset": "nope", "issuer": "https://b.example", "audiences": ["x"], "algorithms": ["HS256", "none"]},
            {"name": "c", "issuer": "https://c.example", "audiences": ["x"], "audience": "typo"},
        ],
        "max_token_bytes": 1,
        "claims_to_headers": [{"claim": "sub", "header": "bad header"}],
        "policy": {"modules": [{"name": "p.rego", "rego": "package gateward\ndecision := {\n"}]},
        "extra": true,
    });
    let errs = match Config::from_json(&bad.to_string()) {
        Err(e) => e,
        Ok(c) => match Gate::new(&c, &mut |_| Err("no files".into())) {
            Err(e) => e,
            Ok(_) => panic!("invalid config accepted"),
        },
    };
    let text = errs.to_string();
    // Structural errors come first; each names its place.
    assert!(
        text.contains("issuers[2].audience: unknown field `audience`"),
        "{text}"
    );
    assert!(text.contains("extra: unknown field"), "{text}");
    // Then semantic errors, once the structure parses.
    let bad_semantic = {
        let mut b = bad.clone();
        b.as_object_mut().unwrap().remove("extra");
        b["issuers"][2].as_object_mut().unwrap().remove("audience");
        b
    };
    let c = Config::from_json(&bad_semantic.to_string()).unwrap();
    let text = Gate::new(&c, &mut |_| Err("no files".into()))
        .unwrap_err()
        .to_string();
    for want in [
        "issuers[0].audiences: must not be empty",
        "issuers[0].jwks_uri: must be an https:// URL",
        "issuers[1].name: \"a\" is used by an earlier issuer",
        "issuers[1].preset: unknown preset \"nope\"",
        "issuers[1].algorithms[0]: \"HS256\": unsecured and HMAC algorithms are never accepted",
        "issuers[1].algorithms[1]",
        "issuers[2]: no keys",
        "max_token_bytes: must be between",
        "claims_to_headers[0].header",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn rego_syntax_error_names_module_line_and_column() {
    let c = Config::from_json(&config(json!({"policy": {"modules": [{"name": "deploy.rego", "rego": "package gateward\n\ndecision := {\n"}]}})).to_string()).unwrap();
    let text = Gate::new(&c, &mut |_| Err("no files".into()))
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("policy: deploy.rego:3:") || text.starts_with("policy: deploy.rego:4:"),
        "{text}"
    );
    // The module is named once.
    assert_eq!(text.matches("deploy.rego").count(), 1, "{text}");
}

#[test]
fn report_mode_is_carried_for_the_host() {
    let g = gate(json!({"mode": "report"}));
    assert_eq!(g.mode(), policy_engine::Mode::Report);
}

#[test]
fn a_generic_entry_for_a_shared_issuer_is_told_which_claims_pin() {
    let unpinned = "package gateward\nimport rego.v1\ndecision if input.token.claims.ref == \"refs/heads/main\"\n";
    let g = gate(json!({
        "issuers": [{"name": "gh", "preset": "generic", "issuer": "https://token.actions.githubusercontent.com",
                     "audiences": [AUD], "algorithms": ["RS256"], "jwks": jwks(&[("a", &fixtures::rsa_a())])}],
        "policy": {"modules": [{"rego": unpinned}]},
    }));
    let pins: Vec<&String> = g
        .warnings()
        .iter()
        .filter(|w| w.contains("organisation"))
        .collect();
    assert_eq!(
        pins,
        ["issuers[0] (gh): https://token.actions.githubusercontent.com issues tokens to every \
          GitHub Actions organisation (preset \"github-actions\" knows its claims); pin your \
          organisation by an id claim (one of: repository_owner_id, repository_id, enterprise_id) in the policy"],
        "{:?}",
        g.warnings()
    );
}

#[test]
fn shared_issuer_without_an_org_pin_warns() {
    let unpinned = "package gateward\nimport rego.v1\ndecision if input.token.claims.ref == \"refs/heads/main\"\n";
    let g = gate(json!({"policy": {"modules": [{"rego": unpinned}]}}));
    assert!(
        g.warnings()
            .iter()
            .any(|w| w.contains("issues tokens to every") && w.contains("repository_owner_id")),
        "{:?}",
        g.warnings()
    );
    // The default POLICY pins repository_owner_id: no warning.
    assert!(gate(json!({}))
        .warnings()
        .iter()
        .all(|w| !w.contains("issues tokens to every")));
    // `require` checks presence only (every GitHub token has the claim): it pins nothing.
    let g = gate(json!({
        "issuers": [{"name": "github", "preset": "github-actions", "audiences": [AUD], "require": ["repository_owner_id"],
                     "jwks": jwks(&[("a", &fixtures::rsa_a())])}],
        "policy": {"modules": [{"rego": unpinned}]},
    }));
    let pin_warnings = |g: &Gate| -> Vec<String> {
        g.warnings()
            .iter()
            .filter(|w| w.contains("issues tokens to every"))
            .cloned()
            .collect()
    };
    assert_eq!(pin_warnings(&g).len(), 1, "{:?}", g.warnings());
    // A claim named in a comment pins nothing; a name alone is called out as such.
    let commented = format!("{unpinned}# TODO: check repository_owner_id\n");
    let g = gate(json!({"policy": {"modules": [{"rego": commented}]}}));
    assert_eq!(pin_warnings(&g).len(), 1, "{:?}", g.warnings());
    let by_name = "package gateward\nimport rego.v1\ndecision if input.token.claims.repository_owner == \"octo-org\"\n";
    let g = gate(json!({"policy": {"modules": [{"rego": by_name}]}}));
    let w = pin_warnings(&g);
    assert!(
        w.len() == 1
            && w[0].contains("pinned by name only")
            && w[0].contains("repository_owner_id"),
        "{w:?}"
    );
    // An id in code, bracket syntax included, pins.
    let by_id = "package gateward\nimport rego.v1\ndecision if input.token.claims[\"repository_owner_id\"] == \"9919\"\n";
    let g = gate(json!({"policy": {"modules": [{"rego": by_id}]}}));
    assert!(pin_warnings(&g).is_empty(), "{:?}", g.warnings());
}

#[test]
fn token_without_kid_tries_keys_of_its_type() {
    let g = gate(json!({}));
    let t = mint(
        &fixtures::rsa_a(),
        None,
        &claims::github_actions(NOW - 10, AUD),
    )
    .unwrap();
    assert!(check(&g, "POST", "/deploy", &[("authorization", &bearer(&t))]).is_allow());
    let t = mint(
        &fixtures::rsa_b(),
        None,
        &claims::github_actions(NOW - 10, AUD),
    )
    .unwrap();
    assert_eq!(
        deny_code(&check(
            &g,
            "POST",
            "/deploy",
            &[("authorization", &bearer(&t))]
        )),
        DenyCode::SignatureInvalid
    );
}

#[test]
fn the_same_issuer_twice_is_an_error_even_via_a_preset_default() {
    let key = jwks(&[("a", &fixtures::rsa_a())]);
    let c = json!({"issuers": [
        {"name": "one", "preset": "github-actions", "audiences": [AUD], "jwks": key},
        {"name": "two", "issuer": "https://token.actions.githubusercontent.com", "audiences": ["x"], "jwks": key},
    ]});
    let text = Gate::from_json(&c.to_string()).unwrap_err().to_string();
    assert!(text.contains("issuers[1].issuer: \"https://token.actions.githubusercontent.com\" is configured twice"), "{text}");
}

#[test]
fn fetch_settings_are_validated_with_paths() {
    let mut c = config(json!({"token_cache_size": 1_000_000}));
    c["issuers"][0]["fetch"] = json!({
        "cluster": "",
        "timeout_ms": 0,
        "cache_seconds": 600,
        "max_stale_seconds": 60,
        "retry_seconds": 0,
    });
    let errors = Gate::from_json(&c.to_string()).unwrap_err().to_string();
    for expected in [
        "issuers[0].fetch.cluster: must not be empty",
        "issuers[0].fetch.timeout_ms: must be between 1 and 60000",
        "issuers[0].fetch.retry_seconds: must be between 1 and 86400",
        "issuers[0].fetch.max_stale_seconds: must be at least cache_seconds",
        "token_cache_size: must be at most 100000",
    ] {
        assert!(
            errors.contains(expected),
            "missing {expected:?} in:\n{errors}"
        );
    }
    c["issuers"][0]["fetch"] = json!({"clusterr": "x"});
    let errors = Gate::from_json(&c.to_string()).unwrap_err().to_string();
    assert!(errors.contains("issuers[0].fetch"), "{errors}");
    assert!(errors.contains("unknown field `clusterr`"), "{errors}");

    let g = gate(json!({}));
    let fetch = &g.issuers()[0].fetch;
    assert_eq!(
        (
            fetch.timeout_ms,
            fetch.cache_seconds,
            fetch.min_refetch_seconds,
            fetch.max_stale_seconds
        ),
        (5_000, 600, 30, 86_400)
    );
    assert_eq!(g.token_cache_size(), 1024);
}

#[test]
fn cors_preflight_bypass_only_when_enabled_and_only_for_real_preflights() {
    let headers: Vec<(String, String)> = vec![
        ("origin".into(), "https://ci.example".into()),
        ("access-control-request-method".into(), "POST".into()),
    ];
    let preflight = Request {
        method: "OPTIONS",
        path: "/deploy",
        host: "api",
        headers: &headers,
    };
    assert!(!gate(json!({})).is_bypassed_preflight(&preflight));
    let g = gate(json!({"allow_cors_preflight": true}));
    assert!(g.is_bypassed_preflight(&preflight));
    let plain_options = Request {
        headers: &headers[..1],
        ..preflight
    };
    assert!(!g.is_bypassed_preflight(&plain_options));
    let post = Request {
        method: "POST",
        ..preflight
    };
    assert!(!g.is_bypassed_preflight(&post));
}

#[test]
fn revalidate_rechecks_expiry_of_an_earlier_verification() {
    let g = gate(json!({}));
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let (parsed, id) = g.route(&t).unwrap();
    let verified = g
        .verify(&parsed, id, g.static_keys(id).unwrap(), NOW)
        .unwrap();
    assert!(g.revalidate(&verified, NOW + 30).is_ok());
    let late = g
        .revalidate(&verified, verified.expires_at + 61)
        .unwrap_err();
    assert_eq!(late.code, DenyCode::Expired);
    assert_eq!(
        g.claim_header_names().collect::<Vec<_>>(),
        ["x-ci-repository"]
    );
}

#[test]
fn decision_keys_separate_whatever_the_decision_depends_on() {
    let two_headers = json!({"token_sources": [{"header": "authorization"}, {"header": "x-ci-token", "prefix": ""}]});
    let gate = gate(two_headers);
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let key = |headers: &[(&str, &str)], path: &str| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let req = Request {
            method: "POST",
            path,
            host: "api.internal",
            headers: &headers,
        };
        let located = gate.locate(&req).unwrap();
        gate.decision_key(&req, &located, NOW)
    };
    let bearer = bearer(&t);
    let in_authorization = key(&[("authorization", &bearer)], "/deploy");
    assert!(in_authorization.is_some());
    assert_eq!(
        in_authorization,
        key(&[("authorization", &bearer)], "/deploy")
    );
    // The same token in the other header is stripped from that header: not the same decision.
    assert_ne!(in_authorization, key(&[("x-ci-token", &t)], "/deploy"));
    assert_ne!(
        in_authorization,
        key(&[("authorization", &bearer)], "/deploy?x=1")
    );
    // This policy reads neither headers nor the clock: other headers do not matter.
    assert_eq!(
        in_authorization,
        key(
            &[("authorization", &bearer), ("x-request-id", "1")],
            "/deploy"
        )
    );
}

#[test]
fn validations_refuse_a_wide_leeway_and_a_claim_header_that_is_a_token_source() {
    let mut c = config(json!({}));
    c["issuers"][0]["leeway_seconds"] = json!(601);
    c["claims_to_headers"] = json!([{"claim": "sub", "header": "Authorization"}]);
    let e = Gate::from_json(&c.to_string()).unwrap_err().to_string();
    assert!(
        e.contains("issuers[0].leeway_seconds") && e.contains("at most 600"),
        "{e}"
    );
    assert!(
        e.contains("claims_to_headers[0].header") && e.contains("token source header"),
        "{e}"
    );
    // 600 is allowed.
    c["issuers"][0]["leeway_seconds"] = json!(600);
    c["claims_to_headers"] = json!([]);
    Gate::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_gate_without_a_policy_warns_that_every_verified_token_is_allowed() {
    let mut c = config(json!({}));
    c.as_object_mut().unwrap().remove("policy");
    let g = Gate::from_json(&c.to_string()).unwrap();
    assert!(
        g.warnings()
            .iter()
            .any(|w| w.contains("policy: none configured")),
        "{:?}",
        g.warnings()
    );
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    assert!(check(&g, "DELETE", "/anything", &[("authorization", &bearer(&t))]).is_allow());
    assert!(gate(json!({}))
        .warnings()
        .iter()
        .all(|w| !w.contains("policy: none configured")));
}

/// The Gateward configuration of `envoy-config/production-example.yaml`'s first listener (the
/// JSON under its first `value: |`), with the GitHub issuer's keys inline instead of fetched.
fn production_example() -> Gate {
    let yaml = include_str!("../../envoy-config/production-example.yaml");
    let mut lines = yaml
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("value: |"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let start = indent(lines.next().unwrap());
    let json: String = lines
        .take_while(|l| l.trim().is_empty() || indent(l) > start)
        .collect::<Vec<_>>()
        .join("\n");
    let mut c: Value = serde_json::from_str(&json).unwrap();
    let github = &mut c["issuers"][0];
    assert_eq!(github["name"], "github");
    github.as_object_mut().unwrap().remove("fetch");
    github["jwks"] = jwks(&[("a", &fixtures::rsa_a())]);
    Gate::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_production_example_policy_matches_whole_path_segments() {
    let g = production_example();
    let t = bearer(&token_with(&fixtures::rsa_a(), "a", |_| {}));
    let auth = [("authorization", t.as_str())];
    for path in ["/deploy", "/deploy/", "/deploy/prod"] {
        assert!(check(&g, "POST", path, &auth).is_allow(), "{path}");
    }
    // Envoy normalises `..`, `//` and escaped slashes before the filter (the example's
    // `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action`); the policy itself
    // refuses a prefix that is not a whole segment.
    for path in [
        "/deployment",
        "/deploy-evil",
        "/deploy.json",
        "/",
        "/artifacts",
    ] {
        assert_eq!(
            deny_code(&check(&g, "POST", path, &auth)),
            DenyCode::PolicyDenied,
            "{path}"
        );
    }
    assert_eq!(
        deny_code(&check(&g, "GET", "/deploy", &auth)),
        DenyCode::PolicyDenied
    );
}

#[test]
fn a_token_without_kid_is_tried_against_at_most_four_keys() {
    let (a, b) = (fixtures::rsa_a(), fixtures::rsa_b());
    let kidless = bearer(&mint(&a, None, &claims::github_actions(NOW - 10, AUD)).unwrap());
    let with_keys = |keys: &[(&str, &SigningKey)]| {
        let mut c = config(json!({}));
        c["issuers"][0]["jwks"] = jwks(keys);
        Gate::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"))
    };
    let p256 = fixtures::p256();
    // Four RS256 keys (and an EC key, which does not fit): the fourth verifies.
    let four = [
        ("k1", &b),
        ("k2", &b),
        ("k3", &b),
        ("ec", &p256),
        ("k4", &a),
    ];
    let g = with_keys(&four);
    assert!(check(&g, "POST", "/deploy", &[("authorization", &kidless)]).is_allow());
    // A fifth RS256 key: refused before any signature check, naming the limit.
    let five = [("k0", &b), ("k1", &b), ("k2", &b), ("k3", &b), ("k4", &a)];
    let g = with_keys(&five);
    let d = check(&g, "POST", "/deploy", &[("authorization", &kidless)]);
    assert_eq!(deny_code(&d), DenyCode::KeyNotFound);
    assert!(format!("{d:?}").contains("more than 4 RS256 keys"), "{d:?}");
    // With a kid, the size of the set does not matter.
    let named = bearer(&token_with(&a, "k4", |_| {}));
    assert!(check(&g, "POST", "/deploy", &[("authorization", &named)]).is_allow());
}

#[test]
fn trusting_a_committed_development_key_warns_outside_loopback() {
    // `config` trusts devkit's rsa-a and p256 for GitHub's real issuer.
    let w = gate(json!({})).warnings().join("\n");
    assert!(
        w.contains("issuers[0]: key a is Gateward's development key devkit/keys/rsa-a.pem")
            && w.contains("devkit/keys/p256.pem"),
        "{w}"
    );
    // A loopback issuer (the demo's) is where those keys belong.
    let mut c = config(json!({}));
    c["issuers"][0] = json!({
        "name": "demo", "issuer": "http://127.0.0.1:8080", "audiences": [AUD],
        "jwks": jwks(&[("a", &fixtures::rsa_a())]),
    });
    let g = Gate::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        g.warnings().iter().all(|w| !w.contains("development key")),
        "{:?}",
        g.warnings()
    );
    // A key of one's own: no warning.
    let own = gateward_devkit::SigningKey::generate(gateward_devkit::KeyKind::P256).unwrap();
    let mut c = config(json!({}));
    c["issuers"][0]["jwks"] = jwks(&[("own", &own)]);
    let g = Gate::from_json(&c.to_string()).unwrap();
    assert!(g.warnings().iter().all(|w| !w.contains("development key")));
}

/// `policy.headers`: a policy with two allow rules, one setting `x-ci-ref`, one setting nothing.
fn declared_headers_gate(headers: Value) -> Gate {
    let policy = r#"
package gateward
import rego.v1

default decision := false

decision := {"allow": true, "headers": {"x-ci-ref": input.token.claims.ref}} if input.request.path == "/deploy"

decision := {"allow": true} if input.request.path == "/status"

decision := {"allow": true, "headers": {"x-other": "1"}} if input.request.path == "/other"
"#;
    gate(json!({"policy": {
        "modules": [{"name": "p.rego", "rego": policy}],
        "headers": headers,
    }}))
}

#[test]
fn declared_policy_headers_are_removed_by_every_decision_and_bound_what_results_set() {
    let t = token_with(&fixtures::rsa_a(), "a", |_| {});
    let auth = bearer(&t);
    let allow = |g: &Gate, path: &str| match check(g, "POST", path, &[("authorization", &auth)]) {
        Decision::Allow(a) => a,
        d => panic!("{path}: {d:?}"),
    };

    // Undeclared (the default): an allow that sets no header removes only the claim headers.
    let open = declared_headers_gate(Value::Null);
    assert_eq!(allow(&open, "/status").remove_headers, ["x-ci-repository"]);
    assert!(!open
        .unverified_rewrite(&Request {
            method: "OPTIONS",
            path: "/status",
            host: "api.internal",
            headers: &[],
        })
        .0
        .contains(&"x-ci-ref".to_string()));

    // Declared: every allow removes every declared header (a client's `x-ci-ref` cannot ride
    // along an allow that sets none), the allow that sets it still does, names are lower-cased.
    let g = declared_headers_gate(json!(["X-CI-Ref"]));
    let status = allow(&g, "/status");
    assert_eq!(status.remove_headers, ["x-ci-repository", "x-ci-ref"]);
    assert!(!status.headers.iter().any(|(k, _)| k == "x-ci-ref"));
    let deploy = allow(&g, "/deploy");
    assert!(deploy.remove_headers.contains(&"x-ci-ref".to_string()));
    assert!(deploy
        .headers
        .contains(&("x-ci-ref".into(), "refs/heads/main".into())));
    // What goes upstream unverified (report-mode denials, preflights) loses them too.
    let (removed, _) = g.unverified_rewrite(&Request {
        method: "OPTIONS",
        path: "/deploy",
        host: "api.internal",
        headers: &[],
    });
    assert_eq!(removed, ["x-ci-repository", "x-ci-ref"]);

    // A result setting a header the list lacks is a policy error, naming the header.
    let d = check(&g, "POST", "/other", &[("authorization", &auth)]);
    assert_eq!(deny_code(&d), DenyCode::PolicyError);
    let Decision::Deny(d) = d else {
        panic!("not a denial")
    };
    assert!(d.message.contains("\"x-other\""), "{}", d.message);
}

#[test]
fn declared_policy_headers_are_validated() {
    let c = config(json!({"policy": {
        "modules": [{"name": "p.rego", "rego": POLICY}],
        "headers": ["x-ci-ref", "bad header", "Authorization", "X-CI-REF"],
    }}));
    let text = Gate::from_json(&c.to_string()).unwrap_err().to_string();
    for want in [
        "policy.headers[1]: \"bad header\" is not a valid header name",
        "policy.headers[2]: is a token source header",
        "policy.headers[3]: is set twice",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    assert!(!text.contains("policy.headers[0]"), "{text}");
}
