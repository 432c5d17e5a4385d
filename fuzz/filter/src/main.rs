//! `gateward-fuzz-filter [--seconds N | --cases N] [--seed S]`: the filter fuzzer on its own
//! (`cargo xtask fuzz --target filter` runs it). Prints a JSON summary; a finding is written to
//! `fuzz/regressions/filter/` (which `cargo test` replays) and makes the exit status 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateward_fuzz_filter::{run, Budget};

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gateward-fuzz-filter: {e}");
            ExitCode::from(2)
        }
    }
}

fn main_inner() -> Result<ExitCode, String> {
    let mut budget = Budget::Time(Duration::from_secs(60));
    // A new seed per run unless one is given (it is printed, so a run can be repeated).
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = || -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{a} needs a number"))
        };
        match a.as_str() {
            "--seconds" => budget = Budget::Time(Duration::from_secs(number()?)),
            "--cases" => budget = Budget::Cases(number()?),
            "--seed" => seed = number()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    // The module's log lines would flood the terminal; the checks read them anyway.
    std::env::set_var("GATEWARD_HOST_LOG", "0");
    let stats = run(seed, budget);
    let mut finding = serde_json::Value::Null;
    if let Some(f) = &stats.finding {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../regressions/filter");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("seed-{seed}.json"));
        let text = serde_json::to_string_pretty(&f.to_json()).unwrap_or_default();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        finding = serde_json::json!({"message": f.message, "file": path});
    }
    let summary = serde_json::json!({
        "seed": seed,
        "cases": stats.cases,
        "seconds": stats.seconds,
        "outcomes": stats.outcomes,
        "finding": finding,
    });
    println!("{summary}");
    Ok(if stats.finding.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
