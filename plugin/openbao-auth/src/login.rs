//! `login` (update, alias-lookahead, resolve-role) and token renewal.
//!
//! The pipeline follows the built-in `jwt` method's order (OpenBao's
//! `internal/builtin/credential/jwt/path_login.go`, `pathLogin`) where the steps
//! overlap: role → token present → `token_bound_cidrs` → verification (the core: route by `iss`,
//! keys, signature, `alg`, audience, times, required claims) → `bound_subject` →
//! `bound_audiences` → `user_claim` → `claim_mappings` → `bound_claims` → then the role's Rego
//! policy. Every refusal of a token is an [`Error::Invalid`] reading `<deny code>: <why>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use policy_engine::decision::{Deny, DenyCode};
use policy_engine::gate::KeySource;
use policy_engine::{Gate, KeySet, Verified};
use serde_json::{json, Map, Value};

use crate::bound;
use crate::fetch::Remote;
use crate::paths::{load_gate, load_role};
use crate::role::{self, CompiledRole};
use crate::tokenutil::{self, Cidr};
use crate::{Alias, Auth, Backend, Error, LeaseOptions, Operation, Request, Response, Storage};

/// `internal_data` keys kept with each token for renewal.
mod internal {
    pub const ROLE: &str = "role";
    pub const EXP: &str = "exp";
    pub const POLICY_HASH: &str = "policy_sha256";
    pub const POLICY_POLICIES: &str = "policy_policies";
    pub const POLICY_TTL: &str = "policy_ttl";
}

/// The refusal of a login whose `role` is not a valid role name.
const INVALID_ROLE_NAME: &str = "invalid role name: role names are letters, digits, \"_\", \"-\" and \".\", starting and ending with a letter, digit or \"_\"";

fn deny(code: DenyCode, message: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {message}", code.as_str()))
}

fn from_deny(d: &Deny) -> Error {
    deny(d.code, &d.message)
}

fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub(crate) async fn handle<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
) -> Result<Response, Error> {
    match req.operation {
        Operation::Update | Operation::Create => login(backend, storage, req, false).await,
        Operation::AliasLookahead => login(backend, storage, req, true).await,
        Operation::ResolveRole => resolve_role(backend, storage, req).await,
        op => Err(Error::UnsupportedOperation(format!(
            "{} on login",
            op.as_str()
        ))),
    }
}

/// The `role` parameter, lower-cased as OpenBao's `TypeLowerCaseString` does, and held to the
/// names a role write accepts: anything else (`../gha`) would reach the storage as another key.
/// The refusal does not repeat the name, so no storage key is echoed back.
fn role_name(req: &Request) -> Result<String, Error> {
    match req.data.get("role") {
        Some(Value::String(s)) if !s.is_empty() => {
            let name = s.to_lowercase();
            if role::valid_name(&name) {
                Ok(name)
            } else {
                Err(Error::Invalid(String::from(INVALID_ROLE_NAME)))
            }
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {
            Err(Error::Invalid(String::from("missing role")))
        }
        Some(_) => Err(Error::Invalid(String::from("role: expected a string"))),
    }
}

async fn config_and_role<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
) -> Result<(Arc<Gate>, String, Arc<CompiledRole>), Error> {
    let Some(gate) = load_gate(backend, storage).await? else {
        return Err(Error::Invalid(String::from("could not load configuration")));
    };
    let name = role_name(req)?;
    let Some(role) = load_role(backend, storage, &name).await? else {
        return Err(Error::Invalid(format!("role {name:?} could not be found")));
    };
    Ok((gate, name, role))
}

async fn resolve_role<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
) -> Result<Response, Error> {
    let (_, name, _) = config_and_role(backend, storage, req).await?;
    let mut data = Map::new();
    data.insert(String::from("role"), Value::String(name));
    Ok(Response {
        data,
        ..Response::default()
    })
}

/// A verified token with what the role's checks derived from it.
struct Identity {
    verified: Verified,
    issuer: String,
    user: String,
    alias_metadata: BTreeMap<String, String>,
}

async fn login<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
    lookahead: bool,
) -> Result<Response, Error> {
    let (gate, name, role) = config_and_role(backend, storage, req).await?;
    let jwt = match req.data.get("jwt") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(Error::Invalid(String::from("missing token")))
        }
        Some(_) => return Err(Error::Invalid(String::from("jwt: expected a string"))),
    };
    let entry = &role.entry;
    let client = req
        .remote_addr
        .as_deref()
        .and_then(tokenutil::parse_remote_addr);
    if !entry.token.token_bound_cidrs.is_empty() {
        let ok = client.is_some_and(|ip| {
            entry
                .token
                .token_bound_cidrs
                .iter()
                .filter_map(|c| Cidr::parse(c).ok())
                .any(|c| c.contains(ip))
        });
        if !ok {
            log::info!("login denied: role={name} source address outside token_bound_cidrs");
            return Err(Error::PermissionDenied(String::from(
                "source address is not in the role's token_bound_cidrs",
            )));
        }
    }
    let now_time = backend.now();
    let now = unix_secs(now_time);
    let identity = match verify(backend, &gate, &name, &role, jwt, now).await {
        Ok(id) => id,
        Err(e) => {
            log::info!("login denied: role={name}: {}", e.message());
            return Err(e);
        }
    };
    let alias = Alias {
        name: identity.user.clone(),
        metadata: identity.alias_metadata.clone(),
    };
    if lookahead {
        return Ok(Response {
            auth: Some(Auth {
                alias: Some(alias),
                ..Auth::default()
            }),
            ..Response::default()
        });
    }
    let outcome = evaluate(&role, &name, &identity, req, now).inspect_err(|e| {
        log::info!(
            "login denied: role={name} issuer={} user={:?}: {}",
            identity.issuer,
            identity.user,
            e.message()
        );
    })?;
    let auth = issue(&role, &name, &identity, alias, outcome, req, now_time, now)?;
    log::info!(
        "login: role={name} issuer={} user={:?} policies={:?}",
        identity.issuer,
        identity.user,
        auth.policies
    );
    Ok(Response {
        auth: Some(auth),
        ..Response::default()
    })
}

/// Verification with the core, then the role's claim checks.
async fn verify(
    backend: &Backend,
    gate: &Gate,
    name: &str,
    role: &CompiledRole,
    jwt: &str,
    now: i64,
) -> Result<Identity, Error> {
    let entry = &role.entry;
    let (token, id) = gate.route(jwt).map_err(|d| from_deny(&d))?;
    let issuer = gate
        .issuers()
        .get(id)
        .ok_or_else(|| Error::Internal(String::from("routed to an unknown issuer")))?;
    if !entry.issuers.is_empty() && !entry.issuers.contains(&issuer.name) {
        return Err(deny(
            DenyCode::IssuerUntrusted,
            format!("issuer {} is not accepted by role {name:?}", issuer.name),
        ));
    }
    let now_ms = || {
        u64::try_from(
            backend
                .now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
        )
        .unwrap_or(u64::MAX)
    };
    let remote = match &issuer.keys {
        KeySource::Static(_) => None,
        KeySource::JwksUri(url) => Some(Remote::Jwks(url.clone())),
        KeySource::Discovery(url) => Some(Remote::Discovery(url.clone(), issuer.iss().to_string())),
    };
    let keys: Arc<KeySet> = match (&issuer.keys, &remote) {
        (KeySource::Static(keys), _) => Arc::new(keys.clone()),
        (_, Some(remote)) => backend
            .caches
            .keys
            .keys(backend.fetcher.as_ref(), remote, &issuer.fetch, &now_ms)
            .await
            .map_err(|_| {
                deny(
                    DenyCode::KeysUnavailable,
                    format!(
                        "could not fetch keys for issuer {} (the plugin's log has the reason)",
                        issuer.name
                    ),
                )
            })?,
        (_, None) => return Err(Error::Internal(String::from("no key source"))),
    };
    let verified = match gate.verify(&token, id, &keys, now) {
        Ok(v) => v,
        // Static keys given without a kid (PEM keys, as in the built-in method's
        // jwt_validation_pubkeys, which ignores `kid` and tries every key): a token that names a
        // kid none of the keys carries is tried against those keys, as a token without kid is.
        Err(d)
            if d.code == DenyCode::KeyNotFound
                && remote.is_none()
                && token.kid.as_deref().is_some_and(|k| !keys.has_kid(k)) =>
        {
            let kidless = KeySet {
                keys: keys
                    .keys
                    .iter()
                    .filter(|k| k.kid.is_none())
                    .cloned()
                    .collect(),
                skipped: Vec::new(),
            };
            if kidless.keys.is_empty() {
                return Err(from_deny(&d));
            }
            let mut anonymous = token.clone();
            anonymous.kid = None;
            gate.verify(&anonymous, id, &kidless, now)
                .map_err(|d| from_deny(&d))?
        }
        // A kid the set lacks may be a rotation: refetch once (rate-limited) and retry.
        Err(d) if d.code == DenyCode::KeyNotFound && token.kid.is_some() => {
            let Some(remote) = &remote else {
                return Err(from_deny(&d));
            };
            let fresh = backend
                .caches
                .keys
                .refetch(backend.fetcher.as_ref(), remote, &issuer.fetch, &now_ms)
                .await;
            match fresh {
                Some(keys) => gate
                    .verify(&token, id, &keys, now)
                    .map_err(|d| from_deny(&d))?,
                None => return Err(from_deny(&d)),
            }
        }
        Err(d) => return Err(from_deny(&d)),
    };
    let claims = &verified.claims;
    if !entry.bound_subject.is_empty()
        && claims.get("sub").and_then(Value::as_str) != Some(entry.bound_subject.as_str())
    {
        return Err(deny(
            DenyCode::ClaimInvalid,
            "error validating token: invalid subject (sub) claim",
        ));
    }
    bound::validate_bound_audiences(&entry.bound_audiences, claims)
        .map_err(|e| deny(DenyCode::AudienceMismatch, e))?;
    let user_raw = if entry.user_claim_json_pointer {
        bound::get_claim(claims, &entry.user_claim)
    } else {
        claims.get(&entry.user_claim)
    };
    let user = match user_raw {
        None | Some(Value::Null) => {
            return Err(deny(
                DenyCode::ClaimMissing,
                format!("claim {:?} not found in token", entry.user_claim),
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(deny(
                DenyCode::ClaimInvalid,
                format!(
                    "claim {:?} could not be converted to string",
                    entry.user_claim
                ),
            ))
        }
    };
    let mut alias_metadata = bound::extract_metadata(claims, &entry.claim_mappings)
        .map_err(|e| deny(DenyCode::ClaimInvalid, e))?;
    alias_metadata.insert(String::from("role"), name.to_string());
    if let Err(e) =
        bound::validate_bound_claims(entry.bound_claims_type, &entry.bound_claims, claims)
    {
        let code = if e.ends_with("is missing") {
            DenyCode::ClaimMissing
        } else {
            DenyCode::ClaimInvalid
        };
        return Err(deny(code, format!("error validating claims: {e}")));
    }
    Ok(Identity {
        issuer: issuer.name.clone(),
        verified,
        user,
        alias_metadata,
    })
}

/// What the policy granted.
#[derive(Debug, Default)]
struct Outcome {
    policies: Vec<String>,
    ttl: Option<u64>,
    metadata: BTreeMap<String, String>,
}

/// The policy input (docs/openbao.md): the same `token` shape as the Envoy filter's, so the
/// Rego library (`input.token.claims`) works unchanged.
fn input(identity: &Identity, name: &str, req: &Request, now: i64) -> Value {
    json!({
        "token": {
            "claims": Value::Object(identity.verified.claims.clone()),
            "header": Value::Object(identity.verified.header.clone()),
            "issuer": identity.issuer,
        },
        "request": {
            "path": format!("{}{}", req.mount_point, req.path.trim_start_matches('/')),
            "mount": req.mount_point,
            "remote_addr": req.remote_addr,
            "operation": req.operation.as_str(),
        },
        "role": name,
        "now": now,
    })
}

fn evaluate(
    role: &CompiledRole,
    name: &str,
    identity: &Identity,
    req: &Request,
    now: i64,
) -> Result<Outcome, Error> {
    let value = role
        .policy
        .evaluate_value(regorus::Value::from(input(identity, name, req, now)))
        .map_err(|e| deny(DenyCode::PolicyError, e))?;
    interpret(&value)
}

/// Reads the policy's result: `true`/`false`, or `{allow, reason, policies, ttl, metadata}`.
/// An undefined result denies; anything malformed is a `policy_error` (fail closed).
fn interpret(value: &regorus::Value) -> Result<Outcome, Error> {
    let perr = |m: String| deny(DenyCode::PolicyError, m);
    let obj = match value {
        regorus::Value::Undefined => {
            return Err(deny(
                DenyCode::PolicyDenied,
                "policy result is undefined (no rule matched)",
            ))
        }
        regorus::Value::Bool(true) => return Ok(Outcome::default()),
        regorus::Value::Bool(false) => {
            return Err(deny(DenyCode::PolicyDenied, "denied by policy"))
        }
        regorus::Value::Object(_) => {
            let text = value
                .to_json_str()
                .map_err(|e| perr(format!("policy result is not JSON-representable: {e}")))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                _ => return Err(perr(String::from("policy result is not an object"))),
            }
        }
        _ => {
            return Err(perr(String::from(
                "policy result must be a boolean or an object",
            )))
        }
    };
    for k in obj.keys() {
        // The Envoy filter's fields are accepted (a shared policy may set them) and unused.
        if ![
            "allow",
            "reason",
            "policies",
            "ttl",
            "metadata",
            "status",
            "headers",
            "response_headers",
        ]
        .contains(&k.as_str())
        {
            return Err(perr(format!(
                "policy result has an unknown field `{k}` (expected allow, reason, policies, ttl, metadata)"
            )));
        }
    }
    let allow = match obj.get("allow") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(perr(String::from(
                "policy result `allow` must be a boolean",
            )))
        }
    };
    let reason = match obj.get("reason") {
        None => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(_) => {
            return Err(perr(String::from(
                "policy result `reason` must be a string",
            )))
        }
    };
    if !allow {
        return Err(deny(
            DenyCode::PolicyDenied,
            reason.unwrap_or_else(|| String::from("denied by policy")),
        ));
    }
    let mut out = Outcome::default();
    match obj.get("policies") {
        None => {}
        Some(Value::Array(items)) => {
            for p in items {
                let Some(p) = p.as_str().map(str::trim).filter(|p| !p.is_empty()) else {
                    return Err(perr(String::from(
                        "policy result `policies` must be a list of non-empty strings",
                    )));
                };
                let p = p.to_lowercase();
                if p == "root" {
                    return Err(perr(String::from(
                        "policy result `policies` may not grant root",
                    )));
                }
                if !out.policies.contains(&p) {
                    out.policies.push(p);
                }
            }
        }
        Some(_) => {
            return Err(perr(String::from(
                "policy result `policies` must be a list of strings",
            )))
        }
    }
    if let Some(ttl) = obj.get("ttl") {
        let secs = match ttl {
            Value::Number(_) | Value::String(_) => tokenutil::parse_duration(ttl)
                .map_err(|e| perr(format!("policy result `ttl`: {e}")))?
                .as_secs(),
            _ => {
                return Err(perr(String::from(
                    "policy result `ttl` must be seconds or a duration string",
                )))
            }
        };
        if secs == 0 {
            return Err(perr(String::from(
                "policy result `ttl` must be at least one second",
            )));
        }
        out.ttl = Some(secs);
    }
    match obj.get("metadata") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Value::String(v) = v else {
                    return Err(perr(format!(
                        "policy result `metadata.{k}` must be a string"
                    )));
                };
                if k.is_empty() || k == "role" {
                    return Err(perr(format!("policy result `metadata` may not set {k:?}")));
                }
                out.metadata.insert(k.clone(), v.clone());
            }
        }
        Some(_) => {
            return Err(perr(String::from(
                "policy result `metadata` must be an object of strings",
            )))
        }
    }
    Ok(out)
}

/// The smallest of the non-zero limits.
fn min_nonzero(limits: &[u64]) -> u64 {
    limits.iter().copied().filter(|l| *l > 0).min().unwrap_or(0)
}

#[allow(clippy::too_many_arguments)]
fn issue(
    role: &CompiledRole,
    name: &str,
    identity: &Identity,
    alias: Alias,
    outcome: Outcome,
    req: &Request,
    now_time: SystemTime,
    now: i64,
) -> Result<Auth, Error> {
    let t = &role.entry.token;
    let exp = identity.verified.expires_at;
    // A Vault token never outlives the CI token it was issued for. Within the leeway a token
    // may have expired already: then nothing can be issued (a TTL of 0 means "the default").
    let remaining = exp.saturating_sub(now);
    if remaining < 1 {
        return Err(deny(
            DenyCode::Expired,
            format!(
                "token expired {} s ago (accepted within the issuer's leeway, but an OpenBao token cannot outlive it)",
                -remaining
            ),
        ));
    }
    let remaining = u64::try_from(remaining).unwrap_or(u64::MAX);
    let ttl = match (t.token_ttl, outcome.ttl) {
        (0, None) => 0,
        (role_ttl, policy_ttl) => min_nonzero(&[role_ttl, policy_ttl.unwrap_or(0), remaining]),
    };
    let max_ttl = min_nonzero(&[t.token_max_ttl, remaining]);
    let explicit_max_ttl = min_nonzero(&[t.token_explicit_max_ttl, remaining]);
    let mut policies: Vec<String> = Vec::new();
    for p in t.token_policies.iter().chain(&outcome.policies) {
        if !policies.contains(p) {
            policies.push(p.clone());
        }
    }
    let mut metadata = alias.metadata.clone();
    for (k, v) in &outcome.metadata {
        if metadata.contains_key(k) {
            return Err(deny(
                DenyCode::PolicyError,
                format!("policy result `metadata.{k}` would overwrite a claim_mappings value"),
            ));
        }
        metadata.insert(k.clone(), v.clone());
    }
    let bound_cidrs = if t.token_strictly_bind_ip {
        match req
            .remote_addr
            .as_deref()
            .and_then(tokenutil::parse_remote_addr)
        {
            Some(ip) => vec![ip.to_string()],
            None => {
                return Err(Error::PermissionDenied(String::from(
                    "token_strictly_bind_ip is set but the source address is unknown",
                )))
            }
        }
    } else {
        t.token_bound_cidrs.clone()
    };
    let mut internal_data = Map::new();
    internal_data.insert(internal::ROLE.into(), Value::String(name.to_string()));
    internal_data.insert(internal::EXP.into(), exp.into());
    internal_data.insert(
        internal::POLICY_HASH.into(),
        Value::String(role.policy_hash.clone()),
    );
    internal_data.insert(internal::POLICY_POLICIES.into(), json!(outcome.policies));
    if let Some(ttl) = outcome.ttl {
        internal_data.insert(internal::POLICY_TTL.into(), ttl.into());
    }
    Ok(Auth {
        display_name: identity.user.clone(),
        token_policies: policies.clone(),
        policies,
        metadata,
        internal_data,
        lease: LeaseOptions {
            ttl: Duration::from_secs(ttl),
            max_ttl: Duration::from_secs(max_ttl),
            renewable: true,
            increment: Duration::ZERO,
            issue_time: Some(now_time),
        },
        explicit_max_ttl: Duration::from_secs(explicit_max_ttl),
        period: Duration::from_secs(t.token_period),
        num_uses: t.token_num_uses,
        bound_cidrs,
        token_type: t.token_type.clone(),
        no_default_policy: t.token_no_default_policy,
        alias: Some(alias),
    })
}

/// Renewal: the role must still exist, the token's policies must still be grantable, and the
/// renewed lease stays within the role's TTLs and the CI token's `exp`.
pub(crate) async fn renew<S: Storage>(
    backend: &Backend,
    storage: &S,
    req: &Request,
) -> Result<Response, Error> {
    let Some(auth) = &req.auth else {
        return Err(Error::Invalid(String::from(
            "renew request carries no auth",
        )));
    };
    let data = &auth.internal_data;
    let Some(name) = data.get(internal::ROLE).and_then(Value::as_str) else {
        return Err(Error::Invalid(String::from(
            "failed to fetch role_name during renewal",
        )));
    };
    let Some(role) = load_role(backend, storage, name).await? else {
        return Err(Error::Invalid(format!(
            "role {name} does not exist during renewal"
        )));
    };
    let Some(exp) = data.get(internal::EXP).and_then(Value::as_i64) else {
        return Err(Error::Invalid(String::from(
            "token has no CI token expiry recorded; not renewing",
        )));
    };
    let now_time = backend.now();
    let now = unix_secs(now_time);
    if now >= exp {
        return Err(Error::Invalid(format!(
            "the CI token this token was issued for expired {} s ago; not renewing",
            now - exp
        )));
    }
    // Policies granted at login must still be grantable: the role's token_policies, plus those
    // the role's policy returned if the policy is unchanged since.
    let same_policy =
        data.get(internal::POLICY_HASH).and_then(Value::as_str) == Some(role.policy_hash.as_str());
    let from_policy: Vec<String> = if same_policy {
        data.get(internal::POLICY_POLICIES)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let t = &role.entry.token;
    let allowed = |p: &str| {
        let p = p.to_lowercase();
        p == "default"
            || t.token_policies.iter().any(|r| r.to_lowercase() == p)
            || from_policy.contains(&p)
    };
    if let Some(p) = auth.policies.iter().find(|p| !allowed(p)) {
        return Err(Error::Invalid(format!(
            "policies have changed, not renewing (the role no longer grants {p:?})"
        )));
    }
    let remaining = u64::try_from(exp - now).unwrap_or(0);
    let policy_ttl = if same_policy {
        data.get(internal::POLICY_TTL)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    } else {
        0
    };
    let issued = auth.lease.issue_time.map_or(now, unix_secs);
    let since_issue = u64::try_from(exp.saturating_sub(issued))
        .unwrap_or(0)
        .max(1);
    let mut renewed = auth.clone();
    // As at login: no TTL from the role or the policy means the mount's default (the max_ttl
    // below still ends the lease at the CI token's exp).
    renewed.lease.ttl = Duration::from_secs(if t.token_ttl == 0 && policy_ttl == 0 {
        0
    } else {
        min_nonzero(&[t.token_ttl, policy_ttl, remaining])
    });
    // max_ttl counts from the lease's issue time.
    renewed.lease.max_ttl = Duration::from_secs(min_nonzero(&[t.token_max_ttl, since_issue]));
    renewed.period = Duration::from_secs(t.token_period);
    Ok(Response {
        auth: Some(renewed),
        ..Response::default()
    })
}
