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
             a real Envoy), and the Rego library's tests (`gateward test policies`)
  build      the Envoy filter module, release: target/wasm32-wasip1/release/gateward_envoy.wasm
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

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => test(),
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

fn test() -> Result<(), String> {
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
    ])?;
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
