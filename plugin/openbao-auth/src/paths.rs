//! Routing and the `config` and `role` paths.

use std::sync::Arc;

use policy_engine::{Config, Gate};
use serde_json::{Map, Value};

use crate::role::{self, CompiledRole, RoleEntry};
use crate::{Backend, Error, Operation, Request, Response, Storage};

/// Storage key of the config.
pub(crate) const CONFIG_KEY: &str = "config";
/// Storage prefix of roles.
pub(crate) const ROLE_PREFIX: &str = "role/";

pub(crate) fn role_key(name: &str) -> String {
    format!("{ROLE_PREFIX}{name}")
}

/// A request path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// The mount itself (help only).
    Root,
    /// `config`.
    Config,
    /// `role/` or `role`.
    RoleList,
    /// `role/<name>`, lower-cased.
    Role(String),
    /// `login`.
    Login,
}

pub(crate) fn route(path: &str) -> Result<Route, Error> {
    let path = path.trim_start_matches('/');
    match path {
        "" => Ok(Route::Root),
        "config" => Ok(Route::Config),
        "role" | "role/" => Ok(Route::RoleList),
        "login" => Ok(Route::Login),
        _ => match path.strip_prefix(ROLE_PREFIX) {
            Some(name) if role::valid_name(name) => Ok(Route::Role(name.to_ascii_lowercase())),
            _ => Err(Error::UnsupportedPath(path.chars().take(200).collect())),
        },
    }
}

fn unsupported(req: &Request, what: &str) -> Error {
    Error::UnsupportedOperation(format!("{} on {what}", req.operation.as_str()))
}

/// Top-level config fields the OpenBao method uses; the rest of Gateward's schema is about
/// HTTP requests (token sources, headers, CORS, report mode) and is refused here.
const CONFIG_FIELDS: [&str; 2] = ["issuers", "max_token_bytes"];

/// The issuers as stored (a JSON object with [`CONFIG_FIELDS`]).
pub(crate) async fn config<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
) -> Result<Response, Error> {
    match req.operation {
        Operation::Read => {
            let Some(bytes) = storage.get(CONFIG_KEY).await? else {
                return Ok(Response::default());
            };
            let data: Map<String, Value> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("stored config is unreadable: {e}")))?;
            Ok(Response {
                data,
                ..Response::default()
            })
        }
        Operation::Create | Operation::Update => {
            let mut doc: Map<String, Value> = match storage.get(CONFIG_KEY).await? {
                Some(bytes) if req.operation == Operation::Update => serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("stored config is unreadable: {e}")))?,
                _ => Map::new(),
            };
            let mut errors = Vec::new();
            for (k, v) in &req.data {
                if CONFIG_FIELDS.contains(&k.as_str()) {
                    doc.insert(k.clone(), v.clone());
                } else if policy_engine::config::FIELDS.contains(&k.as_str()) {
                    errors.push(format!(
                        "{k}: not used by the OpenBao auth method (it configures HTTP front ends); roles hold the policies"
                    ));
                } else {
                    errors.push(format!(
                        "{k}: unknown field, expected one of: {}",
                        CONFIG_FIELDS.join(", ")
                    ));
                }
            }
            if !doc.contains_key("issuers") {
                errors.push(String::from("issuers: required"));
            }
            let text = Value::Object(doc).to_string();
            let warnings = match compile_config(&text) {
                Ok(gate) => gate_warnings(&gate),
                Err(es) => {
                    errors.extend(es);
                    Vec::new()
                }
            };
            if !errors.is_empty() {
                return Err(Error::Invalid(format!(
                    "invalid configuration:\n{}",
                    errors.join("\n")
                )));
            }
            storage.put(CONFIG_KEY, text.as_bytes()).await?;
            backend.caches.invalidate(CONFIG_KEY);
            log::info!("config written");
            Ok(Response {
                warnings,
                ..Response::default()
            })
        }
        Operation::Delete => {
            storage.delete(CONFIG_KEY).await?;
            backend.caches.invalidate(CONFIG_KEY);
            Ok(Response::default())
        }
        _ => Err(unsupported(req, "config")),
    }
}

/// Validates a stored or written config with the core; every error with its path.
fn compile_config(text: &str) -> Result<Gate, Vec<String>> {
    let as_lines = |es: policy_engine::ConfigErrors| -> Vec<String> {
        es.0.iter().map(ToString::to_string).collect()
    };
    let config = Config::from_json(text).map_err(as_lines)?;
    Gate::new(&config, &mut |_| {
        Err(String::from("files cannot be read here"))
    })
    .map_err(as_lines)
}

/// The core's warnings that make sense here: without a config-level policy the core warns that
/// everything is allowed, and that no organisation is pinned; roles carry the policies (their
/// own writes warn about pinning).
fn gate_warnings(gate: &Gate) -> Vec<String> {
    gate.warnings()
        .iter()
        .filter(|w| !w.starts_with("policy:") && !w.contains("issues tokens to every"))
        .cloned()
        .collect()
}

/// The compiled config, if one is stored.
pub(crate) async fn load_gate<S: Storage>(
    backend: &Backend,
    storage: &S,
) -> Result<Option<Arc<Gate>>, Error> {
    let Some(bytes) = storage.get(CONFIG_KEY).await? else {
        return Ok(None);
    };
    let d = crate::cache::digest(&bytes);
    if let Some(g) = backend.caches.gate(&d) {
        return Ok(Some(g));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Internal(String::from("stored config is not UTF-8")))?;
    let gate = Arc::new(compile_config(text).map_err(|es| {
        Error::Internal(format!(
            "stored config no longer validates: {}",
            es.join("; ")
        ))
    })?);
    backend.caches.put_gate(d, gate.clone());
    Ok(Some(gate))
}

/// A role as stored, if any.
async fn read_role<S: Storage>(
    storage: &S,
    name: &str,
) -> Result<Option<(Vec<u8>, RoleEntry)>, Error> {
    let Some(bytes) = storage.get(&role_key(name)).await? else {
        return Ok(None);
    };
    let entry = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("stored role {name:?} is unreadable: {e}")))?;
    Ok(Some((bytes, entry)))
}

/// The compiled role, if it exists.
pub(crate) async fn load_role<S: Storage>(
    backend: &Backend,
    storage: &S,
    name: &str,
) -> Result<Option<Arc<CompiledRole>>, Error> {
    let Some((bytes, entry)) = read_role(storage, name).await? else {
        return Ok(None);
    };
    let d = crate::cache::digest(&bytes);
    if let Some(r) = backend.caches.role(name, &d) {
        return Ok(Some(r));
    }
    let policy = entry.compile(name).map_err(|es| {
        Error::Internal(format!("stored role no longer compiles: {}", es.join("; ")))
    })?;
    let role = Arc::new(CompiledRole {
        policy_hash: entry.policy_hash(),
        policy,
        entry,
    });
    backend.caches.put_role(name, d, role.clone());
    Ok(Some(role))
}

/// `role/` (list).
pub(crate) async fn role_list<S: Storage>(storage: &S, req: &Request) -> Result<Response, Error> {
    if req.operation != Operation::List {
        return Err(unsupported(req, "role/"));
    }
    let keys: Vec<Value> = storage
        .list(ROLE_PREFIX)
        .await?
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .map(Value::String)
        .collect();
    let mut data = Map::new();
    // OpenBao's ListResponse leaves `keys` out when there are none (the API answers 404).
    if !keys.is_empty() {
        data.insert(String::from("keys"), Value::Array(keys));
    }
    Ok(Response {
        data,
        ..Response::default()
    })
}

/// `role/<name>`.
pub(crate) async fn role<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
    name: &str,
) -> Result<Response, Error> {
    match req.operation {
        Operation::Read => Ok(match read_role(storage, name).await? {
            Some((_, entry)) => Response {
                data: entry.to_data(),
                ..Response::default()
            },
            None => Response::default(),
        }),
        Operation::Create | Operation::Update => {
            let mut entry = match read_role(storage, name).await? {
                Some((_, e)) => e,
                None => RoleEntry::default(),
            };
            let mut warnings = entry.update(&req.data).map_err(Error::Invalid)?;
            entry
                .compile(name)
                .map_err(|es| Error::Invalid(es.join("\n")))?;
            if entry.bound_audiences.is_empty() {
                // The built-in method's rule, kept for migrated roles (login.rs).
                warnings.push(String::from(
                    "bound_audiences is empty: every token that carries an aud is refused, as by the built-in jwt method; set the audiences this role accepts",
                ));
            }
            warnings.extend(role_warnings(backend, storage, &entry).await?);
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| Error::Internal(format!("cannot encode the role: {e}")))?;
            storage.put(&role_key(name), &bytes).await?;
            backend.caches.invalidate(&role_key(name));
            log::info!("role {name:?} written");
            Ok(Response {
                warnings,
                ..Response::default()
            })
        }
        Operation::Delete => {
            storage.delete(&role_key(name)).await?;
            backend.caches.invalidate(&role_key(name));
            Ok(Response::default())
        }
        _ => Err(unsupported(req, "role/<name>")),
    }
}

/// Warnings about a role against the current config: issuers it names that are not configured,
/// and shared issuers (github.com, gitlab.com, …) whose organisation neither the policy nor
/// `bound_claims` pins (the core's check, run with the role's policy).
async fn role_warnings<S: Storage>(
    backend: &Backend,
    storage: &S,
    entry: &RoleEntry,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let Ok(Some(gate)) = load_gate(backend, storage).await else {
        out.push(String::from(
            "no usable config yet: logins fail until issuers are configured at config",
        ));
        return Ok(out);
    };
    for issuer in &entry.issuers {
        if !gate.issuers().iter().any(|i| &i.name == issuer) {
            out.push(format!("issuers: {issuer:?} is not a configured issuer"));
        }
    }
    // The core's organisation-pinning warning, with the role's rules in place of a config
    // policy: a shared issuer (github.com, gitlab.com, …) proves only the platform.
    // The rules' code: a claim named only in a comment pins nothing.
    let code: Vec<String> = std::iter::once(&entry.policy)
        .chain(entry.modules.values())
        .map(|rego| policy_engine::policy::without_comments(rego))
        .collect();
    let mentions = |claim: &str| {
        code.iter().any(|c| c.contains(claim))
            || entry
                .bound_claims
                .keys()
                .any(|k| k.trim_start_matches('/') == claim)
    };
    for issuer in gate.issuers() {
        if !entry.issuers.is_empty() && !entry.issuers.contains(&issuer.name) {
            continue;
        }
        let Some(p) = issuer.preset else { continue };
        if let Some(warning) = p.org_pin_warning(issuer.iss(), &mentions) {
            out.push(format!(
                "issuer {}: {warning} in the role's policy or bound_claims",
                issuer.name,
            ));
        }
    }
    Ok(out)
}
