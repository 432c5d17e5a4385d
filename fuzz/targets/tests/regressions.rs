//! Replays every target's seeds and every input kept in `fuzz/regressions/<target>/` (findings
//! of `cargo xtask fuzz`, fixed and kept so they stay fixed).

use std::path::Path;

use gateward_fuzz_targets::{seeds, token_allowed, TARGETS};

#[test]
fn seeds_run_clean_through_every_target() {
    let seeds = seeds();
    for (name, run) in TARGETS {
        let mine: Vec<_> = seeds.iter().filter(|(t, _)| t == name).collect();
        assert!(!mine.is_empty(), "target {name} has no seed");
        for (_, input) in mine {
            run(input);
        }
    }
}

#[test]
fn the_token_seeds_are_allowed_so_the_differential_check_runs() {
    for (_, input) in seeds().iter().filter(|(t, _)| *t == "token") {
        let value = String::from_utf8_lossy(input);
        assert!(token_allowed(&value), "seed refused: {value}");
    }
}

#[test]
fn kept_findings_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../regressions");
    let mut replayed = 0;
    for (name, run) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for entry in dir.flatten() {
            if let Ok(input) = std::fs::read(entry.path()) {
                run(&input);
                replayed += 1;
            }
        }
    }
    eprintln!("replayed {replayed} kept finding(s)");
}
