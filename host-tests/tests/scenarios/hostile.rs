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
