#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The example role of docs/openbao.md, taken from the document itself.

mod common;

use std::time::Duration;

use common::*;
use gateward_openbao_auth::MemoryStorage;
use serde_json::{json, Value};

const DOC: &str = include_str!("../../../docs/openbao.md");

/// The first fenced block of `lang` after `heading`.
fn block(heading: &str, lang: &str) -> String {
    let after = &DOC[DOC.find(heading).unwrap()..];
    let fence = format!("```{lang}\n");
    let start = after.find(&fence).unwrap() + fence.len();
    let len = after[start..].find("\n```").unwrap();
    after[start..start + len].to_string()
}

#[tokio::test]
async fn docs_example_role_works() {
    let heading = "### Example: GitHub Actions deployments";
    let rego = block(heading, "rego");
    let sh = block(heading, "sh");
    let body = &sh[sh.find("<<EOF\n").unwrap() + 6..sh.rfind("\nEOF").unwrap()];
    let body = body.replace(
        "$(jq -Rs . < deploy.rego)",
        &Value::String(rego).to_string(),
    );
    let role: Value = serde_json::from_str(&body).unwrap();

    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    write(&b, &s, "config", github_config()).await.unwrap();
    let resp = write(&b, &s, "role/deploy", role).await.unwrap();
    assert!(resp.warnings.is_empty(), "{:?}", resp.warnings);

    let auth = login(&b, &s, "deploy", &github_token(json!({})))
        .await
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.policies, vec!["ci-base", "deploy-prod"]);
    // min(role 30m, policy 15m, the CI token's remaining 290 s).
    assert_eq!(auth.lease.ttl, Duration::from_secs(290));
    assert_eq!(auth.metadata["repository"], "octo-org/deploy");
    assert_eq!(
        auth.metadata["sha"],
        "d6e2b5f3c0a1e4b7a9c8d7e6f5a4b3c2d1e0f9a8"
    );

    let tag = github_token(
        json!({"ref": "refs/tags/v1.2.0", "ref_type": "tag", "environment": "staging"}),
    );
    let auth = login(&b, &s, "deploy", &tag).await.unwrap().auth.unwrap();
    assert_eq!(auth.policies, vec!["ci-base", "deploy-staging"]);

    for denied in [
        json!({"ref": "refs/heads/feature"}),
        json!({"event_name": "pull_request_target"}),
        json!({"repository_id": "1"}),
        json!({"environment": "dev"}),
        json!({"ref": "refs/tags/v1", "ref_type": "branch"}),
    ] {
        let e = invalid(login(&b, &s, "deploy", &github_token(denied.clone())).await);
        assert_eq!(
            e, "policy_denied: not a deploy from octo-org's main branch or a release tag",
            "{denied}"
        );
    }
}

/// The docs say the Rego library's helpers work through `modules` with a rule from `data`.
#[tokio::test]
async fn library_helpers_work_through_modules() {
    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    write(&b, &s, "config", github_config()).await.unwrap();
    let role = json!({
        "bound_audiences": AUD,
        "policy": "package gateward\nimport rego.v1\nimport data.gateward.github_actions as gh\n\ndefault decision := false\n\ndecision := {\"allow\": false, \"reason\": gh.denial(data.rule)} if not gh.allowed(data.rule)\n\ndecision := {\"allow\": true} if gh.allowed(data.rule)\n",
        "modules": {
            "common.rego": include_str!("../../../policies/common.rego"),
            "github_actions.rego": include_str!("../../../policies/github_actions.rego"),
        },
        "data": {"rule": {"owner_id": "9919", "repository_ids": ["74839201"], "branches": ["main"]}},
        "claim_mappings": "repository=repo,ref=ref",
    });
    write(&b, &s, "role/lib", role).await.unwrap();
    let auth = login(&b, &s, "lib", &github_token(json!({})))
        .await
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(auth.metadata["repo"], "octo-org/deploy");
    assert_eq!(auth.metadata["ref"], "refs/heads/main");
    let e = invalid(
        login(
            &b,
            &s,
            "lib",
            &github_token(json!({"repository_owner_id": "1"})),
        )
        .await,
    );
    assert!(e.starts_with("policy_denied: "), "{e}");
    assert!(!e.contains("denied by policy"), "the library explains: {e}");
}
