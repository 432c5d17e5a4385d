//! `cargo xtask fuzz`: libFuzzer over the targets in `fuzz/targets`, coverage-guided.
//!
//! The harness (`fuzz/libfuzzer`) is built on the stable toolchain with LLVM's SanitizerCoverage
//! instrumentation passes (the flags cargo-fuzz uses, minus the nightly-only sanitizers), for
//! the host triple only so build scripts and proc macros stay uninstrumented. Each target starts
//! from the seeds `gateward_fuzz_targets::seeds` writes and the corpus of earlier runs. A
//! finding (a panic: a crash or a broken invariant) is written to `fuzz/regressions/<target>/`,
//! which `cargo test` replays, so once fixed it stays fixed.
//!
//! `--smoke` (in `cargo xtask test`) runs a fixed number of inputs per target with a fixed seed:
//! the same inputs on every machine, so it cannot turn red by luck.
//!
//! Target `filter` is not libFuzzer's: coverage cannot see inside the wasm module, so
//! `fuzz/filter` draws hostile requests from a grammar and drives the built module in the
//! wasmtime host. Its fixed-seed smoke is a `cargo test` (`fuzz/filter/tests/smoke.rs`), so
//! `--smoke` leaves it out here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gateward_devkit::envoy::cargo_target_dir;
use gateward_fuzz_targets::{seeds, TARGETS};

/// SanitizerCoverage as libFuzzer expects it (stable `-C` flags).
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
];

/// The structured fuzzer of the filter's request path (`fuzz/filter`).
const FILTER: &str = "filter";

/// Inputs per target in `--smoke`.
const SMOKE_RUNS: u64 = 100_000;

struct Plan {
    /// Seconds per target, or a fixed number of runs (smoke).
    budget: Budget,
    targets: Vec<&'static str>,
}

enum Budget {
    Seconds(u64),
    Runs(u64),
}

/// One target's run.
struct Outcome {
    target: &'static str,
    executions: u64,
    coverage: String,
    corpus: usize,
    seconds: f64,
    finding: Option<String>,
}

fn plan(args: &[String]) -> Result<Plan, String> {
    let mut budget = Budget::Seconds(60);
    let mut targets: Vec<&'static str> = TARGETS.iter().map(|(n, _)| *n).collect();
    targets.push(FILTER);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => {
                budget = Budget::Runs(SMOKE_RUNS);
                targets.retain(|t| *t != FILTER);
            }
            "--minutes" => {
                let total = crate::next_number(&mut it, "--minutes")?.saturating_mul(60);
                budget = Budget::Seconds((total / targets.len().max(1) as u64).max(1));
            }
            "--seconds" => {
                budget = Budget::Seconds(crate::next_number(&mut it, "--seconds")?.max(1))
            }
            "--target" => {
                let name = it.next().ok_or("--target needs a name")?;
                let found = TARGETS
                    .iter()
                    .map(|(n, _)| *n)
                    .chain([FILTER])
                    .find(|n| n == name)
                    .ok_or_else(|| format!("no target {name}: {}", names()))?;
                targets = vec![found];
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Plan { budget, targets })
}

fn names() -> String {
    TARGETS
        .iter()
        .map(|(n, _)| *n)
        .chain([FILTER])
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the harness, runs the targets, prints and writes a report; Err on a finding.
pub fn run(args: &[String]) -> Result<(), String> {
    let plan = plan(args)?;
    let libfuzzer = plan.targets.iter().any(|t| *t != FILTER);
    // The smoke run executes for seconds: a build for build time serves it better.
    let profile = match plan.budget {
        Budget::Runs(_) => "smoke",
        Budget::Seconds(_) => "release",
    };
    let binary = if libfuzzer {
        build(profile)?
    } else {
        PathBuf::new()
    };
    let work = cargo_target_dir().join("fuzz");
    let mut outcomes = Vec::new();
    for target in &plan.targets {
        if *target == FILTER {
            outcomes.push(fuzz_filter(&plan.budget)?);
            continue;
        }
        let corpus = work.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        for (i, (_, input)) in seeds().iter().filter(|(t, _)| t == target).enumerate() {
            let path = corpus.join(format!("seed-{i}"));
            std::fs::write(&path, input).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        outcomes.push(fuzz_one(&binary, target, &corpus, &plan.budget)?);
    }
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let report = report(&outcomes, &plan.budget);
    print!("{report}");
    let path = work.join("report.md");
    std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("report: {}", path.display());
    let findings: Vec<String> = outcomes.iter().filter_map(|o| o.finding.clone()).collect();
    if findings.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} finding(s), kept under fuzz/regressions/ for `cargo test`:\n{}",
            findings.len(),
            findings.join("\n")
        ))
    }
}

/// The harness's own lock file is current. Its build runs `--locked` near the end of
/// `cargo xtask test`; this finds a stale lock (a dependency of the core changed) at the start.
pub fn check_lock() -> Result<(), String> {
    let manifest = crate::root().join("fuzz/libfuzzer/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: Cargo.lock is stale; run `cargo metadata --manifest-path {}` and commit it",
            manifest.display(),
            manifest.display()
        ))
    }
}

fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| String::from("rustc -vV printed no host triple"))
}

/// Builds the harness with cargo `profile` (`fuzz/libfuzzer/Cargo.toml`: `release` to fuzz,
/// `smoke` for the fixed-seed run).
fn build(profile: &str) -> Result<PathBuf, String> {
    let triple = host_triple()?;
    let target_dir = cargo_target_dir().join("fuzz-build");
    let manifest = crate::root().join("fuzz/libfuzzer/Cargo.toml");
    eprintln!("\n==> building the libFuzzer harness ({triple}, instrumented)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--profile", profile, "--locked", "--manifest-path"])
        .arg(&manifest)
        .args(["--target", &triple, "--target-dir"])
        .arg(&target_dir)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        // The instrumented build is separate; the caller's flags are for the other one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the fuzz harness failed ({status})"));
    }
    Ok(target_dir
        .join(triple)
        .join(profile)
        .join("gateward-libfuzzer"))
}

fn fuzz_one(
    binary: &Path,
    target: &'static str,
    corpus: &Path,
    budget: &Budget,
) -> Result<Outcome, String> {
    let findings = crate::root().join("fuzz/regressions").join(target);
    std::fs::create_dir_all(&findings).map_err(|e| format!("{}: {e}", findings.display()))?;
    let mut cmd = Command::new(binary);
    cmd.env("GATEWARD_FUZZ_TARGET", target)
        .arg(corpus)
        .arg(format!("-artifact_prefix={}/", findings.display()))
        .args([
            "-print_final_stats=1",
            "-max_len=16384",
            "-timeout=20",
            "-rss_limit_mb=2048",
            "-close_fd_mask=1",
        ]);
    match budget {
        Budget::Seconds(s) => cmd.arg(format!("-max_total_time={s}")),
        Budget::Runs(n) => cmd.args([format!("-runs={n}"), String::from("-seed=1")]),
    };
    eprintln!("==> fuzz {target}");
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let stat = |name: &str| -> u64 {
        log.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // The last status line: `#N DONE cov: C ft: F corp: K/…`.
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains("cov:"))
        .unwrap_or("");
    let field = |name: &str| {
        last.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or("?")
            .to_string()
    };
    let corpus_len = std::fs::read_dir(corpus).map(|d| d.count()).unwrap_or(0);
    let finding = (!out.status.success()).then(|| {
        let why = log
            .lines()
            .filter(|l| {
                l.contains("panicked at")
                    || l.contains("input:")
                    || l.contains("Test unit written")
                    || l.contains("ERROR: libFuzzer")
            })
            .collect::<Vec<_>>()
            .join("\n  ");
        format!("{target}: {}\n  {why}", out.status)
    });
    Ok(Outcome {
        target,
        executions: stat("stat::number_of_executed_units:"),
        coverage: format!("{} edges, {} features", field("cov:"), field("ft:")),
        corpus: corpus_len,
        seconds,
        finding,
    })
}

/// Runs `fuzz/filter`'s binary for the budget and reads its JSON summary.
fn fuzz_filter(budget: &Budget) -> Result<Outcome, String> {
    let (flag, n) = match budget {
        Budget::Seconds(s) => ("--seconds", s),
        Budget::Runs(n) => ("--cases", n),
    };
    eprintln!("==> fuzz {FILTER} (hostile requests through the wasmtime host)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["run", "-q", "-p", "gateward-fuzz-filter", "--", flag])
        .arg(n.to_string())
        .current_dir(crate::root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = text
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("gateward-fuzz-filter printed no summary ({})", out.status))?;
    let finding = &summary["finding"];
    Ok(Outcome {
        target: FILTER,
        executions: summary["cases"].as_u64().unwrap_or(0),
        coverage: format!(
            "grammar, seed {}: {} outcomes {}",
            summary["seed"],
            summary["outcomes"].as_object().map_or(0, |o| o.len()),
            summary["outcomes"]
        ),
        corpus: 0,
        // The fuzzing loop's own time: building and loading the module are not part of it.
        seconds: summary["seconds"].as_f64().unwrap_or(0.0),
        finding: (!finding.is_null()).then(|| {
            format!(
                "{FILTER}: {}\n  written to {}",
                finding["message"].as_str().unwrap_or("?"),
                finding["file"].as_str().unwrap_or("?")
            )
        }),
    })
}

fn report(outcomes: &[Outcome], budget: &Budget) -> String {
    let mut r = String::from("# Fuzzing report (cargo xtask fuzz)\n\n");
    let _ = writeln!(
        r,
        "Budget: {}.\n",
        match budget {
            Budget::Seconds(s) => format!("{s} s per target"),
            Budget::Runs(n) => format!("{n} inputs per target, seed 1 (smoke)"),
        }
    );
    r.push_str("| target | executions | exec/s | coverage | corpus | findings |\n");
    r.push_str("|---|---|---|---|---|---|\n");
    for o in outcomes {
        let _ = writeln!(
            r,
            "| {} | {} | {:.0} | {} | {} | {} |",
            o.target,
            o.executions,
            o.executions as f64 / o.seconds.max(0.001),
            o.coverage,
            o.corpus,
            if o.finding.is_some() { "1" } else { "0" }
        );
    }
    r
}
