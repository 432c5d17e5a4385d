#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Remote keys: the real HTTPS fetcher against the dev issuer over loopback HTTP (rotation,
//! unknown-kid refetch, failures and stale keys, discovery), and the cache's handling of refused
//! documents through a scripted fetcher.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gateward_devkit::issuer::{DevIssuer, IssuerOptions, MintRequest};
use gateward_openbao_auth::{Backend, HttpFetch, HttpsFetcher, MemoryStorage};
use serde_json::{json, Value};

const FETCH: &str = r#"{"cache_seconds": 10, "max_stale_seconds": 60, "retry_seconds": 5, "min_refetch_seconds": 30, "timeout_ms": 5000}"#;

fn fetch_settings() -> Value {
    serde_json::from_str(FETCH).unwrap()
}

async fn dev_mount(
    dev: &DevIssuer,
    keys: Value,
    clock: Arc<TestClock>,
) -> (Backend, MemoryStorage) {
    let b = Backend::with_parts(Arc::new(HttpsFetcher::new()), clock);
    let s = MemoryStorage::new();
    let mut issuer = json!({"name": "dev", "issuer": dev.url(), "audiences": [dev.audience()],
                            "fetch": fetch_settings()});
    // `keys` also may override `fetch`.
    for (k, v) in keys.as_object().unwrap() {
        issuer[k] = v.clone();
    }
    write(&b, &s, "config", json!({"issuers": [issuer]}))
        .await
        .unwrap();
    write(
        &b,
        &s,
        "role/ci",
        json!({"policy": "package gateward\ndecision := true\n", "bound_audiences": dev.audience()}),
    )
    .await
    .unwrap();
    (b, s)
}

fn dev_token(dev: &DevIssuer) -> String {
    dev.mint("github-actions", &Value::Null).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_fetch_rotation_unknown_kid_and_stale_keys() {
    capture_logs();
    let dev = DevIssuer::start(IssuerOptions::default()).unwrap();
    let clock = TestClock::system();
    let fetch = json!({"cache_seconds": 120, "max_stale_seconds": 240, "retry_seconds": 5,
                       "min_refetch_seconds": 30, "timeout_ms": 5000});
    let (b, s) = dev_mount(
        &dev,
        json!({"jwks_uri": dev.jwks_url(), "fetch": fetch}),
        clock.clone(),
    )
    .await;
    // Tokens that outlive the clock's jumps below.
    let token = || {
        dev.mint_request(&MintRequest {
            ttl: Some(3_600),
            ..MintRequest::default()
        })
        .unwrap()
    };
    let t0 = clock.secs();

    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_fetches(), 1);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_fetches(), 1, "cached keys are reused");

    // Rotation: a token with the new kid refetches, at most once per min_refetch_seconds.
    assert_eq!(dev.rotate(), "dev-2");
    let e = invalid(login(&b, &s, "ci", &token()).await);
    assert_eq!(e, "key_not_found: no key with kid \"dev-2\"");
    assert_eq!(dev.jwks_requests(), 1, "the first fetch was under 30 s ago");
    clock.set(t0 + 30);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_fetches(), 2);

    // A kid the issuer never published: no request within min_refetch_seconds, then one.
    let forged = {
        let mut c = gateward_devkit::claims::github_actions(clock.secs() - 5, dev.audience());
        c["iss"] = json!(dev.url());
        mint(&key_b(), "zz", &c)
    };
    let e = invalid(login(&b, &s, "ci", &forged).await);
    assert_eq!(e, "key_not_found: no key with kid \"zz\"");
    assert_eq!(dev.jwks_requests(), 2);
    clock.set(t0 + 60);
    invalid(login(&b, &s, "ci", &forged).await);
    assert_eq!(dev.jwks_requests(), 3);
    let fetched_at = t0 + 60;

    // The issuer fails: from 90 % of cache_seconds a refresh is attempted, fails, and the last
    // good keys keep serving; the next attempt waits retry_seconds.
    dev.set_failure(Some(503));
    clock.set(fetched_at + 107);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_requests(), 3, "not due before 108 s");
    clock.set(fetched_at + 108);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_requests(), 4);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_requests(), 4, "retries are held back");
    clock.set(fetched_at + 113);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_requests(), 5);

    // Past max_stale_seconds the keys are gone: logins fail closed.
    clock.set(fetched_at + 241);
    let e = invalid(login(&b, &s, "ci", &token()).await);
    // The caller learns which issuer's keys are missing; the upstream's answer (status, URL)
    // goes to the plugin's log only.
    assert_eq!(
        e,
        "keys_unavailable: could not fetch keys for issuer dev (the plugin's log has the reason)"
    );
    assert!(logged(&["ERROR", &dev.jwks_url(), "HTTP status 503"]));
    assert_eq!(dev.jwks_requests(), 6);
    invalid(login(&b, &s, "ci", &token()).await);
    assert_eq!(dev.jwks_requests(), 6, "no retry before retry_seconds");

    // The issuer recovers.
    dev.set_failure(None);
    clock.set(fetched_at + 246);
    login(&b, &s, "ci", &token()).await.unwrap();
    assert_eq!(dev.jwks_requests(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_one_fetch_for_concurrent_logins() {
    let dev = DevIssuer::start(IssuerOptions::default()).unwrap();
    let clock = TestClock::system();
    let (b, s) = dev_mount(&dev, json!({"discovery": true}), clock).await;
    let (b, s) = (Arc::new(b), Arc::new(s));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (b, s, jwt) = (b.clone(), s.clone(), dev_token(&dev));
        tasks.push(tokio::spawn(async move { login(&b, &s, "ci", &jwt).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(dev.discovery_fetches(), 1);
    assert_eq!(dev.jwks_fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_fetcher_bounds_what_it_fetches() {
    let dev = DevIssuer::start(IssuerOptions::default()).unwrap();
    let f = HttpsFetcher::new();
    let body = f
        .get(&dev.jwks_url(), 512 * 1024, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["keys"].is_array());
    let e = f
        .get(&dev.jwks_url(), 16, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.0.contains("exceeds the 16-byte limit"), "{e}");
    let e = f
        .get("http://example.com/jwks", 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.0.contains("is plain http://"), "{e}");
    dev.set_failure(Some(500));
    let e = f
        .get(&dev.jwks_url(), 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.0.contains("HTTP status 500"), "{e}");
    // Nothing listens on port 1.
    let e = f
        .get("http://127.0.0.1:1/jwks", 1024, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.0.starts_with("fetching http://127.0.0.1:1/jwks"), "{e}");
}

const JWKS_URL: &str = "https://keys.example/jwks";

async fn scripted_mount(
    fetcher: Arc<ScriptedFetcher>,
    clock: Arc<TestClock>,
    keys: Value,
) -> (Backend, MemoryStorage) {
    let b = Backend::with_parts(fetcher, clock);
    let s = MemoryStorage::new();
    let mut issuer =
        json!({"name": "gh", "issuer": GITHUB, "audiences": [AUD], "fetch": fetch_settings()});
    for (k, v) in keys.as_object().unwrap() {
        issuer[k] = v.clone();
    }
    write(&b, &s, "config", json!({"issuers": [issuer]}))
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
    (b, s)
}

fn jwks_a() -> Vec<u8> {
    gateward_devkit::jwks(&[("a", &key_a())])
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn refused_documents_never_replace_good_keys() {
    let fetcher = ScriptedFetcher::new();
    fetcher.push(JWKS_URL, Ok(jwks_a()));
    // Duplicate kids make key selection ambiguous: the whole set is refused.
    let dup = json!({"keys": [gateward_devkit::jwks(&[("a", &key_b())])["keys"][0],
                              gateward_devkit::jwks(&[("a", &key_b())])["keys"][0]]});
    fetcher.push(JWKS_URL, Ok(dup.to_string().into_bytes()));
    fetcher.push(JWKS_URL, Ok(b"{\"keys\": []}".to_vec()));
    let clock = TestClock::at(NOW);
    let (b, s) = scripted_mount(
        fetcher.clone(),
        clock.clone(),
        json!({"jwks_uri": JWKS_URL}),
    )
    .await;
    login(&b, &s, "ci", &github_token(json!({}))).await.unwrap();
    assert_eq!(fetcher.calls(), 1);
    clock.advance(9);
    // The refresh brings the hostile set: refused, the old keys verify.
    login(&b, &s, "ci", &github_token(json!({}))).await.unwrap();
    assert_eq!(fetcher.calls(), 2);
    clock.advance(5);
    // An empty set: refused too.
    login(&b, &s, "ci", &github_token(json!({}))).await.unwrap();
    assert_eq!(fetcher.calls(), 3);
    // A token signed by the key the hostile set offered does not verify.
    let e = invalid(
        login(
            &b,
            &s,
            "ci",
            &mint(&key_b(), "a", &github_claims(NOW - 10, json!({}))),
        )
        .await,
    );
    assert!(e.starts_with("signature_invalid"), "{e}");
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    capture_logs();
    let fetcher = ScriptedFetcher::new();
    let discovery = format!("{GITHUB}/.well-known/openid-configuration");
    fetcher.push(
        &discovery,
        Ok(
            json!({"issuer": "https://evil.example", "jwks_uri": JWKS_URL})
                .to_string()
                .into_bytes(),
        ),
    );
    fetcher.push(JWKS_URL, Ok(jwks_a()));
    let (b, s) = scripted_mount(
        fetcher.clone(),
        TestClock::at(NOW),
        json!({"discovery": true}),
    )
    .await;
    let e = invalid(login(&b, &s, "ci", &github_token(json!({}))).await);
    assert_eq!(
        e,
        "keys_unavailable: could not fetch keys for issuer gh (the plugin's log has the reason)"
    );
    assert!(logged(&[
        "ERROR",
        "discovery document names issuer \"https://evil.example\""
    ]));
    assert_eq!(
        fetcher.calls(),
        1,
        "the JWKS of a mismatched discovery document is not fetched"
    );
    // Oversized JWKS documents are refused by the fetcher's limit.
    let fetcher = ScriptedFetcher::new();
    fetcher.push(JWKS_URL, Ok(vec![b' '; 600 * 1024]));
    let (b, s) = scripted_mount(fetcher, TestClock::at(NOW), json!({"jwks_uri": JWKS_URL})).await;
    let e = invalid(login(&b, &s, "ci", &github_token(json!({}))).await);
    assert!(e.starts_with("keys_unavailable: "), "{e}");
    assert!(logged(&["ERROR", JWKS_URL, "over 524288 bytes"]));
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let b = backend(TestClock::at(NOW));
    let s = MemoryStorage::new();
    let e = invalid(
        write(
            &b,
            &s,
            "config",
            json!({"issuers": [{"name": "x", "issuer": GITHUB, "audiences": [AUD],
            "jwks_uri": "http://keys.example/jwks"}]}),
        )
        .await,
    );
    assert!(
        e.contains("issuers[0].jwks_uri: must be an https:// URL"),
        "{e}"
    );
}

/// A loopback HTTP server answering each request by its path (`None`: 404), counting
/// connections: enough to script redirects without an issuer.
struct Server {
    port: u16,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Server {
    fn start(route: impl Fn(&str) -> Option<String> + Send + 'static) -> Server {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let reply = route(&path).unwrap_or_else(|| {
                    String::from("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                });
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        Server { port, connections }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn ok_json(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn redirect(to: &str) -> String {
    format!(
        "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
}

/// A mount with the real fetcher whose issuer (GitHub's `iss`, key A) takes keys from `jwks_uri`.
async fn http_mount(jwks_uri: &str) -> (Backend, MemoryStorage) {
    let b = Backend::with_parts(Arc::new(HttpsFetcher::new()), TestClock::at(NOW));
    let s = MemoryStorage::new();
    let issuer = json!({"name": "gh", "issuer": GITHUB, "audiences": [AUD],
                        "fetch": fetch_settings(), "jwks_uri": jwks_uri});
    write(&b, &s, "config", json!({"issuers": [issuer]}))
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
    (b, s)
}

/// Issue 17 item 7: a redirect to another origin (here another loopback port, which could be
/// OpenBao's own listener) is not followed, and the login's answer says nothing about what the
/// fetcher met; a redirect within the origin is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_another_origin_are_not_followed_and_nothing_upstream_leaks() {
    capture_logs();
    let target = Server::start(|_| Some(ok_json("{\"sealed\": false}")));
    let target_url = target.url("/v1/sys/health");
    let jwks = String::from_utf8(jwks_a()).unwrap();
    let to = target_url.clone();
    let origin = Server::start(move |path| match path {
        "/moved" => Some(redirect("/jwks")),
        "/jwks" => Some(ok_json(&jwks)),
        _ => Some(redirect(&to)),
    });

    let (b, s) = http_mount(&origin.url("/elsewhere")).await;
    let e = invalid(login(&b, &s, "ci", &github_token(json!({}))).await);
    assert_eq!(
        e,
        "keys_unavailable: could not fetch keys for issuer gh (the plugin's log has the reason)"
    );
    assert_eq!(
        target.connections(),
        0,
        "the redirect target is never contacted"
    );
    assert!(logged(&["ERROR", &target_url, "another origin"]));

    // Within the origin, redirects are followed.
    let (b, s) = http_mount(&origin.url("/moved")).await;
    login(&b, &s, "ci", &github_token(json!({}))).await.unwrap();
    assert_eq!(target.connections(), 0);
}

/// Issue 17 item 7: a discovery document served over HTTPS cannot send the fetcher to plain
/// http:// or to a loopback host; the JWKS request is never made and the login's answer names
/// only the issuer.
#[tokio::test]
async fn a_discovery_document_cannot_send_the_fetcher_to_loopback() {
    capture_logs();
    let discovery = format!("{GITHUB}/.well-known/openid-configuration");
    for jwks_uri in [
        "http://127.0.0.1:8200/v1/sys/health",
        "https://127.0.0.1:8200/v1/sys/health",
        "https://localhost/jwks",
        "http://keys.example/jwks",
    ] {
        let fetcher = ScriptedFetcher::new();
        fetcher.push(
            &discovery,
            Ok(json!({"issuer": GITHUB, "jwks_uri": jwks_uri})
                .to_string()
                .into_bytes()),
        );
        fetcher.push(jwks_uri, Ok(jwks_a()));
        let (b, s) = scripted_mount(
            fetcher.clone(),
            TestClock::at(NOW),
            json!({"discovery": true}),
        )
        .await;
        let e = invalid(login(&b, &s, "ci", &github_token(json!({}))).await);
        assert_eq!(
            e,
            "keys_unavailable: could not fetch keys for issuer gh (the plugin's log has the reason)",
            "{jwks_uri}"
        );
        assert_eq!(fetcher.calls(), 1, "{jwks_uri} is never requested");
        assert!(logged(&["ERROR", "jwks_uri", jwks_uri]), "{jwks_uri}");
    }
}
