//! Rego unit tests in the style of `opa test`: every rule whose name starts with `test_` is a
//! test; it passes when it evaluates to `true` (tests set their input with `with input as`).
//! Run on the same regorus engine the gate uses, so a passing test means the same thing in the
//! Envoy filter.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use regorus::{Engine, Value};

use crate::policy::Module;

/// One test rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The module that defines it.
    pub module: String,
    /// Its package, e.g. `gateward.github_actions_test`.
    pub package: String,
    /// The rule name, e.g. `test_fork_is_denied`.
    pub rule: String,
}

impl TestCase {
    /// `data.<package>.<rule>`.
    pub fn path(&self) -> String {
        format!("data.{}.{}", self.package, self.rule)
    }
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It evaluated to `true`.
    Pass,
    /// It was false or undefined (some condition in its body did not hold).
    Fail,
    /// Evaluation failed (a type error, a missing builtin, ...).
    Error(String),
}

/// A test and how it ended, with anything it `print`ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test.
    pub case: TestCase,
    /// Its outcome.
    pub outcome: Outcome,
    /// Output of `print` calls made while it ran.
    pub prints: Vec<String>,
}

/// Compiles `modules` together and runs every `test_*` rule whose name contains `filter`
/// (all when empty), in module order. Err lists compile errors, each naming its module.
pub fn run(modules: &[Module], filter: &str) -> Result<Vec<TestResult>, Vec<String>> {
    let mut engine = Engine::new();
    engine.set_gather_prints(true);
    let mut errors = Vec::new();
    for m in modules {
        if let Err(e) = engine.add_policy(m.name.clone(), m.text.clone()) {
            errors.push(format!("{}: {e}", m.name));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut results = Vec::new();
    for case in modules.iter().flat_map(cases) {
        if !case.rule.contains(filter) {
            continue;
        }
        let outcome = match engine.eval_rule(case.path()) {
            Ok(Value::Bool(true)) => Outcome::Pass,
            Ok(_) => Outcome::Fail,
            Err(e) => Outcome::Error(e.to_string()),
        };
        let prints = engine.take_prints().unwrap_or_default();
        results.push(TestResult {
            case,
            outcome,
            prints,
        });
    }
    Ok(results)
}

/// The test rules a module defines: rule heads at the start of a line named `test_*`.
pub fn cases(module: &Module) -> Vec<TestCase> {
    let Some(package) = module.text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("package ")
            .map(|p| p.split('#').next().unwrap_or("").trim().to_string())
    }) else {
        return Vec::new();
    };
    let mut out: Vec<TestCase> = Vec::new();
    for line in module.text.lines() {
        let Some(rest) = line.strip_prefix("test_") else {
            continue;
        };
        let tail: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rule = format!("test_{tail}");
        // A test written as several rule bodies is one test.
        if !out.iter().any(|c| c.rule == rule) {
            out.push(TestCase {
                module: module.name.clone(),
                package: package.clone(),
                rule,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, text: &str) -> Module {
        Module {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn passing_failing_and_erroring_tests_are_told_apart() {
        let lib = module(
            "lib.rego",
            "package lib\nimport rego.v1\nallow if input.ok == true\n",
        );
        let tests = module(
            "lib_test.rego",
            "package lib_test\nimport rego.v1\nimport data.lib\n\n\
             test_allows if lib.allow with input as {\"ok\": true}\n\
             test_wrongly_expects_allow if {\n  print(\"checking\")\n  lib.allow with input as {\"ok\": false}\n}\n\
             test_errors if { x := 1 / 0; x == 1 }\n\
             test_allows if lib.allow with input as {\"ok\": true}\n",
        );
        let results = run(&[lib, tests], "").unwrap_or_default();
        let got: Vec<(&str, &Outcome)> = results
            .iter()
            .map(|r| (r.case.rule.as_str(), &r.outcome))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got.first(), Some(&("test_allows", &Outcome::Pass)));
        assert_eq!(got.get(1).map(|g| g.1), Some(&Outcome::Fail));
        assert!(
            results
                .get(1)
                .is_some_and(|r| r.prints.iter().any(|p| p.contains("checking"))),
            "{results:?}"
        );
        assert!(matches!(
            got.get(2).map(|g| g.1),
            Some(Outcome::Error(_) | Outcome::Fail)
        ));
        let only = run(
            &[module(
                "t.rego",
                "package t\ntest_a := true\ntest_b := true\n",
            )],
            "_b",
        )
        .unwrap_or_default();
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn compile_errors_name_the_module() {
        let errors = run(&[module("bad_test.rego", "package x\ntest_a if {")], "")
            .err()
            .unwrap_or_default();
        assert!(errors
            .first()
            .is_some_and(|e| e.starts_with("bad_test.rego:")));
    }
}
