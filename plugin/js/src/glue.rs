//! The JSON in and out of the core, independent of wasm-bindgen so it is tested natively.
//!
//! Every function returns a JSON object, never an error or a panic: bad input becomes an object
//! with `errors: [{path, message}]` naming what is wrong and where.

use policy_engine::explain::{self, Explanation};
use policy_engine::{jws, Config, ConfigErrors, Decision, DenyCode, Gate, KeySource, Request};
use serde_json::{json, Map, Value};

/// Tokens larger than this are not decoded by [`inspect`] (the gate's own limit is per config).
pub const INSPECT_MAX_BYTES: usize = 64 * 1024;

/// What the page says a remote key source cannot be used for.
const REMOTE_KEYS: &str = "a web page cannot fetch remote keys; put the issuer's public keys in \
                           the config as an inline `jwks` ({\"keys\": [...]})";

/// A problem with one input, at a path (`config.issuers[0].audiences`, `request.headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Where: `config…`, `token`, `request…` or `now`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `{"decision": "error", "allow": false, "errors": [...]}`.
pub fn error_object(errors: &[InputError]) -> Value {
    json!({
        "decision": "error",
        "allow": false,
        "errors": errors_json(errors),
    })
}

fn errors_json(errors: &[InputError]) -> Value {
    Value::Array(
        errors
            .iter()
            .map(|e| json!({"path": e.path, "message": e.message}))
            .collect(),
    )
}

/// The core's config errors under `config.` (`$` is the document itself).
fn config_errors(errors: &ConfigErrors) -> Vec<InputError> {
    errors
        .0
        .iter()
        .map(|e| {
            let path = if e.path == "$" || e.path.is_empty() {
                String::from("config")
            } else {
                format!("config.{}", e.path)
            };
            InputError::new(path, e.message.clone())
        })
        .collect()
}

/// Builds a gate from a config whose policy modules are inline (a page has no files).
fn gate(config: &str) -> Result<Gate, Vec<InputError>> {
    Gate::from_json(config).map_err(|e| config_errors(&e))
}

/// One request as the page gives it: `{method, path, host?, headers}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path with query.
    pub path: String,
    /// The authority (`host`, else the `host` header, else `localhost`).
    pub host: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
}

/// Reads `{method, path, host?, headers}`; `headers` is an object (a string or an array of
/// strings per name) or an array of `[name, value]` pairs. Missing fields default to `GET /`.
pub fn parse_request(value: &Value) -> Result<PageRequest, Vec<InputError>> {
    let mut errors = Vec::new();
    let Some(obj) = value.as_object() else {
        return Err(vec![InputError::new(
            "request",
            "must be an object {method, path, headers}",
        )]);
    };
    let string = |field: &str, default: &str, errors: &mut Vec<InputError>| match obj.get(field) {
        None | Some(Value::Null) => default.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            errors.push(InputError::new(
                format!("request.{field}"),
                "must be a string",
            ));
            String::new()
        }
    };
    let method = string("method", "GET", &mut errors);
    let path = string("path", "/", &mut errors);
    let host = string("host", "", &mut errors);
    for field in obj.keys() {
        if !["method", "path", "host", "headers"].contains(&field.as_str()) {
            errors.push(InputError::new(
                format!("request.{field}"),
                "unknown field; expected method, path, host, headers",
            ));
        }
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        errors.push(InputError::new(
            "request.method",
            format!("{method:?} is not an HTTP method"),
        ));
    }
    if !path.starts_with('/') {
        errors.push(InputError::new("request.path", "must start with /"));
    }
    let headers = parse_headers(obj.get("headers"), &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let host = if host.is_empty() {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map_or_else(|| String::from("localhost"), |(_, v)| v.clone())
    } else {
        host
    };
    Ok(PageRequest {
        method,
        path,
        host,
        headers,
    })
}

fn parse_headers(value: Option<&Value>, errors: &mut Vec<InputError>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |name: &str, value: &Value, at: String, errors: &mut Vec<InputError>| {
        if !policy_engine::headers::valid_name(name) {
            errors.push(InputError::new(
                at,
                format!("{name:?} is not a valid header name"),
            ));
            return;
        }
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for v in values {
            match v.as_str() {
                Some(s) if policy_engine::headers::valid_value(s) => {
                    out.push((name.to_string(), s.to_string()));
                }
                Some(_) => errors.push(InputError::new(
                    at.clone(),
                    "header values must not contain control characters",
                )),
                None => errors.push(InputError::new(at.clone(), "must be a string")),
            }
        }
    };
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                push(name, v, format!("request.headers.{name}"), errors);
            }
        }
        Some(Value::Array(pairs)) => {
            for (i, pair) in pairs.iter().enumerate() {
                let at = format!("request.headers[{i}]");
                match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(name), v]) => push(name, v, at, errors),
                    _ => errors.push(InputError::new(at, "must be a [name, value] pair")),
                }
            }
        }
        Some(_) => errors.push(InputError::new(
            "request.headers",
            "must be an object {name: value} or an array of [name, value] pairs",
        )),
    }
    out
}

/// Puts `token` where the gate's first token source looks for it (as the CLI does). An empty
/// token adds nothing: the request is checked as given.
fn place_token(gate: &Gate, req: &mut PageRequest, token: &str) {
    if token.is_empty() {
        return;
    }
    let Some(src) = gate.token_sources().first() else {
        return;
    };
    if let Some(name) = &src.header {
        req.headers
            .push((name.clone(), format!("{}{token}", src.header_prefix())));
    } else if let Some(q) = &src.query {
        let sep = if req.path.contains('?') { '&' } else { '?' };
        req.path = format!("{}{sep}{q}={token}", req.path);
    } else if let Some(c) = &src.cookie {
        req.headers.push(("cookie".into(), format!("{c}={token}")));
    }
}

/// Checks one request: `config` is the core's JSON config, `token` is placed in the config's
/// first token source (empty: none added), `now` is Unix seconds. Returns the decision with its
/// explanation (see the crate docs for the shape), or `decision: "error"` with `errors`.
pub fn check(config: &str, token: &str, request: &Value, now: i64) -> Value {
    let gate = match gate(config) {
        Ok(g) => g,
        Err(errors) => return error_object(&errors),
    };
    let mut req = match parse_request(request) {
        Ok(r) => r,
        Err(errors) => return error_object(&errors),
    };
    place_token(&gate, &mut req, token.trim());
    let request = Request {
        method: &req.method,
        path: &req.path,
        host: &req.host,
        headers: &req.headers,
    };
    let keys = |id, _issuer: &_| gate.static_keys(id);
    let explanation = explain::check_explained(&gate, &request, &keys, now);
    explanation_json(&gate, explanation)
}

/// The explanation as one flat object: the decision's fields at the top level plus `allow`,
/// `status`, `claims`, `input`, `rules`, `coverage`, `prints`, `warnings` and `mode`.
fn explanation_json(gate: &Gate, mut explanation: Explanation) -> Value {
    if let Decision::Deny(d) = &mut explanation.decision {
        if d.code == DenyCode::KeysUnavailable {
            d.message = remote_keys_message(gate, d.issuer.as_deref());
        }
    }
    let mut out = match serde_json::to_value(&explanation.decision) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    out.insert("allow".into(), explanation.decision.is_allow().into());
    match &explanation.decision {
        Decision::Allow(_) => {
            out.insert("status".into(), 200.into());
        }
        Decision::Deny(d) => {
            if let Some(www) = d.www_authenticate(gate.realm()) {
                out.insert("www_authenticate".into(), www.into());
            }
        }
    }
    out.insert(
        "claims".into(),
        explanation.claims.map_or(Value::Null, Value::Object),
    );
    out.insert("input".into(), explanation.input.unwrap_or(Value::Null));
    out.insert("rules".into(), json(&explanation.rules));
    out.insert("coverage".into(), json(&explanation.coverage));
    out.insert("prints".into(), json(&explanation.prints));
    out.insert("warnings".into(), json(&gate.warnings()));
    out.insert("mode".into(), json(&gate.mode()));
    Value::Object(out)
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The keys_unavailable message for an issuer whose keys are remote.
fn remote_keys_message(gate: &Gate, issuer: Option<&str>) -> String {
    let found = gate
        .issuers()
        .iter()
        .find(|i| Some(i.name.as_str()) == issuer);
    let Some(issuer) = found else {
        return format!("keys are unavailable: {REMOTE_KEYS}");
    };
    let source = match &issuer.keys {
        KeySource::JwksUri(u) => format!("its keys come from the jwks_uri {u}"),
        KeySource::Discovery(u) => format!("its keys come from the discovery document {u}"),
        KeySource::Static(_) => String::from("it has no usable keys"),
    };
    format!(
        "keys for issuer {} are unavailable: {source}, and {REMOTE_KEYS}",
        issuer.name
    )
}

/// Validates a config: `{valid, errors: [{path, message}], warnings, issuers, policy}`.
pub fn validate_config(config: &str) -> Value {
    let parsed = Config::from_json(config);
    let gate = parsed.map_err(|e| config_errors(&e)).and_then(|c| {
        Gate::new(&c, &mut |_| {
            Err(String::from(
                "a web page cannot read files: give the module inline as `rego`",
            ))
        })
        .map_err(|e| config_errors(&e))
    });
    match gate {
        Err(errors) => json!({
            "valid": false,
            "errors": errors_json(&errors),
            "warnings": [],
            "issuers": [],
            "policy": null,
        }),
        Ok(gate) => {
            let issuers: Vec<Value> = gate
                .issuers()
                .iter()
                .map(|i| {
                    let keys = match &i.keys {
                        KeySource::Static(k) => json!({"inline": k.keys.len()}),
                        KeySource::JwksUri(u) => json!({"jwks_uri": u, "note": REMOTE_KEYS}),
                        KeySource::Discovery(u) => json!({"discovery": u, "note": REMOTE_KEYS}),
                    };
                    json!({
                        "name": i.name,
                        "issuer": i.iss(),
                        "preset": i.preset.map(|p| p.name),
                        "algorithms": i.algorithms.iter().map(|a| a.name()).collect::<Vec<_>>(),
                        "audiences": i.rules.audiences,
                        "keys": keys,
                    })
                })
                .collect();
            let policy = gate.policy().map(|p| {
                json!({
                    "entrypoint": p.entrypoint(),
                    "modules": p.modules().iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
                })
            });
            json!({
                "valid": true,
                "errors": [],
                "warnings": gate.warnings(),
                "issuers": issuers,
                "policy": policy,
            })
        }
    }
}

/// Decodes a token without verifying anything: `{unverified: true, warning, header, claims}`,
/// or `{error}` when it is not a compact JWS Gateward would parse.
pub fn inspect(token: &str) -> Value {
    match jws::parse(token.trim(), INSPECT_MAX_BYTES) {
        Ok(t) => json!({
            "unverified": true,
            "warning": "UNVERIFIED: decoded only; the signature and claims have not been checked",
            "header": t.header,
            "claims": t.claims,
        }),
        Err(e) => json!({
            "unverified": true,
            "error": format!("not a token Gateward accepts: {e}"),
        }),
    }
}

/// Reads `now` (Unix seconds) from a JavaScript number: finite, integral, within ±2^53.
pub fn now_from_f64(now: f64) -> Result<i64, InputError> {
    const MAX: f64 = 9_007_199_254_740_991.0;
    if now.is_finite() && now.fract() == 0.0 && now.abs() <= MAX {
        // Exact: an integral f64 of at most 2^53 converts without loss.
        #[allow(clippy::cast_possible_truncation)]
        Ok(now as i64)
    } else {
        Err(InputError::new(
            "now",
            format!("{now} is not a whole number of Unix seconds"),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use gateward_devkit::{claims, fixtures, jwks, mint};

    const NOW: i64 = 1_760_000_000;
    const POLICY: &str = r#"package gateward

import rego.v1

default decision := {"allow": false, "reason": "not main"}

branch_ok if input.token.claims.ref == "refs/heads/main"

post if input.request.method == "POST"

decision := {"allow": true, "headers": {"x-ci-ref": input.token.claims.ref}} if {
	branch_ok
	post
}
"#;

    fn config(keys: Value) -> String {
        json!({
            "issuers": [{
                "name": "github",
                "preset": "github-actions",
                "audiences": ["https://github.com/octo-org"],
                "jwks": keys,
                "algorithms": ["ES256"],
            }],
            "policy": {"modules": [{"name": "deploy.rego", "rego": POLICY}]},
        })
        .to_string()
    }

    fn token(claims: &Value) -> String {
        mint(&fixtures::p256(), Some("dev-1"), claims).unwrap()
    }

    fn github() -> Value {
        claims::github_actions(NOW - 10, "https://github.com/octo-org")
    }

    fn post() -> Value {
        json!({"method": "POST", "path": "/deploy?dry_run=true", "headers": {"x-request-id": "r1"}})
    }

    fn keys() -> Value {
        jwks(&[("dev-1", &fixtures::p256())])
    }

    #[test]
    fn allow_carries_claims_input_rules_and_coverage() {
        let out = check(&config(keys()), &token(&github()), &post(), NOW);
        assert_eq!(out["decision"], "allow", "{out:#}");
        assert_eq!(out["allow"], true);
        assert_eq!(out["status"], 200);
        assert_eq!(out["headers"]["x-ci-ref"], "refs/heads/main");
        assert_eq!(out["claims"]["repository"], "octo-org/deploy");
        assert_eq!(out["input"]["request"]["path"], "/deploy");
        assert_eq!(out["input"]["request"]["query"]["dry_run"], json!(["true"]));
        assert_eq!(out["input"]["request"]["headers"]["x-request-id"], "r1");
        // The token never reaches the policy input.
        assert!(out["input"]["request"]["headers"]
            .get("authorization")
            .is_none());
        let rules = out["rules"].as_array().unwrap();
        assert!(rules.contains(&json!({"path": "data.gateward.branch_ok", "value": true})));
        let cov = &out["coverage"][0];
        assert_eq!(cov["module"], "deploy.rego");
        // Line 7 (`branch_ok if …`) was evaluated.
        assert!(cov["covered"].as_array().unwrap().contains(&json!(7)));
    }

    #[test]
    fn policy_denial_keeps_code_status_and_false_rules_absent() {
        let mut c = github();
        c["ref"] = json!("refs/heads/feature");
        let out = check(&config(keys()), &token(&c), &post(), NOW);
        assert_eq!(out["decision"], "deny");
        assert_eq!(out["allow"], false);
        assert_eq!(out["code"], "policy_denied");
        assert_eq!(out["status"], 403);
        assert_eq!(out["message"], "not main");
        let paths: Vec<&str> = out["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"data.gateward.post"));
        assert!(!paths.contains(&"data.gateward.branch_ok"));
    }

    #[test]
    fn token_problems_deny_before_the_policy() {
        let mut c = github();
        c["exp"] = json!(NOW - 1000);
        c["iat"] = json!(NOW - 1200);
        c["nbf"] = json!(NOW - 1200);
        let out = check(&config(keys()), &token(&c), &post(), NOW);
        assert_eq!(out["code"], "expired");
        assert_eq!(out["status"], 401);
        assert!(out["www_authenticate"]
            .as_str()
            .unwrap()
            .contains("invalid_token"));
        assert_eq!(out["claims"], Value::Null);
        assert_eq!(out["input"], Value::Null);

        let other = jwks(&[("dev-1", &fixtures::rsa_a())]);
        let out = check(&config(other), &token(&github()), &post(), NOW);
        assert_eq!(out["code"], "key_not_found", "{out:#}");

        let out = check(&config(keys()), "", &post(), NOW);
        assert_eq!(out["code"], "token_missing");
        let out = check(&config(keys()), "a.b", &post(), NOW);
        assert_eq!(out["code"], "token_malformed");
    }

    #[test]
    fn remote_keys_are_unavailable_with_a_reason() {
        let cfg = json!({
            "issuers": [{"name": "github", "preset": "github-actions",
                         "audiences": ["https://github.com/octo-org"], "algorithms": ["ES256"]}],
        })
        .to_string();
        let out = check(&cfg, &token(&github()), &post(), NOW);
        assert_eq!(out["code"], "keys_unavailable");
        assert_eq!(out["status"], 503);
        let msg = out["message"].as_str().unwrap();
        assert!(
            msg.contains("jwks_uri https://token.actions.githubusercontent.com/.well-known/jwks"),
            "{msg}"
        );
        assert!(msg.contains("inline `jwks`"), "{msg}");
    }

    #[test]
    fn bad_inputs_are_error_objects_with_paths() {
        let out = check("{", "t", &post(), NOW);
        assert_eq!(out["decision"], "error");
        assert_eq!(out["errors"][0]["path"], "config");

        let bad = json!({"issuers": [{"name": "x", "audiences": [], "jwks": keys()}]});
        let out = check(&bad.to_string(), "t", &post(), NOW);
        let paths: Vec<&str> = out["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.contains(&"config.issuers[0].audiences"), "{out:#}");
        assert!(paths.contains(&"config.issuers[0].issuer"), "{out:#}");

        let req = json!({"method": 5, "path": "deploy", "headers": {"bad name": "v", "x": 1}, "body": ""});
        let out = check(&config(keys()), "t", &req, NOW);
        let paths: Vec<&str> = out["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        for p in [
            "request.method",
            "request.path",
            "request.headers.bad name",
            "request.headers.x",
            "request.body",
        ] {
            assert!(paths.contains(&p), "{p} missing in {out:#}");
        }
        let out = check(&config(keys()), "t", &json!("GET /"), NOW);
        assert_eq!(out["errors"][0]["path"], "request");

        let rego = json!({"issuers": [{"name": "g", "issuer": "https://i.example", "audiences": ["a"], "jwks": keys()}],
                          "policy": {"modules": [{"name": "p.rego", "rego": "package gateward\ndecision := "}]}});
        let out = check(&rego.to_string(), "t", &post(), NOW);
        assert_eq!(out["errors"][0]["path"], "config.policy", "{out:#}");
        assert!(out["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("p.rego"));
    }

    #[test]
    fn headers_as_pairs_and_host() {
        let req = json!({"method": "GET", "path": "/", "headers": [["Host", "api.internal"], ["x-a", "1"], ["x-a", "2"]]});
        let r = parse_request(&req).unwrap();
        assert_eq!(r.host, "api.internal");
        assert_eq!(r.headers.len(), 3);
        let r = parse_request(&json!({"headers": {"x-a": ["1", "2"]}})).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/"));
        assert_eq!(r.host, "localhost");
        assert_eq!(r.headers.len(), 2);
        let out = check(&config(keys()), &token(&github()), &req, NOW);
        assert_eq!(out["input"]["request"]["headers"]["x-a"], "1, 2");
        assert_eq!(out["input"]["request"]["host"], "api.internal");
    }

    #[test]
    fn validate_reports_issuers_policy_and_errors() {
        let out = validate_config(&config(keys()));
        assert_eq!(out["valid"], true, "{out:#}");
        assert_eq!(
            out["issuers"][0]["issuer"],
            "https://token.actions.githubusercontent.com"
        );
        assert_eq!(out["issuers"][0]["keys"]["inline"], 1);
        assert_eq!(out["policy"]["entrypoint"], "data.gateward.decision");
        assert_eq!(out["policy"]["modules"], json!(["deploy.rego"]));

        let file = json!({"issuers": [{"name": "g", "issuer": "https://i.example", "audiences": ["a"], "jwks": keys(),
                                       "algorithms": ["HS256"]}],
                          "policy": {"modules": [{"file": "p.rego"}]}});
        let out = validate_config(&file.to_string());
        assert_eq!(out["valid"], false);
        let errors = out["errors"].as_array().unwrap();
        assert!(errors
            .iter()
            .any(|e| e["path"] == "config.issuers[0].algorithms[0]"));
        assert!(errors
            .iter()
            .any(|e| e["path"] == "config.policy.modules[0].file"
                && e["message"].as_str().unwrap().contains("cannot read files")));
    }

    #[test]
    fn inspect_is_labelled_unverified() {
        let out = inspect(&token(&github()));
        assert_eq!(out["unverified"], true);
        assert!(out["warning"].as_str().unwrap().starts_with("UNVERIFIED"));
        assert_eq!(out["header"]["kid"], "dev-1");
        assert_eq!(out["claims"]["ref"], "refs/heads/main");
        let out = inspect("eyJhbGciOiJub25lIn0.e30.");
        assert!(out["error"].as_str().unwrap().contains("not a token"));
        assert!(out.get("claims").is_none());
    }

    #[test]
    fn now_must_be_whole_seconds() {
        assert_eq!(now_from_f64(1_760_000_000.0).unwrap(), 1_760_000_000);
        assert_eq!(now_from_f64(-5.0).unwrap(), -5);
        for bad in [f64::NAN, f64::INFINITY, 1.5, 1e300] {
            assert_eq!(now_from_f64(bad).unwrap_err().path, "now");
        }
    }
}
