//! Why a token was allowed or denied: the decision, the verified claims, the policy input, the
//! value of every rule in the policy's packages, and which Rego lines the entrypoint evaluated.
//!
//! For authoring tools (`gateward eval --explain`, the playground), never the request path: it
//! re-evaluates the policy on a fresh engine with regorus's coverage turned on.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use regorus::{Engine, Value};
use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::decision::{Decision, Deny, DenyCode};
use crate::gate::{Gate, Issuer, IssuerId, Located, Verified};
use crate::keys::KeySet;
use crate::policy::Policy;
use crate::request::Request;

/// A decision with everything that led to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The gate's decision, exactly as a front end would apply it.
    pub decision: Decision,
    /// The verified token's claims (None when verification failed before the policy).
    pub claims: Option<Map<String, Json>>,
    /// The policy input document (None when the policy did not run).
    pub input: Option<Json>,
    /// Every rule with a value in the policy's non-test packages, e.g.
    /// `data.gateward.github_actions.branch_ok = true`. Undefined rules are absent.
    pub rules: Vec<RuleValue>,
    /// Lines the entrypoint's evaluation reached, per module.
    pub coverage: Vec<ModuleCoverage>,
    /// Output of the policy's `print` calls.
    pub prints: Vec<String>,
}

/// One rule's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleValue {
    /// Its full path, `data.<package>.<rule>`.
    pub path: String,
    /// Its value for this input.
    pub value: Json,
}

/// Which lines of a module were evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleCoverage {
    /// The module's name (its file name).
    pub module: String,
    /// 1-based lines evaluated.
    pub covered: Vec<u32>,
    /// 1-based lines with code that was not evaluated.
    pub not_covered: Vec<u32>,
}

/// Runs [`Gate::check`]'s steps and explains the outcome.
pub fn check_explained<'g>(
    gate: &'g Gate,
    req: &Request<'_>,
    keys: &dyn Fn(IssuerId, &'g Issuer) -> Option<&'g KeySet>,
    now: i64,
) -> Explanation {
    let mut out = Explanation {
        decision: Decision::Deny(Deny::new(DenyCode::InternalError, "not evaluated")),
        claims: None,
        input: None,
        rules: Vec::new(),
        coverage: Vec::new(),
        prints: Vec::new(),
    };
    let verified = match verify(gate, req, keys, now) {
        Ok(v) => v,
        Err(deny) => {
            out.decision = Decision::Deny(deny);
            return out;
        }
    };
    let (verified, located) = verified;
    out.decision = gate.authorize(&verified, req, &located, now);
    out.claims = Some(verified.claims.clone());
    let Some(policy) = gate.policy() else {
        return out;
    };
    let issuer = gate
        .issuers()
        .get(verified.issuer)
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let input = gate.input(&verified, &issuer, req, &located, now);
    out.input = to_json(&input);
    match trace(policy, input) {
        Ok(t) => {
            out.rules = t.rules;
            out.coverage = t.coverage;
            out.prints = t.prints;
        }
        // The decision already carries the policy error; the explanation adds what it can.
        Err(e) => out.prints.push(format!("explanation unavailable: {e}")),
    }
    out
}

fn verify<'g, 'r>(
    gate: &'g Gate,
    req: &Request<'r>,
    keys: &dyn Fn(IssuerId, &'g Issuer) -> Option<&'g KeySet>,
    now: i64,
) -> Result<(Verified, Located<'r>), Deny> {
    let located = gate.locate(req)?;
    let (token, id) = gate.route(located.token)?;
    let issuer = gate
        .issuers()
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
    let verified = gate.verify(&token, id, keyset, now)?;
    Ok((verified, located))
}

/// Rule values, coverage and prints for one evaluation of `policy` over `input`.
struct Trace {
    rules: Vec<RuleValue>,
    coverage: Vec<ModuleCoverage>,
    prints: Vec<String>,
}

fn trace(policy: &Policy, input: Value) -> Result<Trace, String> {
    let mut engine = Engine::new();
    engine.set_gather_prints(true);
    for m in policy.modules() {
        engine
            .add_policy(m.name.clone(), m.text.clone())
            .map_err(|e| format!("{}: {e}", m.name))?;
    }
    if let Some(data) = policy.data() {
        engine
            .add_data(Value::from(data.clone()))
            .map_err(|e| format!("data: {e}"))?;
    }
    engine.set_input(input);

    // Coverage of the entrypoint alone: what the decision actually looked at.
    engine.set_enable_coverage(true);
    engine
        .eval_rule(policy.entrypoint().to_string())
        .map_err(|e| format!("evaluation failed: {e}"))?;
    let report = engine
        .get_coverage_report()
        .map_err(|e| format!("coverage: {e}"))?;
    let coverage = report
        .files
        .into_iter()
        .map(|f| ModuleCoverage {
            module: f.path,
            covered: f.covered.into_iter().collect(),
            not_covered: f.not_covered.into_iter().collect(),
        })
        .collect();
    engine.set_enable_coverage(false);
    let mut prints = engine.take_prints().unwrap_or_default();

    let packages: BTreeSet<String> = engine
        .get_packages()
        .map_err(|e| format!("packages: {e}"))?
        .into_iter()
        // Test packages hold `with`-driven tests, not rules of this decision.
        .filter(|p| !p.ends_with("_test"))
        .collect();
    let mut rules = Vec::new();
    for package in &packages {
        let value = match engine.eval_query(package.clone(), false) {
            Ok(r) => r
                .result
                .into_iter()
                .next()
                .and_then(|r| r.expressions.into_iter().next())
                .map(|e| e.value),
            // One failing rule makes its whole package fail; say so instead of hiding it.
            Err(e) => {
                prints.push(format!("{package}: {e}"));
                None
            }
        };
        let Some(Value::Object(fields)) = value else {
            continue;
        };
        for (name, value) in fields.iter() {
            let Value::String(name) = name else { continue };
            let path = format!("{package}.{name}");
            // Sub-packages are listed on their own.
            if packages.contains(&path) || matches!(value, Value::Undefined) {
                continue;
            }
            if let Some(value) = to_json(value) {
                rules.push(RuleValue { path, value });
            }
        }
    }
    prints.extend(engine.take_prints().unwrap_or_default());
    Ok(Trace {
        rules,
        coverage,
        prints,
    })
}

fn to_json(value: &Value) -> Option<Json> {
    serde_json::to_value(value).ok()
}
