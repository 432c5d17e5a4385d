//! `explain::check_explained`: the decision plus rule values, coverage, claims and input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use gateward_devkit::{claims, fixtures, jwks, mint};
use policy_engine::explain::check_explained;
use policy_engine::{DenyCode, Gate, Request};
use serde_json::{json, Value};

const NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";
const POLICY: &str = r#"package gateward
import rego.v1

branch_ok if input.token.claims.ref == "refs/heads/main"
repo_ok if input.token.claims.repository == "octo-org/deploy"

decision := {"allow": true} if {
	branch_ok
	repo_ok
} else := {"allow": false, "reason": "only main may deploy"} if {
	print("denied", input.token.claims.ref)
}
"#;

fn gate() -> Gate {
    let config = json!({
        "issuers": [{
            "name": "github",
            "preset": "github-actions",
            "audiences": [AUD],
            "jwks": jwks(&[("a", &fixtures::rsa_a())]),
        }],
        "policy": {"modules": [{"name": "deploy.rego", "rego": POLICY}]},
    });
    Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn explain(gate: &Gate, authorization: &str) -> policy_engine::explain::Explanation {
    let headers = vec![("authorization".to_string(), authorization.to_string())];
    let req = Request {
        method: "POST",
        path: "/deploy?dry_run=1",
        host: "api.internal",
        headers: &headers,
    };
    check_explained(gate, &req, &|id, _| gate.static_keys(id), NOW)
}

fn token(git_ref: &str) -> String {
    let mut c = claims::github_actions(NOW - 10, AUD);
    c["repository"] = json!("octo-org/deploy");
    c["ref"] = json!(git_ref);
    format!(
        "Bearer {}",
        mint(&fixtures::rsa_a(), Some("a"), &c).unwrap()
    )
}

#[test]
fn a_policy_deny_shows_true_rules_covered_lines_prints_claims_and_input() {
    let gate = gate();
    let out = explain(&gate, &token("refs/heads/dev"));
    assert_eq!(out.decision.code(), Some(DenyCode::PolicyDenied), "{out:?}");
    assert_eq!(out.claims.as_ref().unwrap()["ref"], json!("refs/heads/dev"));
    let rule = |p: &str| out.rules.iter().find(|r| r.path == p).map(|r| &r.value);
    assert_eq!(rule("data.gateward.repo_ok"), Some(&Value::Bool(true)));
    assert_eq!(
        rule("data.gateward.branch_ok"),
        None,
        "undefined rules are absent"
    );
    assert_eq!(
        rule("data.gateward.decision"),
        Some(&json!({"allow": false, "reason": "only main may deploy"}))
    );
    let cov = out
        .coverage
        .iter()
        .find(|c| c.module == "deploy.rego")
        .unwrap();
    // The `else` branch ran (line 11: print); the allow body's `branch_ok` line was reached.
    assert!(cov.covered.contains(&11), "{cov:?}");
    assert!(cov.covered.contains(&8), "{cov:?}");
    assert!(
        out.prints
            .iter()
            .any(|p| p.contains("denied") && p.contains("refs/heads/dev")),
        "{:?}",
        out.prints
    );
    let input = out.input.as_ref().unwrap();
    assert_eq!(input["request"]["path"], json!("/deploy"));
    assert_eq!(input["request"]["query"]["dry_run"], json!(["1"]));
}

#[test]
fn an_allow_lists_both_conditions_true() {
    let gate = gate();
    let out = explain(&gate, &token("refs/heads/main"));
    assert!(out.decision.is_allow(), "{out:?}");
    let truthy: Vec<&str> = out
        .rules
        .iter()
        .filter(|r| r.value == Value::Bool(true))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(truthy, ["data.gateward.branch_ok", "data.gateward.repo_ok"]);
}

#[test]
fn a_token_that_does_not_verify_is_explained_without_running_the_policy() {
    let gate = gate();
    let out = explain(&gate, "Bearer x.y.z");
    assert_eq!(out.decision.code(), Some(DenyCode::TokenMalformed));
    assert!(out.claims.is_none() && out.input.is_none() && out.rules.is_empty());
    assert!(out.coverage.is_empty());
}
