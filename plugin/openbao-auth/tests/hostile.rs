//! The malicious-token checklist (`gateward_devkit::hostile`, the same cases the core's tests
//! and the Envoy filter's run) through `login`: each token is refused with the core's code
//! (a user error, HTTP 400), or logged in where the core allows it.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use gateward_devkit::hostile::{self, Expect, NOW};
use gateward_openbao_auth::{Error, MemoryStorage};
use policy_engine::{b64, DenyCode};
use serde_json::json;

#[tokio::test]
async fn the_token_checklist_gets_the_cores_answers_at_login() {
    let cases = hostile::all();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in &cases {
        // Login takes the token itself: the header's shape (and an empty one) is the HTTP
        // front ends' concern.
        let Some(jwt) = case.authorization.strip_prefix("Bearer ") else {
            continue;
        };
        if jwt.is_empty() {
            continue;
        }
        let mut case = case.clone();
        // The one deliberate difference: a token past its `exp` but inside the leeway verifies,
        // yet a Vault token may not outlive it, so login refuses it as expired.
        if case.expect == Expect::Allow && exp(jwt).is_some_and(|e| e <= NOW) {
            case.expect = Expect::Deny(vec![DenyCode::Expired]);
        }
        let b = backend(TestClock::at(NOW));
        let s = MemoryStorage::default();
        write(&b, &s, "config", case.config.clone()).await.unwrap();
        // The role binds every audience the case's issuers accept: the core decides on `aud`.
        let audiences: Vec<serde_json::Value> = case.config["issuers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["audiences"].as_array().cloned().unwrap_or_default())
            .collect();
        write(
            &b,
            &s,
            "role/any",
            json!({"bound_audiences": audiences, "policy": "package gateward\nimport rego.v1\ndecision := true\n"}),
        )
        .await
        .unwrap();
        let code = match login(&b, &s, "any", jwt).await {
            Ok(_) => None,
            Err(Error::Invalid(m)) => Some(m.split(':').next().unwrap_or("").to_string()),
            Err(other) => panic!("{}: not a user error: {other:?}", case.name),
        };
        if let Err(e) = case.judge(code.as_deref()) {
            failures.push(e);
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100, "only {checked} cases ran");
}

/// The token's `exp`, read without verifying.
fn exp(jwt: &str) -> Option<i64> {
    let claims = b64::decode(jwt.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    claims.get("exp")?.as_f64().map(|e| e as i64)
}
