//! What the gate refuses before any policy sees a request (`path_ambiguous`, `method_invalid`),
//! and the token kept out of the policy input however its query or cookie name is spelled.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use gateward_devkit::{claims, fixtures, jwks, mint};
use policy_engine::{Decision, DenyCode, Gate, Request, Strip};
use serde_json::{json, Value};

const NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";

fn lib(file: &str) -> Value {
    let path = format!("{}/../policies/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    json!({"name": file, "rego": text})
}

/// The library's GitHub example over its own route table (`policies/examples/github_deploy.*`).
fn library_gate() -> Gate {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/examples/github_deploy.data.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let config = json!({
        "issuers": [{
            "name": "github",
            "preset": "github-actions",
            "audiences": [AUD],
            "jwks": jwks(&[("a", &fixtures::rsa_a())]),
        }],
        "policy": {
            "modules": [
                lib("common.rego"),
                lib("github_actions.rego"),
                lib("examples/github_deploy.rego"),
            ],
            "entrypoint": "data.gateward.examples.github_deploy.decision",
            "data": data,
        },
    });
    Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// A token the library's table lets through only on its lax `status` route (GET, any branch).
fn status_only_token() -> String {
    let mut c = claims::github_actions(NOW - 10, AUD);
    c["repository_owner_id"] = json!("91234567");
    mint(&fixtures::rsa_a(), Some("a"), &c).unwrap()
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

fn denied(d: &Decision) -> (DenyCode, u16, String) {
    match d {
        Decision::Deny(d) => (d.code, d.status, d.message.clone()),
        Decision::Allow(_) => panic!("expected a denial, got {d:?}"),
    }
}

#[test]
fn paths_an_upstream_may_resolve_elsewhere_are_refused_as_path_ambiguous() {
    let g = library_gate();
    let auth = format!("Bearer {}", status_only_token());
    let auth = [("authorization", auth.as_str())];
    // The baseline: the token is good for the lax route, and only for it.
    assert!(check(&g, "GET", "/status", &auth).is_allow());
    // `;` in another segment is the policy's to judge: the library refuses every `;`.
    let (code, _, message) = denied(&check(&g, "GET", "/status/a;v=1?x=..;", &auth));
    assert_eq!(code, DenyCode::PolicyDenied, "{message}");
    assert!(message.contains("not in canonical form"), "{message}");
    assert_eq!(
        denied(&check(&g, "GET", "/deploy/payments", &auth)).0,
        DenyCode::PolicyDenied
    );
    // Tomcat, Jetty and Spring strip `;params` and then resolve `..`: each of these is another
    // route upstream, so none may reach the policy as a path under /status.
    for (path, what) in [
        ("/status/..;/deploy/payments", "dot segment \"..;\""),
        ("/status/%2e%2e;/admin", "%2e"),
        ("/status/%2E%2e/admin", "%2E"),
        ("/status/.;x=1/admin", "dot segment \".;x=1\""),
        ("/status/..;jsessionid=1/admin", "dot segment"),
        ("/status/../deploy", "dot segment \"..\""),
        ("/status/./x", "dot segment \".\""),
        ("/status/..", "dot segment"),
        ("/status/x%2fy", "%2f"),
        ("/status/x%2F..%2Fdeploy", "%2F"),
        ("/status/x%5cy", "%5c"),
        ("/status/x%5C..", "%5C"),
        ("/status\\..\\deploy", "backslash"),
        ("/status/x%00", "%00"),
        ("/status/x%0a", "%0a"),
        ("/status/x\0", "control character"),
        ("/status/x\ty", "control character"),
        ("/status/x\u{7f}", "control character"),
    ] {
        let (code, status, message) = denied(&check(&g, "GET", path, &auth));
        assert_eq!(code, DenyCode::PathAmbiguous, "{path:?}: {message}");
        assert_eq!(status, 400, "{path:?}");
        assert!(message.contains(what), "{path:?}: {message}");
    }
    // Refused before the token is looked at: the same with no token at all.
    assert_eq!(
        denied(&check(&g, "GET", "/status/..;/admin", &[])).0,
        DenyCode::PathAmbiguous
    );
    // Dots that are not dot segments are names.
    for path in [
        "/status/.well-known",
        "/status/a..b",
        "/status/...",
        "/status/..x",
    ] {
        assert!(check(&g, "GET", path, &auth).is_allow(), "{path}");
    }
}

/// The Gateward configuration of `envoy-config/production-example.yaml`'s first listener, with
/// the GitHub issuer's keys inline instead of fetched.
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
    github.as_object_mut().unwrap().remove("fetch");
    github["jwks"] = jwks(&[("a", &fixtures::rsa_a())]);
    Gate::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_production_example_refuses_a_dot_segment_with_parameters() {
    let g = production_example();
    let t = mint(
        &fixtures::rsa_a(),
        Some("a"),
        &claims::github_actions(NOW - 10, AUD),
    )
    .unwrap();
    let auth = format!("Bearer {t}");
    let auth = [("authorization", auth.as_str())];
    assert!(check(&g, "POST", "/deploy/prod", &auth).is_allow());
    // Every listener has Envoy resolve what it can before the filter (`envoy --mode validate`
    // checks the file: host-tests/tests/e2e/main.rs::the_production_example_passes_envoy_validation).
    let yaml = include_str!("../../envoy-config/production-example.yaml");
    let listeners = yaml.matches("HttpConnectionManager").count();
    assert!(listeners >= 2);
    for setting in [
        "normalize_path: true",
        "merge_slashes: true",
        "path_with_escaped_slashes_action: REJECT_REQUEST",
    ] {
        assert_eq!(yaml.matches(setting).count(), listeners, "{setting}");
    }
    // Envoy's normalize_path leaves `..;` alone; a Spring upstream serves /actuator/env.
    for path in ["/deploy/..;/actuator/env", "/deploy/..;a=b/actuator/env"] {
        assert_eq!(
            denied(&check(&g, "POST", path, &auth)).0,
            DenyCode::PathAmbiguous,
            "{path}"
        );
    }
}

#[test]
fn methods_must_be_upper_case_rfc9110_tokens() {
    let g = library_gate();
    let auth = format!("Bearer {}", status_only_token());
    let auth = [("authorization", auth.as_str())];
    assert!(check(&g, "GET", "/status", &auth).is_allow());
    // Django and Flask upper-case these, Go compares them exactly: a policy comparing strings
    // would route them differently from one upstream or the other.
    for m in [
        "get", "Get", "gEt", "post", "delete", "patch", "options", "purge",
    ] {
        let (code, status, message) = denied(&check(&g, m, "/status", &auth));
        assert_eq!(code, DenyCode::MethodInvalid, "{m}");
        assert_eq!(status, 400);
        assert!(message.contains("upper case"), "{m}: {message}");
    }
    for m in [
        "", "GE T", "GET\r\n", "GET/", "G\u{e9}T", "(GET)", "GET\0", "\"GET\"",
    ] {
        let (code, _, message) = denied(&check(&g, m, "/status", &auth));
        assert_eq!(code, DenyCode::MethodInvalid, "{m:?}");
        assert!(message.contains("RFC 9110 token"), "{m:?}: {message}");
    }
    // Extension methods in upper case are tokens: refused by the route table, not the gate.
    assert_eq!(
        denied(&check(&g, "PURGE", "/status", &auth)).0,
        DenyCode::PolicyDenied
    );
    assert_eq!(
        denied(&check(&g, "M-SEARCH", "/status", &auth)).0,
        DenyCode::PolicyDenied
    );
}

/// A policy that echoes its whole input in a header, to look for the token in it.
fn echo_gate(source: Value) -> Gate {
    let rego = "package gateward\nimport rego.v1\n\
                decision := {\"allow\": true, \"headers\": {\"x-input\": json.marshal(input)}}\n";
    let config = json!({
        "issuers": [{
            "name": "github",
            "preset": "github-actions",
            "audiences": [AUD],
            "jwks": jwks(&[("a", &fixtures::rsa_a())]),
        }],
        "token_sources": [source],
        "policy": {"modules": [{"name": "echo.rego", "rego": rego}]},
    });
    Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn input_of(d: &Decision) -> String {
    let Decision::Allow(a) = d else {
        panic!("expected an allow, got {d:?}")
    };
    a.headers
        .iter()
        .find(|(k, _)| k == "x-input")
        .map(|(_, v)| v.clone())
        .unwrap()
}

/// Every spelling of `access_token` the locator reads as that name, and one it does not (names
/// are case-sensitive).
const SPELLINGS: [&str; 8] = [
    "access_token",
    "access%5Ftoken",
    "access%5ftoken",
    "%61ccess_token",
    "%61%63%63%65%73%73%5f%74%6F%6B%65%6E",
    "access%5F%74oken",
    "acces%73_token",
    "ACCESS%5Ftoken",
];

/// A valid GitHub Actions token for the echo gate.
fn valid_token() -> String {
    mint(
        &fixtures::rsa_a(),
        Some("a"),
        &claims::github_actions(NOW - 10, AUD),
    )
    .unwrap()
}

#[test]
fn a_query_token_is_found_stripped_and_kept_from_the_policy_however_its_name_is_encoded() {
    let g = echo_gate(json!({"query": "access_token"}));
    let t = valid_token();
    for name in SPELLINGS {
        let path = format!("/x?a=1&{name}={t}&b=2");
        let d = check(&g, "GET", &path, &[]);
        if name.starts_with("ACCESS") {
            // Names are case-sensitive: not the token parameter, so no token at all.
            assert_eq!(denied(&d).0, DenyCode::TokenMissing, "{name}");
            continue;
        }
        let input = input_of(&d);
        assert!(
            !input.contains(&t),
            "{name}: the token reached the policy: {input}"
        );
        let input: Value = serde_json::from_str(&input).unwrap();
        assert_eq!(
            input["request"]["query"],
            json!({"a": ["1"], "b": ["2"]}),
            "{name}"
        );
        let Decision::Allow(a) = d else {
            unreachable!()
        };
        assert_eq!(
            a.strip_token,
            Some(Strip::Path("/x?a=1&b=2".into())),
            "{name}"
        );
        // Found once per spelling: two spellings are two tokens.
        let twice = format!("/x?{name}={t}&access_token={t}");
        assert_eq!(
            denied(&check(&g, "GET", &twice, &[])).0,
            DenyCode::TokenAmbiguous
        );
    }
}

#[test]
fn a_cookie_token_is_found_stripped_and_kept_from_the_policy_however_its_name_is_encoded() {
    let g = echo_gate(json!({"cookie": "access_token"}));
    let t = valid_token();
    for name in SPELLINGS {
        let cookie = format!("theme=dark; {name}={t}; lang=en");
        let d = check(&g, "GET", "/x", &[("cookie", &cookie)]);
        if name.starts_with("ACCESS") {
            assert_eq!(denied(&d).0, DenyCode::TokenMissing, "{name}");
            continue;
        }
        let input = input_of(&d);
        assert!(
            !input.contains(&t),
            "{name}: the token reached the policy: {input}"
        );
        let Decision::Allow(a) = d else {
            unreachable!()
        };
        assert_eq!(
            a.strip_token,
            Some(Strip::Cookie(Some("theme=dark; lang=en".into()))),
            "{name}"
        );
    }
}
