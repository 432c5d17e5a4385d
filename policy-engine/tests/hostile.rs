//! The malicious-token checklist (see `gateward_devkit::hostile` for its public sources) through
//! the gate: every case is refused with the right code, none panics, none is allowed.
//! The cases live in `gateward_devkit::hostile`, which the Envoy filter's and the OpenBao
//! method's tests run too.
#![allow(clippy::unwrap_used, clippy::panic)]

use gateward_devkit::hostile::{self, Case, NOW};
use policy_engine::{Gate, Request};

fn run(cases: Vec<Case>) {
    let mut gates: Vec<(String, Gate)> = Vec::new();
    let mut failures = Vec::new();
    for case in cases {
        let config = case.config.to_string();
        if !gates.iter().any(|(c, _)| *c == config) {
            let gate = Gate::from_json(&config).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            gates.push((config.clone(), gate));
        }
        let gate = &gates.iter().find(|(c, _)| *c == config).unwrap().1;
        let headers = vec![("authorization".to_string(), case.authorization.clone())];
        let req = Request {
            method: "GET",
            path: "/",
            host: "h",
            headers: &headers,
        };
        let d = gate.check(&req, &|id, _| gate.static_keys(id), NOW);
        if let Err(e) = case.judge(d.code().map(|c| c.as_str())) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn baseline_tokens_are_allowed() {
    run(hostile::baseline_tokens_are_allowed());
}

#[test]
fn alg_attacks() {
    run(hostile::alg_attacks());
}

#[test]
fn signature_attacks() {
    run(hostile::signature_attacks());
}

#[test]
fn key_confusion_is_impossible() {
    run(hostile::key_confusion_is_impossible());
}

#[test]
fn embedded_keys_are_never_used() {
    run(hostile::embedded_keys_are_never_used());
}

#[test]
fn kid_tricks() {
    run(hostile::kid_tricks());
}

#[test]
fn structure_and_encoding() {
    run(hostile::structure_and_encoding());
}

#[test]
fn header_semantics() {
    run(hostile::header_semantics());
}

#[test]
fn claim_attacks() {
    run(hostile::claim_attacks());
}
