//! Roles: a Rego policy, the issuers and claims a login must come with, and the token
//! parameters of what it gets. Stored as JSON at `role/<name>`.

use std::collections::BTreeMap;

use policy_engine::policy::{Module, Policy, DEFAULT_ENTRYPOINT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::bound::{self, BoundClaimsType};
use crate::tokenutil::{self, TokenParams};

/// A role as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleEntry {
    /// The Rego module evaluated for each login (required).
    pub policy: String,
    /// More Rego modules the policy may import (name → text), e.g. Gateward's policy library.
    pub modules: BTreeMap<String, String>,
    /// A JSON object available to the policy as `data`.
    pub data: Option<Value>,
    /// The rule evaluated (default `data.gateward.decision`).
    pub entrypoint: String,
    /// Names of the configured issuers this role accepts (empty: every configured issuer).
    pub issuers: Vec<String>,
    /// `aud` must also contain one of these (besides the issuer's `audiences`).
    pub bound_audiences: Vec<String>,
    /// `sub` must equal this.
    pub bound_subject: String,
    /// Claims that must match (the built-in `jwt` method's semantics).
    pub bound_claims: Map<String, Value>,
    /// How `bound_claims` values compare.
    pub bound_claims_type: BoundClaimsType,
    /// The claim naming the entity alias.
    pub user_claim: String,
    /// Read `user_claim` as a JSON pointer.
    pub user_claim_json_pointer: bool,
    /// Claims copied into token and alias metadata (claim or pointer → metadata key).
    pub claim_mappings: BTreeMap<String, String>,
    /// Token parameters.
    #[serde(flatten)]
    pub token: TokenParams,
}

impl Default for RoleEntry {
    fn default() -> RoleEntry {
        RoleEntry {
            policy: String::new(),
            modules: BTreeMap::new(),
            data: None,
            entrypoint: DEFAULT_ENTRYPOINT.to_string(),
            issuers: Vec::new(),
            bound_audiences: Vec::new(),
            bound_subject: String::new(),
            bound_claims: Map::new(),
            bound_claims_type: BoundClaimsType::String,
            user_claim: String::from("sub"),
            user_claim_json_pointer: false,
            claim_mappings: BTreeMap::new(),
            token: TokenParams {
                token_type: String::from("default"),
                ..TokenParams::default()
            },
        }
    }
}

/// The role parameters (besides the token ones in [`tokenutil::FIELDS`]).
pub const FIELDS: [&str; 13] = [
    "name",
    "policy",
    "modules",
    "data",
    "entrypoint",
    "issuers",
    "bound_audiences",
    "bound_subject",
    "bound_claims",
    "bound_claims_type",
    "user_claim",
    "user_claim_json_pointer",
    "claim_mappings",
];

/// Built-in `jwt` role parameters with no equivalent here: refused rather than silently
/// ignored, since ignoring them would change what a migrated role accepts.
const UNSUPPORTED: [(&str, &str); 14] = [
    ("groups_claim", "group aliases are not created; map the claim with claim_mappings or decide on it in the policy"),
    ("token_policies_template_claims", "return per-login policies from the Rego policy (`policies`) instead"),
    ("clock_skew_leeway", "set `leeway_seconds` on the issuer in `config`"),
    ("expiration_leeway", "set `leeway_seconds` on the issuer in `config`"),
    ("not_before_leeway", "set `leeway_seconds` on the issuer in `config`"),
    ("allowed_redirect_uris", "the browser OIDC flow is not supported"),
    ("oidc_scopes", "the browser OIDC flow is not supported"),
    ("callback_mode", "the browser OIDC flow is not supported"),
    ("poll_interval", "the browser OIDC flow is not supported"),
    ("max_age", "the browser OIDC flow is not supported"),
    ("verbose_oidc_logging", "the browser OIDC flow is not supported"),
    ("oidc_disable_confirmation", "the browser OIDC flow is not supported"),
    ("oauth2_metadata", "the browser OIDC flow is not supported"),
    ("cel_program", "CEL roles are OpenBao's own; write the rules in Rego"),
];

fn string(v: &Value, name: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        _ => Err(format!("{name}: expected a string")),
    }
}

fn string_map(v: &Value, name: &str) -> Result<BTreeMap<String, String>, String> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("{name}.{k}: expected a string")),
            })
            .collect(),
        // OpenBao's TypeKVPairs: the CLI sends `k=v,k2=v2` (or a list of `k=v`).
        Value::String(_) | Value::Array(_) => {
            let mut out = BTreeMap::new();
            for pair in tokenutil::parse_list(v).map_err(|e| format!("{name}: {e}"))? {
                let Some((k, val)) = pair.split_once('=') else {
                    return Err(format!("{name}: {pair:?} is not a key=value pair"));
                };
                out.insert(k.trim().to_string(), val.trim().to_string());
            }
            Ok(out)
        }
        _ => Err(format!("{name}: expected an object of strings")),
    }
}

impl RoleEntry {
    /// Applies a write's parameters (absent ones keep their values) and checks the result,
    /// except for the policy's compilation ([`RoleEntry::compile`]). Ok holds warnings.
    pub fn update(&mut self, data: &Map<String, Value>) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        let mut ignored = Vec::new();
        for key in data.keys() {
            if let Some((_, why)) = UNSUPPORTED.iter().find(|(k, _)| k == key) {
                return Err(format!("{key} is not supported by this auth method: {why}"));
            }
            if !FIELDS.contains(&key.as_str())
                && !tokenutil::FIELDS.contains(&key.as_str())
                && key != "role_type"
            {
                ignored.push(key.clone());
            }
        }
        if !ignored.is_empty() {
            warnings.push(format!(
                "Endpoint ignored these unrecognized parameters: [{}]",
                ignored.join(" ")
            ));
        }
        if let Some(v) = data.get("role_type") {
            match v {
                Value::Null => {}
                Value::String(s) if s.is_empty() || s == "jwt" => {}
                _ => {
                    return Err(String::from(
                        "invalid 'role_type': only \"jwt\" roles exist here (the browser OIDC flow is not supported)",
                    ))
                }
            }
        }
        if let Some(v) = data.get("policy") {
            self.policy = string(v, "policy")?;
        }
        if let Some(v) = data.get("modules") {
            self.modules = string_map(v, "modules")?;
        }
        if let Some(v) = data.get("data") {
            self.data = match v {
                Value::Null => None,
                Value::Object(_) => Some(v.clone()),
                // Form posts and the CLI send JSON as text.
                Value::String(s) if s.trim().is_empty() => None,
                Value::String(s) => match serde_json::from_str::<Value>(s) {
                    Ok(obj @ Value::Object(_)) => Some(obj),
                    _ => return Err(String::from("data: expected a JSON object")),
                },
                _ => return Err(String::from("data: expected a JSON object")),
            };
        }
        if let Some(v) = data.get("entrypoint") {
            let e = string(v, "entrypoint")?;
            self.entrypoint = if e.is_empty() {
                DEFAULT_ENTRYPOINT.to_string()
            } else {
                e
            };
        }
        if let Some(v) = data.get("issuers") {
            self.issuers = tokenutil::parse_list(v).map_err(|e| format!("issuers: {e}"))?;
        }
        if let Some(v) = data.get("bound_audiences") {
            self.bound_audiences =
                tokenutil::parse_list(v).map_err(|e| format!("bound_audiences: {e}"))?;
        }
        if let Some(v) = data.get("bound_subject") {
            self.bound_subject = string(v, "bound_subject")?;
        }
        if let Some(v) = data.get("bound_claims_type") {
            let t = string(v, "bound_claims_type")?;
            self.bound_claims_type = if t.is_empty() {
                BoundClaimsType::String
            } else {
                BoundClaimsType::parse(&t)
                    .ok_or_else(|| format!("invalid 'bound_claims_type': {t}"))?
            };
        }
        if let Some(v) = data.get("bound_claims") {
            self.bound_claims = match v {
                Value::Null => Map::new(),
                Value::Object(m) => m.clone(),
                _ => return Err(String::from("bound_claims: expected an object")),
            };
        }
        bound::check_bound_claims(self.bound_claims_type, &self.bound_claims)?;
        if let Some(v) = data.get("user_claim") {
            self.user_claim = string(v, "user_claim")?;
        }
        if self.user_claim.is_empty() {
            return Err(String::from("a user claim must be defined on the role"));
        }
        if let Some(v) = data.get("user_claim_json_pointer") {
            self.user_claim_json_pointer =
                tokenutil::parse_bool(v).map_err(|e| format!("user_claim_json_pointer: {e}"))?;
        }
        if let Some(v) = data.get("claim_mappings") {
            let mappings = string_map(v, "claim_mappings")?;
            let mut targets: Vec<&str> = Vec::new();
            for target in mappings.values() {
                if target == "role" {
                    return Err(format!(
                        "metadata key {target:?} is reserved and may not be a mapping destination"
                    ));
                }
                if target.is_empty() {
                    return Err(String::from(
                        "claim_mappings: a metadata key must not be empty",
                    ));
                }
                if targets.contains(&target.as_str()) {
                    return Err(format!(
                        "multiple keys are mapped to metadata key {target:?}"
                    ));
                }
                targets.push(target);
            }
            self.claim_mappings = mappings;
        }
        self.token.update(data)?;
        if self.policy.trim().is_empty() {
            return Err(String::from(
                "policy: required (the Rego module that decides each login)",
            ));
        }
        if self.modules.keys().any(|k| k.is_empty()) {
            return Err(String::from("modules: module names must not be empty"));
        }
        Ok(warnings)
    }

    /// The policy's modules: the role's own (named `<role>.rego`), then `modules`.
    pub fn modules(&self, name: &str) -> Vec<Module> {
        let mut out = vec![Module {
            name: format!("{name}.rego"),
            text: self.policy.clone(),
        }];
        out.extend(self.modules.iter().map(|(n, t)| Module {
            name: n.clone(),
            text: t.clone(),
        }));
        out
    }

    /// Compiles the policy. Each error names the role, the module and the line.
    pub fn compile(&self, name: &str) -> Result<Policy, Vec<String>> {
        Policy::compile(&self.modules(name), self.data.as_ref(), &self.entrypoint).map_err(|es| {
            es.into_iter()
                .map(|e| format!("role {name:?}: {e}"))
                .collect()
        })
    }

    /// A digest of what decides logins (policy text, modules, data, entrypoint): a token whose
    /// policies came from the policy renews them only while this is unchanged.
    pub fn policy_hash(&self) -> String {
        let doc = serde_json::json!([self.policy, self.modules, self.data, self.entrypoint]);
        let digest = Sha256::digest(doc.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The role as a read returns it.
    pub fn to_data(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_string(), v);
        };
        put("policy", Value::String(self.policy.clone()));
        put("modules", serde_json::json!(self.modules));
        put("data", self.data.clone().unwrap_or(Value::Null));
        put("entrypoint", Value::String(self.entrypoint.clone()));
        put("issuers", serde_json::json!(self.issuers));
        put("bound_audiences", serde_json::json!(self.bound_audiences));
        put("bound_subject", Value::String(self.bound_subject.clone()));
        put("bound_claims", Value::Object(self.bound_claims.clone()));
        put(
            "bound_claims_type",
            Value::String(self.bound_claims_type.as_str().to_string()),
        );
        put("user_claim", Value::String(self.user_claim.clone()));
        put(
            "user_claim_json_pointer",
            self.user_claim_json_pointer.into(),
        );
        put("claim_mappings", serde_json::json!(self.claim_mappings));
        put("role_type", Value::String(String::from("jwt")));
        self.token.populate(&mut out);
        out
    }
}

/// A role ready for logins: the entry, its compiled policy and its policy digest.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRole {
    pub(crate) entry: RoleEntry,
    pub(crate) policy: Policy,
    pub(crate) policy_hash: String,
}

/// Whether `name` is a valid role name (OpenBao's `GenericNameRegex`: word characters, `-` and
/// `.`, starting and ending with a word character).
pub fn valid_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = name.chars();
    let (Some(first), Some(last)) = (chars.next(), name.chars().last()) else {
        return false;
    };
    word(first) && word(last) && name.chars().all(|c| word(c) || c == '-' || c == '.')
}
