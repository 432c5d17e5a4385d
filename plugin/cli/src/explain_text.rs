//! `gateward eval`'s human-readable output.

use std::fmt::Write;

use policy_engine::explain::Explanation;
use policy_engine::{Decision, Gate};

/// The decision, and with `explain` the rules with values, the evaluated lines and prints.
pub fn render(e: &Explanation, gate: &Gate, explain: bool) -> String {
    let mut out = String::new();
    match &e.decision {
        Decision::Allow(a) => {
            let _ = writeln!(out, "decision: ALLOW (issuer {})", a.issuer);
            if let Some(r) = &a.reason {
                let _ = writeln!(out, "reason:   {r}");
            }
            for (k, v) in &a.headers {
                let _ = writeln!(out, "header:   {k}: {v}");
            }
        }
        Decision::Deny(d) => {
            let _ = writeln!(out, "decision: DENY {} {}", d.status, d.code.as_str());
            let _ = writeln!(out, "reason:   {}", d.message);
        }
    }
    if let Some(sub) = e.claims.as_ref().and_then(|c| c.get("sub")) {
        let _ = writeln!(out, "subject:  {sub}");
    }
    if !explain {
        return out;
    }
    if e.input.is_none() {
        let _ = writeln!(
            out,
            "\nThe policy did not run: the token was refused before it (see the reason)."
        );
        return out;
    }
    let _ = writeln!(
        out,
        "\nrules with a value (undefined rules are not listed):"
    );
    for r in &e.rules {
        let value = serde_json::to_string(&r.value).unwrap_or_default();
        let _ = writeln!(out, "  {} = {}", r.path, clip(&value, 100));
    }
    if let Some(policy) = gate.policy() {
        let _ = writeln!(
            out,
            "\nlines evaluated for {} (+ evaluated, - not reached, ! evaluated and the body\n\
             stopped there: usually the condition that was false):",
            policy.entrypoint()
        );
        for cov in &e.coverage {
            let Some(module) = policy.modules().iter().find(|m| m.name == cov.module) else {
                continue;
            };
            let _ = writeln!(out, "  {}:", cov.module);
            for (i, line) in module.text.lines().enumerate() {
                let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
                let mark = if cov.covered.contains(&n) && cov.not_covered.contains(&(n + 1)) {
                    '!'
                } else if cov.covered.contains(&n) {
                    '+'
                } else if cov.not_covered.contains(&n) {
                    '-'
                } else {
                    ' '
                };
                let _ = writeln!(out, "  {mark} {n:>4} {line}");
            }
        }
    }
    if !e.prints.is_empty() {
        let _ = writeln!(out, "\nprint output:");
        for p in &e.prints {
            let _ = writeln!(out, "  {p}");
        }
    }
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
