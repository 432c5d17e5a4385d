//! The module trapping in a real Envoy (threat model §4.14), from a real cause rather than a
//! test switch: a policy whose evaluation asks for more memory than wasm32 can address.
//! regorus's `numbers.range` reserves its whole array before filling it
//! (`Vec::with_capacity(n)`); for 3×10⁹ numbers that is more than `isize::MAX` bytes on a 32-bit
//! target, so the reservation panics ("capacity overflow"), and with `panic = "abort"` the VM
//! traps. One worker, so every request meets the VM that trapped.

use gateward_devkit::http::Response;

use super::*;

/// The demo policy plus a rule that traps for `/trap` only. The bound is computed from the
/// request (`count("/trap")` = 5) so it cannot be evaluated when the policy is loaded.
fn trap_policy() -> String {
    let deploy =
        std::fs::read_to_string(envoy::workspace_root().join("examples/deploy.rego")).unwrap();
    format!(
        "{deploy}\n\
         decision := {{\"allow\": false, \"reason\": \"unreachable\"}} if {{\n\
         \tinput.request.path == \"/trap\"\n\
         \tcount(numbers.range(1, count(input.request.path) * 600000000)) > 0\n\
         }}\n"
    )
}

/// Envoy's own answer for a request whose VM failed: 503 with an empty body (the filter's
/// denials carry a JSON body with a `code`).
fn assert_envoys_wasm_failure(r: &Response, what: &str) {
    assert_eq!(r.status, 503, "{what}: {}", r.text());
    assert!(
        r.body.is_empty(),
        "{what}: not Envoy's local reply: {}",
        r.text()
    );
}

fn stat(run: &Run, name: &str) -> i64 {
    run.envoy
        .stats()
        .unwrap()
        .get(name)
        .copied()
        .unwrap_or_default()
}

/// The trap as Envoy logs it: the SDK's panic hook, then the runtime's trap.
fn assert_trap_logged(run: &Run) {
    let log = run.envoy.log();
    assert!(log.contains("capacity overflow"), "no panic logged");
    assert!(
        log.contains("proxy_on_request_headers failed: Uncaught RuntimeError: unreachable"),
        "no trap logged"
    );
}

#[test]
fn a_trap_under_fail_reload_is_refused_and_a_fresh_vm_serves_what_follows() {
    let run = run("trap-reload", |o| o.policy = Some(trap_policy()));
    let token = mint(&run, "github-actions", json!({}));
    assert_eq!(deploy(&run, &token).status, 200);

    let r = run.send("POST", "/trap", Some(&token)).unwrap();
    assert_envoys_wasm_failure(&r, "the trapping request");
    assert_trap_logged(&run);

    // Envoy replaces the failed VM on a request once its reload backoff has passed; until then
    // it answers 503 itself.
    let mut meanwhile = Vec::new();
    let recovered = eventually(Duration::from_secs(30), || {
        let r = deploy(&run, &token);
        let ok = r.status == 200;
        if !ok {
            meanwhile.push(r);
        }
        ok
    });
    assert!(recovered, "no fresh VM");
    for r in &meanwhile {
        assert_envoys_wasm_failure(r, "while the VM was being replaced");
    }
    assert!(stat(&run, "wasm.gateward.vm_reload_success") >= 1);

    // The fresh VM decides as the first one did.
    let r = deploy(&run, &mint(&run, "github-actions", json!({})));
    assert_eq!(r.status, 200, "{}", r.text());
    let feature = mint(&run, "github-actions", json!({"ref": "refs/heads/feature"}));
    assert_eq!(code(&deploy(&run, &feature)), "policy_denied");
    assert_eq!(code(&deploy(&run, &forged(&token))), "signature_invalid");
    assert_eq!(
        code(&run.send("POST", "/deploy", None).unwrap()),
        "token_missing"
    );

    // Only the valid deploys reached the upstream: one before the trap, two after.
    let received = run.upstream.received();
    assert_eq!(received.len(), 3, "{received:?}");
    assert!(received.iter().all(|e| e["path"] == "/deploy"));
}

#[test]
fn a_trap_under_the_default_failure_policy_fails_the_worker_until_a_reload() {
    let mut run = run("trap-default", |o| {
        o.policy = Some(trap_policy());
        o.failure_policy = Some("UNSPECIFIED".into());
    });
    let token = mint(&run, "github-actions", json!({}));
    assert_eq!(deploy(&run, &token).status, 200);

    let r = run.send("POST", "/trap", Some(&token)).unwrap();
    assert_envoys_wasm_failure(&r, "the trapping request");
    assert_trap_logged(&run);

    // Sticky: every later request on the worker gets Envoy's 503, also after the second a
    // FAIL_RELOAD backoff would wait, and the VM is never replaced.
    for round in 0..2 {
        if round > 0 {
            std::thread::sleep(Duration::from_millis(1500));
        }
        assert_envoys_wasm_failure(&deploy(&run, &token), "a valid token");
        assert_envoys_wasm_failure(&deploy(&run, "not.a.token"), "a malformed token");
        assert_envoys_wasm_failure(&run.send("POST", "/deploy", None).unwrap(), "no token");
    }
    assert_eq!(stat(&run, "wasm.gateward.vm_reload_success"), 0);
    assert_eq!(stat(&run, "wasm.gateward.vm_reload_backoff"), 0);
    assert_eq!(run.upstream.received().len(), 1, "only the first deploy");

    // A configuration update gives the listener a new filter chain, and the worker a new VM.
    let mut config: Value = serde_json::from_str(run.gateward_config()).unwrap();
    config["issuers"][0]["fetch"]["timeout_ms"] = json!(2500);
    run.stack
        .reload(&config.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let r = deploy(&run, &token);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(code(&deploy(&run, "not.a.token")), "token_malformed");
    assert_eq!(run.upstream.received().len(), 2);
}
