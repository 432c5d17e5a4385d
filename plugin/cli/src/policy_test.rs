//! `gateward test`: Rego unit tests (`test_*` rules), like `opa test`, on the core's engine.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use policy_engine::policy::Module;
use policy_engine::rego_test::{self, Outcome};

use crate::args::Args;
use crate::CliError;

/// Runs the tests under the given paths.
pub fn run(raw: Vec<String>) -> Result<ExitCode, CliError> {
    let args = Args::parse(raw, &["verbose"])?;
    args.only(&["verbose", "run"])?;
    let verbose = args.switch("verbose");
    let roots: Vec<PathBuf> = if args.positional.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.positional.iter().map(PathBuf::from).collect()
    };
    let mut files = Vec::new();
    for root in &roots {
        collect(root, &mut files)?;
    }
    files.sort();
    let mut modules = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|source| CliError::Read {
            path: f.display().to_string(),
            source,
        })?;
        modules.push(Module {
            name: f.display().to_string(),
            text,
        });
    }
    let started = Instant::now();
    let results = rego_test::run(&modules, args.get("run").unwrap_or(""))
        .map_err(|errors| CliError::Input(errors.join("\n")))?;
    let mut failed = 0;
    let mut module = "";
    for r in &results {
        let bad = r.outcome != Outcome::Pass;
        failed += usize::from(bad);
        if !(bad || verbose) {
            continue;
        }
        if r.case.module != module {
            module = &r.case.module;
            println!("{module}:");
        }
        match &r.outcome {
            Outcome::Pass => println!("  {}: PASS", r.case.path()),
            Outcome::Fail => println!("  {}: FAIL", r.case.path()),
            Outcome::Error(e) => println!("  {}: ERROR\n    {e}", r.case.path()),
        }
        for p in &r.prints {
            println!("    print: {p}");
        }
    }
    if results.is_empty() {
        return Err(CliError::Input(format!(
            "no test_* rules found in {} file(s) under {}",
            files.len(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    println!("{}", "-".repeat(72));
    let passed = results.len() - failed;
    println!(
        "PASS: {passed}/{}{} ({} ms)",
        results.len(),
        if failed > 0 {
            format!("   FAIL: {failed}/{}", results.len())
        } else {
            String::new()
        },
        started.elapsed().as_millis()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every `.rego` file at or under `path`.
fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CliError> {
    let read_err = |source| CliError::Read {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(read_err)? {
        let p = entry.map_err(read_err)?.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n == "target");
        if hidden {
            continue;
        }
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "rego") {
            out.push(p);
        }
    }
    Ok(())
}
