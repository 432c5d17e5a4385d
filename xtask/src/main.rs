//! `cargo xtask <task>`: Gateward's build orchestration, in Rust rather than shell scripts.
// Build tooling over our own files: indexing JSON we wrote ourselves is fine here.
#![allow(clippy::indexing_slicing)]

mod bench;
mod demo;
mod fuzz;
mod playground;
mod samples;
mod soak;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
cargo xtask <task>

  test       every check and test: fmt, clippy (native and wasm), the no_std wasm build, the
             workspace tests (which build the Envoy module and run it in a wasmtime host and in
             a real Envoy), the Rego library's tests (`gateward test policies`), the playground
             in Chromium, the fuzzers' smoke runs, a soak and a bench smoke run (CI's command)
  check      the quick loop, nothing downloaded: fmt, clippy (native and wasm), the tests of
             the core, CLI, devkit and OpenBao logic (less those named `needs_download`), the
             wasmtime scenarios and the Rego library's tests
  build      the Envoy filter module, release:
             target/gateward-wasm/wasm32-wasip1/release/gateward_envoy.wasm
  e2e        only the end-to-end tests: real Envoy, the built module, the dev issuer
  demo       the quick start: Envoy + the filter + a development OIDC issuer + an echo
             upstream on loopback, a walkthrough of allowed and denied requests, then the
             stack stays up until Ctrl-C (`--once`: exit after the walkthrough)
  samples    regenerate examples/tokens/*.jwt (the quick start's sample tokens)
  bench      Gateward vs Envoy's jwt_authn + RBAC on loopback (installs wrk and Envoy if
             missing): throughput, latency at 5,000 req/s, start-up, memory; writes
             BENCHMARKS.md and docs/bench.svg (`--rounds N --seconds N --latency-seconds N`;
             `--smoke`: a few hundred requests each, report under the target directory)
  soak       the filter in a real Envoy at a fixed rate of valid, forged, expired and missing
             tokens while the issuer fails (500, slow, garbage, non-HTTP, rotation, down), then
             while its configuration is reloaded: nothing wrongly allowed, nothing hung,
             recovery; writes SOAK.md and docs/soak.svg (`--minutes N`, default 10; `--rate N`
             req/s; `--smoke`: 54 s, report under the target directory)
  fuzz       libFuzzer over fuzz/targets (token, key documents, config, request), coverage-
             guided, on stable: reports executions, coverage and findings (kept in
             fuzz/regressions/ for cargo test); `--minutes N` in all, `--seconds N` per target,
             `--target NAME`; `--smoke`: 100,000 fixed-seed inputs per target
  playground the in-browser playground: builds the core for JavaScript (plugin/js, wasm-bindgen)
             and serves plugin/js/playground/ on 127.0.0.1 (`--port N`, else a free port)
  browser-test  the playground in headless Chromium (playwright-core): allowed and denied
             examples; screenshot in target/gateward-artifacts/playground.png
";

/// The tasks that build for a wasm target: each makes sure the toolchain has the targets first.
const BUILDS_FOR_WASM: [&str; 10] = [
    "test",
    "check",
    "e2e",
    "demo",
    "build",
    "bench",
    "soak",
    "fuzz",
    "playground",
    "browser-test",
];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    if BUILDS_FOR_WASM.contains(&task.as_str()) {
        if let Err(e) = gateward_devkit::toolchain::ensure_targets(&root()) {
            eprintln!("xtask {task}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match task.as_str() {
        "test" => test(),
        "check" => check(),
        "e2e" => cargo(&["test", "-p", "gateward-host-tests", "--test", "e2e"]),
        "demo" => demo::run(std::env::args().any(|a| a == "--once")),
        "build" => build().map(|path| {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!(
                "{} ({size} bytes, {:.2} MiB)",
                path.display(),
                size as f64 / 1048576.0
            );
        }),
        "samples" => samples::write(&root().join("examples")),
        "bench" => bench::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "soak" => soak::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "fuzz" => fuzz::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "playground" => playground::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "browser-test" => playground::browser::run(),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The number that follows flag `what` in an argument list.
pub fn next_number(it: &mut std::slice::Iter<'_, String>, what: &str) -> Result<u64, String> {
    it.next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{what} needs a number"))
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs `cargo args...` at the workspace root, failing on a non-zero exit.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("\n==> cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// The lints both tiers run: formatting, then clippy natively and for the Envoy module.
fn lint() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"])?;
    fuzz::check_lock()?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&[
        "clippy",
        "-p",
        "gateward-envoy",
        "--target",
        "wasm32-wasip1",
        "--",
        "-D",
        "warnings",
    ])
}

/// Marks the tests that download a tool (rego-cpp, Envoy, OpenBao…): `check` skips them.
const NEEDS_DOWNLOAD: &str = "needs_download";

/// The quick tier: what a one-line change to the core, CLI or OpenBao logic needs, with
/// nothing downloaded. `test` stays the full run.
fn check() -> Result<(), String> {
    let started = std::time::Instant::now();
    lint()?;
    cargo(&[
        "test",
        "-p",
        "policy-engine",
        "-p",
        "gateward-cli",
        "-p",
        "gateward-openbao-auth",
        "-p",
        "gateward-devkit",
        "--",
        "--skip",
        NEEDS_DOWNLOAD,
    ])?;
    cargo(&["test", "-p", "gateward-host-tests", "--test", "scenarios"])?;
    cargo(&["run", "-q", "-p", "gateward-cli", "--", "test", "policies"])?;
    eprintln!(
        "\nxtask check: passed in {:.0} s (the full run is `cargo xtask test`)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn test() -> Result<(), String> {
    lint()?;
    cargo(&[
        "build",
        "-p",
        "policy-engine",
        "--no-default-features",
        "--target",
        "wasm32-unknown-unknown",
    ])?;
    // The JavaScript build (not --all-targets: devkit, a dev-dependency, is native only).
    cargo(&[
        "clippy",
        "-p",
        "gateward-js",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&["test", "--workspace"])?;
    // The Rego library's own tests, on the engine the gate uses.
    cargo(&["run", "-q", "-p", "gateward-cli", "--", "test", "policies"])?;
    // The playground (the core as wasm-bindgen) in headless Chromium.
    playground::browser::run()?;
    // The fuzz targets under libFuzzer, a fixed set of inputs each.
    fuzz::run(&["--smoke".to_string()])?;
    // Faults and load in a real Envoy, briefly: nothing wrongly allowed, nothing hung, recovery.
    soak::run(&["--smoke".to_string()])?;
    // The benchmark harness works end to end (a few hundred requests; nothing about speed).
    bench::run(&["--smoke".to_string()])?;
    Ok(())
}

/// The Envoy filter module (release).
pub fn build() -> Result<PathBuf, String> {
    gateward_devkit::envoy::build_module(None).map_err(|e| e.to_string())
}
