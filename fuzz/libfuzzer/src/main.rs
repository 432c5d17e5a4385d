//! One libFuzzer binary for every target: `GATEWARD_FUZZ_TARGET` names the one to run (see
//! `gateward_fuzz_targets::TARGETS`), so a run builds and links once.
#![no_main]

use std::sync::OnceLock;

use gateward_fuzz_targets::{Target, TARGETS};

fn target() -> Option<&'static Target> {
    static CHOSEN: OnceLock<Option<&'static Target>> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let name = std::env::var("GATEWARD_FUZZ_TARGET").unwrap_or_default();
        TARGETS.iter().find(|(n, _)| *n == name)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((_, run)) = target() {
        run(data);
    }
});
