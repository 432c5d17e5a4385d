//! Shared fixtures for the filter scenarios: configurations, tokens and requests.
use gateward_devkit::{claims, fixtures, jwks, mint, SigningKey};
use gateward_host_tests::{Host, Module, Response, StreamId, VmId};
use serde_json::{json, Value};

/// The host clock's start (`Host::new`), in Unix seconds.
pub const NOW: i64 = 1_760_000_000;
pub const AUD: &str = "https://github.com/octo-org";
pub const GITHUB_JWKS_PATH: &str = "/.well-known/jwks";

pub const POLICY: &str = r#"
package gateward
import rego.v1

default decision := {"allow": false, "reason": "only octo-org/deploy on main may deploy"}

decision := {"allow": true, "reason": "deploy from main", "headers": {"x-ci-ref": input.token.claims.ref}} if {
    input.token.claims.repository_owner_id == "9919"
    input.token.claims.repository == "octo-org/deploy"
    input.token.claims.ref == "refs/heads/main"
    input.request.method == "POST"
    input.request.path == "/deploy"
}

decision := {"allow": false, "status": 429, "reason": "slow down", "response_headers": {"retry-after": "30"}} if {
    input.request.path == "/busy"
}
"#;

/// A config with the GitHub preset and the keys inline (kid `a`: rsa_a).
pub fn static_config(extra: Value) -> Value {
    let mut c = json!({
        "issuers": [{
            "name": "github",
            "preset": "github-actions",
            "audiences": [AUD],
            "jwks": jwks(&[("a", &fixtures::rsa_a())]),
        }],
        "policy": {"modules": [{"name": "deploy.rego", "rego": POLICY}]},
        "claims_to_headers": [
            {"claim": "repository", "header": "x-ci-repository"},
            {"claim": "sub", "header": "x-ci-subject"},
        ],
    });
    merge(&mut c, extra);
    c
}

/// The same, with GitHub's keys fetched from its JWKS URL through cluster `github`.
pub fn remote_config(fetch: Value) -> Value {
    let mut c = static_config(json!({}));
    let issuer = c["issuers"][0].as_object_mut().unwrap();
    issuer.remove("jwks");
    let mut f = json!({"cluster": "github"});
    merge(&mut f, fetch);
    issuer.insert("fetch".into(), f);
    c
}

pub fn merge(into: &mut Value, extra: Value) {
    for (k, v) in extra.as_object().unwrap() {
        into[k] = v.clone();
    }
}

/// A GitHub Actions token for octo-org/deploy on main, issued 10 s before `NOW`.
pub fn token(key: &SigningKey, kid: &str) -> String {
    token_with(key, kid, |_| {})
}

pub fn token_with(key: &SigningKey, kid: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut c = claims::github_actions(NOW - 10, AUD);
    edit(&mut c);
    mint(key, Some(kid), &c).unwrap()
}

/// A JWKS response body for `keys`.
pub fn jwks_response(keys: &[(&str, &SigningKey)]) -> Response {
    Response::json(200, &jwks(keys).to_string())
}

/// A host with cluster `github`, one VM, configured with `config` (which must be accepted).
pub fn start(config: &Value) -> (Host, VmId) {
    let mut host = Host::new(Module::gateward());
    host.add_cluster("github");
    let vm = host.start_vm(b"").unwrap();
    assert!(
        host.configure(vm, config.to_string().as_bytes()),
        "configuration rejected: {:#?}",
        host.logs(vm)
    );
    (host, vm)
}

/// A request with the usual pseudo-headers plus `headers`.
pub fn request(
    host: &mut Host,
    vm: VmId,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> StreamId {
    let mut all = vec![
        (":authority", "api.internal"),
        (":path", path),
        (":method", method),
        (":scheme", "https"),
    ];
    all.extend_from_slice(headers);
    host.request(vm, &all)
}

/// `POST /deploy` with `Authorization: Bearer <token>`.
pub fn deploy(host: &mut Host, vm: VmId, token: &str) -> StreamId {
    let auth = format!("Bearer {token}");
    request(host, vm, "POST", "/deploy", &[("authorization", &auth)])
}

/// The deny code of a stream's local reply (fails the test when there is none).
pub fn code(host: &Host, s: StreamId) -> String {
    let reply = host
        .stream(s)
        .local_reply
        .as_ref()
        .unwrap_or_else(|| panic!("no local reply: {:?}", host.stream(s)));
    reply.body_json()["code"].as_str().unwrap().to_string()
}

/// Every VM of the host ran without trapping.
pub fn assert_no_trap(host: &Host, vms: &[VmId]) {
    for vm in vms {
        assert_eq!(host.trap(*vm), None, "VM {vm:?} trapped");
    }
}

/// The decision log lines of a VM.
pub fn decisions(host: &Host, vm: VmId) -> Vec<Value> {
    host.logs(vm)
        .iter()
        .filter_map(|l| l.message.strip_prefix("decision "))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect()
}
