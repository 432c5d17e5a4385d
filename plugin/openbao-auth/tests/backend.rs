#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The auth method's paths against an in-memory storage, with static keys and a fixed clock.

mod common;

use std::time::Duration;

use common::*;
use gateward_openbao_auth::{
    parity_baseline, parity_cases, Backend, Error, MemoryStorage, Operation, Request, Storage,
};
use serde_json::{json, Value};

const ALLOW_POLICY: &str = r#"package gateward
import rego.v1

claims := input.token.claims

default decision := {"allow": false, "reason": "not an allowed deploy"}

decision := {
	"allow": true,
	"policies": [concat("-", ["deploy", claims.environment])],
	"ttl": "2m",
	"metadata": {"environment": claims.environment, "login_path": input.request.path},
} if {
	claims.repository_owner_id == "9919"
	claims.repository == "octo-org/deploy"
	claims.ref == "refs/heads/main"
	input.role == "deploy"
	input.now > 0
}
"#;

async fn setup() -> (Backend, MemoryStorage, std::sync::Arc<TestClock>) {
    let clock = TestClock::at(NOW);
    let b = backend(clock.clone());
    let s = MemoryStorage::new();
    write(&b, &s, "config", github_config()).await.unwrap();
    write(
        &b,
        &s,
        "role/deploy",
        json!({
            "bound_audiences": AUD,
            "policy": ALLOW_POLICY,
            "token_policies": "base",
            "token_ttl": "10m",
            "token_max_ttl": "1h",
            "claim_mappings": {"repository": "repo", "/workflow": "workflow"},
        }),
    )
    .await
    .unwrap();
    (b, s, clock)
}

#[tokio::test]
async fn config_write_reports_every_error_with_its_path_and_stores_nothing() {
    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    let e = invalid(
        write(
            &b,
            &s,
            "config",
            json!({
                "issuers": [
                    {"name": "", "issuer": "https://a.example", "audiences": [], "jwks_uri": "https://a.example/jwks"},
                    {"name": "b", "issuer": "https://b.example", "audiences": ["x"], "algorithms": ["HS256"], "discovery": true},
                    {"name": "c", "audiences": ["x"]}
                ],
                "token_sources": [{"header": "authorization"}],
                "colour": "blue"
            }),
        )
        .await,
    );
    for want in [
        "invalid configuration:",
        "issuers[0].name: must not be empty",
        "issuers[0].audiences: must not be empty",
        "issuers[1].algorithms[0]: \"HS256\": unsecured and HMAC algorithms are never accepted",
        "issuers[2].issuer: required",
        "token_sources: not used by the OpenBao auth method",
        "colour: unknown field",
    ] {
        assert!(e.contains(want), "{want:?} missing from:\n{e}");
    }
    assert!(s.keys().is_empty());
    // Structural errors carry their paths too.
    let e = invalid(
        write(
            &b,
            &s,
            "config",
            json!({"issuers": [{"name": "x", "audiences": "nope"}]}),
        )
        .await,
    );
    assert!(e.contains("issuers[0].audiences"), "{e}");
    let e = invalid(write(&b, &s, "config", json!({})).await);
    assert!(e.contains("issuers: required"), "{e}");
}

#[tokio::test]
async fn config_round_trip_update_and_delete() {
    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    let existence = |path: &str| req(Operation::Update, path, Value::Null);
    assert_eq!(
        b.existence_check(&s, &existence("config")).await.unwrap(),
        (true, false)
    );
    assert!(read(&b, &s, "config").await.is_empty());
    let resp = write(&b, &s, "config", github_config()).await.unwrap();
    assert!(resp.data.is_empty());
    assert_eq!(
        b.existence_check(&s, &existence("config")).await.unwrap(),
        (true, true)
    );
    assert_eq!(
        b.existence_check(&s, &existence("login")).await.unwrap(),
        (false, false)
    );
    let got = read(&b, &s, "config").await;
    assert_eq!(got.data["issuers"][0]["name"], "github");
    // An update merges: issuers stay, max_token_bytes changes.
    write(&b, &s, "config", json!({"max_token_bytes": 4096}))
        .await
        .unwrap();
    let got = read(&b, &s, "config").await;
    assert_eq!(got.data["max_token_bytes"], 4096);
    assert_eq!(got.data["issuers"][0]["name"], "github");
    b.handle(&s, req(Operation::Delete, "config", Value::Null))
        .await
        .unwrap();
    assert!(read(&b, &s, "config").await.is_empty());
    assert!(s.keys().is_empty());
}

#[tokio::test]
async fn shared_issuer_without_an_organisation_pin_warns_at_role_write() {
    let (b, s, _) = setup().await;
    let resp = write(
        &b,
        &s,
        "role/loose",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n"}),
    )
    .await
    .unwrap();
    assert!(
        resp.warnings
            .iter()
            .any(|w| w.contains("issues tokens to every GitHub")),
        "{:?}",
        resp.warnings
    );
    let resp = write(
        &b,
        &s,
        "role/pinned",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "bound_claims": {"repository_owner_id": "9919"}}),
    )
    .await
    .unwrap();
    assert!(resp.warnings.is_empty(), "{:?}", resp.warnings);
    // The deploy role pins repository_owner_id in its Rego.
    let resp = write(&b, &s, "role/deploy", json!({})).await.unwrap();
    assert!(resp.warnings.is_empty(), "{:?}", resp.warnings);
}

#[tokio::test]
async fn role_crud_list_and_token_parameter_parsing() {
    let (b, s, _) = setup().await;
    let existence = req(Operation::Update, "role/Other", Value::Null);
    assert_eq!(
        b.existence_check(&s, &existence).await.unwrap(),
        (true, false)
    );
    let resp = write(
        &b,
        &s,
        "role/Other",
        json!({
            "policy": "package gateward\ndecision := true\n",
            "data": "{\"teams\": [\"a\"]}",
            "issuers": "github",
            "bound_audiences": ["https://github.com/octo-org"],
            "bound_subject": "repo:octo-org/deploy:environment:prod",
            "bound_claims_type": "glob",
            "bound_claims": {"repository": "octo-org/*", "repository_owner_id": "9919"},
            "user_claim": "actor",
            "token_policies": "a, b",
            "token_ttl": 600,
            "token_max_ttl": "2h",
            "token_explicit_max_ttl": "1d",
            "token_period": "0",
            "token_bound_cidrs": ["10.0.0.0/8", "127.0.0.1"],
            "token_type": "service",
            "token_no_default_policy": "true",
            "token_num_uses": "3",
            "role_type": "jwt",
            "colour": "blue"
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.warnings,
        vec!["Endpoint ignored these unrecognized parameters: [colour]".to_string()]
    );
    assert_eq!(
        b.existence_check(&s, &existence).await.unwrap(),
        (true, true)
    );
    // Names are lower-cased.
    let got = read(&b, &s, "role/other").await.data;
    assert_eq!(got["token_policies"], json!(["a", "b"]));
    assert_eq!(got["token_ttl"], 600);
    assert_eq!(got["token_max_ttl"], 7200);
    assert_eq!(got["token_explicit_max_ttl"], 86400);
    assert_eq!(got["token_period"], 0);
    assert_eq!(got["token_bound_cidrs"], json!(["10.0.0.0/8", "127.0.0.1"]));
    assert_eq!(got["token_type"], "service");
    assert_eq!(got["token_no_default_policy"], true);
    assert_eq!(got["token_num_uses"], 3);
    assert_eq!(got["issuers"], json!(["github"]));
    assert_eq!(got["bound_claims_type"], "glob");
    assert_eq!(got["user_claim"], "actor");
    assert_eq!(got["data"], json!({"teams": ["a"]}));
    assert_eq!(got["entrypoint"], "data.gateward.decision");
    // A partial update keeps the rest.
    write(&b, &s, "role/other", json!({"token_ttl": "5m"}))
        .await
        .unwrap();
    let got = read(&b, &s, "role/other").await.data;
    assert_eq!(
        (got["token_ttl"].clone(), got["token_max_ttl"].clone()),
        (json!(300), json!(7200))
    );
    assert_eq!(got["user_claim"], "actor");
    // List, then delete.
    let list = b
        .handle(&s, req(Operation::List, "role/", Value::Null))
        .await
        .unwrap();
    assert_eq!(list.data["keys"], json!(["deploy", "other"]));
    b.handle(&s, req(Operation::Delete, "role/other", Value::Null))
        .await
        .unwrap();
    assert!(read(&b, &s, "role/other").await.is_empty());
    b.handle(&s, req(Operation::Delete, "role/deploy", Value::Null))
        .await
        .unwrap();
    let list = b
        .handle(&s, req(Operation::List, "role", Value::Null))
        .await
        .unwrap();
    assert!(list.is_empty(), "{list:?}");
}

#[tokio::test]
async fn role_writes_are_validated() {
    let (b, s, _) = setup().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\n\ndecision := {\n"}),
            "role \"bad\": bad.rego:4:1: expecting expression",
        ),
        (json!({"token_ttl": 10}), "policy: required"),
        (
            json!({"bound_audiences": AUD, "policy": "package other\nx := 1\n"}),
            "role \"bad\": compiling for entrypoint data.gateward.decision",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "token_ttl": "2h", "token_max_ttl": "1h"}),
            "'token_ttl' cannot be greater than 'token_max_ttl'",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "bound_claims_type": "glob", "bound_claims": {"n": 5}}),
            "claim is not a string: 5",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "bound_claims_type": "regex"}),
            "invalid 'bound_claims_type': regex",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "claim_mappings": {"a": "role"}}),
            "metadata key \"role\" is reserved",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "claim_mappings": {"a": "x", "b": "x"}}),
            "multiple keys are mapped to metadata key \"x\"",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "groups_claim": "groups"}),
            "groups_claim is not supported",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "role_type": "oidc"}),
            "invalid 'role_type'",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "token_policies": "root"}),
            "cannot create root tokens",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "token_ttl": "-5"}),
            "token_ttl: cannot provide negative value",
        ),
        (
            json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "user_claim": ""}),
            "a user claim must be defined on the role",
        ),
    ];
    for (data, want) in cases {
        let e = invalid(write(&b, &s, "role/bad", data.clone()).await);
        assert!(e.contains(want), "{data}: {e:?} lacks {want:?}");
    }
    assert!(read(&b, &s, "role/bad").await.is_empty());
    // Syntax errors name the line.
    let e = invalid(
        write(
            &b,
            &s,
            "role/bad",
            json!({"bound_audiences": AUD, "policy": "package gateward\n\ndecision := {\n"}),
        )
        .await,
    );
    assert!(
        e.contains("bad.rego:4:1: expecting expression\n  |\n4 | "),
        "{e}"
    );
    assert!(matches!(
        b.handle(&s, req(Operation::Read, "role/-x", Value::Null))
            .await,
        Err(Error::UnsupportedPath(_))
    ));
    assert!(matches!(
        b.handle(&s, req(Operation::Read, "nothing/here", Value::Null))
            .await,
        Err(Error::UnsupportedPath(_))
    ));
    assert!(matches!(
        b.handle(&s, req(Operation::List, "config", Value::Null))
            .await,
        Err(Error::UnsupportedOperation(_))
    ));
}

#[tokio::test]
async fn login_allows_with_policies_ttl_metadata_and_alias() {
    let (b, s, _) = setup().await;
    let jwt = github_token(json!({}));
    let resp = login(&b, &s, "DEPLOY", &jwt).await.unwrap();
    let auth = resp.auth.unwrap();
    assert_eq!(auth.policies, vec!["base", "deploy-prod"]);
    assert_eq!(auth.token_policies, auth.policies);
    // The policy's 2m shortens the role's 10m; exp is NOW + 290.
    assert_eq!(auth.lease.ttl, Duration::from_secs(120));
    assert_eq!(auth.lease.max_ttl, Duration::from_secs(290));
    assert_eq!(auth.explicit_max_ttl, Duration::from_secs(290));
    assert!(auth.lease.renewable);
    assert!(auth.lease.issue_time.is_some());
    assert_eq!(auth.display_name, "repo:octo-org/deploy:environment:prod");
    let alias = auth.alias.clone().unwrap();
    assert_eq!(alias.name, "repo:octo-org/deploy:environment:prod");
    assert_eq!(alias.metadata.get("repo").unwrap(), "octo-org/deploy");
    assert_eq!(alias.metadata.get("workflow").unwrap(), "deploy");
    assert_eq!(alias.metadata.get("role").unwrap(), "deploy");
    assert!(!alias.metadata.contains_key("environment"));
    assert_eq!(auth.metadata.get("environment").unwrap(), "prod");
    assert_eq!(
        auth.metadata.get("login_path").unwrap(),
        "auth/gateward/login"
    );
    assert_eq!(auth.metadata.get("repo").unwrap(), "octo-org/deploy");
    assert_eq!(auth.internal_data["role"], "deploy");
    assert_eq!(auth.internal_data["exp"], NOW + 290);
    assert_eq!(auth.token_type, "default");
    assert!(auth.bound_cidrs.is_empty());
}

#[tokio::test]
async fn ttls_never_outlive_the_ci_token() {
    let (b, s, clock) = setup().await;
    write(
        &b,
        &s,
        "role/long",
        json!({
            "bound_audiences": AUD,
            "policy": "package gateward\ndecision := true\n",
            "token_ttl": "1h", "token_max_ttl": "2h", "token_explicit_max_ttl": "3h",
        }),
    )
    .await
    .unwrap();
    clock.set(NOW + 200);
    let auth = login(&b, &s, "long", &github_token(json!({})))
        .await
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.lease.ttl, Duration::from_secs(90));
    assert_eq!(auth.lease.max_ttl, Duration::from_secs(90));
    assert_eq!(auth.explicit_max_ttl, Duration::from_secs(90));
    // Without TTLs on the role, the mount default applies (ttl 0) under the exp caps.
    write(
        &b,
        &s,
        "role/plain",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n"}),
    )
    .await
    .unwrap();
    let auth = login(&b, &s, "plain", &github_token(json!({})))
        .await
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.lease.ttl, Duration::ZERO);
    assert_eq!(auth.lease.max_ttl, Duration::from_secs(90));
    assert_eq!(auth.explicit_max_ttl, Duration::from_secs(90));
    // Past exp but within the 60 s leeway: the core accepts it, but no token can be issued.
    clock.set(NOW + 320);
    let e = invalid(login(&b, &s, "plain", &github_token(json!({}))).await);
    assert!(e.starts_with("expired: token expired 30 s ago"), "{e}");
}

#[tokio::test]
async fn each_deny_reason() {
    let (b, s, clock) = setup().await;
    write(&b, &s, "role/bounded", json!({
        "bound_audiences": AUD,
        "policy": "package gateward\ndecision := true\n",
        "bound_claims": {"ref": "refs/heads/main", "repository_owner_id": "9919", "environment": ["prod", "staging"]},
    })).await.unwrap();
    write(
        &b,
        &s,
        "role/narrow-aud",
        json!({
            "policy": "package gateward\ndecision := true\n",
            "bound_audiences": "https://github.com/other",
            "bound_claims": {"repository_owner_id": "9919"},
        }),
    )
    .await
    .unwrap();
    write(&b, &s, "role/error", json!({
        "bound_audiences": AUD,
        "policy": "package gateward\nimport rego.v1\ndecision := {\"allow\": true, \"policies\": \"not-a-list\"} if input.token.claims.repository_owner_id == \"9919\"\n",
    })).await.unwrap();
    write(&b, &s, "role/erroring", json!({
        "bound_audiences": AUD,
        "policy": "package gateward\nimport rego.v1\ndecision := {\"allow\": input.token.claims.repository_owner_id + 1 > 0}\n",
    })).await.unwrap();
    write(&b, &s, "role/root", json!({
        "bound_audiences": AUD,
        "policy": "package gateward\nimport rego.v1\ndecision := {\"allow\": input.token.claims.repository_owner_id == \"9919\", \"policies\": [\"root\"]}\n",
    })).await.unwrap();
    write(
        &b,
        &s,
        "role/cidr",
        json!({
            "bound_audiences": AUD,
            "policy": "package gateward\ndecision := true\n", "token_bound_cidrs": "10.0.0.0/8",
            "bound_claims": {"repository_owner_id": "9919"},
        }),
    )
    .await
    .unwrap();
    let ok = github_token(json!({}));
    let cases: Vec<(&str, String, &str)> = vec![
        ("deploy", github_token(json!({"iat": NOW - 400, "nbf": NOW - 400, "exp": NOW - 100})), "expired: "),
        ("deploy", github_token(json!({"aud": "https://github.com/other"})), "audience_mismatch: "),
        ("deploy", mint(&key_b(), "a", &github_claims(NOW - 10, json!({}))), "signature_invalid: "),
        ("deploy", mint(&key_b(), "zz", &github_claims(NOW - 10, json!({}))), "key_not_found: "),
        ("deploy", github_token(json!({"iss": "https://evil.example"})), "issuer_untrusted: "),
        ("deploy", "not.a.jwt".to_string(), "token_malformed: "),
        ("bounded", github_token(json!({"ref": "refs/heads/dev"})), "claim_invalid: error validating claims: claim \"ref\" does not match any associated bound claim values"),
        ("bounded", github_token(json!({"environment": null})), "claim_missing: error validating claims: claim \"environment\" is missing"),
        ("narrow-aud", ok.clone(), "audience_mismatch: error validating token: invalid audience (aud) claim"),
        ("deploy", github_token(json!({"repository": "evil-org/deploy"})), "policy_denied: not an allowed deploy"),
        ("error", ok.clone(), "policy_error: policy result `policies` must be a list"),
        ("erroring", ok.clone(), "policy_error: evaluation failed"),
        ("root", ok.clone(), "policy_error: policy result `policies` may not grant root"),
        ("nope", ok.clone(), "role \"nope\" could not be found"),
        ("", ok.clone(), "missing role"),
        ("deploy", String::new(), "missing token"),
    ];
    for (role, jwt, want) in cases {
        let e = invalid(login(&b, &s, role, &jwt).await);
        assert!(
            e.starts_with(want),
            "role {role}: {e:?} does not start with {want:?}"
        );
        // Never the token itself in a message.
        assert!(jwt.len() < 20 || !e.contains(&jwt), "{e}");
    }
    // The source address outside token_bound_cidrs: 403 before any token check.
    let r = login(&b, &s, "cidr", "garbage").await;
    assert!(matches!(r, Err(Error::PermissionDenied(_))), "{r:?}");
    let mut inside = req(
        Operation::Update,
        "login",
        json!({"role": "cidr", "jwt": ok}),
    );
    inside.remote_addr = Some(String::from("10.1.2.3:5555"));
    let auth = b.handle(&s, inside).await.unwrap().auth.unwrap();
    assert_eq!(auth.bound_cidrs, vec!["10.0.0.0/8"]);
    // Without config: every login fails alike.
    b.handle(&s, req(Operation::Delete, "config", Value::Null))
        .await
        .unwrap();
    assert_eq!(
        invalid(login(&b, &s, "deploy", &github_token(json!({}))).await),
        "could not load configuration"
    );
    clock.set(NOW);
}

#[tokio::test]
async fn role_issuers_restrict_which_configured_issuers_a_role_accepts() {
    let (b, s, _) = setup().await;
    write(
        &b,
        &s,
        "config",
        json!({"issuers": [
            github_config()["issuers"][0].clone(),
            {"name": "other", "issuer": "https://ci.example", "audiences": [AUD],
             "jwks": gateward_devkit::jwks(&[("b", &key_b())])}
        ]}),
    )
    .await
    .unwrap();
    write(
        &b,
        &s,
        "role/gh-only",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n", "issuers": ["github"]}),
    )
    .await
    .unwrap();
    let other = mint(
        &key_b(),
        "b",
        &json!({"iss": "https://ci.example", "sub": "job-1", "aud": AUD, "iat": NOW - 5, "exp": NOW + 60}),
    );
    let e = invalid(login(&b, &s, "gh-only", &other).await);
    assert_eq!(
        e,
        "issuer_untrusted: issuer other is not accepted by role \"gh-only\""
    );
    login(&b, &s, "gh-only", &github_token(json!({})))
        .await
        .unwrap();
    write(
        &b,
        &s,
        "role/any",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n"}),
    )
    .await
    .unwrap();
    let auth = login(&b, &s, "any", &other).await.unwrap().auth.unwrap();
    assert_eq!(auth.alias.unwrap().name, "job-1");
}

#[tokio::test]
async fn the_policy_sees_the_documented_input() {
    let (b, s, _) = setup().await;
    let policy = r#"package gateward
import rego.v1
decision := {"allow": true, "metadata": {
	"issuer": input.token.issuer,
	"alg": input.token.header.alg,
	"role": "x",
}} if true
"#;
    // `role` is reserved in metadata: a policy error, not an overwrite.
    write(
        &b,
        &s,
        "role/echo",
        json!({"bound_audiences": AUD, "policy": policy}),
    )
    .await
    .unwrap();
    let e = invalid(login(&b, &s, "echo", &github_token(json!({}))).await);
    assert!(
        e.starts_with("policy_error: policy result `metadata` may not set \"role\""),
        "{e}"
    );
    let policy = r#"package gateward
import rego.v1
decision := {"allow": true, "metadata": {
	"issuer": input.token.issuer,
	"alg": input.token.header.alg,
	"mount": input.request.mount,
	"remote_addr": input.request.remote_addr,
	"operation": input.request.operation,
	"role_name": input.role,
	"now": sprintf("%d", [input.now]),
	"sub": input.token.claims.sub,
}} if true
"#;
    write(
        &b,
        &s,
        "role/echo",
        json!({"bound_audiences": AUD, "policy": policy}),
    )
    .await
    .unwrap();
    let auth = login(&b, &s, "echo", &github_token(json!({})))
        .await
        .unwrap()
        .auth
        .unwrap();
    let m = &auth.metadata;
    assert_eq!(m["issuer"], "github");
    assert_eq!(m["alg"], "RS256");
    assert_eq!(m["mount"], "auth/gateward/");
    assert_eq!(m["remote_addr"], "127.0.0.1");
    assert_eq!(m["operation"], "update");
    assert_eq!(m["role_name"], "echo");
    assert_eq!(m["now"], NOW.to_string());
    assert_eq!(m["sub"], "repo:octo-org/deploy:environment:prod");
    // Policy data and extra modules.
    write(&b, &s, "role/lib", json!({
        "bound_audiences": AUD,
        "policy": "package gateward\nimport rego.v1\nimport data.lib\ndecision if lib.owner_ok(input.token.claims)\n",
        "modules": {"lib.rego": "package lib\nimport rego.v1\nowner_ok(c) if c.repository_owner_id in data.owners\n"},
        "data": {"owners": ["9919"]},
    })).await.unwrap();
    login(&b, &s, "lib", &github_token(json!({})))
        .await
        .unwrap();
    let e = invalid(
        login(
            &b,
            &s,
            "lib",
            &github_token(json!({"repository_owner_id": "1"})),
        )
        .await,
    );
    assert_eq!(
        e,
        "policy_denied: policy result is undefined (no rule matched)"
    );
}

async fn renew(
    b: &Backend,
    s: &MemoryStorage,
    auth: &gateward_openbao_auth::Auth,
) -> Result<gateward_openbao_auth::Auth, Error> {
    let mut r = Request::new(Operation::Renew, "login");
    r.auth = Some(auth.clone());
    b.handle(s, r).await.map(|resp| resp.auth.unwrap())
}

#[tokio::test]
async fn renew_rechecks_the_role_policies_and_the_ci_token_expiry() {
    let (b, s, clock) = setup().await;
    let auth = login(&b, &s, "deploy", &github_token(json!({})))
        .await
        .unwrap()
        .auth
        .unwrap();
    clock.set(NOW + 100);
    let renewed = renew(&b, &s, &auth).await.unwrap();
    // min(role 10m, policy 2m, exp - now = 190 s).
    assert_eq!(renewed.lease.ttl, Duration::from_secs(120));
    // max_ttl counts from the issue time: exp - issue = 290 s.
    assert_eq!(renewed.lease.max_ttl, Duration::from_secs(290));
    assert_eq!(renewed.policies, auth.policies);
    assert_eq!(renewed.internal_data, auth.internal_data);
    clock.set(NOW + 250);
    assert_eq!(
        renew(&b, &s, &auth).await.unwrap().lease.ttl,
        Duration::from_secs(40)
    );
    // The CI token has expired: no renewal.
    clock.set(NOW + 290);
    let e = renew(&b, &s, &auth).await.unwrap_err();
    assert!(e.message().contains("expired"), "{e}");
    clock.set(NOW + 10);
    // The role drops a policy: the token's policies are no longer grantable.
    write(&b, &s, "role/deploy", json!({"token_policies": "other"}))
        .await
        .unwrap();
    let e = renew(&b, &s, &auth).await.unwrap_err();
    assert!(
        e.message()
            .starts_with("policies have changed, not renewing"),
        "{e}"
    );
    // Back to the original token policies: the policy-granted one renews while the policy is the same.
    write(&b, &s, "role/deploy", json!({"token_policies": "base"}))
        .await
        .unwrap();
    renew(&b, &s, &auth).await.unwrap();
    // A changed policy no longer vouches for the policies it granted earlier.
    write(
        &b,
        &s,
        "role/deploy",
        json!({"bound_audiences": AUD, "policy": ALLOW_POLICY.replace("2m", "3m")}),
    )
    .await
    .unwrap();
    let e = renew(&b, &s, &auth).await.unwrap_err();
    assert!(e.message().contains("\"deploy-prod\""), "{e}");
    // The role is gone.
    b.handle(&s, req(Operation::Delete, "role/deploy", Value::Null))
        .await
        .unwrap();
    let e = renew(&b, &s, &auth).await.unwrap_err();
    assert_eq!(
        e,
        Error::Invalid(String::from("role deploy does not exist during renewal"))
    );
}

#[tokio::test]
async fn resolve_role_and_alias_lookahead() {
    let (b, s, _) = setup().await;
    let r = b
        .handle(
            &s,
            req(
                Operation::ResolveRole,
                "login",
                json!({"role": "Deploy", "jwt": "x"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.data["role"], "deploy");
    let e = invalid(
        b.handle(
            &s,
            req(Operation::ResolveRole, "login", json!({"role": "none"})),
        )
        .await,
    );
    assert_eq!(e, "role \"none\" could not be found");
    // Lookahead verifies but does not run the policy (this token's repository would be denied).
    let jwt = github_token(json!({"repository": "evil-org/deploy"}));
    let r = b
        .handle(
            &s,
            req(
                Operation::AliasLookahead,
                "login",
                json!({"role": "deploy", "jwt": jwt}),
            ),
        )
        .await
        .unwrap();
    let auth = r.auth.unwrap();
    assert_eq!(
        auth.alias.unwrap().name,
        "repo:octo-org/deploy:environment:prod"
    );
    assert!(auth.policies.is_empty());
    let bad = mint(&key_b(), "a", &github_claims(NOW - 10, json!({})));
    let e = invalid(
        b.handle(
            &s,
            req(
                Operation::AliasLookahead,
                "login",
                json!({"role": "deploy", "jwt": bad}),
            ),
        )
        .await,
    );
    assert!(e.starts_with("signature_invalid"), "{e}");
}

#[tokio::test]
async fn help_special_paths_and_global_operations() {
    let (b, s, _) = setup().await;
    for path in ["", "config", "role/", "role/deploy", "login"] {
        let r = b
            .handle(&s, req(Operation::Help, path, Value::Null))
            .await
            .unwrap();
        let help = r.data["help"].as_str().unwrap();
        assert!(!help.is_empty());
        assert!(r.data["openapi"]["paths"]["/login"].is_object());
        if path == "role/deploy" {
            assert!(help.contains("Request:        role/deploy"), "{help}");
            assert!(help.contains("token_policies"), "{help}");
        }
    }
    let sp = Backend::special_paths();
    assert_eq!(sp.unauthenticated, vec!["login"]);
    assert!(sp.root.is_empty());
    for op in [Operation::Revoke, Operation::Rollback] {
        assert!(b
            .handle(&s, req(op, "login", Value::Null))
            .await
            .unwrap()
            .is_empty());
    }
    for op in Operation::ALL {
        assert_eq!(Operation::from_name(op.as_str()), Some(op));
    }
    assert_eq!(Operation::from_name("resolve-path"), None);
}

#[tokio::test]
async fn mounts_share_nothing() {
    let clock = TestClock::at(NOW);
    let (b1, s1) = (backend(clock.clone()), MemoryStorage::new());
    let (b2, s2) = (backend(clock.clone()), MemoryStorage::new());
    write(&b1, &s1, "config", github_config()).await.unwrap();
    write(
        &b1,
        &s1,
        "role/r",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := true\n"}),
    )
    .await
    .unwrap();
    login(&b1, &s1, "r", &github_token(json!({})))
        .await
        .unwrap();
    assert_eq!(
        invalid(login(&b2, &s2, "r", &github_token(json!({}))).await),
        "could not load configuration"
    );
    // The same backend over another mount's storage sees that storage only (caches are keyed
    // by the stored bytes).
    assert_eq!(
        invalid(login(&b1, &s2, "r", &github_token(json!({}))).await),
        "could not load configuration"
    );
    write(&b2, &s2, "config", github_config()).await.unwrap();
    write(
        &b2,
        &s2,
        "role/r",
        json!({"bound_audiences": AUD, "policy": "package gateward\ndecision := false\n"}),
    )
    .await
    .unwrap();
    assert_eq!(
        invalid(login(&b2, &s2, "r", &github_token(json!({}))).await),
        "policy_denied: denied by policy"
    );
    login(&b1, &s1, "r", &github_token(json!({})))
        .await
        .unwrap();
    b1.cleanup();
    b1.invalidate("role/r");
    login(&b1, &s1, "r", &github_token(json!({})))
        .await
        .unwrap();
}

/// The bound-claims parity table, through a whole login (what the transport's parity test runs
/// against a real `bao`).
#[tokio::test]
async fn bound_claims_parity_cases_through_login() {
    let clock = TestClock::at(NOW);
    let b = backend(clock);
    let s = MemoryStorage::new();
    write(
        &b,
        &s,
        "config",
        json!({"issuers": [{
            "name": "gh", "issuer": GITHUB, "audiences": [AUD],
            "jwks": gateward_devkit::jwks(&[("a", &key_a())]),
        }]}),
    )
    .await
    .unwrap();
    let cases = parity_cases();
    assert!(cases.len() >= 40);
    for (i, c) in cases.iter().enumerate() {
        let role = format!("case{i}");
        write(
            &b,
            &s,
            &format!("role/{role}"),
            json!({
                "bound_audiences": c.role_audiences(),
                "policy": "package gateward\ndecision := true\n",
                "bound_claims_type": c.bound_claims_type.as_str(),
                "bound_claims": c.bound_claims,
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let mut claims = parity_baseline();
        claims.insert("iat".into(), json!(NOW - 5));
        claims.insert("exp".into(), json!(NOW + 60));
        for (k, v) in &c.claims {
            if v.is_null() {
                claims.remove(k);
            } else {
                claims.insert(k.clone(), v.clone());
            }
        }
        let jwt = mint(&key_a(), "a", &Value::Object(claims));
        let got = login(&b, &s, &role, &jwt).await;
        assert_eq!(got.is_ok(), c.allowed, "{}: {got:?}", c.name);
        if let (Some(want), Err(e)) = (&c.error, &got) {
            assert!(e.message().contains(want.as_str()), "{}: {e}", c.name);
        }
    }
}

#[test]
fn handle_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    let r = req(Operation::Update, "login", Value::Null);
    send(&b.handle(&s, r.clone()));
    send(&b.existence_check(&s, &r));
    fn sync<T: Send + Sync>() {}
    sync::<Backend>();
    fn storage<S: Storage>() {}
    storage::<MemoryStorage>();
}

/// Issue 17 item 9: as the built-in `jwt` method does, a role without `bound_audiences` refuses
/// every token that names an audience, so a role never accepts tokens minted for another
/// audience of the same issuer (another role's, say); the role write warns.
#[tokio::test]
async fn a_role_without_bound_audiences_refuses_tokens_that_carry_an_aud() {
    let clock = TestClock::at(NOW);
    let b = backend(clock);
    let s = MemoryStorage::new();
    let mut config = github_config();
    config["issuers"][0]["audiences"] = json!([AUD, "https://bao.example.com"]);
    write(&b, &s, "config", config).await.unwrap();
    let resp = write(
        &b,
        &s,
        "role/unbound",
        json!({"policy": "package gateward\ndecision := true\n",
               "bound_claims": {"repository_owner_id": "9919"}}),
    )
    .await
    .unwrap();
    assert!(
        resp.warnings
            .iter()
            .any(|w| w.starts_with("bound_audiences is empty")),
        "{:?}",
        resp.warnings
    );
    let want = "audience_mismatch: audience claim found in JWT but no audiences bound to the role";
    for aud in [
        json!(AUD),
        json!("https://bao.example.com"),
        json!(["https://bao.example.com", AUD]),
    ] {
        let e = invalid(login(&b, &s, "unbound", &github_token(json!({ "aud": aud }))).await);
        assert_eq!(e, want, "aud {aud}");
    }
    // A role bound to one audience takes its own tokens, not the other audience's.
    write(
        &b,
        &s,
        "role/bound",
        json!({"policy": "package gateward\ndecision := true\n", "bound_audiences": AUD}),
    )
    .await
    .unwrap();
    login(&b, &s, "bound", &github_token(json!({})))
        .await
        .unwrap();
    let e = invalid(
        login(
            &b,
            &s,
            "bound",
            &github_token(json!({"aud": "https://bao.example.com"})),
        )
        .await,
    );
    assert!(
        e.starts_with("audience_mismatch: error validating token: invalid audience (aud) claim"),
        "{e}"
    );
}

/// Issue 17 item 9: a login's role name is held to the names a role write accepts, and its
/// refusal does not echo the name or a storage key (OpenBao answered `role/../gha` with a 500).
#[tokio::test]
async fn login_role_names_are_checked_like_role_writes() {
    let (b, s, _) = setup().await;
    let jwt = github_token(json!({}));
    for name in ["../gha", "..", "a/b", "-x", "x-", "deploy/../deploy", "dé"] {
        let r = login(&b, &s, name, &jwt).await;
        let Err(Error::Invalid(m)) = &r else {
            panic!("{name}: expected a 400, got {r:?}");
        };
        assert!(m.starts_with("invalid role name: "), "{name}: {m}");
        assert!(!m.contains("role/") && !m.contains(name), "{name}: {m}");
        // resolve-role and alias-lookahead take the same path.
        for op in [Operation::ResolveRole, Operation::AliasLookahead] {
            let r = b
                .handle(
                    &s,
                    req(op, "login", json!({"role": name, "jwt": jwt.clone()})),
                )
                .await;
            assert!(matches!(r, Err(Error::Invalid(_))), "{name} {op:?}: {r:?}");
        }
    }
    // Valid names still work, upper-case included (lower-cased as OpenBao does).
    login(&b, &s, "DEPLOY", &jwt).await.unwrap();
}

/// Issue 17 item 9: PEM keys given without a `kid` verify tokens that name one, as the built-in
/// method's `jwt_validation_pubkeys` ignore `kid`; keys that do carry a kid keep strict
/// selection.
#[tokio::test]
async fn pem_keys_without_kid_verify_tokens_that_name_a_kid() {
    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    write(
        &b,
        &s,
        "config",
        json!({"issuers": [{
            "name": "gh", "issuer": GITHUB, "audiences": [AUD],
            "pem_keys": [{"pem": gateward_devkit::public_pem(&key_a())}],
        }]}),
    )
    .await
    .unwrap();
    write(
        &b,
        &s,
        "role/ci",
        json!({"policy": "package gateward\ndecision := true\n", "bound_audiences": AUD}),
    )
    .await
    .unwrap();
    let claims = github_claims(NOW - 10, json!({}));
    for kid in ["a", "some-other-kid"] {
        login(&b, &s, "ci", &mint(&key_a(), kid, &claims))
            .await
            .unwrap_or_else(|e| panic!("kid {kid}: {e}"));
    }
    let kidless = gateward_devkit::mint(&key_a(), None, &claims).unwrap();
    login(&b, &s, "ci", &kidless).await.unwrap();
    // Another key's signature still fails, now as a signature error.
    let e = invalid(login(&b, &s, "ci", &mint(&key_b(), "a", &claims)).await);
    assert!(e.starts_with("signature_invalid: "), "{e}");

    // A key with a kid is chosen by it; the kid-less PEM key still serves other kids.
    write(
        &b,
        &s,
        "config",
        json!({"issuers": [{
            "name": "gh", "issuer": GITHUB, "audiences": [AUD],
            "pem_keys": [{"pem": gateward_devkit::public_pem(&key_a())},
                         {"pem": gateward_devkit::public_pem(&key_b()), "kid": "b"}],
        }]}),
    )
    .await
    .unwrap();
    login(&b, &s, "ci", &mint(&key_b(), "b", &claims))
        .await
        .unwrap();
    login(&b, &s, "ci", &mint(&key_a(), "x", &claims))
        .await
        .unwrap();
    let e = invalid(login(&b, &s, "ci", &mint(&key_a(), "b", &claims)).await);
    assert!(e.starts_with("signature_invalid: "), "{e}");
}
