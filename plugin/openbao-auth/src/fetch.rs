//! Remote key sets (`jwks_uri`, OIDC discovery) for one mount: fetched over HTTPS, cached with
//! the same time rules as the Envoy filter (`policy_engine::freshness`): used for
//! `cache_seconds`, refreshed from 90 % of that, served stale up to `max_stale_seconds` while
//! refreshes fail, failed attempts hold retries back for `retry_seconds`, and a token with an
//! unknown `kid` triggers at most one refetch per `min_refetch_seconds`. A fetched document that
//! is refused (too large, hostile JWKS, discovery naming another issuer) never replaces the last
//! good key set.
//!
//! Where the fetcher goes is held to what the configuration names, so that a discovery
//! document or a redirect cannot turn it into a probe of the plugin's own network (a "loopback
//! oracle"): no redirect leaves the origin it was sent to ([`check_redirect`]); plain `http://`
//! only when the configured URL is itself `http://` on loopback, and no loopback host unless the
//! configured URL is one ([`check_derived_url`]). What went wrong upstream (statuses, URLs,
//! refused documents) goes to the plugin's log; a login only learns that the issuer's keys could
//! not be fetched ([`Unavailable`]).
//!
//! There is no background task (the crate stays runtime-agnostic): the request that finds a
//! refresh due performs it, while concurrent requests keep using the current keys; requests
//! that have no usable keys wait for the one fetch under way instead of starting their own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use policy_engine::config::FetchConfig;
use policy_engine::discovery::{self, MAX_DISCOVERY_BYTES};
use policy_engine::freshness::{Freshness, Plan};
use policy_engine::keys::MAX_JWKS_BYTES;
use policy_engine::KeySet;

/// A boxed, sendable future (the fetcher is used as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a fetch failed (URLs, statuses and sizes only; never a body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches one document with GET.
pub trait HttpFetch: Send + Sync {
    /// The body of a `200` response from `url`, refused when over `max_bytes` or slower than
    /// `timeout`.
    fn get<'a>(
        &'a self,
        url: &'a str,
        max_bytes: usize,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

/// The default fetcher: reqwest with rustls on aws-lc-rs, webpki and system roots, redirects
/// only within the requested URL's origin, `http://` only on loopback. Needs a tokio runtime.
#[derive(Debug, Clone)]
pub struct HttpsFetcher {
    client: Result<reqwest::Client, String>,
}

impl Default for HttpsFetcher {
    fn default() -> HttpsFetcher {
        HttpsFetcher::new()
    }
}

impl HttpsFetcher {
    /// Builds the client (an error is reported on each fetch rather than at start-up, so a
    /// mount with only static keys works regardless).
    pub fn new() -> HttpsFetcher {
        HttpsFetcher {
            client: build_client(),
        }
    }
}

fn build_client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // System roots too, for issuers behind an enterprise CA (GHES, self-managed GitLab).
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    log::debug!("key fetcher: {added} system root certificate(s) added");
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let from = attempt.previous().first().map(reqwest::Url::as_str);
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if let Err(e) = check_redirect(from.unwrap_or(""), attempt.url().as_str()) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        }))
        .user_agent("gateward-openbao")
        .build()
        .map_err(|e| format!("HTTP client setup: {e}"))
}

impl HttpFetch for HttpsFetcher {
    fn get<'a>(
        &'a self,
        url: &'a str,
        max_bytes: usize,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(async move {
            let client = self.client.as_ref().map_err(|e| FetchError(e.clone()))?;
            check_derived_url(url, url).map_err(|e| FetchError(e.to_string()))?;
            let fail =
                |e: reqwest::Error| FetchError(format!("fetching {url}: {}", error_chain(&e)));
            let mut resp = client
                .get(url)
                .header("accept", "application/json")
                .timeout(timeout)
                .send()
                .await
                .map_err(fail)?;
            if resp.status() != reqwest::StatusCode::OK {
                return Err(FetchError(format!(
                    "fetching {url}: HTTP status {}, expected 200",
                    resp.status().as_u16()
                )));
            }
            let too_large = || {
                FetchError(format!(
                    "fetching {url}: document exceeds the {max_bytes}-byte limit"
                ))
            };
            if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(fail)? {
                if body.len() + chunk.len() > max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
    }
}

/// reqwest's error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Why the fetcher does not go to a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not an absolute URL with a host.
    #[error("{0:?} is not an absolute http(s) URL with a host")]
    Unparsable(String),
    /// Neither `https://` nor `http://`.
    #[error("{0} is not an https:// URL")]
    Scheme(String),
    /// Plain `http://` where the configured URL is not itself `http://` on loopback.
    #[error("{url} is plain http://, which is followed only when the configured URL is itself http:// on a loopback host ({configured} is not)")]
    PlainHttp {
        /// The URL refused.
        url: String,
        /// The configured URL it was reached from.
        configured: String,
    },
    /// A loopback host reached from a configured URL that is not on loopback.
    #[error("{url} is on a loopback host, which is followed only when the configured URL is too ({configured} is not)")]
    Loopback {
        /// The URL refused.
        url: String,
        /// The configured URL it was reached from.
        configured: String,
    },
    /// A redirect to another origin (scheme, host or port).
    #[error("redirect from {from} to {to}: another origin, not followed")]
    CrossOrigin {
        /// The URL requested.
        from: String,
        /// Where the redirect pointed.
        to: String,
    },
}

fn parse_http_url(url: &str) -> Result<reqwest::Url, UrlRefusal> {
    let parsed = reqwest::Url::parse(url).map_err(|_| UrlRefusal::Unparsable(truncated(url)))?;
    match parsed.scheme() {
        "https" | "http" if parsed.host().is_some() => Ok(parsed),
        "https" | "http" => Err(UrlRefusal::Unparsable(truncated(url))),
        _ => Err(UrlRefusal::Scheme(truncated(url))),
    }
}

fn truncated(url: &str) -> String {
    url.chars().take(200).collect()
}

/// Whether a parsed URL's host is this machine: `localhost` (and `*.localhost`, RFC 6761),
/// 127.0.0.0/8, `::1`, the unspecified addresses (which connect locally) and IPv4-mapped forms.
fn is_loopback(url: &reqwest::Url) -> bool {
    use std::net::IpAddr;
    let Some(host) = url.host_str() else {
        return false;
    };
    // The URL parser has normalised IP literals (`http://2130706433/` is 127.0.0.1), and keeps
    // IPv6 ones in brackets.
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

/// Whether the fetcher may go to `url`, reached from the configured URL `configured` (the same
/// URL for a configured `jwks_uri` or discovery document; the discovery URL for the
/// `jwks_uri` a discovery document names). `https://` anywhere but loopback; plain `http://` and
/// loopback hosts only when `configured` is itself on loopback.
pub fn check_derived_url(configured: &str, url: &str) -> Result<(), UrlRefusal> {
    let base = parse_http_url(configured)?;
    let target = parse_http_url(url)?;
    let base_local = is_loopback(&base);
    let refused_http = || UrlRefusal::PlainHttp {
        url: truncated(url),
        configured: truncated(configured),
    };
    if target.scheme() == "http" && !(base.scheme() == "http" && base_local) {
        return Err(refused_http());
    }
    if is_loopback(&target) && !base_local {
        return Err(UrlRefusal::Loopback {
            url: truncated(url),
            configured: truncated(configured),
        });
    }
    if target.scheme() == "http" && !is_loopback(&target) {
        return Err(refused_http());
    }
    Ok(())
}

/// Whether a redirect from the requested URL `from` to `to` is followed: only within one
/// origin (scheme, host and port), so a redirect cannot point the fetcher elsewhere.
pub fn check_redirect(from: &str, to: &str) -> Result<(), UrlRefusal> {
    let a = parse_http_url(from)?;
    let b = parse_http_url(to)?;
    if a.origin() == b.origin() {
        Ok(())
    } else {
        Err(UrlRefusal::CrossOrigin {
            from: truncated(from),
            to: truncated(to),
        })
    }
}

/// No usable keys from a remote source. Deliberately without detail: why (statuses, URLs,
/// refused documents) is in the plugin's log, not in the answer to an unauthenticated login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("keys unavailable")]
pub(crate) struct Unavailable;

/// What a remote source fetches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Remote {
    /// A JWKS document.
    Jwks(String),
    /// A discovery document whose `issuer` must equal the second field.
    Discovery(String, String),
}

impl Remote {
    fn url(&self) -> &str {
        match self {
            Remote::Jwks(u) | Remote::Discovery(u, _) => u,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    freshness: Freshness,
    keys: Option<Arc<KeySet>>,
    /// Bumped on every new key set (a waiting request sees whether a fetch brought keys).
    generation: u64,
    /// The last failure, for the log.
    error: String,
}

#[derive(Debug, Default)]
struct Source {
    state: Mutex<State>,
    /// Held while a fetch is under way: one fetch per source at a time.
    fetching: futures_util::lock::Mutex<()>,
}

impl Source {
    fn lock(&self) -> MutexGuard<'_, State> {
        // State is updated with single assignments: a panic elsewhere cannot leave it half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every remote source of one mount.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    sources: Mutex<HashMap<Remote, Arc<Source>>>,
}

/// Milliseconds since the Unix epoch.
pub(crate) type Millis = u64;

impl KeyCache {
    fn source(&self, remote: &Remote) -> Arc<Source> {
        let mut map = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(remote.clone()).or_default().clone()
    }

    pub(crate) fn clear(&self) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The keys of `remote`, fetching them when needed. Err: unavailable, with why.
    pub(crate) async fn keys(
        &self,
        fetcher: &dyn HttpFetch,
        remote: &Remote,
        cfg: &FetchConfig,
        now: &(dyn Fn() -> Millis + Send + Sync),
    ) -> Result<Arc<KeySet>, Unavailable> {
        let source = self.source(remote);
        let (plan, keys, generation) = {
            let st = source.lock();
            (
                st.freshness.plan(cfg, now()),
                st.keys.clone(),
                st.generation,
            )
        };
        match (plan, keys) {
            (Plan::Use, Some(keys)) => Ok(keys),
            (Plan::UseAndRefresh, Some(keys)) => {
                // Whoever holds the lock is refreshing already: keep serving the current keys.
                if let Some(_guard) = source.fetching.try_lock() {
                    if source.lock().freshness.plan(cfg, now()) == Plan::UseAndRefresh {
                        fetch_into(&source, fetcher, remote, cfg, now).await;
                    }
                }
                Ok(source.lock().keys.clone().unwrap_or(keys))
            }
            (Plan::Unavailable, _) => Err(unavailable(&source.lock(), remote)),
            _ => {
                let _guard = source.fetching.lock().await;
                {
                    let st = source.lock();
                    if st.generation != generation || st.freshness.usable(cfg, now()) {
                        if let Some(keys) = &st.keys {
                            return Ok(keys.clone());
                        }
                    }
                    // A fetch finished while we waited and failed: do not repeat it at once.
                    if !st.freshness.retry_allowed(cfg, now()) {
                        return Err(unavailable(&st, remote));
                    }
                }
                fetch_into(&source, fetcher, remote, cfg, now).await;
                let st = source.lock();
                match &st.keys {
                    Some(keys) if st.freshness.usable(cfg, now()) => Ok(keys.clone()),
                    _ => Err(unavailable(&st, remote)),
                }
            }
        }
    }

    /// A token named a `kid` the keys lack: refetch once, rate-limited per source. Some: a
    /// new key set arrived (here or from a fetch we waited for).
    pub(crate) async fn refetch(
        &self,
        fetcher: &dyn HttpFetch,
        remote: &Remote,
        cfg: &FetchConfig,
        now: &(dyn Fn() -> Millis + Send + Sync),
    ) -> Option<Arc<KeySet>> {
        let source = self.source(remote);
        let generation = source.lock().generation;
        let _guard = source.fetching.lock().await;
        {
            let st = source.lock();
            if st.generation != generation {
                return st.keys.clone();
            }
            if !st.freshness.refetch_allowed(cfg, now()) {
                log::debug!(
                    "keys from {}: unknown kid, but the last fetch was under min_refetch_seconds ago",
                    remote.url()
                );
                return None;
            }
        }
        fetch_into(&source, fetcher, remote, cfg, now).await;
        let st = source.lock();
        (st.generation != generation)
            .then(|| st.keys.clone())
            .flatten()
    }
}

/// Logs why keys are unavailable (the last failure) and answers without the detail.
fn unavailable(st: &State, remote: &Remote) -> Unavailable {
    if st.error.is_empty() {
        log::debug!("keys from {} are unavailable", remote.url());
    } else {
        log::debug!("keys from {} are unavailable: {}", remote.url(), st.error);
    }
    Unavailable
}

/// One attempt (discovery, then JWKS); records the outcome. The caller holds `fetching`.
async fn fetch_into(
    source: &Source,
    fetcher: &dyn HttpFetch,
    remote: &Remote,
    cfg: &FetchConfig,
    now: &(dyn Fn() -> Millis + Send + Sync),
) {
    source.lock().freshness.started(now());
    let result = fetch_keys(fetcher, remote, cfg).await;
    let mut st = source.lock();
    let at = now();
    match result {
        Ok(keys) => {
            for skipped in &keys.skipped {
                log::warn!("keys from {}: {skipped}", remote.url());
            }
            log::info!(
                "keys from {}: {} key(s) loaded",
                remote.url(),
                keys.keys.len()
            );
            st.keys = Some(Arc::new(keys));
            st.generation += 1;
            st.error.clear();
            st.freshness.succeeded(at);
        }
        Err(e) => {
            let stale = match st.freshness.age_ms(at) {
                Some(age) => format!("; serving the previous key set ({} s old)", age / 1_000),
                None => String::from("; no key set yet: logins fail with keys_unavailable"),
            };
            log::error!("keys from {}: {e}{stale}", remote.url());
            st.error = e;
            st.freshness.failed(at);
        }
    }
}

async fn fetch_keys(
    fetcher: &dyn HttpFetch,
    remote: &Remote,
    cfg: &FetchConfig,
) -> Result<KeySet, String> {
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let configured = remote.url();
    check_derived_url(configured, configured).map_err(|e| e.to_string())?;
    let jwks_url = match remote {
        Remote::Jwks(url) => url.clone(),
        Remote::Discovery(url, issuer) => {
            let doc = fetcher
                .get(url, MAX_DISCOVERY_BYTES, timeout)
                .await
                .map_err(|e| e.0)?;
            let jwks_uri = discovery::jwks_uri(&doc, issuer).map_err(|e| e.to_string())?;
            check_derived_url(url, &jwks_uri)
                .map_err(|e| format!("discovery document's jwks_uri refused: {e}"))?;
            jwks_uri
        }
    };
    let body = fetcher
        .get(&jwks_url, MAX_JWKS_BYTES, timeout)
        .await
        .map_err(|e| e.0)?;
    KeySet::from_jwks(&body).map_err(|e| format!("JWKS from {jwks_url} rejected: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn configured_urls_are_https_or_loopback_http() {
        for ok in [
            "https://token.actions.githubusercontent.com/.well-known/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/jwks",
            "https://localhost:8443/jwks",
        ] {
            assert_eq!(check_derived_url(ok, ok), Ok(()), "{ok}");
        }
        for (bad, want) in [
            ("http://keys.example/jwks", "PlainHttp"),
            // Userinfo that looks like a loopback host: the host is evil.example.
            ("http://127.0.0.1:80@evil.example/jwks", "PlainHttp"),
            ("http://localhost.evil.example/jwks", "PlainHttp"),
            ("ftp://keys.example/jwks", "Scheme"),
            ("file:///etc/passwd", "Scheme"),
            ("not a url", "Unparsable"),
        ] {
            let e = check_derived_url(bad, bad).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_discovery_document_cannot_point_the_fetcher_at_loopback() {
        let https = "https://token.actions.githubusercontent.com/.well-known/openid-configuration";
        let local = "http://127.0.0.1:8765/.well-known/openid-configuration";
        // Another https host is fine (Google's keys live on www.googleapis.com).
        assert_eq!(
            check_derived_url(https, "https://www.googleapis.com/oauth2/v3/certs"),
            Ok(())
        );
        // From an https issuer: no plain http, no loopback host in any spelling.
        for target in [
            "http://127.0.0.1:9000/jwks",
            "http://localhost:9000/jwks",
            "http://keys.example/jwks",
        ] {
            assert!(
                matches!(
                    check_derived_url(https, target),
                    Err(UrlRefusal::PlainHttp { .. })
                ),
                "{target}"
            );
        }
        for target in [
            "https://127.0.0.1:9000/jwks",
            "https://127.1.2.3/jwks",
            "https://2130706433/jwks",
            "https://0.0.0.0:22/",
            "https://[::1]:9000/jwks",
            "https://[::ffff:127.0.0.1]/jwks",
            "https://localhost/jwks",
            "https://a.localhost./jwks",
        ] {
            assert!(
                matches!(
                    check_derived_url(https, target),
                    Err(UrlRefusal::Loopback { .. })
                ),
                "{target}: {:?}",
                check_derived_url(https, target)
            );
        }
        // A loopback issuer (development, tests) may use plain http on loopback, but not
        // plain http elsewhere.
        assert_eq!(
            check_derived_url(local, "http://127.0.0.1:9000/jwks"),
            Ok(())
        );
        assert!(check_derived_url(local, "http://keys.example/jwks").is_err());
        assert_eq!(
            check_derived_url(local, "https://keys.example/jwks"),
            Ok(())
        );
    }

    #[test]
    fn redirects_stay_within_the_origin() {
        let from = "https://keys.example/jwks";
        assert_eq!(check_redirect(from, "https://keys.example/v2/jwks"), Ok(()));
        assert_eq!(check_redirect(from, "https://keys.example:443/x"), Ok(()));
        for to in [
            "https://other.example/jwks",
            "https://keys.example:8443/jwks",
            "http://keys.example/jwks",
            "http://127.0.0.1:8200/v1/sys/health",
        ] {
            assert!(
                matches!(
                    check_redirect(from, to),
                    Err(UrlRefusal::CrossOrigin { .. })
                ),
                "{to}"
            );
        }
        let local = "http://127.0.0.1:8765/jwks";
        assert_eq!(check_redirect(local, "http://127.0.0.1:8765/other"), Ok(()));
        assert!(check_redirect(local, "http://127.0.0.1:8200/").is_err());
        assert!(check_redirect(local, "http://localhost:8765/").is_err());
    }
}
