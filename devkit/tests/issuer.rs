//! The development issuer over real HTTP on loopback, its tokens verified by the real core.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use gateward_devkit::http::{self, Response};
use gateward_devkit::issuer::{
    DevIssuer, IssuerError, IssuerOptions, MintRequest, DEFAULT_AUDIENCE,
};
use gateward_devkit::{claims, KeyKind};
use policy_engine::{Deny, Gate, Verified};
use serde_json::{json, Value};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An issuer with a P-256 key (RSA key generation takes seconds in debug builds).
fn fast_issuer() -> DevIssuer {
    DevIssuer::start(IssuerOptions {
        key: KeyKind::P256,
        ..IssuerOptions::default()
    })
    .unwrap()
}

fn post(url: &str, body: &str) -> Response {
    http::request(
        "POST",
        url,
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .unwrap()
}

/// A Gate trusting `issuer` with the JWKS fetched from it now.
fn gate(issuer: &DevIssuer, alg: &str, audiences: &[&str]) -> Gate {
    let jwks = http::get(&issuer.jwks_url()).unwrap().json().unwrap();
    let config = json!({
        "issuers": [{
            "name": "dev",
            "issuer": issuer.url(),
            "audiences": audiences,
            "algorithms": [alg],
            "jwks": jwks,
        }],
    });
    Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn verify(gate: &Gate, token: &str) -> Result<Verified, Deny> {
    let (parsed, id) = gate.route(token)?;
    gate.verify(&parsed, id, gate.static_keys(id).unwrap(), now())
}

fn code(gate: &Gate, token: &str) -> String {
    match verify(gate, token) {
        Ok(v) => panic!("expected a denial, verified {:?}", v.claims),
        Err(d) => d.code.as_str().to_string(),
    }
}

#[test]
fn every_preset_verifies_with_the_core() {
    let issuer = DevIssuer::start(IssuerOptions::default()).unwrap();
    let url = issuer.url();
    assert_eq!(url, format!("http://127.0.0.1:{}", issuer.port()));
    assert_eq!(issuer.current_kid(), "dev-1");

    let discovery = http::get(&issuer.discovery_url()).unwrap();
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.header("content-type"), Some("application/json"));
    let doc = discovery.json().unwrap();
    assert_eq!(doc["issuer"], url);
    assert_eq!(doc["jwks_uri"], format!("{url}/.well-known/jwks"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["response_types_supported"], json!(["id_token"]));
    assert_eq!(
        doc["subject_types_supported"],
        json!(["public", "pairwise"])
    );
    let supported = doc["claims_supported"].as_array().unwrap();
    for c in [
        "sub",
        "repository_owner_id",
        "project_path",
        "oidc.circleci.com/org-id",
    ] {
        assert!(supported.contains(&json!(c)), "{c}");
    }
    // The core's discovery reader accepts it (issuer matches, loopback jwks_uri).
    assert_eq!(
        policy_engine::discovery::jwks_uri(&discovery.body, &url).unwrap(),
        issuer.jwks_url()
    );

    let jwks = http::get(&issuer.jwks_url()).unwrap();
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.header("content-type"), Some("application/json"));
    assert!(jwks.header("cache-control").unwrap().contains("max-age="));
    let keys = jwks.json().unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys["keys"][0]["kid"], "dev-1");
    assert_eq!(keys["keys"][0]["kty"], "RSA");
    assert_eq!(keys, issuer.jwks());
    assert_eq!(issuer.jwks_fetches(), 1);
    assert_eq!(issuer.discovery_fetches(), 1);

    let gate = gate(&issuer, "RS256", &[DEFAULT_AUDIENCE]);
    assert_eq!(issuer.jwks_fetches(), 2);
    let mut jtis = vec![];
    for preset in claims::PRESETS {
        // Over HTTP, as curl would.
        let reply = post(
            &format!("{url}/token"),
            &json!({"preset": preset}).to_string(),
        );
        assert_eq!(reply.status, 200, "{preset}: {}", reply.text());
        assert!(reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"));
        let token = reply.text();
        assert_eq!(token.trim(), token, "the body is exactly the token");
        let verified = verify(&gate, &token).unwrap_or_else(|d| panic!("{preset}: {d:?}"));
        let c = &verified.claims;
        assert_eq!(c["iss"], url.as_str(), "{preset}");
        assert!((c["iat"].as_i64().unwrap() - now()).abs() <= 5, "{preset}");
        assert_eq!(verified.header["kid"], "dev-1");
        assert_eq!(verified.header["typ"], "JWT");
        if let Some(jti) = c.get("jti") {
            jtis.push(jti.clone());
        }
        // In-process, the same.
        let direct = issuer.mint(preset, &Value::Null).unwrap();
        let direct = verify(&gate, &direct).unwrap();
        assert_eq!(direct.claims.len(), c.len(), "{preset}");
        if let Some(jti) = c.get("jti") {
            assert_ne!(direct.claims.get("jti"), Some(jti), "{preset}: a fresh jti");
        }
    }
    let unique: std::collections::BTreeSet<String> = jtis.iter().map(Value::to_string).collect();
    assert_eq!(unique.len(), jtis.len(), "every token gets a fresh jti");

    // Shapes per provider.
    let claims_of = |preset: &str| {
        verify(&gate, &issuer.mint(preset, &Value::Null).unwrap())
            .unwrap()
            .claims
    };
    let gh = claims_of("github-actions");
    assert_eq!(gh["sub"], "repo:octo-org/deploy:environment:prod");
    assert_eq!(gh["repository_owner_id"], "9919");
    assert_eq!(
        gh["nbf"].as_i64().unwrap(),
        gh["iat"].as_i64().unwrap() - 600
    );
    assert_eq!(
        gh["exp"].as_i64().unwrap(),
        gh["iat"].as_i64().unwrap() + 300
    );
    let gl = claims_of("gitlab");
    assert_eq!(
        gl["sub"],
        "project_path:octo-org/deploy:ref_type:branch:ref:main"
    );
    assert!(gl["runner_id"].is_number());
    assert_eq!(gl["ref_protected"], "true");
    let cc = claims_of("circleci");
    assert!(cc["sub"].as_str().unwrap().starts_with("org/"));
    assert_eq!(cc["oidc.circleci.com/ssh-rerun"], false);
    assert!(!cc.contains_key("nbf"));
    assert_eq!(
        cc["exp"].as_i64().unwrap() - cc["iat"].as_i64().unwrap(),
        3600
    );
    let bk = claims_of("buildkite");
    assert!(bk["build_number"].is_number());
    assert_eq!(bk["build_tag"], Value::Null);
    assert!(bk["sub"]
        .as_str()
        .unwrap()
        .starts_with("organization:octo-org:pipeline:deploy:"));
    let sp = claims_of("spiffe");
    assert_eq!(sp["sub"], "spiffe://example.org/ns/ci/sa/deployer");
    assert_eq!(sp["aud"], json!([DEFAULT_AUDIENCE]));
    let generic = claims_of("generic");
    let mut names: Vec<&str> = generic.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["aud", "exp", "iat", "iss", "nbf", "sub"]);

    // The query form, with an audience, a ttl and string / typed overrides.
    let q = http::get(&format!(
        "{url}/token?preset=gitlab&aud=https%3A%2F%2Fapi.example&ttl=120&claim.ref=dev&claim.ref_path=refs/heads/dev&json.runner_id=7&json.user_email=null"
    ))
    .unwrap();
    assert_eq!(q.status, 200, "{}", q.text());
    let other_aud = self::gate(&issuer, "RS256", &["https://api.example"]);
    let c = verify(&other_aud, &q.text()).unwrap().claims;
    assert_eq!(
        (c["ref"].clone(), c["ref_path"].clone()),
        (json!("dev"), json!("refs/heads/dev"))
    );
    assert_eq!(c["runner_id"], 7);
    assert!(!c.contains_key("user_email"));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
    assert_eq!(code(&gate, &q.text()), "audience_mismatch");
}

#[test]
fn builders_satisfy_the_core_presets() {
    // What the core's presets require of each provider's tokens, checked on the builders with
    // their real issuers (the dev issuer swaps in its own URL).
    for preset in [
        "github-actions",
        "gitlab",
        "circleci",
        "buildkite",
        "spiffe",
    ] {
        let c = claims::preset(preset, 1_790_000_000, "https://api.example").unwrap();
        let map = c.as_object().unwrap();
        let p = policy_engine::presets::lookup(preset).unwrap();
        (p.check_issuer)(c["iss"].as_str().unwrap()).unwrap_or_else(|e| panic!("{preset}: {e}"));
        for required in p.required_claims {
            assert!(map.contains_key(*required), "{preset} lacks {required}");
        }
        (p.check_claims)(map).unwrap_or_else(|e| panic!("{preset}: {e}"));
        if let Some(max) = p.max_lifetime_seconds {
            let life = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
            assert!(life as u64 <= max, "{preset}: {life}");
        }
    }
    assert!(claims::preset("jenkins", 0, "a").is_none());
}

#[test]
fn rotation_keeps_old_keys_until_retired() {
    let issuer = fast_issuer();
    let url = issuer.url();
    let old = issuer.mint("github-actions", &json!({})).unwrap();
    assert_eq!(
        http::get(&issuer.discovery_url()).unwrap().json().unwrap()
            ["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );

    assert_eq!(issuer.rotate(), "dev-2");
    assert_eq!(issuer.current_kid(), "dev-2");
    let rotated = post(&format!("{url}/rotate"), "");
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    assert_eq!(
        rotated.json().unwrap(),
        json!({"kid": "dev-3", "kids": ["dev-1", "dev-2", "dev-3"]})
    );
    let new = issuer.mint("github-actions", &json!({})).unwrap();

    let both = gate(&issuer, "ES256", &[DEFAULT_AUDIENCE]);
    assert_eq!(verify(&both, &old).unwrap().header["kid"], "dev-1");
    assert_eq!(verify(&both, &new).unwrap().header["kid"], "dev-3");
    // A token signed by an older, still published key on request.
    let req = MintRequest {
        kid: Some("dev-2".into()),
        ..MintRequest::default()
    };
    assert_eq!(
        verify(&both, &issuer.mint_request(&req).unwrap())
            .unwrap()
            .header["kid"],
        "dev-2"
    );

    assert_eq!(issuer.retire(), ["dev-3"]);
    let retired = post(&format!("{url}/retire"), "");
    assert_eq!(retired.json().unwrap(), json!({"kids": ["dev-3"]}));
    assert_eq!(issuer.published_kids(), ["dev-3"]);
    let only_new = gate(&issuer, "ES256", &[DEFAULT_AUDIENCE]);
    assert_eq!(code(&only_new, &old), "key_not_found");
    assert!(verify(&only_new, &new).is_ok());
    assert!(matches!(
        issuer.mint_request(&req),
        Err(IssuerError::UnknownKid { .. })
    ));
}

#[test]
fn overrides_mint_expired_wrong_issuer_and_missing_claims() {
    let issuer = fast_issuer();
    let gate = gate(&issuer, "ES256", &[DEFAULT_AUDIENCE]);
    let t = now();
    let expired = issuer
        .mint(
            "github-actions",
            &json!({"iat": t - 900, "nbf": t - 900, "exp": t - 600}),
        )
        .unwrap();
    assert_eq!(code(&gate, &expired), "expired");
    // Over HTTP too.
    let body = json!({"claims": {"exp": t - 600, "iat": t - 900}}).to_string();
    let expired = post(&format!("{}/token", issuer.url()), &body).text();
    assert_eq!(code(&gate, &expired), "expired");

    let wrong = issuer
        .mint(
            "github-actions",
            &json!({"iss": "https://token.actions.githubusercontent.com"}),
        )
        .unwrap();
    assert_eq!(code(&gate, &wrong), "issuer_untrusted");

    let no_sub = issuer
        .mint("generic", &json!({"sub": null, "team": "payments"}))
        .unwrap();
    let c = verify(&gate, &no_sub).unwrap().claims;
    assert!(!c.contains_key("sub"));
    assert_eq!(c["team"], "payments");

    let mut long = MintRequest::new("gitlab", &json!({})).unwrap();
    long.ttl = Some(7200);
    long.audience = Some("https://other.example".into());
    let long = issuer.mint_request(&long).unwrap();
    assert_eq!(code(&gate, &long), "audience_mismatch");
}

#[test]
fn injected_failures_answer_discovery_and_jwks() {
    let issuer = fast_issuer();
    issuer.set_failure(Some(503));
    for url in [issuer.discovery_url(), issuer.jwks_url()] {
        let r = http::get(&url).unwrap();
        assert_eq!(r.status, 503, "{url}");
        assert_eq!(r.json().unwrap()["error"], "injected_failure");
    }
    assert_eq!((issuer.jwks_fetches(), issuer.jwks_requests()), (0, 1));
    // Minting still works while the keys are "down".
    assert!(issuer.mint("generic", &Value::Null).is_ok());
    issuer.set_failure(None);
    assert_eq!(http::get(&issuer.jwks_url()).unwrap().status, 200);
    assert_eq!(http::get(&issuer.discovery_url()).unwrap().status, 200);
    assert_eq!((issuer.jwks_fetches(), issuer.jwks_requests()), (1, 2));
}

#[test]
fn bad_requests_get_json_errors() {
    let issuer = fast_issuer();
    let url = issuer.url();
    let error = |r: Response, status: u16| -> Value {
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        r.json().unwrap()
    };
    let e = error(http::get(&format!("{url}/nope")).unwrap(), 404);
    assert_eq!(e["error"], "not_found");
    assert!(e["endpoints"].as_array().unwrap().len() >= 5);

    let e = error(post(&format!("{url}/token"), "{not json"), 400);
    assert!(e["message"].as_str().unwrap().contains("not JSON"), "{e}");
    let e = error(
        post(&format!("{url}/token"), r#"{"preset": "jenkins"}"#),
        400,
    );
    assert_eq!(e["error"], "unknown_preset");
    let message = e["message"].as_str().unwrap();
    for p in claims::PRESETS {
        assert!(message.contains(p), "{message}");
    }
    let e = error(post(&format!("{url}/token"), r#"{"claims": ["sub"]}"#), 400);
    assert_eq!(e["error"], "bad_overrides");
    let e = error(post(&format!("{url}/token"), r#"{"ttl": 0}"#), 400);
    assert!(e["message"].as_str().unwrap().contains("ttl"), "{e}");
    let e = error(post(&format!("{url}/token"), r#"{"claimz": {}}"#), 400);
    assert!(e["message"].as_str().unwrap().contains("claimz"), "{e}");
    error(
        http::get(&format!("{url}/token?claim.exp=soon")).unwrap(),
        400,
    );
    error(http::get(&format!("{url}/token?kid=dev-9")).unwrap(), 400);
    let e = error(http::get(&format!("{url}/rotate")).unwrap(), 405);
    assert_eq!(e["error"], "method_not_allowed");
    error(post(&issuer.jwks_url(), ""), 405);
    assert_eq!(issuer.published_kids(), ["dev-1"]);

    assert!(matches!(
        issuer.mint("nope", &Value::Null),
        Err(IssuerError::UnknownPreset { .. })
    ));
    assert!(matches!(
        issuer.mint("gitlab", &json!("sub")),
        Err(IssuerError::BadOverrides(_))
    ));
    // Still serving after all that.
    assert_eq!(http::get(&issuer.jwks_url()).unwrap().status, 200);
}

#[test]
fn stopping_frees_the_port() {
    let issuer = fast_issuer();
    let port = issuer.port();
    assert_eq!(http::get(&issuer.jwks_url()).unwrap().status, 200);
    issuer.stop();
    assert!(http::get(&format!("http://127.0.0.1:{port}/.well-known/jwks")).is_err());
    drop(TcpListener::bind(("127.0.0.1", port)).expect("the port is free after stop"));

    let issuer = DevIssuer::start(IssuerOptions {
        port,
        key: KeyKind::Ed25519,
        ..IssuerOptions::default()
    })
    .expect("a fixed port");
    assert_eq!(issuer.port(), port);
    let token = issuer.mint("spiffe", &Value::Null).unwrap();
    assert!(verify(&gate(&issuer, "EdDSA", &[DEFAULT_AUDIENCE]), &token).is_ok());
    drop(issuer);
    drop(TcpListener::bind(("127.0.0.1", port)).expect("the port is free after drop"));
}
