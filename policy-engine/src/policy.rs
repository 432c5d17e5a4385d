//! Rego policies on regorus: compiled once at load, evaluated per request over the input
//! document described in `docs/policy-input.md`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[cfg(feature = "std")]
use alloc::sync::Arc;
use core::num::NonZeroU32;
use core::time::Duration;
#[cfg(feature = "std")]
use regorus::languages::rego::compiler::Compiler;
#[cfg(feature = "std")]
use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};
use serde_json::Value as Json;

/// The default entrypoint.
pub const DEFAULT_ENTRYPOINT: &str = "data.gateward.decision";

/// The default evaluation budget ([`Policy::with_time_limit`]), in milliseconds: a hundred times
/// what the policy library takes per request in Envoy, and well under Envoy's timeouts.
pub const DEFAULT_MAX_EVALUATION_MS: u64 = 100;

/// The largest evaluation budget a configuration may set, in milliseconds.
pub const MAX_EVALUATION_MS: u64 = 10_000;

/// A policy module's name and Rego text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The name errors refer to (a file name, or `modules[0]`).
    pub name: String,
    /// The Rego source.
    pub text: String,
}

/// Which of regorus's evaluators runs a policy (`policy.evaluator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluator {
    /// regorus's tree-walking interpreter: what `gateward test` and explanations use. An error
    /// during evaluation (a builtin or operator given the wrong type, say) stops it, and the
    /// request is denied `policy_error`.
    #[default]
    Interpreter,
    /// regorus's RVM: the policy compiled to instructions for its virtual machine, about three
    /// times faster than the interpreter on the policy library, natively and in Envoy.
    /// Used where the core has `std` (Envoy, OpenBao, the CLI) and the RVM compiler accepts the
    /// policy; otherwise the interpreter runs it (the RVM compiler refuses `print`, for one).
    /// **Errors have OPA's semantics:** an error inside a rule body makes that body undefined
    /// instead of failing the evaluation, so `not r` over a rule that errors is true. Only for
    /// policies that check the types of what they read, as the library does.
    Compiled,
}

/// A compiled policy, ready to evaluate.
#[derive(Clone)]
pub struct Policy {
    /// The engine the policy was compiled on, prepared (modules analysed, `data` loaded) and
    /// carrying the evaluation budget: each interpreter evaluation runs on a clone of it.
    engine: Engine,
    /// The RVM program, when the RVM compiler accepted the policy.
    #[cfg(feature = "std")]
    vm: Option<Vm>,
    /// Evaluate on [`Policy::vm`] ([`Evaluator::Compiled`]).
    #[cfg(feature = "std")]
    use_vm: bool,
    entrypoint: String,
    /// Kept for explanations (`explain`), which evaluate on a fresh engine with coverage on.
    modules: Vec<Module>,
    /// What of the input the modules can read.
    reads: InputUse,
    data: Option<Json>,
    /// The evaluation budget, enforced by regorus's cooperative execution timer: set on
    /// [`Policy::engine`] and on each RVM machine, never process-wide.
    time_limit: Option<ExecutionTimerConfig>,
}

impl core::fmt::Debug for Policy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Policy")
            .field("entrypoint", &self.entrypoint)
            .finish_non_exhaustive()
    }
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Whether to allow.
    pub allow: bool,
    /// Status for a denial (default 403).
    pub status: Option<u16>,
    /// Why, in the policy author's words.
    pub reason: Option<String>,
    /// Headers for the upstream request (on allow).
    pub headers: Vec<(String, String)>,
    /// Headers for the local reply (on deny).
    pub response_headers: Vec<(String, String)>,
}

impl Policy {
    /// Parses and compiles `modules` with `data` for `entrypoint`. Each error names its module
    /// and, for syntax errors, the line and column (regorus's message carries them).
    pub fn compile(
        modules: &[Module],
        data: Option<&Json>,
        entrypoint: &str,
    ) -> Result<Policy, Vec<String>> {
        let mut engine = Engine::new();
        let mut errors = Vec::new();
        for m in modules {
            if let Err(e) = engine.add_policy(m.name.clone(), m.text.clone()) {
                errors.push(describe_parse_error(&m.name, &e.to_string()));
            }
        }
        if let Some(data) = data {
            if !data.is_object() {
                errors.push(String::from("data must be a JSON object"));
            } else if let Err(e) = engine.add_data(Value::from(data.clone())) {
                errors.push(format!("data: {e}"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if !entrypoint.starts_with("data.") {
            return Err(alloc::vec![format!(
                "entrypoint {entrypoint:?} must start with `data.`"
            )]);
        }
        let rule: regorus::Rc<str> = entrypoint.into();
        // Compiling checks the entrypoint and leaves `engine` prepared for evaluation.
        #[cfg_attr(not(feature = "std"), allow(unused_variables))]
        let compiled = engine
            .compile_with_entrypoint(&rule)
            .map_err(|e| alloc::vec![format!("compiling for entrypoint {entrypoint}: {e}")])?;
        // The interpreter resolves functions only when a rule runs, so a misspelt or
        // unsupported builtin would surface as a runtime deny. regorus's RVM compiler resolves
        // every call reachable from the entrypoint: use it to refuse such a policy at load.
        // Only its unknown-function verdict is used: the interpreter evaluates, and the RVM
        // compiler refuses some things the interpreter runs (e.g. `print` in regorus 0.14.1).
        #[cfg(feature = "std")]
        let vm = match Compiler::compile_from_policy(&compiled, &[entrypoint]) {
            Ok(program) => Some(Vm {
                program,
                data: engine_data(data),
                idle: std::sync::Mutex::new(None),
            }),
            Err(e) => {
                let report = e.to_string();
                if report.contains("Unknown function") {
                    return Err(alloc::vec![describe_compile_error(&report)]);
                }
                None
            }
        };
        let time_limit = time_limit(Some(Duration::from_millis(DEFAULT_MAX_EVALUATION_MS)));
        set_budget(&mut engine, time_limit);
        Ok(Policy {
            engine,
            #[cfg(feature = "std")]
            vm,
            #[cfg(feature = "std")]
            use_vm: false,
            entrypoint: entrypoint.to_string(),
            modules: modules.to_vec(),
            data: data.cloned(),
            reads: modules
                .iter()
                .fold(InputUse::default(), |u, m| u.union(scan(&m.text))),
            time_limit,
        })
    }

    /// Sets the evaluation budget (`None`: unbounded). regorus checks the elapsed time every few
    /// dozen steps of evaluation through the platform's monotonic clock; where there is none (the
    /// JavaScript build), the budget is not enforced. One builtin call is not interrupted.
    pub fn with_time_limit(mut self, limit: Option<Duration>) -> Policy {
        self.time_limit = time_limit(limit);
        set_budget(&mut self.engine, self.time_limit);
        self
    }

    /// Chooses the evaluator (a compiled policy starts with [`Evaluator::Interpreter`]).
    /// [`Evaluator::Compiled`] keeps the RVM program when there is one; [`Evaluator::Interpreter`]
    /// drops it.
    // Without `std` there is no RVM to configure, so `self` is never changed.
    #[cfg_attr(not(feature = "std"), allow(unused_mut))]
    pub fn with_evaluator(mut self, evaluator: Evaluator) -> Policy {
        #[cfg(feature = "std")]
        {
            // The machine is built only for a policy that runs on it.
            self.use_vm =
                evaluator == Evaluator::Compiled && self.vm.as_ref().is_some_and(Vm::prepare);
            if let (false, Some(vm)) = (self.use_vm, &self.vm) {
                if let Ok(mut slot) = vm.idle.lock() {
                    *slot = None;
                }
            }
        }
        #[cfg(not(feature = "std"))]
        let _ = evaluator;
        self
    }

    /// The evaluator that runs this policy: [`Evaluator::Compiled`] only when it was asked for
    /// and the RVM compiler accepted the policy.
    pub fn evaluator(&self) -> Evaluator {
        #[cfg(feature = "std")]
        if self.use_vm {
            return Evaluator::Compiled;
        }
        Evaluator::Interpreter
    }

    /// The entrypoint rule.
    pub fn entrypoint(&self) -> &str {
        &self.entrypoint
    }

    /// Which parts of the input the policy can read: a decision may be reused for a request
    /// whose readable parts are the same ([`crate::Gate::decision_key`]).
    pub fn reads(&self) -> InputUse {
        self.reads
    }

    /// The Rego modules it was compiled from.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The `data` document it was compiled with.
    pub fn data(&self) -> Option<&Json> {
        self.data.as_ref()
    }

    /// Evaluates the policy over `input`. Err is a policy error (fail closed): an evaluation
    /// error, or a result that is not a decision.
    pub fn evaluate(&self, input: Value) -> Result<Verdict, String> {
        interpret(&self.evaluate_value(input)?)
    }

    /// Evaluates the policy over `input` and returns the entrypoint's raw result, for hosts whose
    /// results carry more than a [`Verdict`] (the OpenBao method: policies, TTL, metadata).
    /// Err is an evaluation error; an undefined result is `Ok(Value::Undefined)`.
    pub fn evaluate_value(&self, input: Value) -> Result<Value, String> {
        #[cfg(feature = "std")]
        if let Some(vm) = self.vm.as_ref().filter(|_| self.use_vm) {
            return vm
                .run(input, self.time_limit)
                .map_err(|e| self.describe_failure(e));
        }
        // The budget belongs to the engine that evaluates (a clone of the prepared one), not to
        // regorus's process-wide fallback: evaluations on several threads at once (the OpenBao
        // plugin's runtime, a native host) each run under their own policy's limit.
        let mut engine = self.engine.clone();
        engine.set_input(input);
        engine
            .eval_rule(self.entrypoint.clone())
            .map_err(|e| self.describe_failure(e.to_string()))
    }

    /// An evaluation error as the deny reason: a budget overrun names the setting.
    fn describe_failure(&self, e: String) -> String {
        match self.time_limit {
            Some(t) if e.contains("time limit") => format!(
                "evaluation stopped: it ran past its time limit of {} ms (policy.max_evaluation_ms)",
                t.limit.as_millis()
            ),
            _ => format!("evaluation failed: {e}"),
        }
    }
}

/// `data` as the engine holds it: the configured object, or an empty one.
#[cfg(feature = "std")]
fn engine_data(data: Option<&Json>) -> Value {
    data.map_or_else(Value::new_object, |d| Value::from(d.clone()))
}

/// A policy's RVM program with one idle virtual machine kept for the next evaluation. Building
/// a machine (registers, the data conflict check) costs about a fifth of an evaluation, so one
/// is reused; a host that evaluates on several threads at once builds extra ones.
#[cfg(feature = "std")]
struct Vm {
    program: Arc<Program>,
    data: Value,
    idle: std::sync::Mutex<Option<RegoVM>>,
}

#[cfg(feature = "std")]
impl Clone for Vm {
    fn clone(&self) -> Vm {
        Vm {
            program: Arc::clone(&self.program),
            data: self.data.clone(),
            idle: std::sync::Mutex::new(None),
        }
    }
}

#[cfg(feature = "std")]
impl Vm {
    /// Builds the first machine, so that a program that cannot take `data` (a rule and a data key
    /// at the same path) is found at load: false then, and the interpreter runs the policy.
    fn prepare(&self) -> bool {
        match self.machine() {
            Ok(machine) => {
                if let Ok(mut slot) = self.idle.lock() {
                    *slot = Some(machine);
                }
                true
            }
            Err(_) => false,
        }
    }

    fn machine(&self) -> Result<RegoVM, String> {
        let mut machine = RegoVM::new();
        machine.load_program(Arc::clone(&self.program));
        // The wall-clock budget bounds evaluation; the instruction count (25,000 by default)
        // would refuse large route tables the interpreter evaluates.
        machine.set_max_instructions(usize::MAX);
        // A failing builtin or operator stops evaluation with an error, as in regorus's
        // interpreter, instead of making its expression undefined (OPA's default): under `not`,
        // undefined would turn a type error in a hostile claim into an allow.
        machine.set_strict_builtin_errors(true);
        machine
            .set_data(self.data.clone())
            .map_err(|e| e.to_string())?;
        Ok(machine)
    }

    fn run(&self, input: Value, limit: Option<ExecutionTimerConfig>) -> Result<Value, String> {
        let idle = self.idle.lock().ok().and_then(|mut slot| slot.take());
        let mut machine = match idle {
            Some(m) => m,
            None => self.machine()?,
        };
        machine.set_execution_timer_config(limit);
        machine.set_input(input);
        let result = machine.execute().map_err(|e| e.to_string());
        // The input holds the token's claims: not kept past the request.
        machine.set_input(Value::Undefined);
        if let Ok(mut slot) = self.idle.lock() {
            *slot = Some(machine);
        }
        result
    }
}

/// How many evaluation steps regorus takes between two clock reads.
const CHECK_INTERVAL: NonZeroU32 = NonZeroU32::MIN.saturating_add(63);

/// Puts `limit` on `engine`. `None` clears the engine's own limit; regorus then falls back to its
/// process-wide setting, which Gateward never sets (unbounded unless the embedding host sets it).
fn set_budget(engine: &mut Engine, limit: Option<ExecutionTimerConfig>) {
    match limit {
        Some(limit) => engine.set_execution_timer_config(limit),
        None => engine.clear_execution_timer_config(),
    }
}

fn time_limit(limit: Option<Duration>) -> Option<ExecutionTimerConfig> {
    limit.map(|limit| ExecutionTimerConfig {
        limit,
        check_interval: CHECK_INTERVAL,
    })
}

/// Reads a policy result: `true`/`false`, or `{allow, status, reason, headers, response_headers}`.
/// Undefined denies.
pub fn interpret(result: &Value) -> Result<Verdict, String> {
    match result {
        Value::Undefined => Ok(Verdict {
            allow: false,
            reason: Some(String::from("policy result is undefined (no rule matched)")),
            ..Verdict::default()
        }),
        Value::Bool(allow) => Ok(Verdict {
            allow: *allow,
            ..Verdict::default()
        }),
        Value::Object(_) => {
            let json = result
                .to_json_str()
                .map_err(|e| format!("policy result is not JSON-representable: {e}"))?;
            let obj: serde_json::Map<String, Json> =
                serde_json::from_str(&json).map_err(|e| format!("policy result: {e}"))?;
            from_object(&obj)
        }
        other => Err(format!(
            "policy result must be a boolean or an object, found {}",
            other
                .to_json_str()
                .map(|s| truncate(&s))
                .unwrap_or_default()
        )),
    }
}

/// The parts of the input document a policy's text can reach. Found by reading every `input…`
/// reference outside comments and strings; anything not a plain `input.token…` or
/// `input.request.{method,path,query,host}` reference (`input.now`, `input.request.headers`,
/// `input[x]`, a bare `input`) counts as reading the rest. Over-approximates, never under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputUse {
    /// It may read `input.now`.
    pub now: bool,
    /// It may read `input.request.headers`.
    pub headers: bool,
    /// It calls a builtin whose result varies between calls (`rand.*`).
    pub nondeterministic: bool,
}

impl InputUse {
    fn union(self, o: InputUse) -> InputUse {
        InputUse {
            now: self.now || o.now,
            headers: self.headers || o.headers,
            nondeterministic: self.nondeterministic || o.nondeterministic,
        }
    }
}

/// Rego text without its `#` comments (strings, which may hold a `#`, kept as written).
pub fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '"' | '`' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' && c == '"' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if d == c {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Scans Rego text for the references [`InputUse`] describes.
fn scan(text: &str) -> InputUse {
    let mut used = InputUse::default();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '#' => while chars.next_if(|&(_, c)| c != '\n').is_some() {},
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '`' => while chars.next().is_some_and(|(_, c)| c != '`') {},
            c if c.is_ascii_alphabetic() || c == '_' => {
                // A whole reference: identifiers joined by dots, e.g. `input.request.path`.
                let mut end = i + c.len_utf8();
                while let Some(&(j, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                        end = j + c.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let reference = text.get(i..end).unwrap_or_default();
                let mut parts = reference.split('.');
                match parts.next() {
                    Some("input") => match (parts.next(), parts.next()) {
                        (Some("token"), _) => {}
                        (Some("request"), Some("method" | "path" | "query" | "host")) => {}
                        (Some("request"), _) => used.headers = true,
                        (Some("now"), _) => used.now = true,
                        _ => {
                            used.now = true;
                            used.headers = true;
                        }
                    },
                    Some("rand") => used.nondeterministic = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    used
}

/// Turns regorus's multi-line compiler report into one line: `module:line:col: problem`.
/// A parse error as `module:line:col: problem`, then regorus's excerpt of the line with a caret
/// under the column. regorus's report (`--> module:line:col`, excerpt, `error: problem`) already
/// names the module, so it is not prefixed again.
fn describe_parse_error(module: &str, report: &str) -> String {
    let location = report.lines().find_map(|l| l.trim().strip_prefix("--> "));
    let problem = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "));
    let (Some(at), Some(problem)) = (location, problem) else {
        return format!("{module}: {}", report.trim());
    };
    let excerpt: Vec<&str> = report
        .lines()
        .filter(|l| {
            l.trim_start()
                .starts_with(|c: char| c == '|' || c.is_ascii_digit())
        })
        .collect();
    if excerpt.is_empty() {
        format!("{at}: {problem}")
    } else {
        format!("{at}: {problem}\n{}", excerpt.join("\n"))
    }
}

#[cfg(feature = "std")]
fn describe_compile_error(report: &str) -> String {
    let location = report
        .lines()
        .filter_map(|l| l.trim().strip_prefix("--> "))
        .next_back();
    let problem = report
        .lines()
        .filter_map(|l| l.trim().strip_prefix("error: "))
        .map(|m| m.trim_start_matches("Compilation error:").trim())
        .rfind(|m| !m.is_empty());
    match (location, problem) {
        (Some(at), Some(p)) if p.starts_with("Unknown function") => format!(
            "{at}: {p}: neither a builtin Gateward's engine supports (docs/policies.md#builtins) \
             nor a function the policy defines"
        ),
        (Some(at), Some(p)) => format!("{at}: {p}"),
        _ => format!("policy does not compile: {}", report.trim()),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn from_object(obj: &serde_json::Map<String, Json>) -> Result<Verdict, String> {
    let allow = match obj.get("allow") {
        Some(Json::Bool(b)) => *b,
        None => false,
        Some(other) => {
            return Err(format!(
                "policy result `allow` must be a boolean, found {other}"
            ))
        }
    };
    let status = match obj.get("status") {
        None => None,
        Some(s) => match s.as_u64() {
            Some(s @ 400..=599) => Some(s as u16),
            _ => {
                return Err(format!(
                    "policy result `status` must be an HTTP status 400-599, found {s}"
                ))
            }
        },
    };
    let reason = match obj.get("reason") {
        None => None,
        Some(Json::String(r)) => Some(r.clone()),
        Some(other) => {
            return Err(format!(
                "policy result `reason` must be a string, found {other}"
            ))
        }
    };
    Ok(Verdict {
        allow,
        status,
        reason,
        headers: header_map(obj, "headers")?,
        response_headers: header_map(obj, "response_headers")?,
    })
}

fn header_map(
    obj: &serde_json::Map<String, Json>,
    field: &str,
) -> Result<Vec<(String, String)>, String> {
    let Some(v) = obj.get(field) else {
        return Ok(Vec::new());
    };
    let Json::Object(map) = v else {
        return Err(format!(
            "policy result `{field}` must be an object of strings"
        ));
    };
    map.iter()
        .map(|(k, v)| {
            let Json::String(v) = v else {
                return Err(format!("policy result `{field}.{k}` must be a string"));
            };
            if !crate::headers::valid_name(k) {
                return Err(format!(
                    "policy result `{field}`: {k:?} is not a valid header name"
                ));
            }
            if !crate::headers::valid_value(v) {
                return Err(format!(
                    "policy result `{field}.{k}`: value has control characters"
                ));
            }
            Ok((k.to_ascii_lowercase(), v.clone()))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use alloc::vec;

    fn module(text: &str) -> Vec<Module> {
        vec![Module {
            name: "p.rego".into(),
            text: text.into(),
        }]
    }

    #[test]
    fn syntax_errors_name_module_line_and_column() {
        let errs = Policy::compile(
            &module("package gateward\n\ndecision := {\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1);
        // The module is named once, with the line and column, and the excerpt follows.
        assert!(
            errs[0].starts_with("p.rego:3:") || errs[0].starts_with("p.rego:4:"),
            "{}",
            errs[0]
        );
        assert_eq!(errs[0].matches("p.rego").count(), 1, "{}", errs[0]);
        assert!(errs[0].contains("^"), "{}", errs[0]);
    }

    #[test]
    fn boolean_and_object_results() {
        let p = Policy::compile(
            &module("package gateward\nimport rego.v1\ndecision := {\"allow\": input.ok, \"reason\": \"r\", \"headers\": {\"X-A\": \"1\"}}\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap();
        let v = p
            .evaluate(Value::from(serde_json::json!({"ok": true})))
            .unwrap();
        assert!(v.allow);
        assert_eq!(v.headers, vec![("x-a".into(), "1".into())]);
        let v = p
            .evaluate(Value::from(serde_json::json!({"ok": false})))
            .unwrap();
        assert!(!v.allow);
        assert_eq!(v.reason.as_deref(), Some("r"));
    }

    #[test]
    fn undefined_denies_and_bad_results_are_errors() {
        let p = Policy::compile(
            &module("package gateward\nimport rego.v1\ndecision if input.ok\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap();
        assert!(
            p.evaluate(Value::from(serde_json::json!({"ok": true})))
                .unwrap()
                .allow
        );
        assert!(
            !p.evaluate(Value::from(serde_json::json!({})))
                .unwrap()
                .allow
        );
        let p = Policy::compile(
            &module("package gateward\ndecision := 7\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap();
        assert!(p.evaluate(Value::new_object()).is_err());
        let p = Policy::compile(&module("package gateward\ndecision := {\"allow\": true, \"headers\": {\"a\": \"x\\ny\"}}\n"), None, DEFAULT_ENTRYPOINT).unwrap();
        assert!(p
            .evaluate(Value::new_object())
            .unwrap_err()
            .contains("control"));
    }

    #[test]
    #[cfg(feature = "std")]
    fn missing_entrypoint_and_unknown_functions_fail_at_load_naming_them() {
        let e = Policy::compile(&module("package other\nx := 1\n"), None, DEFAULT_ENTRYPOINT)
            .unwrap_err();
        assert!(e[0].contains("entrypoint"), "{e:?}");
        let e = Policy::compile(
            &module("package gateward\nimport rego.v1\n\nok if strings.frobnicate(\"a\")\ndecision := ok\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("p.rego:4:")
                && e[0].contains("Unknown function: 'strings.frobnicate'"),
            "{e:?}"
        );
        // Builtins regorus has but this build leaves out (time: no clock in the core) too.
        let e = Policy::compile(
            &module("package gateward\ndecision := time.now_ns() > 0\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap_err();
        assert!(e[0].contains("time.now_ns"), "{e:?}");
    }

    #[test]
    fn input_use_is_found_outside_comments_and_strings() {
        let reads = |text: &str| scan(text);
        let none = InputUse::default();
        assert_eq!(
            reads("a if input.token.claims.ref == \"x\"\nb if input.request.path == \"/\"\n"),
            none
        );
        assert_eq!(
            reads("# input.now and input.request.headers in a comment\nx := \"input.now\"\ny := `input[k]`\n"),
            none
        );
        let now = reads("fresh if input.now - input.token.claims.iat < 60\n");
        assert!(now.now && !now.nondeterministic);
        assert!(reads("h := input.request.headers[\"x-a\"]\n").headers);
        assert!(!reads("h := input.request.headers[\"x-a\"]\n").now);
        let bare = reads("r := input.request\nall := input\n");
        assert!(bare.headers && bare.now);
        assert!(reads("x := input[\"now\"]\n").now);
        assert!(reads("n := rand.intn(\"a\", 10)\n").nondeterministic);
        assert_eq!(reads("my_input := data.input.now\n"), none);
        // The library reads `now` (age checks) but never headers.
        let lib = reads(include_str!("../../policies/common.rego"));
        assert!(lib.now && !lib.headers, "{lib:?}");
    }

    #[test]
    #[cfg(feature = "std")]
    fn the_compiled_evaluator_keeps_nothing_from_one_request_to_the_next() {
        // A memoised rule value (`who`) must be recomputed for each input, and a VM busy on
        // one thread must not be shared with another.
        let p = Policy::compile(
            &module(concat!(
                "package gateward\nimport rego.v1\n",
                "who := input.token.claims.sub\n",
                "decision := {\"allow\": who == \"a\", \"reason\": who}\n",
            )),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap()
        .with_evaluator(Evaluator::Compiled);
        assert_eq!(p.evaluator(), Evaluator::Compiled);
        let input = |sub: &str| Value::from(serde_json::json!({"token": {"claims": {"sub": sub}}}));
        for sub in ["a", "b", "a", "c"] {
            let v = p.evaluate(input(sub)).unwrap();
            assert_eq!((v.allow, v.reason.as_deref()), (sub == "a", Some(sub)));
        }
        std::thread::scope(|s| {
            for sub in ["a", "b", "c", "d"] {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..50 {
                        let v = p.evaluate(input(sub)).unwrap();
                        assert_eq!((v.allow, v.reason.as_deref()), (sub == "a", Some(sub)));
                    }
                });
            }
        });
    }

    #[test]
    #[cfg(feature = "std")]
    fn policies_the_rvm_refuses_run_on_the_interpreter() {
        // regorus 0.14.1's RVM compiler refuses `print`; the interpreter runs it.
        let p = Policy::compile(
            &module(
                "package gateward\nimport rego.v1\ndecision if {\n  print(\"x\")\n  input.ok\n}\n",
            ),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap()
        .with_evaluator(Evaluator::Compiled);
        assert_eq!(p.evaluator(), Evaluator::Interpreter);
        assert!(
            p.evaluate(Value::from(serde_json::json!({"ok": true})))
                .unwrap()
                .allow
        );
        // The interpreter is the default, and can be asked for again.
        let p = Policy::compile(
            &module("package gateward\ndecision := true\n"),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap();
        assert_eq!(p.evaluator(), Evaluator::Interpreter);
        let p = p.with_evaluator(Evaluator::Compiled);
        assert_eq!(p.evaluator(), Evaluator::Compiled);
        let p = p.with_evaluator(Evaluator::Interpreter);
        assert_eq!(p.evaluator(), Evaluator::Interpreter);
        assert!(p.evaluate(Value::new_object()).unwrap().allow);
    }

    /// Why the interpreter is the default: on the RVM an error inside a rule body makes the body
    /// undefined (OPA's semantics), so a negated rule that errors on a hostile value allows.
    #[test]
    #[cfg(feature = "std")]
    fn an_error_under_not_denies_on_the_interpreter_and_is_undefined_on_the_rvm() {
        let p = Policy::compile(
            &module(concat!(
                "package gateward\nimport rego.v1\ndefault decision := false\n",
                "too_big if to_number(input.n) > 10\n",
                "decision if not too_big\n",
            )),
            None,
            DEFAULT_ENTRYPOINT,
        )
        .unwrap();
        let input = Value::from(serde_json::json!({"n": "not a number"}));
        let e = p.evaluate(input.clone()).unwrap_err();
        assert!(e.starts_with("evaluation failed"), "{e}");
        let compiled = p.with_evaluator(Evaluator::Compiled);
        assert!(compiled.evaluate(input).unwrap().allow);
    }

    #[test]
    fn policies_are_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Policy>();
    }
}
