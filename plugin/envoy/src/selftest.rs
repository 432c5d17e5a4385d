//! Test builds only (`--features selftest`): runs signature vectors through both signature
//! paths inside a real Envoy, so a test can compare Envoy's `verify_signature` with the
//! pure-Rust path case by case. Never part of the released module.
//!
//! Configuration: `{"selftest": [{"alg": "RS256", "n": hex, "e": hex,
//! "cases": [{"id": 1, "msg": hex, "sig": hex}]}]}`. Each case logs one line
//! `selftest {"id":1,"alg":"RS256","host":true,"rust":true,"path":"host"}`.

use policy_engine::verify::verify_signature;
use policy_engine::{Algorithm, PublicKey};
use serde::Deserialize;

use crate::hostcrypto::{verify_reporting, Path};
use crate::log;

#[derive(Deserialize)]
struct Config {
    selftest: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    alg: String,
    n: String,
    e: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: u64,
    msg: String,
    sig: String,
}

/// Runs the vectors when `text` is a selftest configuration; None otherwise.
pub fn run(text: &str) -> Option<()> {
    let config: Config = serde_json::from_str(text).ok()?;
    for group in config.selftest {
        let Some(alg) = Algorithm::from_name(&group.alg) else {
            log::error(&format!("selftest: unknown alg {}", group.alg));
            continue;
        };
        let key = match (hex(&group.n), hex(&group.e)) {
            (Some(n), Some(e)) => PublicKey::rsa(&n, &e),
            _ => {
                log::error("selftest: bad key encoding");
                continue;
            }
        };
        let key = match key {
            Ok(k) => k,
            Err(e) => {
                // The core refuses the key (e.g. too large): no path may use it.
                log::info(&format!(
                    "selftest {}",
                    serde_json::json!({"alg": group.alg, "key_rejected": e.to_string()})
                ));
                continue;
            }
        };
        for case in group.cases {
            let (Some(msg), Some(sig)) = (hex(&case.msg), hex(&case.sig)) else {
                continue;
            };
            let (host, path) = verify_reporting(alg, &key, &msg, &sig);
            let rust = verify_signature(alg, &key, &msg, &sig);
            log::info(&format!(
                "selftest {}",
                serde_json::json!({
                    "id": case.id, "alg": group.alg, "host": host, "rust": rust,
                    "path": if path == Path::Host { "host" } else { "rust" },
                })
            ));
        }
    }
    Some(())
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
