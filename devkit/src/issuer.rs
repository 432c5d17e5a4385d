//! A local **development** OIDC issuer: an HTTP server on 127.0.0.1 that publishes a discovery
//! document and a JWKS and mints CI-shaped ID tokens on request, signed with keys generated when
//! it starts and thrown away when it stops. For the local demo and end-to-end tests only: its
//! keys and its token endpoint make it worthless as a trust anchor, so never configure a real
//! deployment to trust it.
//!
//! Endpoints (`url()` is the `iss` of every token it mints):
//!
//! | request | answer |
//! |---|---|
//! | `GET /.well-known/openid-configuration` | the discovery document (`issuer`, `jwks_uri`, …) |
//! | `GET /.well-known/jwks` | the published public keys |
//! | `POST /token` with JSON `{"preset", "claims", "ttl", "audience", "kid"}` (all optional) | a token, `text/plain` |
//! | `GET /token?preset=gitlab&aud=…&ttl=…&claim.ref=…&json.runner_id=7` | the same, for curl |
//! | `POST /rotate` | `{"kid": <new>, "kids": [<published>]}`: a new key signs from now on |
//! | `POST /retire` | `{"kids": [<published>]}`: every key but the current one unpublished |
//!
//! Anything else is a JSON 404; a malformed request a JSON 400 saying what is wrong.
//!
//! ```no_run
//! use gateward_devkit::issuer::{DevIssuer, IssuerOptions};
//! # fn main() -> Result<(), gateward_devkit::issuer::IssuerError> {
//! let issuer = DevIssuer::start(IssuerOptions::default())?;
//! let token = issuer.mint("gitlab", &serde_json::json!({"ref": "dev", "ref_path": "refs/heads/dev"}))?;
//! # let _ = token;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::serve::{Bound, Incoming, Reply, Server};
use crate::{claims, DevkitError, KeyKind, SigningKey};

/// The audience tokens get when the request names none (the demo's configuration trusts it).
pub const DEFAULT_AUDIENCE: &str = "https://github.com/octo-org";

/// The preset minted when the request names none.
pub const DEFAULT_PRESET: &str = "github-actions";

/// Path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Path of the JWKS.
pub const JWKS_PATH: &str = "/.well-known/jwks";

/// Longest `ttl` a token request may ask for (seconds): a week.
pub const MAX_TTL: i64 = 7 * 24 * 3600;

/// `cache-control` on the discovery document and JWKS, as real issuers send.
const KEYS_CACHE_CONTROL: &str = "public, max-age=300";

/// Worker threads answering requests (key generation on `/rotate` can take seconds in debug
/// builds; the others keep serving).
const WORKERS: usize = 4;

/// A fault the issuer's key endpoints (discovery and JWKS) show, for testing how the gate
/// behaves while its issuer misbehaves ([`DevIssuer::set_fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a JSON error body.
    Status(u16),
    /// Answer correctly, after this long (past a fetch timeout, say).
    Slow(Duration),
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer with bytes that are not HTTP at all, so the client drops the connection.
    NotHttp,
}

/// How to start a [`DevIssuer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerOptions {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The `aud` of tokens whose request names none.
    pub audience: String,
    /// The type of the signing keys (every rotation generates the same type).
    pub key: KeyKind,
}

impl Default for IssuerOptions {
    fn default() -> Self {
        IssuerOptions {
            port: 0,
            audience: DEFAULT_AUDIENCE.to_string(),
            key: KeyKind::Rsa2048,
        }
    }
}

/// Why the issuer could not start or mint.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The preset is not one of [`claims::PRESETS`].
    #[error("unknown preset {preset:?}; known presets: {known}")]
    UnknownPreset {
        /// The preset asked for.
        preset: String,
        /// The known presets, comma-separated.
        known: String,
    },
    /// The claim overrides are not a JSON object (of claim name to value; `null` removes).
    #[error("bad claim overrides: {0}")]
    BadOverrides(String),
    /// The token request is malformed (not JSON, an unknown field, a bad `ttl`, ...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request asked for a signing key that is not published.
    #[error("no published key has kid {kid:?}; published: {published}")]
    UnknownKid {
        /// The kid asked for.
        kid: String,
        /// The published kids, comma-separated.
        published: String,
    },
    /// Generating a key or signing failed.
    #[error("key: {0}")]
    Key(#[from] DevkitError),
    /// Binding or serving failed.
    #[error("dev issuer: {0}")]
    Io(#[from] std::io::Error),
}

impl IssuerError {
    /// The HTTP status and stable error code the HTTP API answers with.
    fn http(&self) -> (u16, &'static str) {
        match self {
            IssuerError::UnknownPreset { .. } => (400, "unknown_preset"),
            IssuerError::BadOverrides(_) => (400, "bad_overrides"),
            IssuerError::BadRequest(_) => (400, "bad_request"),
            IssuerError::UnknownKid { .. } => (400, "unknown_kid"),
            IssuerError::Key(_) => (500, "key_error"),
            IssuerError::Io(_) => (500, "io_error"),
        }
    }
}

/// One token request: what `POST /token` and `GET /token?…` carry.
#[derive(Debug, Clone, PartialEq)]
pub struct MintRequest {
    /// One of [`claims::PRESETS`].
    pub preset: String,
    /// Claim overrides applied last: a value replaces the preset's, `null` removes the claim.
    /// `iss`, `iat`, `nbf`, `exp` and `jti` can be overridden like any other (expired tokens,
    /// wrong issuers, replayed `jti`s).
    pub claims: Map<String, Value>,
    /// `exp = iat + ttl` (seconds, 1 to [`MAX_TTL`]); None keeps the preset's lifetime.
    pub ttl: Option<i64>,
    /// The `aud`; None uses the issuer's default audience.
    pub audience: Option<String>,
    /// Sign with this published key instead of the current one (e.g. a rotated-out key).
    pub kid: Option<String>,
}

impl Default for MintRequest {
    fn default() -> Self {
        MintRequest {
            preset: DEFAULT_PRESET.to_string(),
            claims: Map::new(),
            ttl: None,
            audience: None,
            kid: None,
        }
    }
}

impl MintRequest {
    /// A request for `preset` with `overrides` (a JSON object of claims, or `null` for none).
    pub fn new(preset: &str, overrides: &Value) -> Result<MintRequest, IssuerError> {
        Ok(MintRequest {
            preset: preset.to_string(),
            claims: overrides_map(overrides)?,
            ..MintRequest::default()
        })
    }

    /// Parses a `POST /token` body: a JSON object with optional `preset`, `claims`, `ttl`,
    /// `audience`, `kid`. An empty body is the default request.
    pub fn from_json(body: &[u8]) -> Result<MintRequest, IssuerError> {
        let mut req = MintRequest::default();
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(req);
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| IssuerError::BadRequest(format!("the body is not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(IssuerError::BadRequest(
                "the body must be a JSON object like {\"preset\": \"gitlab\", \"claims\": {...}}"
                    .into(),
            ));
        };
        for (name, value) in fields {
            let text = |v: &Value| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    IssuerError::BadRequest(format!("`{name}` must be a string, got {v}"))
                })
            };
            match name.as_str() {
                "preset" => req.preset = text(&value)?,
                "audience" => req.audience = Some(text(&value)?),
                "kid" => req.kid = Some(text(&value)?),
                "claims" => req.claims = overrides_map(&value)?,
                "ttl" => {
                    req.ttl = Some(value.as_i64().ok_or_else(|| {
                        IssuerError::BadRequest(format!("`ttl` must be an integer, got {value}"))
                    })?)
                }
                other => {
                    return Err(IssuerError::BadRequest(format!(
                        "unknown field {other:?}; the fields are preset, claims, ttl, audience, kid"
                    )))
                }
            }
        }
        Ok(req)
    }

    /// Parses a `GET /token` query: `preset`, `aud` (or `audience`), `ttl`, `kid`,
    /// `claim.NAME=text` (a string claim; `exp`, `iat` and `nbf` are read as integers) and
    /// `json.NAME=<JSON>` (a typed claim: `json.runner_id=7`, `json.ssh-rerun=true`;
    /// `json.NAME=null` removes it). Values are percent-decoded (`+` is a space).
    pub fn from_query(query: &str) -> Result<MintRequest, IssuerError> {
        let mut req = MintRequest::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (percent_decode(name)?, percent_decode(value)?);
            if let Some(claim) = name.strip_prefix("claim.") {
                let value = if matches!(claim, "exp" | "iat" | "nbf") {
                    Value::from(value.parse::<i64>().map_err(|_| {
                        IssuerError::BadOverrides(format!(
                            "claim.{claim} must be a Unix time (an integer), got {value:?}"
                        ))
                    })?)
                } else {
                    Value::String(value)
                };
                req.claims.insert(claim.to_string(), value);
            } else if let Some(claim) = name.strip_prefix("json.") {
                let value = serde_json::from_str(&value).map_err(|e| {
                    IssuerError::BadOverrides(format!("json.{claim} is not JSON ({e}): {value:?}"))
                })?;
                req.claims.insert(claim.to_string(), value);
            } else {
                match name.as_str() {
                    "preset" => req.preset = value,
                    "aud" | "audience" => req.audience = Some(value),
                    "kid" => req.kid = Some(value),
                    "ttl" => {
                        req.ttl = Some(value.parse().map_err(|_| {
                            IssuerError::BadRequest(format!(
                                "ttl must be an integer, got {value:?}"
                            ))
                        })?)
                    }
                    other => {
                        return Err(IssuerError::BadRequest(format!(
                            "unknown query parameter {other:?}; use preset, aud, ttl, kid, \
                             claim.NAME=text or json.NAME=<JSON>"
                        )))
                    }
                }
            }
        }
        Ok(req)
    }
}

fn overrides_map(overrides: &Value) -> Result<Map<String, Value>, IssuerError> {
    match overrides {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map.clone()),
        other => Err(IssuerError::BadOverrides(format!(
            "expected a JSON object of claim name to value (null removes a claim), got {other}"
        ))),
    }
}

/// A running development issuer. Stops on [`DevIssuer::stop`] or drop: its threads are joined
/// and its port is free again when either returns.
pub struct DevIssuer {
    shared: Arc<Shared>,
    server: Server,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("url", &self.shared.url)
            .field("kids", &self.shared.keys().kids())
            .finish()
    }
}

impl DevIssuer {
    /// Generates a key (`dev-1`), binds 127.0.0.1:`opts.port` and starts serving.
    ///
    /// RSA key generation takes a few seconds in debug builds; the port accepts connections
    /// only once the key exists.
    pub fn start(opts: IssuerOptions) -> Result<DevIssuer, IssuerError> {
        if opts.audience.is_empty() {
            return Err(IssuerError::BadRequest("the audience is empty".into()));
        }
        let first = SigningKey::generate(opts.key)?;
        let bound = Bound::new(opts.port)?;
        let url = format!("http://127.0.0.1:{}", bound.port());
        let shared = Arc::new(Shared {
            url,
            audience: opts.audience,
            kind: opts.key,
            keys: Mutex::new(Keys {
                published: vec![("dev-1".to_string(), first)],
                next: 2,
            }),
            failure: Mutex::new(None),
            jwks_fetches: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let server = serve(&shared, bound)?;
        Ok(DevIssuer { shared, server })
    }

    /// Stops listening but keeps its keys, so clients get "connection refused" until
    /// [`DevIssuer::come_back`]; minting still works meanwhile.
    pub fn go_down(&mut self) {
        self.server.shutdown();
    }

    /// Listens again on the same port with the same keys, after [`DevIssuer::go_down`].
    pub fn come_back(&mut self) -> Result<(), IssuerError> {
        let bound = Bound::new(self.server.port())?;
        self.server = serve(&self.shared, bound)?;
        Ok(())
    }

    /// `http://127.0.0.1:<port>`: the `iss` of its tokens and the issuer of its discovery
    /// document.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.shared.url)
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.shared.url)
    }

    /// The default `aud`.
    pub fn audience(&self) -> &str {
        &self.shared.audience
    }

    /// The kid of the key that signs new tokens.
    pub fn current_kid(&self) -> String {
        self.shared.keys().current_kid()
    }

    /// The kids of every published key, oldest first (the last one is current).
    pub fn published_kids(&self) -> Vec<String> {
        self.shared.keys().kids()
    }

    /// The JWKS document it serves (the published keys), e.g. for an inline `jwks` config.
    pub fn jwks(&self) -> Value {
        self.shared.jwks()
    }

    /// Mints a token of `preset` with claim `overrides` (a JSON object, `null` values remove
    /// claims; or `Value::Null` for none), exactly as `POST /token` does.
    pub fn mint(&self, preset: &str, overrides: &Value) -> Result<String, IssuerError> {
        self.shared.mint(&MintRequest::new(preset, overrides)?)
    }

    /// Mints a token for a full request (`ttl`, `audience`, `kid` too).
    pub fn mint_request(&self, req: &MintRequest) -> Result<String, IssuerError> {
        self.shared.mint(req)
    }

    /// Generates a new key, publishes it and signs with it from now on; returns its kid. The
    /// older keys stay published (tokens they signed still verify) until [`DevIssuer::retire`].
    ///
    /// Key generation only fails when the OS has no randomness to give; then nothing changes,
    /// a warning goes to stderr and the current kid is returned ([`DevIssuer::try_rotate`]
    /// reports the error instead).
    pub fn rotate(&self) -> String {
        self.try_rotate().unwrap_or_else(|e| {
            eprintln!(
                "gateward dev issuer: key rotation failed, still signing with the old key: {e}"
            );
            self.current_kid()
        })
    }

    /// [`DevIssuer::rotate`], reporting a key-generation failure.
    pub fn try_rotate(&self) -> Result<String, IssuerError> {
        self.shared.rotate()
    }

    /// Unpublishes every key but the current one; returns the kids still published.
    pub fn retire(&self) -> Vec<String> {
        self.shared.retire()
    }

    /// Fault injection: while `Some(status)`, the discovery document and the JWKS are answered
    /// with `status` (e.g. 500 or 503) and a JSON error body; `None` restores them. A status
    /// outside 100–599 is sent as 500.
    pub fn set_failure(&self, status: Option<u16>) {
        self.set_fault(status.map(Fault::Status));
    }

    /// Fault injection on the key endpoints (discovery and JWKS) while `Some`; `None` restores
    /// them.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *lock(&self.shared.failure) = fault.map(|f| match f {
            Fault::Status(s) if !(100..=599).contains(&s) => Fault::Status(500),
            f => f,
        });
    }

    /// How many JWKS documents were served (`GET`s answered 200).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How many requests reached the JWKS path, injected failures included.
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many discovery documents were served (`GET`s answered 200).
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Stops serving: joins the worker threads and returns once the port is free.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

struct Shared {
    url: String,
    audience: String,
    kind: KeyKind,
    keys: Mutex<Keys>,
    failure: Mutex<Option<Fault>>,
    jwks_fetches: AtomicUsize,
    jwks_requests: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

struct Keys {
    /// Oldest first; the last one signs. Never empty.
    published: Vec<(String, SigningKey)>,
    /// The number of the next kid (`dev-<next>`).
    next: u64,
}

impl Keys {
    fn kids(&self) -> Vec<String> {
        self.published.iter().map(|(k, _)| k.clone()).collect()
    }

    fn current(&self) -> Option<&(String, SigningKey)> {
        self.published.last()
    }

    fn current_kid(&self) -> String {
        self.current().map(|(k, _)| k.clone()).unwrap_or_default()
    }
}

/// A poisoned lock only means another thread panicked mid-request; the data is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn keys(&self) -> MutexGuard<'_, Keys> {
        lock(&self.keys)
    }

    fn jwks(&self) -> Value {
        let keys = self.keys();
        let refs: Vec<(&str, &SigningKey)> = keys
            .published
            .iter()
            .map(|(kid, key)| (kid.as_str(), key))
            .collect();
        crate::jwks(&refs)
    }

    fn alg(&self) -> &'static str {
        self.keys()
            .current()
            .map_or("RS256", |(_, k)| k.default_alg().name())
    }

    fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}{JWKS_PATH}", self.url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": [self.alg()],
            "scopes_supported": ["openid"],
            "claims_supported": claims_supported(),
        })
    }

    fn mint(&self, req: &MintRequest) -> Result<String, IssuerError> {
        let now = unix_now();
        let aud = req.audience.as_deref().unwrap_or(&self.audience);
        if aud.is_empty() {
            return Err(IssuerError::BadRequest("the audience is empty".into()));
        }
        let Some(Value::Object(mut claims)) = claims::preset(&req.preset, now, aud) else {
            return Err(IssuerError::UnknownPreset {
                preset: req.preset.clone(),
                known: claims::PRESETS.join(", "),
            });
        };
        claims.insert("iss".into(), Value::String(self.url.clone()));
        if claims.contains_key("jti") {
            claims.insert("jti".into(), Value::String(uuid_v4()));
        }
        if let Some(ttl) = req.ttl {
            if !(1..=MAX_TTL).contains(&ttl) {
                return Err(IssuerError::BadRequest(format!(
                    "ttl must be between 1 and {MAX_TTL} seconds, got {ttl} (to mint an expired \
                     token, override the exp claim)"
                )));
            }
            claims.insert("exp".into(), Value::from(now.saturating_add(ttl)));
        }
        for (name, value) in &req.claims {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        let (kid, key) = {
            let keys = self.keys();
            let found = match &req.kid {
                Some(kid) => keys.published.iter().find(|(k, _)| k == kid),
                None => keys.current(),
            };
            match found {
                Some((kid, key)) => (kid.clone(), key.clone()),
                None => {
                    return Err(IssuerError::UnknownKid {
                        kid: req.kid.clone().unwrap_or_default(),
                        published: keys.kids().join(", "),
                    })
                }
            }
        };
        Ok(crate::mint(&key, Some(&kid), &Value::Object(claims))?)
    }

    fn rotate(&self) -> Result<String, IssuerError> {
        // Generate outside the lock: RSA takes seconds in debug builds.
        let key = SigningKey::generate(self.kind)?;
        let mut keys = self.keys();
        let kid = format!("dev-{}", keys.next);
        keys.next += 1;
        keys.published.push((kid.clone(), key));
        Ok(kid)
    }

    fn retire(&self) -> Vec<String> {
        let mut keys = self.keys();
        let keep = keys.published.len().saturating_sub(1);
        keys.published.drain(..keep);
        keys.kids()
    }

    fn failure(&self) -> Option<Reply> {
        let fault = (*lock(&self.failure))?;
        Some(match fault {
            Fault::Status(status) => Reply::json(
                status,
                &json!({
                    "error": "injected_failure",
                    "message": format!("this development issuer was told to answer {status} (set_failure)"),
                }),
            )
            .with("cache-control", "no-store"),
            Fault::Slow(delay) => {
                std::thread::sleep(delay);
                return None;
            }
            Fault::Garbage => {
                Reply::text(200, String::from("{\"keys\": [ this is not JSON")).with("content-type", "application/json")
            }
            Fault::NotHttp => Reply::raw(b"\x00\x01 not an HTTP response\r\n\r\n".to_vec()),
        })
    }
}

fn serve(shared: &Arc<Shared>, bound: Bound) -> Result<Server, IssuerError> {
    let state = Arc::clone(shared);
    Ok(bound.serve(
        WORKERS,
        "gateward-dev-issuer",
        Arc::new(move |req: &Incoming| handle(&state, req)),
    )?)
}

/// Every claim name any preset emits, sorted.
fn claims_supported() -> Vec<String> {
    let mut names = BTreeSet::new();
    for preset in claims::PRESETS {
        if let Some(Value::Object(c)) = claims::preset(preset, 0, "aud") {
            names.extend(c.keys().cloned());
        }
    }
    names.into_iter().collect()
}

fn handle(shared: &Shared, req: &Incoming) -> Reply {
    let path = req.path();
    let method = req.method.as_str();
    let get = matches!(method, "GET" | "HEAD");
    match path {
        DISCOVERY_PATH | JWKS_PATH if !get => method_not_allowed(method, path, "GET"),
        DISCOVERY_PATH => match shared.failure() {
            Some(reply) => reply,
            None => {
                if method == "GET" {
                    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                }
                Reply::json(200, &shared.discovery()).with("cache-control", KEYS_CACHE_CONTROL)
            }
        },
        JWKS_PATH => {
            shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
            match shared.failure() {
                Some(reply) => reply,
                None => {
                    if method == "GET" {
                        shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                    }
                    Reply::json(200, &shared.jwks()).with("cache-control", KEYS_CACHE_CONTROL)
                }
            }
        }
        "/token" if !get && method != "POST" => method_not_allowed(method, path, "GET, POST"),
        "/token" => {
            let parsed = if method == "POST" {
                MintRequest::from_json(&req.body)
            } else {
                MintRequest::from_query(req.query())
            };
            match parsed.and_then(|r| shared.mint(&r)) {
                Ok(token) => Reply::text(200, token),
                Err(e) => error_reply(&e),
            }
        }
        "/rotate" if method != "POST" => method_not_allowed(method, path, "POST"),
        "/rotate" => match shared.rotate() {
            Ok(kid) => Reply::json(200, &json!({"kid": kid, "kids": shared.keys().kids()})),
            Err(e) => error_reply(&e),
        },
        "/retire" if method != "POST" => method_not_allowed(method, path, "POST"),
        "/retire" => Reply::json(200, &json!({"kids": shared.retire()})),
        _ => Reply::json(
            404,
            &json!({
                "error": "not_found",
                "message": format!("no such endpoint: {method} {path}"),
                "endpoints": [
                    format!("GET {DISCOVERY_PATH}"),
                    format!("GET {JWKS_PATH}"),
                    "POST /token (JSON {\"preset\", \"claims\", \"ttl\", \"audience\", \"kid\"})",
                    "GET /token?preset=..&aud=..&ttl=..&claim.NAME=..&json.NAME=..",
                    "POST /rotate",
                    "POST /retire",
                ],
            }),
        ),
    }
    .or_header("cache-control", "no-store")
}

fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Reply {
    Reply::json(
        405,
        &json!({
            "error": "method_not_allowed",
            "message": format!("{method} {path}: use {allow}"),
        }),
    )
    .with("allow", allow)
}

fn error_reply(e: &IssuerError) -> Reply {
    let (status, code) = e.http();
    let mut body = json!({"error": code, "message": e.to_string()});
    if let (IssuerError::UnknownPreset { .. }, Some(obj)) = (e, body.as_object_mut()) {
        obj.insert("presets".into(), json!(claims::PRESETS));
    }
    Reply::json(status, &body)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A random (version 4) UUID, as most providers' `jti`.
fn uuid_v4() -> String {
    use rand_core::RngCore;
    static FALLBACK: AtomicUsize = AtomicUsize::new(0);
    let mut bytes = [0u8; 16];
    let n = if rand_core::OsRng.try_fill_bytes(&mut bytes).is_ok() {
        u128::from_be_bytes(bytes)
    } else {
        // No OS randomness: still unique within this process, which is all a dev jti needs.
        (u128::from(unix_now().unsigned_abs()) << 64)
            | FALLBACK.fetch_add(1, Ordering::SeqCst) as u128
    };
    let n = (n & !(0xf << 76)) | (0x4 << 76); // version 4
    let n = (n & !(0x3 << 62)) | (0x2 << 62); // RFC 4122 variant
    let mut out = String::with_capacity(36);
    for (i, c) in format!("{n:032x}").chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

fn percent_decode(s: &str) -> Result<String, IssuerError> {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (bytes.next().and_then(hex), bytes.next().and_then(hex)) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => {
                    return Err(IssuerError::BadRequest(format!(
                        "bad percent-escape in the query: {s:?}"
                    )))
                }
            },
            _ => out.push(b),
        }
    }
    String::from_utf8(out)
        .map_err(|_| IssuerError::BadRequest(format!("the query is not UTF-8: {s:?}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(u, uuid_v4());
    }

    #[test]
    fn queries_decode() {
        let r = MintRequest::from_query(
            "preset=gitlab&aud=https%3A%2F%2Fx.example&ttl=60&claim.ref=refs/heads/dev&\
             claim.exp=5&json.runner_id=7&json.jti=null&claim.user_login=a+b",
        )
        .unwrap();
        assert_eq!(r.preset, "gitlab");
        assert_eq!(r.audience.as_deref(), Some("https://x.example"));
        assert_eq!(r.ttl, Some(60));
        assert_eq!(r.claims["ref"], "refs/heads/dev");
        assert_eq!(r.claims["exp"], 5);
        assert_eq!(r.claims["runner_id"], 7);
        assert_eq!(r.claims["jti"], Value::Null);
        assert_eq!(r.claims["user_login"], "a b");
        for bad in [
            "claim.exp=soon",
            "json.x={",
            "ttl=x",
            "what=1",
            "preset=%zz",
        ] {
            assert!(MintRequest::from_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_decode() {
        assert_eq!(
            MintRequest::from_json(b" ").unwrap(),
            MintRequest::default()
        );
        let r = MintRequest::from_json(
            br#"{"preset":"spiffe","claims":{"sub":null},"ttl":30,"audience":"a","kid":"dev-1"}"#,
        )
        .unwrap();
        assert_eq!(r.preset, "spiffe");
        assert_eq!(r.claims["sub"], Value::Null);
        assert_eq!((r.ttl, r.kid.as_deref()), (Some(30), Some("dev-1")));
        for bad in [
            &b"[]"[..],
            b"{",
            br#"{"claim":{}}"#,
            br#"{"claims":[]}"#,
            br#"{"ttl":"5"}"#,
            br#"{"preset":1}"#,
        ] {
            assert!(MintRequest::from_json(bad).is_err());
        }
    }
}
