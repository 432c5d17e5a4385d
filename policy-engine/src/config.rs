//! The configuration schema (documented field by field in `docs/config.md`) and its JSON
//! parsing. Parsing reports every problem it can find, each with a JSON path; semantic
//! validation happens when a [`crate::Gate`] is built from the result.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::json;
use crate::request::TokenSource;

/// Default clock-skew tolerance.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
/// Default `max_token_bytes`.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default `token_cache_size`.
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 1024;

/// One configuration problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path, e.g. `issuers[1].audiences` (`$` for the document itself).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl core::error::Error for ConfigErrors {}

/// Whether denials are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Deny requests the gate refuses.
    #[default]
    Enforce,
    /// Evaluate and log every decision, but let every request through.
    Report,
}

/// A PEM public key in config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKey {
    /// The PEM text (`-----BEGIN PUBLIC KEY-----` ...).
    pub pem: String,
    /// The `kid` tokens signed by this key carry, if any.
    #[serde(default)]
    pub kid: Option<String>,
    /// The one algorithm this key may verify.
    #[serde(default)]
    pub alg: Option<String>,
}

/// One trusted token issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// A short name for logs, metrics and the policy input (`token.issuer`).
    pub name: String,
    /// A CI provider preset (`github-actions`, `gitlab`, ...): fills issuer, key location,
    /// algorithms, required claims and the lifetime bound.
    #[serde(default)]
    pub preset: Option<String>,
    /// The exact `iss` value (no normalisation: a trailing slash matters).
    #[serde(default)]
    pub issuer: Option<String>,
    /// `aud` must contain at least one of these. Required, non-empty.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// An inline JWKS document (`{"keys": [...]}`).
    #[serde(default)]
    pub jwks: Option<Value>,
    /// Inline PEM public keys.
    #[serde(default)]
    pub pem_keys: Vec<PemKey>,
    /// Where to fetch the JWKS.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Fetch `<issuer>/.well-known/openid-configuration` and use its `jwks_uri`.
    #[serde(default)]
    pub discovery: bool,
    /// Accepted `alg` values (default: the preset's, else `["RS256"]`).
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Longest accepted lifetime (`exp - iat`); default: the preset's bound, else none.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// Claims that must be present.
    #[serde(default)]
    pub require: Vec<String>,
    /// How front ends that fetch keys (`jwks_uri`, `discovery`) do so.
    #[serde(default)]
    pub fetch: FetchConfig,
}

/// How remote keys are fetched and cached (front ends that fetch: the Envoy filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// The Envoy cluster that reaches the issuer (the discovery document, and the JWKS unless
    /// `jwks_cluster` is given).
    pub cluster: Option<String>,
    /// The Envoy cluster for the JWKS when discovery points at another host.
    pub jwks_cluster: Option<String>,
    /// Per-fetch timeout.
    pub timeout_ms: u64,
    /// How long a fetched key set is used before it is refreshed (in the background, before
    /// it expires).
    pub cache_seconds: u64,
    /// A token with an unknown `kid` triggers a refetch at most this often per issuer.
    pub min_refetch_seconds: u64,
    /// After a failed fetch, the next attempt waits this long.
    pub retry_seconds: u64,
    /// While fetches fail, the last good key set is served until it is this old; then
    /// requests fail closed (`keys_unavailable`).
    pub max_stale_seconds: u64,
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            cluster: None,
            jwks_cluster: None,
            timeout_ms: 5_000,
            cache_seconds: 600,
            min_refetch_seconds: 30,
            retry_seconds: 5,
            max_stale_seconds: 86_400,
        }
    }
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}

/// One policy module: inline Rego, or a file the host resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// The name errors refer to (default: the file name, or `modules[i]`).
    #[serde(default)]
    pub name: Option<String>,
    /// Inline Rego text.
    #[serde(default)]
    pub rego: Option<String>,
    /// A file name; resolved by the host (the CLI reads it relative to the config file).
    #[serde(default)]
    pub file: Option<String>,
}

/// The authorisation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Rego modules.
    pub modules: Vec<ModuleConfig>,
    /// A JSON object available to the policy as `data`.
    #[serde(default)]
    pub data: Option<Value>,
    /// The rule evaluated per request.
    #[serde(default = "default_entrypoint")]
    pub entrypoint: String,
    /// Wall-clock budget for one evaluation, in milliseconds (1–10,000). A policy that runs
    /// longer (a comprehension over a huge range, say) stops and the request is denied with
    /// `policy_error`.
    #[serde(default = "default_max_evaluation_ms")]
    pub max_evaluation_ms: u64,
    /// Which regorus evaluator runs the policy: `interpreter` (the default) or `compiled` (the
    /// interpreter still, where the build or the policy cannot be compiled).
    #[serde(default)]
    pub evaluator: crate::policy::Evaluator,
    /// The request headers the policy's results may set. When given, all of them are removed
    /// from every request that goes upstream before a decision's own are set (an allow that sets
    /// fewer of them, a denial in report mode, a bypassed preflight), so a client's copy never
    /// reaches the upstream; a result that sets a header not listed is a policy error. Without
    /// it, a header is removed only by the decisions that set it.
    #[serde(default)]
    pub headers: Option<Vec<String>>,
}

fn default_max_evaluation_ms() -> u64 {
    crate::policy::DEFAULT_MAX_EVALUATION_MS
}

fn default_entrypoint() -> String {
    crate::policy::DEFAULT_ENTRYPOINT.to_string()
}

/// Copies a claim into an upstream request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimHeader {
    /// The claim name (top level).
    pub claim: String,
    /// The header to set.
    pub header: String,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Where tokens are looked for (default: `Authorization: Bearer`).
    pub token_sources: Vec<TokenSource>,
    /// Longest token accepted, checked before decoding.
    pub max_token_bytes: usize,
    /// The authorisation policy; without one, every verified token is allowed.
    pub policy: Option<PolicyConfig>,
    /// Claims copied to upstream headers.
    pub claims_to_headers: Vec<ClaimHeader>,
    /// Pass the token upstream (default: removed).
    pub forward_token: bool,
    /// `enforce` or `report`.
    pub mode: Mode,
    /// The realm in `WWW-Authenticate`.
    pub realm: String,
    /// Let CORS preflight requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) through without a token.
    pub allow_cors_preflight: bool,
    /// Verified tokens remembered (per worker) so a reused token skips signature checks.
    pub token_cache_size: usize,
    /// Replay protection: each token's `jti` accepted once (off by default).
    pub replay: ReplayConfig,
}

/// Replay protection ([`crate::replay`]): with `jti` on, a token is let through once. Hosts keep
/// the record (the Envoy filter: in shared data, one record per Envoy instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Accept each `(issuer, jti)` once while the token is valid; tokens without `jti` are
    /// denied `claim_missing`.
    #[serde(default)]
    pub jti: bool,
    /// How many unexpired tokens the record holds (1024–1,000,000). When it is full, new tokens
    /// are denied `replay_unavailable` (503) until entries expire: never a silent allow.
    #[serde(default = "default_replay_capacity")]
    pub max_tokens: usize,
}

/// The default [`ReplayConfig::max_tokens`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

fn default_replay_capacity() -> usize {
    DEFAULT_REPLAY_CAPACITY
}

impl Default for ReplayConfig {
    fn default() -> ReplayConfig {
        ReplayConfig {
            jti: false,
            max_tokens: DEFAULT_REPLAY_CAPACITY,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            issuers: Vec::new(),
            token_sources: alloc::vec![TokenSource::bearer()],
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            policy: None,
            claims_to_headers: Vec::new(),
            forward_token: false,
            mode: Mode::Enforce,
            realm: String::from("gateward"),
            allow_cors_preflight: false,
            token_cache_size: DEFAULT_TOKEN_CACHE_SIZE,
            replay: ReplayConfig::default(),
        }
    }
}

/// The top-level field names, for "unknown field" messages.
pub const FIELDS: &[&str] = &[
    "issuers",
    "token_sources",
    "max_token_bytes",
    "policy",
    "claims_to_headers",
    "forward_token",
    "mode",
    "realm",
    "allow_cors_preflight",
    "token_cache_size",
    "replay",
];

impl Config {
    /// Parses a JSON configuration, reporting every structural problem with its path
    /// (duplicate keys, unknown fields, wrong types). Semantic rules are checked by
    /// [`crate::Gate::new`].
    pub fn from_json(text: &str) -> Result<Config, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let root = match json::parse_object(text.as_bytes()) {
            Ok(root) => root,
            Err(e) => {
                errors.push("$", e);
                return Err(errors);
            }
        };
        let mut config = Config::default();
        for (key, value) in root {
            match key.as_str() {
                "issuers" => config.issuers = list(value, "issuers", &mut errors),
                "token_sources" => config.token_sources = list(value, "token_sources", &mut errors),
                "claims_to_headers" => {
                    config.claims_to_headers = list(value, "claims_to_headers", &mut errors)
                }
                "max_token_bytes" => field(value, &key, &mut errors, &mut config.max_token_bytes),
                // Gone with comma-joined arrays, which a comma inside an item made ambiguous.
                "claims_header_separator" => errors.push(
                    key.clone(),
                    "no longer supported: array claims are sent as an RFC 8941 List \
                     (docs/config.md, claims_to_headers)",
                ),
                "forward_token" => field(value, &key, &mut errors, &mut config.forward_token),
                "mode" => field(value, &key, &mut errors, &mut config.mode),
                "realm" => field(value, &key, &mut errors, &mut config.realm),
                "allow_cors_preflight" => {
                    field(value, &key, &mut errors, &mut config.allow_cors_preflight)
                }
                "token_cache_size" => field(value, &key, &mut errors, &mut config.token_cache_size),
                "policy" => config.policy = parse_at(value, &key, &mut errors),
                "replay" => field(value, &key, &mut errors, &mut config.replay),
                _ => errors.push(
                    key.clone(),
                    format!("unknown field, expected one of: {}", FIELDS.join(", ")),
                ),
            }
        }
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}

/// Deserializes `value` into `out`, recording an error at `path` (plus the inner path).
fn field<T: DeserializeOwned>(value: Value, path: &str, errors: &mut ConfigErrors, out: &mut T) {
    if let Some(v) = parse_at(value, path, errors) {
        *out = v;
    }
}

fn parse_at<T: DeserializeOwned>(value: Value, path: &str, errors: &mut ConfigErrors) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            errors.push(full, e.into_inner().to_string());
            None
        }
    }
}

/// Deserializes an array element by element so one bad element does not hide another.
fn list<T: DeserializeOwned>(value: Value, path: &str, errors: &mut ConfigErrors) -> Vec<T> {
    let Value::Array(items) = value else {
        errors.push(
            path,
            format!("must be an array, found {}", json::kind(&value)),
        );
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| parse_at(item, &format!("{path}[{i}]"), errors))
        .collect()
}
