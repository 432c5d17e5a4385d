//! The filter fuzzer in `cargo test`: a fixed seed and number of requests (the same inputs on
//! every machine, so it cannot turn red by luck), and every finding kept under
//! `fuzz/regressions/filter/` replayed on a fresh VM.

use std::path::PathBuf;

use gateward_fuzz_filter::{replay, run, token_pool, Budget, Case};

#[test]
fn a_fixed_run_breaks_no_property() {
    let stats = run(1, Budget::Cases(400));
    if let Some(f) = &stats.finding {
        panic!(
            "{}\nrequests:\n{}",
            f.message,
            serde_json::to_string_pretty(&f.to_json()).unwrap_or_default()
        );
    }
    // The run proves little unless the grammar reaches allows and the main refusals.
    for outcome in [
        "allow",
        "token_missing",
        "token_malformed",
        "token_ambiguous",
        "signature_invalid",
        "policy_denied",
        "path_ambiguous",
        "method_invalid",
    ] {
        assert!(
            stats.outcomes.contains_key(outcome),
            "{outcome} never happened: {:?}",
            stats.outcomes
        );
    }
}

#[test]
fn every_kept_finding_stays_fixed() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../regressions/filter");
    let pool = token_pool();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let finding: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases: Vec<Case> = finding["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Case::from_json(c).unwrap())
            .collect();
        if let Err(e) = replay(&pool, &cases) {
            panic!("{}: {e}", path.display());
        }
    }
}
