//! The malicious-token checklist (`gateward_devkit::hostile`, the same cases the core's tests
//! run) through the built filter: each request is answered as the core answers it, and no VM
//! traps.

use crate::common::request;
use gateward_devkit::hostile::{self, NOW};
use gateward_host_tests::{Host, Module};

#[test]
fn the_token_checklist_gets_the_cores_answers_through_the_filter() {
    let cases = hostile::all();
    let mut configs: Vec<String> = cases.iter().map(|c| c.config.to_string()).collect();
    configs.sort();
    configs.dedup();
    let mut failures = Vec::new();
    let mut checked = 0;
    for config in configs {
        let mut host = Host::new(Module::gateward());
        host.set_now_ms(u64::try_from(NOW).unwrap() * 1000);
        let vm = host.start_vm(b"").unwrap();
        assert!(
            host.configure(vm, config.as_bytes()),
            "{:#?}",
            host.logs(vm)
        );
        for case in cases.iter().filter(|c| *c.config.to_string() == *config) {
            let s = request(
                &mut host,
                vm,
                "GET",
                "/",
                &[("authorization", &case.authorization)],
            );
            let reply = host.stream(s).local_reply.clone();
            let code = reply.map(|r| r.body_json()["code"].as_str().unwrap_or("").to_string());
            if let Err(e) = case.judge(code.as_deref()) {
                failures.push(e);
            }
            checked += 1;
        }
        assert_eq!(host.trap(vm), None, "the VM trapped");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100, "only {checked} cases ran");
}

/// A policy that allows everything and echoes its input in a header, to look for the token.
const ECHO: &str = "package gateward\nimport rego.v1\n\
                    decision := {\"allow\": true, \"headers\": {\"x-input\": json.marshal(input)}}\n";

#[test]
fn ambiguous_paths_and_methods_are_refused_before_the_policy() {
    use crate::common::{assert_no_trap, start, static_config, token};
    use gateward_devkit::fixtures;
    use serde_json::json;
    // A policy that would allow anything: only the gate's own check can refuse these.
    let (mut host, vm) = start(&static_config(json!({
        "policy": {"modules": [{"name": "echo.rego", "rego": ECHO}]},
    })));
    let auth = format!("Bearer {}", token(&fixtures::rsa_a(), "a"));
    let auth = [("authorization", auth.as_str())];
    let s = request(&mut host, vm, "GET", "/status/a;v=1", &auth);
    assert!(host.stream(s).is_allowed());
    let mut refused = 0;
    for (method, path, want) in [
        ("GET", "/status/..;/deploy/payments", "path_ambiguous"),
        ("GET", "/status/%2e%2e;/admin", "path_ambiguous"),
        ("POST", "/deploy/..;/actuator/env", "path_ambiguous"),
        ("GET", "/status/.;x=1/admin", "path_ambiguous"),
        ("GET", "/a%2Fb", "path_ambiguous"),
        ("GET", "/a%5cb", "path_ambiguous"),
        ("GET", "/a\\b", "path_ambiguous"),
        ("GET", "/a/../b", "path_ambiguous"),
        ("post", "/deploy", "method_invalid"),
        ("Get", "/status", "method_invalid"),
        ("GE T", "/status", "method_invalid"),
    ] {
        let s = request(&mut host, vm, method, path, &auth);
        let reply = host
            .stream(s)
            .local_reply
            .clone()
            .unwrap_or_else(|| panic!("{method} {path}: let through"));
        assert_eq!(reply.body_json()["code"], want, "{method} {path}");
        assert_eq!(reply.status, 400, "{method} {path}");
        refused += 1;
    }
    assert_eq!(host.metric("gateward.denied.path_ambiguous"), Some(8));
    assert_eq!(host.metric("gateward.denied.method_invalid"), Some(3));
    assert_eq!(refused, 11);
    assert_no_trap(&host, &[vm]);
}

#[test]
fn an_encoded_query_token_name_never_reaches_the_policy_or_the_upstream() {
    use crate::common::{assert_no_trap, start, static_config, token};
    use gateward_devkit::fixtures;
    use serde_json::json;
    let (mut host, vm) = start(&static_config(json!({
        "token_sources": [{"query": "access_token"}, {"cookie": "ci_token"}],
        "policy": {"modules": [{"name": "echo.rego", "rego": ECHO}]},
    })));
    let t = token(&fixtures::rsa_a(), "a");
    for name in [
        "access%5Ftoken",
        "access%5ftoken",
        "%61ccess_token",
        "access_token",
    ] {
        let s = request(&mut host, vm, "GET", &format!("/x?a=1&{name}={t}&b=2"), &[]);
        let stream = host.stream(s);
        assert!(stream.is_allowed(), "{name}: {stream:?}");
        assert_eq!(stream.header(":path"), Some("/x?a=1&b=2"), "{name}");
        let input = stream.header("x-input").unwrap();
        assert!(!input.contains(&t), "{name}: the token reached the policy");
    }
    for name in ["ci%5Ftoken", "ci%5ftoken", "%63i_token"] {
        let cookie = format!("theme=dark; {name}={t}");
        let s = request(&mut host, vm, "GET", "/x", &[("cookie", &cookie)]);
        let stream = host.stream(s);
        assert!(stream.is_allowed(), "{name}: {stream:?}");
        assert_eq!(stream.header("cookie"), Some("theme=dark"), "{name}");
        assert!(!stream.header("x-input").unwrap().contains(&t), "{name}");
    }
    assert!(host.logs(vm).iter().all(|l| !l.message.contains(&t)));
    assert_no_trap(&host, &[vm]);
}
