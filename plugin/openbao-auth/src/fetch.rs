//! Remote key sets (`jwks_uri`, OIDC discovery) for one mount: fetched over HTTPS, cached with
//! the same time rules as the Envoy filter (`policy_engine::freshness`): used for
//! `cache_seconds`, refreshed from 90 % of that, served stale up to `max_stale_seconds` while
//! refreshes fail, failed attempts hold retries back for `retry_seconds`, and a token with an
//! unknown `kid` triggers at most one refetch per `min_refetch_seconds`. A fetched document that
//! is refused (too large, hostile JWKS, discovery naming another issuer) never replaces the last
//! good key set.
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
use policy_engine::discovery::{self, is_fetchable_url, MAX_DISCOVERY_BYTES};
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
/// only to fetchable URLs, `http://` only on loopback. Needs a tokio runtime.
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
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if is_fetchable_url(attempt.url().as_str()) {
                attempt.follow()
            } else {
                attempt.stop()
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
            if !is_fetchable_url(url) {
                return Err(FetchError(format!(
                    "{url} is not an https:// URL (http:// only on loopback)"
                )));
            }
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
    /// The last failure, for `keys_unavailable` messages.
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
    ) -> Result<Arc<KeySet>, String> {
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

fn unavailable(st: &State, remote: &Remote) -> String {
    if st.error.is_empty() {
        format!("keys from {} are unavailable", remote.url())
    } else {
        format!("keys from {} are unavailable: {}", remote.url(), st.error)
    }
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
    let jwks_url = match remote {
        Remote::Jwks(url) => url.clone(),
        Remote::Discovery(url, issuer) => {
            let doc = fetcher
                .get(url, MAX_DISCOVERY_BYTES, timeout)
                .await
                .map_err(|e| e.0)?;
            discovery::jwks_uri(&doc, issuer).map_err(|e| e.to_string())?
        }
    };
    let body = fetcher
        .get(&jwks_url, MAX_JWKS_BYTES, timeout)
        .await
        .map_err(|e| e.0)?;
    KeySet::from_jwks(&body).map_err(|e| format!("JWKS from {jwks_url} rejected: {e}"))
}
