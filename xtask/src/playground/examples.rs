//! `examples.json` for the playground, built at start from `policies/` and the devkit's preset
//! claims, so the page always shows the library as it is in the tree.
//!
//! - `presets`: the devkit's claims per CI provider (times relative to 0: the page adds its
//!   `now`) with an issuer entry that trusts them.
//! - `examples`: one allowed and one denied request per provider example in
//!   `policies/examples/`. The allowed claims are the ones the Rego tests use
//!   (`fixtures_test.rego`, evaluated here) over the devkit's claims for that provider, so an
//!   example cannot drift from what is tested; the denied one changes a claim the way an
//!   attacker or a mistake would.

use std::path::Path;

use gateward_devkit::claims;
use serde_json::{json, Map, Value};

/// The audience the preset tokens are issued for.
pub const PRESET_AUDIENCE: &str = "https://api.internal";

/// One provider example.
struct Spec {
    /// `policies/examples/<id>.rego` and `<id>.data.json`.
    id: &'static str,
    title: &'static str,
    /// The provider's helper file in `policies/`.
    provider_file: &'static str,
    /// A Rego expression in `data.gateward.examples.fixtures_test` giving the claims.
    fixture: &'static str,
    /// The issuer entry (without keys).
    issuer: Value,
    method: &'static str,
    path: &'static str,
    /// The denied variant: what it shows, and the claims it changes.
    deny_title: &'static str,
    deny_claims: Value,
}

fn specs() -> Vec<Spec> {
    vec![
        Spec {
            id: "github_deploy",
            title: "GitHub Actions: production deploy from main",
            provider_file: "github_actions.rego",
            fixture: "github_deploy",
            issuer: json!({"name": "github", "preset": "github-actions",
                           "audiences": ["https://github.com/acme-corp"]}),
            method: "POST",
            path: "/deploy/payments",
            deny_title: "GitHub Actions: pull_request_target on main",
            deny_claims: json!({"event_name": "pull_request_target"}),
        },
        Spec {
            id: "gitlab_deploy",
            title: "GitLab: protected main deploys the API",
            provider_file: "gitlab.rego",
            fixture: "gitlab_deploy",
            issuer: json!({"name": "gitlab", "preset": "gitlab",
                           "audiences": ["https://my-proxy.example.com"]}),
            method: "POST",
            path: "/deploy/api",
            deny_title: "GitLab: a merge request pipeline from a fork",
            deny_claims: json!({"project_id": "66600066", "project_path": "mallory/api",
                                "namespace_id": "666", "namespace_path": "mallory",
                                "pipeline_source": "merge_request_event"}),
        },
        Spec {
            id: "circleci_artifacts",
            title: "CircleCI: artifacts from main with the release context",
            provider_file: "circleci.rego",
            fixture: "circleci_build",
            issuer: json!({"name": "circleci", "preset": "circleci",
                           "issuer": "https://oidc.circleci.com/org/c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e",
                           "audiences": ["c9035eb6-6eb2-4c85-8a81-d9ed6a1d1d1e"]}),
            method: "PUT",
            path: "/artifacts/api",
            deny_title: "CircleCI: an SSH rerun of the job",
            deny_claims: json!({"oidc.circleci.com/ssh-rerun": true}),
        },
        Spec {
            id: "buildkite_deploy",
            title: "Buildkite: the deploy step on main",
            provider_file: "buildkite.rego",
            fixture: "buildkite_deploy",
            issuer: json!({"name": "buildkite", "preset": "buildkite",
                           "audiences": ["https://my-proxy.example.com"]}),
            method: "POST",
            path: "/deploy/payments",
            deny_title: "Buildkite: another step of the same build",
            deny_claims: json!({"step_key": "test",
                "sub": "organization:acme-inc:pipeline:payments-deploy:ref:refs/heads/main:commit:9f3182061f1e2cca4702c368cbc039b7dc9d4485:step:test"}),
        },
        Spec {
            id: "spiffe_service",
            title: "SPIFFE: the refunds workload",
            provider_file: "spiffe.rego",
            fixture: r#"spiffe_svid("spiffe://prod.acme.example/ns/payments/sa/refunds")"#,
            issuer: json!({"name": "spire", "preset": "spiffe",
                           "issuer": "https://oidc.prod.acme.example",
                           "audiences": ["spiffe://prod.acme.example/envoy/gateway"]}),
            method: "POST",
            path: "/payments/refunds",
            deny_title: "SPIFFE: a look-alike trust domain",
            deny_claims: json!({"sub": "spiffe://prod.acme.example.evil.com/ns/payments/sa/refunds"}),
        },
        Spec {
            id: "generic_api",
            title: "Generic (HCP Terraform): an apply reads secrets",
            provider_file: "generic.rego",
            fixture: "generic_apply",
            issuer: json!({"name": "tfc", "preset": "generic", "issuer": "https://app.terraform.io",
                           "audiences": ["https://my-proxy.example.com"]}),
            method: "GET",
            path: "/secrets/payments",
            deny_title: "Generic (HCP Terraform): a plan, not an apply",
            deny_claims: json!({"terraform_run_phase": "plan",
                "sub": "organization:acme:project:platform:workspace:payments-prod:run_phase:plan"}),
        },
    ]
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn module(policies: &Path, file: &str) -> Result<Value, String> {
    Ok(json!({"name": file, "rego": read(&policies.join(file))?}))
}

/// Evaluates `expr` in the fixtures package of the example tests.
fn fixture(engine: &mut regorus::Engine, expr: &str) -> Result<Map<String, Value>, String> {
    let query = format!("data.gateward.examples.fixtures_test.{expr}");
    let results = engine
        .eval_query(query.clone(), false)
        .map_err(|e| format!("{query}: {e}"))?;
    let value = results
        .result
        .into_iter()
        .next()
        .and_then(|r| r.expressions.into_iter().next())
        .map(|e| e.value)
        .ok_or_else(|| format!("{query} is undefined"))?;
    match serde_json::to_value(&value).map_err(|e| e.to_string())? {
        Value::Object(m) => Ok(m),
        other => Err(format!("{query} is not an object: {other}")),
    }
}

/// The signing algorithm the page's throwaway key uses for `preset`: ES256 when the preset
/// accepts it (fast to generate), else RS256.
fn alg_for(preset: &str) -> &'static str {
    let algs = policy_engine::presets::lookup(preset).map_or(&[][..], |p| p.algorithms);
    if algs.contains(&policy_engine::Algorithm::ES256) {
        "ES256"
    } else {
        "RS256"
    }
}

fn claims_with(base: &Map<String, Value>, changes: &Value) -> Value {
    let mut claims = base.clone();
    if let Value::Object(changes) = changes {
        for (k, v) in changes {
            claims.insert(k.clone(), v.clone());
        }
    }
    Value::Object(claims)
}

/// Builds the whole document from the tree at `root`.
pub fn build(root: &Path) -> Result<Value, String> {
    let policies = root.join("policies");
    let mut engine = regorus::Engine::new();
    let fixtures = policies.join("examples/fixtures_test.rego");
    engine
        .add_policy(fixtures.display().to_string(), read(&fixtures)?)
        .map_err(|e| e.to_string())?;

    let mut examples = Vec::new();
    for s in specs() {
        let tested = fixture(&mut engine, s.fixture)?;
        let iat = tested.get("iat").and_then(Value::as_i64).unwrap_or(0);
        let preset = s.issuer["preset"].as_str().unwrap_or("generic");
        // The devkit's claims fill in what a real token carries beyond what the tests look at
        // (e.g. `jti`, which presets require); the tested claims win.
        let aud = tested
            .get("aud")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut base = match claims::preset(preset, iat, aud) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        base.extend(tested);
        let modules = vec![
            module(&policies, "common.rego")?,
            module(&policies, s.provider_file)?,
            module(&policies, &format!("examples/{}.rego", s.id))?,
        ];
        let data: Value = serde_json::from_str(&read(
            &policies.join(format!("examples/{}.data.json", s.id)),
        )?)
        .map_err(|e| format!("examples/{}.data.json: {e}", s.id))?;
        let config = json!({
            "issuers": [s.issuer],
            "policy": {"entrypoint": format!("data.gateward.examples.{}.decision", s.id)},
        });
        let request = json!({"method": s.method, "path": s.path,
                             "headers": {"host": "api.internal", "x-request-id": "playground-1"}});
        for (title, claims, expect) in [
            (s.title, Value::Object(base.clone()), "allow"),
            (s.deny_title, claims_with(&base, &s.deny_claims), "deny"),
        ] {
            examples.push(json!({
                "id": format!("{}-{expect}", s.id),
                "title": title,
                "expect": expect,
                "alg": alg_for(preset),
                "claims": claims,
                // As the Rego tests do: 100 s after the token was issued.
                "now": iat + 100,
                "config": config,
                "modules": modules,
                "data": data,
                "request": request,
            }));
        }
    }

    let presets: Vec<Value> = claims::PRESETS
        .iter()
        .filter_map(|name| {
            let c = claims::preset(name, 0, PRESET_AUDIENCE)?;
            let iss = c["iss"].as_str().unwrap_or_default().to_string();
            let label = policy_engine::presets::lookup(name).map_or(*name, |p| p.display_name);
            Some(json!({
                "name": name,
                "label": label,
                "alg": alg_for(name),
                "claims": c,
                "issuer": {"name": name, "preset": name, "issuer": iss, "audiences": [PRESET_AUDIENCE]},
            }))
        })
        .collect();
    Ok(json!({"presets": presets, "examples": examples}))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use gateward_devkit::{fixtures, jwks, mint, SigningKey};
    use policy_engine::{Decision, Gate, Request};

    fn key(alg: &str) -> SigningKey {
        if alg == "ES256" {
            fixtures::p256()
        } else {
            fixtures::rsa_a()
        }
    }

    /// What the page does: the config with the key's JWKS on its issuer, modules and data
    /// filled in, the token in `Authorization`.
    fn decide(
        config: &Value,
        modules: Option<&Value>,
        data: Option<&Value>,
        alg: &str,
        claims: &Value,
        req: &Value,
        now: i64,
    ) -> Decision {
        let k = key(alg);
        let mut config = config.clone();
        config["issuers"][0]["jwks"] = jwks(&[("playground", &k)]);
        if let (Some(m), Some(policy)) = (modules, config.get_mut("policy")) {
            policy["modules"] = m.clone();
            policy["data"] = data.cloned().unwrap_or(Value::Null);
        }
        let gate = Gate::from_json(&config.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let token = mint(&k, Some("playground"), claims).unwrap();
        let mut headers: Vec<(String, String)> = req["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        headers.push(("authorization".into(), format!("Bearer {token}")));
        let r = Request {
            method: req["method"].as_str().unwrap(),
            path: req["path"].as_str().unwrap(),
            host: "api.internal",
            headers: &headers,
        };
        gate.check(&r, &|id, _| gate.static_keys(id), now)
    }

    #[test]
    fn every_example_decides_as_labelled() {
        let doc = build(&crate::root()).unwrap();
        let examples = doc["examples"].as_array().unwrap();
        assert_eq!(examples.len(), 12);
        for e in examples {
            let d = decide(
                &e["config"],
                Some(&e["modules"]),
                Some(&e["data"]),
                e["alg"].as_str().unwrap(),
                &e["claims"],
                &e["request"],
                e["now"].as_i64().unwrap(),
            );
            match (e["expect"].as_str().unwrap(), &d) {
                ("allow", Decision::Allow(_)) => {}
                ("deny", Decision::Deny(deny)) => {
                    assert_eq!(deny.code.as_str(), "policy_denied", "{}: {deny:?}", e["id"]);
                }
                _ => panic!("{}: {d:?}", e["id"]),
            }
        }
    }

    #[test]
    fn every_preset_verifies_under_its_issuer_entry() {
        let doc = build(&crate::root()).unwrap();
        let presets = doc["presets"].as_array().unwrap();
        assert_eq!(presets.len(), claims::PRESETS.len());
        let now = 1_760_000_000;
        for p in presets {
            let mut c = p["claims"].clone();
            for t in ["iat", "nbf", "exp"] {
                if let Some(v) = c[t].as_i64() {
                    c[t] = json!(v + now);
                }
            }
            let config = json!({"issuers": [p["issuer"]]});
            let req = json!({"method": "GET", "path": "/", "headers": {}});
            let d = decide(
                &config,
                None,
                None,
                p["alg"].as_str().unwrap(),
                &c,
                &req,
                now,
            );
            assert!(d.is_allow(), "{}: {d:?}", p["name"]);
        }
    }
}
