#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The policy library (`policies/`) on two Rego engines: regorus (the gate's) and rego-cpp
//! (Microsoft's C++ engine, which targets OPA conformance; installed from PyPI on first run).
//! A policy that only works on regorus leans on regorus-only behaviour; the library must be
//! plain OPA Rego.
//!
//! - [`library_tests_on_both_engines`]: every `test_*` rule (what `gateward test policies`
//!   runs) on both engines. regorus must pass them all; on rego-cpp every test must pass or
//!   fail for a reason in [`KNOWN_TEST_FAULTS`].
//! - [`entrypoints_decide_alike_on_both_engines`]: each example entrypoint with its
//!   `*.data.json` loaded as `data`, over a few hundred requests built from the shared test
//!   fixtures; the two engines' decisions must be equal, up to [`KNOWN_DECISION_FAULTS`].
//!
//! - The same requests run on both of regorus's evaluators (`policy.evaluator`), the RVM and
//!   the interpreter, which must decide exactly alike.
//!
//! Both download rego-cpp, so they sit in [`needs_download`]: `cargo xtask check` skips them,
//! `cargo xtask test` runs them.
//!
//! Each known rego-cpp fault has a minimal reproduction that the tests re-run: when a rego-cpp
//! release fixes one, its test fails and says which entry to delete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gateward_devkit::regocpp::{Interpreter, RegoCpp};
use policy_engine::policy::{Evaluator, Module, Policy};
use policy_engine::rego_test::{self, Outcome, TestCase};
use serde_json::{json, Value};

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// Every `.rego` file under `policies/`, sorted, named relative to it (as
/// `gateward test policies` collects them).
fn modules() -> Vec<Module> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rego") {
                out.push(p);
            }
        }
    }
    let root = policies_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .iter()
        .map(|f| Module {
            name: f.strip_prefix(&root).unwrap().display().to_string(),
            text: std::fs::read_to_string(f).unwrap(),
        })
        .collect()
}

/// A rego-cpp fault, with the smallest policy that shows it.
struct KnownFault {
    /// What goes wrong, and why it is rego-cpp's fault rather than the policy's.
    reason: &'static str,
    /// Text of rego-cpp's error (test faults), or of the decision's reason (decision faults),
    /// that identifies the fault.
    signature: &'static str,
    /// A module and query that reproduce it on rego-cpp; their output contains `signature`.
    repro: (&'static str, &'static str),
    /// The correct (OPA) result of the reproduction, for the record.
    opa: &'static str,
    /// Whether rego-cpp's output for a decision shows this fault (decision faults only).
    symptom: fn(&str) -> bool,
}

fn no_symptom(_: &str) -> bool {
    false
}

/// rego-cpp faults that make library tests fail. A test that fails on rego-cpp must fail with
/// one of these signatures.
const KNOWN_TEST_FAULTS: &[KnownFault] = &[KnownFault {
    reason: "rego-cpp 1.0.0 to 1.5.2 cannot compile `with input as V` when what it evaluates \
             calls any builtin or operator: its `with_rules` pass treats the whole-input \
             reference as a rule reference and throws. `with input.x as V` and `with data.x as \
             V` work. The compiler then fails for every query while such a module is loaded, \
             so every test module (they all set their input with `with input as`) fails as a \
             whole. With several such modules loaded together it also corrupts memory (a crash \
             on the next call), so each test module gets its own interpreter.",
    signature: "shape `rego-localref` has no field `rego-refhead`",
    repro: (
        "package repro\nr if startswith(input.a, \"1\")\nt if { r with input as {\"a\": \"1\"} }\n",
        "data.repro.t",
    ),
    opa: "true",
    symptom: no_symptom,
}];

/// rego-cpp faults that change a decision's text. A decision may differ only where these show,
/// and only in the reason's formatting: rego-cpp's output must equal regorus's decision once
/// quotes, backslashes and spaces are dropped from both and each `%q` left in rego-cpp's reason
/// stands for any text (see [`explained`]).
const KNOWN_DECISION_FAULTS: &[KnownFault] = &[
    KnownFault {
        reason: "rego-cpp's sprintf does not implement the %q verb (OPA formats it as Go does, a \
                 double-quoted string): it leaves `%q` in the text and drops the argument. \
                 common.rego quotes request paths and issuers with it.",
        signature: "%q",
        repro: (
            "package repro\nx := sprintf(\"%q\", [\"a\"])\n",
            "data.repro.x",
        ),
        opa: "\"\\\"a\\\"\"",
        symptom: |text| text.contains("%q"),
    },
    KnownFault {
        reason: "rego-cpp's sprintf, given two or more arguments, writes a string argument that \
                 is the result of a builtin call (concat, upper, object.get's default...) with \
                 its JSON quotes, e.g. `repository owner \"(missing)\"` for OPA's `repository \
                 owner (missing)`; its output then holds unescaped quotes and is not JSON.",
        signature: "[\"\"A\" b\"]",
        repro: (
            "package repro\nx := sprintf(\"%v %v\", [upper(\"a\"), \"b\"])\n",
            "data.repro.x",
        ),
        opa: "\"A b\"",
        symptom: |text| serde_json::from_str::<Value>(text).is_err(),
    },
];

/// `text` without quotes, backslashes and white space.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '"' | '\\') && !c.is_whitespace())
        .collect()
}

/// Whether rego-cpp's output `text` is regorus's decision `ours` but for the formatting that
/// [`KNOWN_DECISION_FAULTS`] explain (`%q` in rego-cpp's text stands for any text).
fn explained(ours: &Value, text: &str) -> bool {
    let ours = squash(&json!({ "expressions": [ours] }).to_string());
    let theirs = squash(text);
    let pieces: Vec<&str> = theirs.split("%q").collect();
    let [first, middle @ .., last] = pieces.as_slice() else {
        return ours == theirs;
    };
    let Some(mut rest) = ours.strip_prefix(first) else {
        return false;
    };
    for piece in middle {
        let Some(at) = rest.find(piece) else {
            return false;
        };
        rest = &rest[at + piece.len()..];
    }
    rest.ends_with(last)
}

/// Runs `repro` on a fresh interpreter: the query's output text, or rego-cpp's error.
fn run_repro(regocpp: &RegoCpp, (module, query): (&str, &str)) -> String {
    let interp = regocpp.interpreter().unwrap();
    interp.add_module("repro.rego", module).unwrap();
    match interp.query(query) {
        Ok(out) => out.text,
        Err(e) => e.to_string(),
    }
}

/// Asserts every known fault still reproduces, so the lists only hold live faults.
fn assert_faults_reproduce(regocpp: &RegoCpp, faults: &[KnownFault]) {
    for f in faults {
        let got = run_repro(regocpp, f.repro);
        assert!(
            got.contains(f.signature),
            "rego-cpp {} no longer shows a known fault (OPA gives {}; rego-cpp now gives \
             {got:?}): delete its entry ({:?}) and rerun.\nIt was: {}",
            regocpp.version(),
            f.opa,
            f.signature,
            f.reason
        );
    }
}

/// rego-cpp's verdict on one test.
fn regocpp_outcome(interp: &Interpreter<'_>, case: &TestCase) -> Result<Outcome, String> {
    match interp.query(&case.path()) {
        // rego-cpp threw while compiling: every query of this interpreter will.
        Err(e) => Err(e.to_string()),
        Ok(out) => Ok(match out.value() {
            Ok(Some(Value::Bool(true))) => Outcome::Pass,
            Ok(_) => Outcome::Fail,
            Err(text) => Outcome::Error(text),
        }),
    }
}

fn library_tests_on_both_engines() {
    let started = Instant::now();
    let modules = modules();
    let cases: Vec<TestCase> = modules.iter().flat_map(rego_test::cases).collect();
    assert!(cases.len() > 100, "only {} test rules found", cases.len());

    // regorus, exactly as `gateward test policies` runs it.
    let regorus = rego_test::run(&modules, "").unwrap_or_else(|errors| {
        panic!("regorus cannot compile the library:\n{}", errors.join("\n"))
    });
    let ran: Vec<&TestCase> = regorus.iter().map(|r| &r.case).collect();
    assert_eq!(
        ran,
        cases.iter().collect::<Vec<_>>(),
        "regorus ran other tests"
    );
    let regorus_failures: Vec<String> = regorus
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| format!("{} {}: {:?}", r.case.module, r.case.rule, r.outcome))
        .collect();
    let regorus_time = started.elapsed();

    // rego-cpp: the library, examples and fixtures (modules without tests) with one test
    // module at a time (see KNOWN_TEST_FAULTS for why not all at once).
    let regocpp = RegoCpp::installed().unwrap();
    assert_faults_reproduce(&regocpp, KNOWN_TEST_FAULTS);
    let support: Vec<&Module> = modules
        .iter()
        .filter(|m| rego_test::cases(m).is_empty())
        .collect();
    let mut outcomes: Vec<(&TestCase, Outcome)> = Vec::new();
    for module in &modules {
        let module_cases: Vec<&TestCase> =
            cases.iter().filter(|c| c.module == module.name).collect();
        if module_cases.is_empty() {
            continue;
        }
        let interp = regocpp.interpreter().unwrap();
        for m in support.iter().copied().chain([module]) {
            if let Err(e) = interp.add_module(&m.name, &m.text) {
                panic!("rego-cpp cannot parse {}: {e}", m.name);
            }
        }
        let mut compile_error = None;
        for case in module_cases {
            let outcome = match &compile_error {
                Some(e) => Outcome::Error(Clone::clone(e)),
                None => regocpp_outcome(&interp, case).unwrap_or_else(|e| {
                    compile_error = Some(e.clone());
                    Outcome::Error(e)
                }),
            };
            outcomes.push((case, outcome));
        }
    }

    let mut passed = 0;
    let mut by_fault = vec![0usize; KNOWN_TEST_FAULTS.len()];
    let mut unexplained = Vec::new();
    for (case, outcome) in &outcomes {
        let known = match outcome {
            Outcome::Pass => {
                passed += 1;
                continue;
            }
            Outcome::Error(e) => KNOWN_TEST_FAULTS
                .iter()
                .position(|f| e.contains(f.signature)),
            Outcome::Fail => None,
        };
        match known {
            Some(i) => by_fault[i] += 1,
            None => unexplained.push(format!("{} {}: {outcome:?}", case.module, case.rule)),
        }
    }
    eprintln!(
        "{} library tests: regorus {} passed ({} ms); rego-cpp {} {passed} passed, {} failed \
         on known rego-cpp faults {by_fault:?}, {} unexplained ({} ms in all)",
        cases.len(),
        cases.len() - regorus_failures.len(),
        regorus_time.as_millis(),
        regocpp.version(),
        by_fault.iter().sum::<usize>(),
        unexplained.len(),
        started.elapsed().as_millis()
    );
    assert!(
        regorus_failures.is_empty(),
        "library tests failing on regorus:\n{}",
        regorus_failures.join("\n")
    );
    assert!(
        unexplained.is_empty(),
        "library tests failing on rego-cpp {} for no known rego-cpp fault (a policy that \
         leans on regorus-only behaviour, or a new rego-cpp fault to record):\n{}",
        regocpp.version(),
        unexplained.join("\n")
    );
    for (fault, n) in KNOWN_TEST_FAULTS.iter().zip(&by_fault) {
        assert!(
            *n > 0,
            "no library test hits the known fault {:?} any more: delete its entry",
            fault.signature
        );
    }
}

/// The requests of the decision comparison: `(label, input)`.
type Requests = Vec<(String, Value)>;

/// The claims fixtures of `examples/fixtures_test.rego`: its objects with an `iat`, and two
/// SPIFFE SVIDs.
fn fixture_claims(modules: &[Module]) -> BTreeMap<String, Value> {
    let mut engine = regorus::Engine::new();
    for m in modules {
        engine.add_policy(m.name.clone(), m.text.clone()).unwrap();
    }
    let mut eval = |query: &str| -> Value {
        let results = engine.eval_query(query.to_string(), false).unwrap();
        let value = &results.result[0].expressions[0].value;
        serde_json::from_str(&value.to_json_str().unwrap()).unwrap()
    };
    let fx = "data.gateward.examples.fixtures_test";
    let mut claims: BTreeMap<String, Value> = eval(fx)
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.get("iat").is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, id) in [
        ("spiffe_ci", "spiffe://prod.acme.example/ns/ci/sa/runner"),
        (
            "spiffe_payments",
            "spiffe://prod.acme.example/ns/payments/sa/refunds",
        ),
    ] {
        claims.insert(name.into(), eval(&format!("{fx}.spiffe_svid({id:?})")));
    }
    assert!(claims.len() >= 7, "fixtures: {:?}", claims.keys());
    claims
}

/// The policy input for `claims` from `issuer` (as `fixtures_test.request` builds it).
fn request(issuer: &str, claims: &Value, method: &str, path: &str, now: i64) -> Value {
    json!({
        "token": {"issuer": issuer, "header": {"alg": "RS256", "typ": "JWT"}, "claims": claims},
        "request": {"method": method, "path": path, "query": {}, "host": "api.internal", "headers": {}},
        "now": now,
    })
}

/// Requests over `routes`: every claims fixture on every route; and, when `deep`, for each
/// (route, claims) pair the gate allows (on regorus, `allows`): other methods and paths, an
/// unknown issuer, and the claims with each claim in turn missing.
fn requests(
    routes: &[Value],
    claims: &BTreeMap<String, Value>,
    deep: bool,
    allows: &dyn Fn(&Value) -> bool,
) -> Requests {
    let mut out = Vec::new();
    for route in routes {
        let name = route["name"].as_str().unwrap();
        let issuer = route["issuer"].as_str().unwrap();
        let prefix = route["path_prefix"].as_str().unwrap();
        let methods: Vec<&str> = route["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .map(|m| if m == "*" { "GET" } else { m })
            .collect();
        let path = format!("{prefix}/x");
        for (fixture, c) in claims {
            let now = c["iat"].as_i64().unwrap() + 100;
            let input = request(issuer, c, methods[0], &path, now);
            let natural = deep && allows(&input);
            out.push((format!("{name}: {fixture}"), input));
            if !natural {
                continue;
            }
            for m in methods.iter().copied().chain(["DELETE"]) {
                for p in [
                    prefix.to_string(),
                    format!("{prefix}-evil"),
                    format!("{prefix}/../x"),
                ] {
                    out.push((
                        format!("{name}: {fixture} {m} {p}"),
                        request(issuer, c, m, &p, now),
                    ));
                }
            }
            out.push((
                format!("{name}: {fixture} from another issuer"),
                request("nobody", c, methods[0], &path, now),
            ));
            for key in c.as_object().unwrap().keys() {
                let mut dropped = c.clone();
                dropped.as_object_mut().unwrap().remove(key);
                out.push((
                    format!("{name}: {fixture} without {key}"),
                    request(issuer, &dropped, methods[0], &path, now),
                ));
            }
        }
    }
    out
}

/// `data.a.b.rule` as a rego-cpp entrypoint, `a/b/rule`.
fn entrypoint_path(entrypoint: &str) -> String {
    entrypoint.trim_start_matches("data.").replace('.', "/")
}

fn entrypoints_decide_alike_on_both_engines() {
    let started = Instant::now();
    let all = modules();
    // What a gate loads: everything but the tests (fixtures_test.rego holds no rules a
    // decision reads, but is a test file).
    let library: Vec<Module> = all
        .iter()
        .filter(|m| !m.name.ends_with("_test.rego"))
        .cloned()
        .collect();
    let claims = fixture_claims(&all);
    let regocpp = RegoCpp::installed().unwrap();
    assert_faults_reproduce(&regocpp, KNOWN_DECISION_FAULTS);

    // Each example's data file with its entrypoint; gateward.data.json (every example's routes)
    // with the default entrypoint, over the deep set of requests.
    let examples = policies_dir().join("examples");
    let mut data_files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".data.json"))
        .collect();
    data_files.sort();
    assert!(data_files.len() >= 7, "{data_files:?}");

    let mut compared = 0;
    let mut allowed = 0;
    let mut by_fault = vec![0usize; KNOWN_DECISION_FAULTS.len()];
    let mut differences = Vec::new();
    let (mut regorus_time, mut regocpp_time) = (Duration::ZERO, Duration::ZERO);
    for file in &data_files {
        let stem = file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".data.json");
        let rego = std::fs::read_to_string(examples.join(format!("{stem}.rego"))).unwrap();
        let package = rego
            .lines()
            .find_map(|l| l.strip_prefix("package "))
            .unwrap()
            .trim();
        let entrypoint = format!("data.{package}.decision");
        let data_text = std::fs::read_to_string(file).unwrap();
        let data: Value = serde_json::from_str(&data_text).unwrap();
        let routes = data["routes"].as_array().unwrap();

        let policy = Policy::compile(&library, Some(&data), &entrypoint)
            .unwrap_or_else(|e| panic!("regorus, {entrypoint}: {}", e.join("\n")))
            // Unoptimised regorus on a loaded machine can take longer than the default budget.
            .with_time_limit(None)
            .with_evaluator(Evaluator::Compiled);
        assert_eq!(policy.evaluator(), Evaluator::Compiled, "{entrypoint}");
        let interpreted = policy.clone().with_evaluator(Evaluator::Interpreter);
        // Memoised: the deep requests are chosen by what regorus allows.
        let memo = std::cell::RefCell::new(BTreeMap::<String, Value>::new());
        let decide = |input: &Value| -> Value {
            let key = input.to_string();
            if let Some(v) = memo.borrow().get(&key) {
                return v.clone();
            }
            let v = policy
                .evaluate_value(regorus::Value::from(input.clone()))
                .unwrap();
            let reference = interpreted
                .evaluate_value(regorus::Value::from(input.clone()))
                .unwrap();
            assert_eq!(
                v, reference,
                "{entrypoint}: RVM and interpreter differ on {input}"
            );
            let v: Value = serde_json::from_str(&v.to_json_str().unwrap()).unwrap();
            memo.borrow_mut().insert(key, v.clone());
            v
        };
        let allows = |input: &Value| decide(input)["allow"] == json!(true);
        let requests = requests(routes, &claims, stem == "gateward", &allows);

        let interp = regocpp.interpreter().unwrap();
        for m in &library {
            interp.add_module(&m.name, &m.text).unwrap();
        }
        interp.add_data_json(&data_text).unwrap();
        // A query first: it reports a compile failure, where building would abort.
        interp.set_input_json(&requests[0].1.to_string()).unwrap();
        interp
            .query(&entrypoint)
            .unwrap_or_else(|e| panic!("rego-cpp cannot compile the library: {e}"));
        let ep = entrypoint_path(&entrypoint);
        let bundle = interp.build(&[&ep]).unwrap();

        for (label, input) in &requests {
            let t = Instant::now();
            let ours = decide(input);
            let t = (t.elapsed(), Instant::now());
            interp.set_input_json(&input.to_string()).unwrap();
            let out = bundle.query(&ep).unwrap();
            regorus_time += t.0;
            regocpp_time += t.1.elapsed();
            compared += 1;
            allowed += usize::from(ours["allow"] == json!(true));
            let same = matches!(out.value(), Ok(Some(theirs)) if theirs == ours);
            if same {
                continue;
            }
            let faults: Vec<usize> = (0..KNOWN_DECISION_FAULTS.len())
                .filter(|i| (KNOWN_DECISION_FAULTS[*i].symptom)(&out.text))
                .collect();
            if !faults.is_empty() && explained(&ours, &out.text) {
                for i in faults {
                    by_fault[i] += 1;
                }
                continue;
            }
            differences.push(format!(
                "{entrypoint} with {stem}.data.json, {label}:\n  regorus:  {ours}\n  rego-cpp: {}",
                out.text
            ));
        }
    }
    eprintln!(
        "{compared} decisions compared ({allowed} allows) over {} data files: {} differ for \
         known rego-cpp faults {by_fault:?}, {} otherwise ({} ms in all; evaluation: regorus \
         {} ms, rego-cpp {} ms)",
        data_files.len(),
        by_fault.iter().sum::<usize>(),
        differences.len(),
        started.elapsed().as_millis(),
        regorus_time.as_millis(),
        regocpp_time.as_millis()
    );
    assert!(
        allowed > 10,
        "too few allowed requests ({allowed}) to compare"
    );
    assert!(
        differences.is_empty(),
        "{} decisions differ between regorus and rego-cpp {}:\n{}",
        differences.len(),
        regocpp.version(),
        differences.join("\n")
    );
    for (fault, n) in KNOWN_DECISION_FAULTS.iter().zip(&by_fault) {
        assert!(
            *n > 0,
            "no decision hits the known fault {:?} any more: delete its entry",
            fault.signature
        );
    }
}

/// The tests of this file: each installs rego-cpp from PyPI on first run.
mod needs_download {
    #[test]
    fn library_tests_on_both_engines() {
        super::library_tests_on_both_engines();
    }

    #[test]
    fn entrypoints_decide_alike_on_both_engines() {
        super::entrypoints_decide_alike_on_both_engines();
    }
}
