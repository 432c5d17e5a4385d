//! Gateward as an OpenBao/Vault auth method: the transport-independent logic.
//!
//! The `gateward-openbao` binary (crate `plugin/openbao`) speaks go-plugin/gRPC to OpenBao and
//! translates each `HandleRequest` into a [`Request`] for [`Backend::handle`], handing it the
//! mount's storage (through the gRPC broker) as a [`Storage`]. Everything an operator sees —
//! paths, parameters, errors, help text, token parameters — is decided here.
//!
//! Paths (relative to the mount, e.g. `auth/gateward/`), documented in `docs/openbao.md`:
//!
//! | path | operations | what |
//! |---|---|---|
//! | `config` | read, create/update, delete | trusted issuers (Gateward's config schema) |
//! | `role/<name>` | read, create/update, delete | a Rego policy + token parameters |
//! | `role/` (or `role`) | list | role names |
//! | `login` | update (unauthenticated), alias-lookahead, resolve-role | log in with `role` + `jwt` |
//! | (any) | help | OpenBao's `help` response |
//!
//! Renewal is [`Operation::Renew`] with [`Request::auth`] set (OpenBao sends it on the login path).
//!
//! # Interface notes for the transport (changes to the agreed shape)
//!
//! - [`Backend::new`] takes no arguments and fetches keys over HTTPS with reqwest (a tokio
//!   runtime must be current when `handle` runs); [`Backend::with_parts`] injects an
//!   [`HttpFetch`] and a [`Clock`] (tests).
//! - [`Operation::from_name`] / [`Operation::as_str`] map OpenBao's operation strings
//!   (`"alias-lookahead"`, `"resolve-role"`, …); an unknown one (e.g. `"resolve-path"`) is
//!   `None`: answer it with an unsupported-operation error.
//! - [`Error::http_status`] and [`Error::kind`] say how to return each error: [`Error::Invalid`] is
//!   a user error (OpenBao's `logical.ErrorResponse`: a response whose data is
//!   `{"error": message}`, HTTP 400); [`Error::PermissionDenied`] is `logical.ErrPermissionDenied`
//!   (403); the rest are `ProtoError`s of the matching `err_type`.
//! - A successful response with no data, no auth and no warnings ([`Response::is_empty`]) is
//!   sent as a nil response: OpenBao answers 204 to a write and 404 to a read or list (a read
//!   of an absent role or config, a list with no roles).
//! - [`Operation::Renew`], `Revoke` and `Rollback` are handled whatever the path (as OpenBao's
//!   framework does); `Help` answers `{"help", "see_also", "openapi"}` for any known path.
//! - The policy input's `token` is `{claims, header, issuer}` (the Envoy filter's shape), not the
//!   bare claims, so the Rego library (`input.token.claims`) works unchanged.
//! - [`Auth::policies`] and [`Auth::token_policies`] hold the same list (OpenBao fills
//!   identity policies itself). [`Auth::internal_data`] must be stored and handed back unchanged
//!   on renew (OpenBao does this).
//! - [`MemoryStorage`] is a ready in-memory [`Storage`] for tests.
//! - Added: [`SpecialPaths::seal_wrap_storage`] (`config`), [`ErrorKind`], [`Response::is_empty`],
//!   [`parity_baseline`] with [`parity_cases`] (also `tests/data/bound_claims_cases.json`).
//! - Durations are [`std::time::Duration`] (the protocol's int64 nanoseconds);
//!   [`LeaseOptions::issue_time`] is set on login responses (OpenBao refuses a nil timestamp).
//!
//! Nothing here is global: each [`Backend`] (one per mount) owns its caches (compiled configs and
//! policies, fetched key sets).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

pub mod bound;
mod cache;
pub mod fetch;
pub mod glob;
mod help;
mod login;
mod paths;
pub mod role;
pub mod storage;
pub mod tokenutil;

pub use bound::{parity_baseline, parity_cases, BoundClaimsType, ParityCase};
pub use fetch::{
    check_derived_url, check_redirect, FetchError, HttpFetch, HttpsFetcher, UrlRefusal,
};
pub use storage::{MemoryStorage, Storage, StorageError};

/// An OpenBao request operation (`logical.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `create`: a write to a path whose existence check said "does not exist".
    Create,
    /// `read`.
    Read,
    /// `update`: a write (to an existing item, or to a path without an existence check).
    Update,
    /// `delete`.
    Delete,
    /// `list`.
    List,
    /// `help`: the path's help text.
    Help,
    /// `alias-lookahead`: the entity alias a login would produce, with no side effects.
    AliasLookahead,
    /// `resolve-role`: the role a login names (OpenBao uses it for quotas).
    ResolveRole,
    /// `renew`: renewal of a token this method issued; [`Request::auth`] holds it.
    Renew,
    /// `revoke`: revocation of such a token (nothing to clean up here).
    Revoke,
    /// `rollback`: periodic WAL rollback (no WAL here).
    Rollback,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 11] = [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
        Operation::List,
        Operation::Help,
        Operation::AliasLookahead,
        Operation::ResolveRole,
        Operation::Renew,
        Operation::Revoke,
        Operation::Rollback,
    ];

    /// The protocol's name (`"alias-lookahead"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Help => "help",
            Operation::AliasLookahead => "alias-lookahead",
            Operation::ResolveRole => "resolve-role",
            Operation::Renew => "renew",
            Operation::Revoke => "revoke",
            Operation::Rollback => "rollback",
        }
    }

    /// Parses the protocol's name; None for operations this method does not know.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// One request to the auth method.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What to do.
    pub operation: Operation,
    /// The path relative to the mount: `"login"`, `"config"`, `"role/x"`, `"role/"`.
    pub path: String,
    /// The request parameters (JSON body or query).
    pub data: Map<String, Value>,
    /// The client's address (`Connection.RemoteAddr`), for `token_bound_cidrs`.
    pub remote_addr: Option<String>,
    /// The mount path, e.g. `"auth/gateward/"` (reaches the policy as `input.request.mount`).
    pub mount_point: String,
    /// The token being renewed (for [`Operation::Renew`]).
    pub auth: Option<Auth>,
}

impl Request {
    /// A request with no data, no address and mount `auth/gateward/`.
    pub fn new(operation: Operation, path: impl Into<String>) -> Request {
        Request {
            operation,
            path: path.into(),
            data: Map::new(),
            remote_addr: None,
            mount_point: String::from("auth/gateward/"),
            auth: None,
        }
    }
}

/// A successful response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// Response data (empty with no auth and no warnings: 204).
    pub data: Map<String, Value>,
    /// The token to issue (login) or renew.
    pub auth: Option<Auth>,
    /// Warnings shown to the operator.
    pub warnings: Vec<String>,
}

impl Response {
    /// True when there is nothing to send (HTTP 204).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty() && self.auth.is_none() && self.warnings.is_empty()
    }
}

/// Lease settings of an issued token (`logical.LeaseOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseOptions {
    /// Initial TTL (0: the mount's default).
    pub ttl: Duration,
    /// Longest lifetime through renewals, from `issue_time` (0: the mount's maximum).
    pub max_ttl: Duration,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// Requested renewal increment (renew requests).
    pub increment: Duration,
    /// When the lease started (set on login responses).
    pub issue_time: Option<SystemTime>,
}

/// An entity alias (`logical.Alias`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alias {
    /// The alias name: the `user_claim` value.
    pub name: String,
    /// Alias metadata: `claim_mappings` values plus `role`.
    pub metadata: BTreeMap<String, String>,
}

/// A token to issue or renew (`logical.Auth`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    /// The token's display name (OpenBao prefixes the mount type).
    pub display_name: String,
    /// Policies to attach.
    pub policies: Vec<String>,
    /// Same as `policies` (OpenBao's token policies).
    pub token_policies: Vec<String>,
    /// Token metadata (shown on lookup, available to templated ACL policies).
    pub metadata: BTreeMap<String, String>,
    /// Opaque data OpenBao keeps with the token and returns on renew.
    pub internal_data: Map<String, Value>,
    /// TTLs and renewability.
    pub lease: LeaseOptions,
    /// Hard cap on the token's lifetime, renewals included (0: none).
    pub explicit_max_ttl: Duration,
    /// Periodic token period (0: not periodic).
    pub period: Duration,
    /// Uses before the token is revoked (0: unlimited).
    pub num_uses: i64,
    /// CIDR blocks the token may be used from.
    pub bound_cidrs: Vec<String>,
    /// `default`, `service` or `batch`.
    pub token_type: String,
    /// Do not add the `default` policy.
    pub no_default_policy: bool,
    /// The entity alias.
    pub alias: Option<Alias>,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A user error (bad parameters, a refused login): HTTP 400 with this message.
    #[error("{0}")]
    Invalid(String),
    /// No such path.
    #[error("unsupported path: {0}")]
    UnsupportedPath(String),
    /// The path does not support this operation.
    #[error("unsupported operation: {0}")]
    UnsupportedOperation(String),
    /// Refused before any token check (`token_bound_cidrs`): HTTP 403.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The mount's storage failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A bug or an unusable stored item: HTTP 500.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How an [`Error`] travels (OpenBao's `ProtoError.err_type` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A user error: return `Response{data: {"error": message}}` (HTTP 400).
    User,
    /// `ErrUnsupportedPath` (err_type 6).
    UnsupportedPath,
    /// `ErrUnsupportedOperation` (err_type 5).
    UnsupportedOperation,
    /// `ErrPermissionDenied` (err_type 8).
    PermissionDenied,
    /// An internal error (err_type 2).
    Internal,
}

impl Error {
    /// The HTTP status OpenBao answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 400,
            Error::UnsupportedPath(_) => 404,
            Error::UnsupportedOperation(_) => 405,
            Error::PermissionDenied(_) => 403,
            Error::Storage(_) | Error::Internal(_) => 500,
        }
    }

    /// How the transport returns it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::User,
            Error::UnsupportedPath(_) => ErrorKind::UnsupportedPath,
            Error::UnsupportedOperation(_) => ErrorKind::UnsupportedOperation,
            Error::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Error::Storage(_) | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        match self {
            Error::Invalid(m)
            | Error::UnsupportedPath(m)
            | Error::UnsupportedOperation(m)
            | Error::PermissionDenied(m)
            | Error::Storage(m)
            | Error::Internal(m) => m,
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Error {
        Error::Storage(e.to_string())
    }
}

/// Paths with special handling (`logical.Paths`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialPaths {
    /// Paths that need a root token (none).
    pub root: Vec<String>,
    /// Paths reachable without a token (`login`).
    pub unauthenticated: Vec<String>,
    /// Paths to seal-wrap in storage (`config`: it may hold inline keys).
    pub seal_wrap_storage: Vec<String>,
}

/// The current time, injectable for tests.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// One mount's auth method. Cheap to share (`&self` everywhere); holds only caches.
pub struct Backend {
    fetcher: Arc<dyn HttpFetch>,
    clock: Arc<dyn Clock>,
    caches: cache::Caches,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::new()
    }
}

impl Backend {
    /// A backend fetching remote keys over HTTPS (reqwest on tokio) and reading the system clock.
    pub fn new() -> Backend {
        Backend::with_parts(Arc::new(HttpsFetcher::new()), Arc::new(SystemClock))
    }

    /// A backend with an injected key fetcher and clock.
    pub fn with_parts(fetcher: Arc<dyn HttpFetch>, clock: Arc<dyn Clock>) -> Backend {
        Backend {
            fetcher,
            clock,
            caches: cache::Caches::default(),
        }
    }

    /// Handles one request against the mount's `storage`.
    pub async fn handle<S: Storage>(&self, storage: &S, req: Request) -> Result<Response, Error> {
        // Like OpenBao's framework, these are global operations, not routed by path.
        match req.operation {
            Operation::Renew => return login::renew(self, storage, &req).await,
            Operation::Revoke | Operation::Rollback => return Ok(Response::default()),
            _ => {}
        }
        let route = paths::route(&req.path)?;
        if req.operation == Operation::Help {
            return Ok(help::response(&route, &req.path));
        }
        match route {
            paths::Route::Root => Err(Error::UnsupportedOperation(format!(
                "{} on the mount root",
                req.operation.as_str()
            ))),
            paths::Route::Config => paths::config(self, storage, &req).await,
            paths::Route::RoleList => paths::role_list(storage, &req).await,
            paths::Route::Role(name) => paths::role(self, storage, &req, &name).await,
            paths::Route::Login => login::handle(self, storage, &req).await,
        }
    }

    /// OpenBao's existence check: `(check_found, exists)`. `check_found` is true for the paths
    /// that distinguish create from update (`config`, `role/<name>`).
    pub async fn existence_check<S: Storage>(
        &self,
        storage: &S,
        req: &Request,
    ) -> Result<(bool, bool), Error> {
        match paths::route(&req.path)? {
            paths::Route::Config => Ok((true, storage.get(paths::CONFIG_KEY).await?.is_some())),
            paths::Route::Role(name) => {
                Ok((true, storage.get(&paths::role_key(&name)).await?.is_some()))
            }
            _ => Ok((false, false)),
        }
    }

    /// The paths OpenBao treats specially: `login` needs no token.
    pub fn special_paths() -> SpecialPaths {
        SpecialPaths {
            root: Vec::new(),
            unauthenticated: vec![String::from("login")],
            seal_wrap_storage: vec![String::from(paths::CONFIG_KEY)],
        }
    }

    /// A storage key changed behind our back (replication): forget what was derived from it.
    pub fn invalidate(&self, key: &str) {
        self.caches.invalidate(key);
    }

    /// The mount is going away (or the plugin reloads): drop every cache.
    pub fn cleanup(&self) {
        self.caches.clear();
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }
}
