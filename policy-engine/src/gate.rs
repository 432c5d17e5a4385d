//! [`Gate`]: a validated configuration, compiled once, that turns one request into one
//! [`Decision`]. Front ends call it in steps (locate → route → verify → authorize) so they can
//! fetch keys or consult caches between steps, or all at once with [`Gate::check`].

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::claims::{self, ClaimRules};
use crate::config::{ClaimHeader, Config, ConfigErrors, FetchConfig, IssuerConfig, Mode};
use crate::decision::{Allow, Decision, Deny, DenyCode};
use crate::discovery::is_fetchable_url;
use crate::jws::{self, JwsError, UntrustedToken};
use crate::keys::{Key, KeySet, PublicKey};
use crate::policy::{self, Module, Policy};
use crate::presets::{self, Preset};
use crate::replay;
use crate::request::{self, Request, TokenSource};
use crate::{headers, verify};

/// Index of an issuer in [`Gate::issuers`].
pub type IssuerId = usize;

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Keys given in the config (inline JWKS and/or PEM).
    Static(KeySet),
    /// A JWKS URL the host fetches.
    JwksUri(String),
    /// An OIDC discovery document URL the host fetches; its `jwks_uri` gives the keys.
    Discovery(String),
}

/// One trusted issuer, validated.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// Config name.
    pub name: String,
    /// Where its keys come from.
    pub keys: KeySource,
    /// Accepted algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Claim rules (holds the exact `iss`).
    pub rules: ClaimRules,
    /// The preset, if any.
    pub preset: Option<&'static Preset>,
    /// How remote keys are fetched and cached.
    pub fetch: FetchConfig,
}

impl Issuer {
    /// The exact `iss` value.
    pub fn iss(&self) -> &str {
        &self.rules.issuer
    }
}

/// A token found in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located<'r> {
    /// The token text.
    pub token: &'r str,
    /// Which configured source held it (index into [`Gate::token_sources`]).
    pub source: usize,
}

/// How to remove the token from the upstream request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strip {
    /// Remove this header.
    Header(String),
    /// Replace `:path` with this (the query parameter removed).
    Path(String),
    /// Replace the `Cookie` header with this, or remove it when None.
    Cookie(Option<String>),
}

/// A token whose signature and claims have been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// Which issuer signed it.
    pub issuer: IssuerId,
    /// Its protected header.
    pub header: Map<String, Value>,
    /// Its claims.
    pub claims: Map<String, Value>,
    /// Its `exp`.
    pub expires_at: i64,
}

impl Verified {
    /// The `sub` claim.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
    /// The `jti` claim.
    pub fn jti(&self) -> Option<&str> {
        self.claims.get("jti").and_then(Value::as_str)
    }
}

/// A compiled, validated configuration.
#[derive(Debug, Clone)]
pub struct Gate {
    issuers: Vec<Issuer>,
    token_sources: Vec<TokenSource>,
    max_token_bytes: usize,
    policy: Option<Policy>,
    claims_to_headers: Vec<ClaimHeader>,
    /// `policy.headers`, lower-case: the headers policy results may set (None: any).
    policy_headers: Option<Vec<String>>,
    /// The claim headers then the declared policy headers, lower-case, once each: what every
    /// request that goes upstream loses before the decision's own headers are set.
    identity_headers: Vec<String>,
    forward_token: bool,
    mode: Mode,
    realm: String,
    allow_cors_preflight: bool,
    token_cache_size: usize,
    replay: Option<replay::Layout>,
    warnings: Vec<String>,
}

/// Resolves a policy module's `file` to its text; hosts without files refuse.
pub type Resolver<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

impl Gate {
    /// Parses and validates a JSON config whose modules are all inline.
    pub fn from_json(text: &str) -> Result<Gate, ConfigErrors> {
        let config = Config::from_json(text)?;
        Gate::new(&config, &mut |_| {
            Err(String::from(
                "this host cannot read files: give the module inline as `rego`",
            ))
        })
    }

    /// Validates `config`, compiles its policy and parses its static keys, reporting every
    /// problem at once.
    pub fn new(config: &Config, resolve: Resolver<'_>) -> Result<Gate, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let mut warnings = Vec::new();
        let policy_text = policy_texts(config, resolve, &mut errors);
        // The policy compiles whenever its own modules were read: its errors are reported
        // beside the issuers' and requests', every problem at once.
        let modules_read = errors.is_empty();
        let issuers = validate_issuers(config, &policy_text, &mut errors, &mut warnings);
        validate_requests(config, &mut errors);
        let policy = match (&config.policy, modules_read) {
            (Some(p), true) => {
                match Policy::compile(&policy_text, p.data.as_ref(), &p.entrypoint) {
                    Ok(policy) => Some(
                        policy
                            .with_time_limit(Some(Duration::from_millis(p.max_evaluation_ms)))
                            .with_evaluator(p.evaluator),
                    ),
                    Err(es) => {
                        for e in es {
                            errors.push("policy", e);
                        }
                        None
                    }
                }
            }
            (None, _) => {
                warnings.push(String::from(
                    "policy: none configured; every token that verifies is allowed",
                ));
                None
            }
            (Some(_), false) => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let policy_headers: Option<Vec<String>> = config
            .policy
            .as_ref()
            .and_then(|p| p.headers.as_ref())
            .map(|hs| hs.iter().map(|h| h.to_ascii_lowercase()).collect());
        Ok(Gate {
            issuers,
            token_sources: config.token_sources.clone(),
            max_token_bytes: config.max_token_bytes,
            policy,
            claims_to_headers: config.claims_to_headers.clone(),
            identity_headers: identity_headers(config, policy_headers.as_deref()),
            policy_headers,
            forward_token: config.forward_token,
            mode: config.mode,
            realm: config.realm.clone(),
            allow_cors_preflight: config.allow_cors_preflight,
            token_cache_size: config.token_cache_size,
            replay: config
                .replay
                .jti
                .then(|| replay::Layout::new(&config.replay)),
            warnings,
        })
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }
    /// Warnings found while validating (the config is usable, but probably not what was meant).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// `enforce` or `report`.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// The `WWW-Authenticate` realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }
    /// The configured token sources.
    pub fn token_sources(&self) -> &[TokenSource] {
        &self.token_sources
    }
    /// The keys given in the config for issuer `id`, if its keys are static.
    pub fn static_keys(&self, id: IssuerId) -> Option<&KeySet> {
        match &self.issuers.get(id)?.keys {
            KeySource::Static(k) => Some(k),
            _ => None,
        }
    }

    /// The upstream headers this gate sets from claims (lower-case). A front end that lets a
    /// request through without a verified token (report mode) removes them, so a client cannot
    /// forge an identity.
    pub fn claim_header_names(&self) -> impl Iterator<Item = String> + '_ {
        self.claims_to_headers
            .iter()
            .map(|c| c.header.to_ascii_lowercase())
    }

    /// How to rewrite a request that goes upstream without a verified identity (a denial in
    /// report mode, a bypassed CORS preflight): every claim header and every header declared in
    /// `policy.headers` removed, so none can be forged, and the token, if one is found, stripped
    /// as an allowed request's would be (unless `forward_token`).
    pub fn unverified_rewrite(&self, req: &Request<'_>) -> (Vec<String>, Option<Strip>) {
        let strip = match (self.forward_token, self.find_token(req)) {
            (false, Ok(located)) => self.strip(req, &located),
            _ => None,
        };
        (self.identity_headers.clone(), strip)
    }

    /// How many verified tokens a front end may remember (0: none).
    pub fn token_cache_size(&self) -> usize {
        self.token_cache_size
    }

    /// How the replay record is laid out, when replay protection is on.
    pub fn replay_layout(&self) -> Option<replay::Layout> {
        self.replay
    }

    /// With replay protection on, what to record for an allowed request before letting it
    /// through: `Ok(None)` when it is off. A host that cannot record the entry must deny
    /// (`replay_unavailable`), and one that finds it recorded must deny `token_replayed`.
    pub fn replay_entry(&self, allow: &Allow) -> Result<Option<replay::Entry>, Deny> {
        let Some(layout) = self.replay else {
            return Ok(None);
        };
        let Some(jti) = allow.jti.as_deref() else {
            // Unreachable through `check` (the claim is required), kept fail-closed.
            return Err(Deny::new(
                DenyCode::ClaimMissing,
                "missing required claim `jti` (replay protection is on)",
            ));
        };
        let leeway = self
            .issuers
            .iter()
            .find(|i| i.name == allow.issuer)
            .map_or(0, |i| i.rules.leeway_seconds);
        let key = replay::Key::new(&allow.issuer, jti);
        Ok(Some(replay::Entry {
            key,
            bucket: layout.bucket(&key),
            expires_at: allow
                .expires_at
                .saturating_add(i64::try_from(leeway).unwrap_or(i64::MAX)),
        }))
    }

    /// True for a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// when `allow_cors_preflight` lets them through unauthenticated. Browsers never send
    /// credentials on a preflight, so requiring a token would break CORS altogether.
    pub fn is_bypassed_preflight(&self, req: &Request<'_>) -> bool {
        self.allow_cors_preflight
            && req.method.eq_ignore_ascii_case("OPTIONS")
            && req.header_values("origin").next().is_some()
            && req
                .header_values("access-control-request-method")
                .next()
                .is_some()
    }

    /// Re-checks the time-dependent claims of an earlier verification at `now` (for tokens
    /// served from a cache: the signature holds, but `exp` may have passed since).
    pub fn revalidate(&self, verified: &Verified, now: i64) -> Result<(), Deny> {
        let Some(issuer) = self.issuers.get(verified.issuer) else {
            return Err(Deny::new(DenyCode::InternalError, "unknown issuer id"));
        };
        claims::check(&verified.claims, &issuer.rules, now).map_err(|e| {
            let mut d = Deny::new(e.code, e.message);
            d.issuer = Some(issuer.name.clone());
            d
        })?;
        Ok(())
    }

    /// The compiled policy, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// Checks the request's method and path ([`Request::check`]: `method_invalid`,
    /// `path_ambiguous`), then finds the one token in `req`. No token is `token_missing`; tokens
    /// in more than one place (or twice in one) are `token_ambiguous`, since which one is
    /// authorised would be unclear. Every front end starts here, so no policy ever sees a
    /// method or path that the upstream may read differently.
    pub fn locate<'r>(&self, req: &Request<'r>) -> Result<Located<'r>, Deny> {
        req.check()
            .map_err(|e| Deny::new(e.code(), e.to_string()))?;
        self.find_token(req)
    }

    /// [`Gate::locate`] without the method and path check: the token to strip even from a
    /// request that is refused for its path.
    fn find_token<'r>(&self, req: &Request<'r>) -> Result<Located<'r>, Deny> {
        let mut found: Option<Located<'r>> = None;
        for (source, ts) in self.token_sources.iter().enumerate() {
            for token in ts.find(req) {
                if found.is_some() {
                    return Err(Deny::new(
                        DenyCode::TokenAmbiguous,
                        "request carries more than one token",
                    ));
                }
                found = Some(Located { token, source });
            }
        }
        found.ok_or_else(|| Deny::new(DenyCode::TokenMissing, "no token in the request"))
    }

    /// Parses a token and picks its issuer by exact `iss`.
    pub fn route<'t>(&self, token: &'t str) -> Result<(UntrustedToken<'t>, IssuerId), Deny> {
        let parsed = jws::parse(token, self.max_token_bytes).map_err(|e| {
            let code = match e {
                JwsError::TooLarge { .. } => DenyCode::TokenTooLarge,
                JwsError::Algorithm(_) => DenyCode::AlgNotAllowed,
                _ => DenyCode::TokenMalformed,
            };
            Deny::new(code, e.to_string())
        })?;
        let Some(iss) = parsed.issuer() else {
            return Err(Deny::new(
                DenyCode::IssuerUntrusted,
                "token has no string iss",
            ));
        };
        match self.issuers.iter().position(|i| i.iss() == iss) {
            Some(id) => Ok((parsed, id)),
            None => Err(Deny::new(
                DenyCode::IssuerUntrusted,
                format!("issuer {:?} is not trusted", truncate(iss, 120)),
            )),
        }
    }

    /// Verifies a routed token's signature with `keys` and checks its claims at `now`.
    pub fn verify(
        &self,
        token: &UntrustedToken<'_>,
        id: IssuerId,
        keys: &KeySet,
        now: i64,
    ) -> Result<Verified, Deny> {
        self.verify_with(token, id, keys, now, &verify::verify_signature)
    }

    /// [`Gate::verify`] with the signature check supplied by the host: Envoy's BoringSSL
    /// through `verify_signature`, say. `signature_ok` must accept exactly what
    /// [`verify::verify_signature`] accepts; everything else (algorithm allow-list, key choice,
    /// claims) stays here.
    pub fn verify_with(
        &self,
        token: &UntrustedToken<'_>,
        id: IssuerId,
        keys: &KeySet,
        now: i64,
        signature_ok: &verify::SignatureCheck,
    ) -> Result<Verified, Deny> {
        let Some(issuer) = self.issuers.get(id) else {
            return Err(Deny::new(DenyCode::InternalError, "unknown issuer id"));
        };
        let deny = |code, msg: String| {
            let mut d = Deny::new(code, msg);
            d.issuer = Some(issuer.name.clone());
            d
        };
        if !issuer.algorithms.contains(&token.alg) {
            return Err(deny(
                DenyCode::AlgNotAllowed,
                format!(
                    "alg {} is not allowed for issuer {}",
                    token.alg, issuer.name
                ),
            ));
        }
        let kid = token.kid.as_deref();
        let mut candidates = keys.candidates(kid, token.alg).peekable();
        if candidates.peek().is_none() {
            let msg = match kid {
                Some(k) if keys.has_kid(k) => format!("key {k:?} cannot verify {}", token.alg),
                Some(k) => format!("no key with kid {:?}", truncate(k, 64)),
                None => format!("no {} key for a token without kid", token.alg),
            };
            return Err(deny(DenyCode::KeyNotFound, msg));
        }
        // A token without `kid` is tried against each key that fits its alg: bounded, so that
        // one request cannot cost a signature check per key of a large set.
        if kid.is_none()
            && keys
                .candidates(None, token.alg)
                .nth(MAX_KIDLESS_KEYS)
                .is_some()
        {
            return Err(deny(
                DenyCode::KeyNotFound,
                format!(
                    "a token without kid fits more than {MAX_KIDLESS_KEYS} {} keys of issuer {}; \
                     the issuer must name its key",
                    token.alg, issuer.name
                ),
            ));
        }
        let message = token.signing_input.as_bytes();
        // The range check runs here, before `signature_ok`, so that no verifier (ours or the
        // host's) ever sees an out-of-range RSA signature.
        let mut out_of_range = None;
        let verified =
            candidates.any(
                |k| match verify::check_rsa_range(&k.key, &token.signature) {
                    Ok(()) => signature_ok(token.alg, &k.key, message, &token.signature),
                    Err(e) => {
                        out_of_range.get_or_insert((k.kid.as_deref(), e));
                        false
                    }
                },
            );
        if !verified {
            return Err(deny(
                DenyCode::SignatureInvalid,
                match out_of_range {
                    Some((kid, e)) => format!(
                        "signature does not verify: {e}, key {}",
                        kid.map_or_else(
                            || String::from("(no kid)"),
                            |k| format!("{:?}", truncate(k, 64))
                        )
                    ),
                    None => String::from("signature does not verify"),
                },
            ));
        }
        let expires_at = claims::check(&token.claims, &issuer.rules, now)
            .map_err(|e| deny(e.code, e.message))?;
        if let Some(p) = issuer.preset {
            (p.check_claims)(&token.claims).map_err(|m| deny(DenyCode::ClaimInvalid, m))?;
        }
        Ok(Verified {
            issuer: id,
            header: token.header.clone(),
            claims: token.claims.clone(),
            expires_at,
        })
    }

    /// Runs the policy for a verified token and builds the decision.
    pub fn authorize(
        &self,
        verified: &Verified,
        req: &Request<'_>,
        located: &Located<'_>,
        now: i64,
    ) -> Decision {
        let issuer_name = self
            .issuers
            .get(verified.issuer)
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let subject = verified.subject().map(ToString::to_string);
        let verdict = match &self.policy {
            None => crate::policy::Verdict {
                allow: true,
                ..Default::default()
            },
            Some(policy) => {
                match policy.evaluate(self.input(verified, &issuer_name, req, located, now)) {
                    Ok(v) => v,
                    Err(e) => {
                        let mut d = Deny::new(DenyCode::PolicyError, e);
                        d.issuer = Some(issuer_name);
                        d.subject = subject;
                        return Decision::Deny(d);
                    }
                }
            }
        };
        if !verdict.allow {
            let mut d = Deny::new(
                DenyCode::PolicyDenied,
                verdict
                    .reason
                    .unwrap_or_else(|| String::from("denied by policy")),
            );
            d.status = verdict.status.unwrap_or(d.status);
            d.issuer = Some(issuer_name);
            d.subject = subject;
            d.response_headers = verdict.response_headers;
            return Decision::Deny(d);
        }
        if let Some(declared) = &self.policy_headers {
            if let Some((k, _)) = verdict.headers.iter().find(|(k, _)| !declared.contains(k)) {
                let mut d = Deny::new(
                    DenyCode::PolicyError,
                    format!("policy result sets header {k:?}, which policy.headers does not list"),
                );
                d.issuer = Some(issuer_name);
                d.subject = subject;
                return Decision::Deny(d);
            }
        }
        let mut headers = self.claim_headers(&verified.claims);
        headers.extend(verdict.headers);
        let mut remove_headers = self.identity_headers.clone();
        for (k, _) in &headers {
            if !remove_headers.contains(k) {
                remove_headers.push(k.clone());
            }
        }
        Decision::Allow(Allow {
            issuer: issuer_name,
            subject,
            jti: verified.jti().map(ToString::to_string),
            headers,
            remove_headers,
            strip_token: if self.forward_token {
                None
            } else {
                self.strip(req, located)
            },
            reason: verdict.reason,
            expires_at: verified.expires_at,
        })
    }

    /// A digest of everything besides the verified token that [`Gate::authorize`]'s decision
    /// depends on: the request as the policy can read it ([`crate::policy::Policy::reads`])
    /// and `now` when the policy reads it. For one verified token, equal keys mean equal
    /// decisions, so a host may reuse a decision instead of evaluating the policy again.
    /// None when decisions must not be reused: a policy with non-deterministic builtins, or a
    /// token in a query parameter or cookie (stripping it depends on the rest of the request).
    pub fn decision_key(
        &self,
        req: &Request<'_>,
        located: &Located<'_>,
        now: i64,
    ) -> Option<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let reads = self.policy.as_ref().map(Policy::reads).unwrap_or_default();
        let token_header = self.token_sources.get(located.source)?.header.as_deref()?;
        if reads.nondeterministic {
            return None;
        }
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        // Which source held the token decides which header the decision strips.
        field(&(located.source as u64).to_le_bytes());
        field(req.method.as_bytes());
        field(req.path.as_bytes());
        field(req.host.as_bytes());
        if reads.now {
            field(&now.to_le_bytes());
        }
        if reads.headers {
            for (k, v) in req.headers {
                // The token's own header is already the cache's key (as its hash).
                if k.eq_ignore_ascii_case(token_header) {
                    continue;
                }
                field(k.as_bytes());
                field(v.as_bytes());
            }
        }
        Some(h.finalize().into())
    }

    /// All steps at once. `keys` supplies each issuer's key set (None: unavailable).
    pub fn check<'g>(
        &'g self,
        req: &Request<'_>,
        keys: &dyn Fn(IssuerId, &'g Issuer) -> Option<&'g KeySet>,
        now: i64,
    ) -> Decision {
        let result = (|| {
            let located = self.locate(req)?;
            let (token, id) = self.route(located.token)?;
            let issuer = self
                .issuers
                .get(id)
                .ok_or_else(|| Deny::new(DenyCode::InternalError, "issuer"))?;
            let Some(keyset) = keys(id, issuer) else {
                let mut d = Deny::new(
                    DenyCode::KeysUnavailable,
                    format!("keys for issuer {} are unavailable", issuer.name),
                );
                d.issuer = Some(issuer.name.clone());
                return Err(d);
            };
            let verified = self.verify(&token, id, keyset, now)?;
            Ok(self.authorize(&verified, req, &located, now))
        })();
        result.unwrap_or_else(Decision::Deny)
    }

    /// How to remove the located token from the upstream request.
    pub fn strip(&self, req: &Request<'_>, located: &Located<'_>) -> Option<Strip> {
        let source = self.token_sources.get(located.source)?;
        if let Some(h) = &source.header {
            Some(Strip::Header(h.to_ascii_lowercase()))
        } else if let Some(q) = &source.query {
            Some(Strip::Path(request::strip_query_param(req.path, q)))
        } else {
            let name = source.cookie.as_deref()?;
            let all: Vec<&str> = req.header_values("cookie").collect();
            Some(Strip::Cookie(request::strip_cookie(&all.join("; "), name)))
        }
    }

    fn claim_headers(&self, claims: &Map<String, Value>) -> Vec<(String, String)> {
        self.claims_to_headers
            .iter()
            .filter_map(|c| {
                let value = headers::claim_value(claims.get(&c.claim)?)?;
                Some((c.header.to_ascii_lowercase(), value))
            })
            .collect()
    }

    /// The policy input document (`docs/policy-input.md`).
    pub fn input(
        &self,
        verified: &Verified,
        issuer: &str,
        req: &Request<'_>,
        located: &Located<'_>,
        now: i64,
    ) -> regorus::Value {
        let source = self.token_sources.get(located.source);
        // Lower-cased once here, not per header.
        let token_header = source
            .and_then(|s| s.header.as_deref())
            .map(str::to_ascii_lowercase);
        let token_cookie = source.and_then(|s| s.cookie.is_some().then_some("cookie"));
        let token_query = source.and_then(|s| s.query.as_deref());
        let mut hdrs = Map::new();
        for (k, v) in req.headers {
            let k = k.to_ascii_lowercase();
            // The token itself never reaches the policy (a `print` could log it).
            if Some(k.as_str()) == token_header.as_deref()
                || Some(k.as_str()) == token_cookie
                || k.starts_with(':')
            {
                continue;
            }
            match hdrs.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push_str(if k == "cookie" { "; " } else { ", " });
                    existing.push_str(v);
                }
                _ => {
                    hdrs.insert(k, Value::String(v.clone()));
                }
            }
        }
        let mut query = Map::new();
        for kv in req
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if token_query.is_some_and(|name| request::name_matches(k, name)) {
                continue;
            }
            if let Value::Array(vals) = query
                .entry(request::percent_decode(k))
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                vals.push(Value::String(request::percent_decode(v)));
            }
        }
        let input = serde_json::json!({
            "token": {
                "header": Value::Object(verified.header.clone()),
                "claims": Value::Object(verified.claims.clone()),
                "issuer": issuer,
            },
            "request": {
                "method": req.method,
                "path": req.path_only(),
                "query": Value::Object(query),
                "host": req.host,
                "headers": Value::Object(hdrs),
            },
            "now": now,
        });
        regorus::Value::from(input)
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// How many keys a token without `kid` may be tried against ([`Gate::verify`]): enough for an
/// issuer mid-rotation (old, new and next key), few enough to bound the cost of one request.
pub const MAX_KIDLESS_KEYS: usize = 4;

/// Upper bound on `token_cache_size`: enough for any fleet, small enough to bound memory.
pub const MAX_TOKEN_CACHE_SIZE: usize = 100_000;

/// Checks an issuer's `fetch` settings.
fn validate_fetch(f: &FetchConfig, i: usize, errors: &mut ConfigErrors) {
    let at = |field: &str| format!("issuers[{i}].fetch.{field}");
    for (field, cluster) in [("cluster", &f.cluster), ("jwks_cluster", &f.jwks_cluster)] {
        if cluster.as_deref().is_some_and(str::is_empty) {
            errors.push(at(field), "must not be empty");
        }
    }
    if !(1..=60_000).contains(&f.timeout_ms) {
        errors.push(at("timeout_ms"), "must be between 1 and 60000");
    }
    for (field, v) in [
        ("cache_seconds", f.cache_seconds),
        ("min_refetch_seconds", f.min_refetch_seconds),
        ("retry_seconds", f.retry_seconds),
    ] {
        if !(1..=86_400).contains(&v) {
            errors.push(at(field), "must be between 1 and 86400");
        }
    }
    if f.max_stale_seconds < f.cache_seconds {
        errors.push(
            at("max_stale_seconds"),
            "must be at least cache_seconds (keys are refreshed before they go stale)",
        );
    }
}

/// Resolves every policy module to its text, recording problems.
fn policy_texts(config: &Config, resolve: Resolver<'_>, errors: &mut ConfigErrors) -> Vec<Module> {
    let Some(policy) = &config.policy else {
        return Vec::new();
    };
    if policy.modules.is_empty() {
        errors.push("policy.modules", "must not be empty");
    }
    let mut out = Vec::new();
    for (i, m) in policy.modules.iter().enumerate() {
        let path = format!("policy.modules[{i}]");
        let text = match (&m.rego, &m.file) {
            (Some(text), None) => text.clone(),
            (None, Some(file)) => match resolve(file) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(format!("{path}.file"), format!("{file}: {e}"));
                    continue;
                }
            },
            _ => {
                errors.push(path, "give exactly one of `rego` (inline text) or `file`");
                continue;
            }
        };
        let name = m.name.clone().or_else(|| m.file.clone()).unwrap_or(path);
        out.push(Module { name, text });
    }
    if let Some(data) = &policy.data {
        if !data.is_object() {
            errors.push("policy.data", "must be a JSON object");
        }
    }
    out
}

fn validate_issuers(
    config: &Config,
    policy: &[Module],
    errors: &mut ConfigErrors,
    warnings: &mut Vec<String>,
) -> Vec<Issuer> {
    if config.issuers.is_empty() {
        errors.push("issuers", "must list at least one issuer");
    }
    let mut out: Vec<Issuer> = Vec::new();
    for (i, ic) in config.issuers.iter().enumerate() {
        let at = |f: &str| format!("issuers[{i}].{f}");
        let before = errors.0.len();
        if ic.name.is_empty() {
            errors.push(at("name"), "must not be empty");
        } else if config.issuers.iter().take(i).any(|o| o.name == ic.name) {
            errors.push(
                at("name"),
                format!("{:?} is used by an earlier issuer", ic.name),
            );
        }
        let preset = match ic.preset.as_deref() {
            None => None,
            Some(name) => match presets::lookup(name) {
                Some(p) => Some(p),
                None => {
                    let names: Vec<&str> = presets::names().collect();
                    errors.push(
                        at("preset"),
                        format!(
                            "unknown preset {name:?}; expected one of: {}",
                            names.join(", ")
                        ),
                    );
                    None
                }
            },
        };
        let iss = match (&ic.issuer, preset.and_then(|p| p.default_issuer)) {
            (Some(iss), _) => iss.clone(),
            (None, Some(default)) => default.to_string(),
            (None, None) => {
                errors.push(
                    at("issuer"),
                    if preset.is_some() {
                        "required: this preset has no default issuer"
                    } else {
                        "required"
                    },
                );
                String::new()
            }
        };
        if let (Some(p), false) = (preset, iss.is_empty()) {
            if let Err(e) = (p.check_issuer)(&iss) {
                errors.push(
                    at("issuer"),
                    format!("not a {} issuer: {e}", p.display_name),
                );
            }
        }
        if !iss.is_empty()
            && config
                .issuers
                .iter()
                .take(i)
                .any(|o| configured_iss(o) == Some(iss.as_str()))
        {
            errors.push(
                at("issuer"),
                format!("{iss:?} is configured twice; merge the audiences into one issuer"),
            );
        }
        if ic.audiences.is_empty() {
            errors.push(at("audiences"), "must not be empty");
        }
        for (j, a) in ic.audiences.iter().enumerate() {
            if a.is_empty() {
                errors.push(format!("issuers[{i}].audiences[{j}]"), "must not be empty");
            }
        }
        let algorithms = issuer_algorithms(ic, preset, i, errors);
        validate_fetch(&ic.fetch, i, errors);
        let keys = issuer_keys(ic, preset, &iss, i, errors, warnings);
        if ic.leeway_seconds > 600 {
            errors.push(
                at("leeway_seconds"),
                "must be at most 600: a larger skew defeats expiry",
            );
        }
        if ic.max_lifetime_seconds == Some(0) {
            errors.push(at("max_lifetime_seconds"), "must be positive");
        }
        for (j, r) in ic.require.iter().enumerate() {
            if r.is_empty() {
                errors.push(format!("issuers[{i}].require[{j}]"), "must not be empty");
            }
        }
        let mut require: Vec<String> = preset
            .map(|p| p.required_claims.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        require.extend(
            ic.require
                .iter()
                .filter(|r| !require.contains(r))
                .cloned()
                .collect::<Vec<_>>(),
        );
        if config.replay.jti && !require.iter().any(|r| r == "jti") {
            // Replay protection keys on `jti`: a token without one cannot be recorded.
            require.push(String::from("jti"));
        }
        if let Some(p) = preset {
            // The policy's code: a claim named only in a comment pins nothing.
            let code: Vec<String> = policy
                .iter()
                .map(|m| crate::policy::without_comments(&m.text))
                .collect();
            let mentions = |c: &str| code.iter().any(|t| t.contains(c));
            if let Some(warning) = p.org_pin_warning(&iss, &mentions) {
                warnings.push(format!(
                    "issuers[{i}] ({}): {warning} in the policy",
                    ic.name
                ));
            }
        }
        if errors.0.len() == before {
            out.push(Issuer {
                name: ic.name.clone(),
                keys,
                algorithms,
                rules: ClaimRules {
                    issuer: iss,
                    audiences: ic.audiences.clone(),
                    leeway_seconds: ic.leeway_seconds,
                    max_lifetime_seconds: ic
                        .max_lifetime_seconds
                        .or(preset.and_then(|p| p.max_lifetime_seconds)),
                    require,
                },
                preset,
                fetch: ic.fetch.clone(),
            });
        }
    }
    out
}

/// The `iss` an issuer entry trusts: its own, or its preset's default.
fn configured_iss(ic: &IssuerConfig) -> Option<&str> {
    ic.issuer.as_deref().or_else(|| {
        ic.preset
            .as_deref()
            .and_then(presets::lookup)
            .and_then(|p| p.default_issuer)
    })
}

fn issuer_algorithms(
    ic: &IssuerConfig,
    preset: Option<&Preset>,
    i: usize,
    errors: &mut ConfigErrors,
) -> Vec<Algorithm> {
    let Some(names) = &ic.algorithms else {
        // A preset without a list (`generic`) gets the same default as no preset.
        return match preset.map(|p| p.algorithms) {
            Some(algs) if !algs.is_empty() => algs.to_vec(),
            _ => alloc::vec![Algorithm::RS256],
        };
    };
    if names.is_empty() {
        errors.push(format!("issuers[{i}].algorithms"), "must not be empty");
    }
    let mut out = Vec::new();
    for (j, n) in names.iter().enumerate() {
        match Algorithm::from_name(n) {
            Some(a) => out.push(a),
            None => {
                let why =
                    if n.eq_ignore_ascii_case("none") || n.to_ascii_uppercase().starts_with("HS") {
                        "unsecured and HMAC algorithms are never accepted"
                    } else {
                        "not supported"
                    };
                let all: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                errors.push(
                    format!("issuers[{i}].algorithms[{j}]"),
                    format!("{n:?}: {why}; supported: {}", all.join(", ")),
                );
            }
        }
    }
    out
}

fn issuer_keys(
    ic: &IssuerConfig,
    preset: Option<&Preset>,
    iss: &str,
    i: usize,
    errors: &mut ConfigErrors,
    warnings: &mut Vec<String>,
) -> KeySource {
    let has_static = ic.jwks.is_some() || !ic.pem_keys.is_empty();
    let sources =
        usize::from(has_static) + usize::from(ic.jwks_uri.is_some()) + usize::from(ic.discovery);
    if sources > 1 {
        errors.push(
            format!("issuers[{i}]"),
            "give keys one way: `jwks`/`pem_keys`, `jwks_uri`, or `discovery`",
        );
    }
    if has_static {
        let mut set = KeySet::default();
        if let Some(jwks) = &ic.jwks {
            match serde_json::to_vec(jwks)
                .map_err(|e| e.to_string())
                .and_then(|b| KeySet::from_jwks(&b).map_err(|e| e.to_string()))
            {
                Ok(s) => {
                    for skipped in &s.skipped {
                        warnings.push(format!("issuers[{i}].jwks.{skipped}"));
                    }
                    set.keys.extend(s.keys);
                }
                Err(e) => errors.push(format!("issuers[{i}].jwks"), e),
            }
        }
        for (j, pk) in ic.pem_keys.iter().enumerate() {
            let at = format!("issuers[{i}].pem_keys[{j}]");
            let alg = match pk.alg.as_deref().map(|a| (a, Algorithm::from_name(a))) {
                None => None,
                Some((_, Some(a))) => Some(a),
                Some((a, None)) => {
                    errors.push(
                        format!("{at}.alg"),
                        format!("{a:?} is not a supported algorithm"),
                    );
                    None
                }
            };
            match PublicKey::from_pem(&pk.pem) {
                Ok(key) => {
                    if let Some(a) = alg.filter(|a| a.key_family() != key.family()) {
                        errors.push(
                            format!("{at}.alg"),
                            format!("{a} does not fit a {} key", key.describe()),
                        );
                    }
                    set.keys.push(Key {
                        kid: pk.kid.clone(),
                        alg,
                        key,
                    });
                }
                // The kid too: the configuration's path alone does not say which key it is.
                Err(e) => errors.push(
                    format!("{at}.pem"),
                    match &pk.kid {
                        Some(kid) => format!("key {kid:?}: {e}"),
                        None => e.to_string(),
                    },
                ),
            }
        }
        // A key copied from the demo into a real issuer's configuration: anyone can sign
        // tokens with it. The demo's own issuer is on loopback, where it is expected.
        let demo_issuer = iss.starts_with("http://") && is_fetchable_url(iss);
        for k in set.keys.iter().filter(|_| !demo_issuer) {
            if let Some(name) = k.key.development_key() {
                warnings.push(format!(
                    "issuers[{i}]: key {} is Gateward's development key devkit/keys/{name}.pem, \
                     whose private half is published: anyone can sign tokens it accepts",
                    k.kid.as_deref().unwrap_or("(no kid)")
                ));
            }
        }
        return KeySource::Static(set);
    }
    if let Some(uri) = &ic.jwks_uri {
        if !is_fetchable_url(uri) {
            errors.push(
                format!("issuers[{i}].jwks_uri"),
                "must be an https:// URL (http:// only on loopback)",
            );
        }
        return KeySource::JwksUri(uri.clone());
    }
    let discovery = || {
        format!(
            "{}/.well-known/openid-configuration",
            iss.trim_end_matches('/')
        )
    };
    if ic.discovery {
        if !iss.is_empty() && !is_fetchable_url(iss) {
            errors.push(
                format!("issuers[{i}].discovery"),
                "needs an https:// issuer (http:// only on loopback)",
            );
        }
        return KeySource::Discovery(discovery());
    }
    match preset {
        Some(p) => match (p.jwks_uri)(iss) {
            Some(uri) => KeySource::JwksUri(uri),
            None => KeySource::Discovery(discovery()),
        },
        None => {
            errors.push(
                format!("issuers[{i}]"),
                "no keys: give `jwks`, `pem_keys`, `jwks_uri`, or `discovery: true`",
            );
            KeySource::Static(KeySet::default())
        }
    }
}

/// Every header a gate may set upstream and so removes from what the client sent: the claim
/// headers, then the policy's declared ones (lower-case), once each.
fn identity_headers(config: &Config, declared: Option<&[String]>) -> Vec<String> {
    let mut names: Vec<String> = config
        .claims_to_headers
        .iter()
        .map(|c| c.header.to_ascii_lowercase())
        .collect();
    for h in declared.unwrap_or_default() {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    names
}

/// A header Gateward sets upstream (`claims_to_headers`, `policy.headers`): a valid name, not
/// a token source's header (setting it would forward a credential), and not given twice.
fn check_header_name<'a>(
    config: &Config,
    name: &str,
    mut earlier: impl Iterator<Item = &'a str>,
    at: String,
    errors: &mut ConfigErrors,
) {
    let token_header = config.token_sources.iter().any(|t| {
        t.header
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(name))
    });
    if !headers::valid_name(name) {
        errors.push(at, format!("{name:?} is not a valid header name"));
    } else if token_header {
        errors.push(at, "is a token source header");
    } else if earlier.any(|o| o.eq_ignore_ascii_case(name)) {
        errors.push(at, "is set twice");
    }
}

fn validate_requests(config: &Config, errors: &mut ConfigErrors) {
    if !replay::CAPACITY_RANGE.contains(&config.replay.max_tokens) {
        errors.push(
            "replay.max_tokens",
            format!(
                "must be {} to {}",
                replay::CAPACITY_RANGE.start(),
                replay::CAPACITY_RANGE.end()
            ),
        );
    }
    if let Some(p) = &config.policy {
        if !(1..=policy::MAX_EVALUATION_MS).contains(&p.max_evaluation_ms) {
            errors.push(
                "policy.max_evaluation_ms",
                format!("must be 1 to {} (milliseconds)", policy::MAX_EVALUATION_MS),
            );
        }
        let declared = p.headers.as_deref().unwrap_or_default();
        for (i, h) in declared.iter().enumerate() {
            let earlier = declared.iter().take(i).map(String::as_str);
            check_header_name(config, h, earlier, format!("policy.headers[{i}]"), errors);
        }
    }
    if config.token_sources.is_empty() {
        errors.push("token_sources", "must not be empty");
    }
    for (i, ts) in config.token_sources.iter().enumerate() {
        let n = usize::from(ts.header.is_some())
            + usize::from(ts.query.is_some())
            + usize::from(ts.cookie.is_some());
        if n != 1 {
            errors.push(
                format!("token_sources[{i}]"),
                "give exactly one of `header`, `query` or `cookie`",
            );
        }
        if ts.prefix.is_some() && ts.header.is_none() {
            errors.push(
                format!("token_sources[{i}].prefix"),
                "only applies to a `header` source",
            );
        }
        if ts
            .header
            .as_deref()
            .is_some_and(|h| !headers::valid_name(h))
        {
            errors.push(
                format!("token_sources[{i}].header"),
                "is not a valid header name",
            );
        }
        for (f, v) in [("query", &ts.query), ("cookie", &ts.cookie)] {
            if v.as_deref().is_some_and(str::is_empty) {
                errors.push(format!("token_sources[{i}].{f}"), "must not be empty");
            }
        }
    }
    if !(64..=65_536).contains(&config.max_token_bytes) {
        errors.push("max_token_bytes", "must be between 64 and 65536");
    }
    if config.token_cache_size > MAX_TOKEN_CACHE_SIZE {
        errors.push(
            "token_cache_size",
            format!("must be at most {MAX_TOKEN_CACHE_SIZE} (0 disables the cache)"),
        );
    }
    for (i, c) in config.claims_to_headers.iter().enumerate() {
        if c.claim.is_empty() {
            errors.push(format!("claims_to_headers[{i}].claim"), "must not be empty");
        }
        let earlier = config
            .claims_to_headers
            .iter()
            .take(i)
            .map(|o| o.header.as_str());
        check_header_name(
            config,
            &c.header,
            earlier,
            format!("claims_to_headers[{i}].header"),
            errors,
        );
    }
    if config.realm.is_empty()
        || config.realm.contains(['"', '\\'])
        || !headers::valid_value(&config.realm)
    {
        errors.push(
            "realm",
            "must be non-empty printable text without quotes or backslashes",
        );
    }
}
