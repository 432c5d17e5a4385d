//! The docs say what the code does: every preset and every deny code is documented, with the
//! facts the code uses.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use policy_engine::presets::PRESETS;
use policy_engine::DenyCode;

fn config_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"))
        .unwrap_or_default()
}

#[test]
fn every_preset_has_a_row_with_its_facts() {
    let doc = config_md();
    for p in PRESETS {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", p.name)))
            .unwrap_or_else(|| panic!("docs/config.md has no row for preset {}", p.name));
        if let Some(iss) = p.default_issuer {
            assert!(
                row.contains(iss),
                "{}: default issuer {iss} not in {row}",
                p.name
            );
        }
        for alg in p.algorithms {
            assert!(row.contains(alg.name()), "{}: {alg} not in {row}", p.name);
        }
        if let Some(max) = p.max_lifetime_seconds {
            assert!(
                row.contains(&format!("{max} s")),
                "{}: lifetime {max} not in {row}",
                p.name
            );
        }
    }
}

#[test]
fn every_deny_code_is_documented_with_its_status() {
    let doc = config_md();
    let codes = [
        DenyCode::TokenMissing,
        DenyCode::TokenMalformed,
        DenyCode::TokenTooLarge,
        DenyCode::TokenAmbiguous,
        DenyCode::AlgNotAllowed,
        DenyCode::SignatureInvalid,
        DenyCode::KeyNotFound,
        DenyCode::IssuerUntrusted,
        DenyCode::AudienceMismatch,
        DenyCode::Expired,
        DenyCode::NotYetValid,
        DenyCode::LifetimeExceeded,
        DenyCode::ClaimMissing,
        DenyCode::ClaimInvalid,
        DenyCode::PolicyDenied,
        DenyCode::PolicyError,
        DenyCode::KeysUnavailable,
        DenyCode::TokenReplayed,
        DenyCode::ReplayUnavailable,
        DenyCode::PathAmbiguous,
        DenyCode::MethodInvalid,
    ];
    for code in codes {
        let row = doc
            .lines()
            .find(|l| {
                l.starts_with(&format!("| `{}`", code.as_str()))
                    || l.contains(&format!("/ `{}` |", code.as_str()))
            })
            .unwrap_or_else(|| panic!("docs/config.md does not document {}", code.as_str()));
        assert!(
            row.contains(&code.status().to_string()),
            "{}: status {} not in {row}",
            code.as_str(),
            code.status()
        );
    }
}

/// The builtins the gate's engine has, as listed in docs/policies.md.
fn documented_builtins() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/policies.md"))
        .unwrap();
    let start = doc.find("<!-- builtins:start -->").unwrap();
    let end = doc.find("<!-- builtins:end -->").unwrap();
    doc[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_documented_builtins_are_exactly_the_engines() {
    let mut engine: Vec<String> = regorus::unstable::BUILTINS
        .keys()
        .map(|k| k.to_string())
        .chain(["print".to_string()])
        .collect();
    engine.sort();
    let mut documented = documented_builtins();
    documented.sort();
    assert_eq!(
        documented, engine,
        "docs/policies.md's builtin list must match this build of regorus"
    );
}

#[test]
fn the_walkthrough_blocks_are_the_tested_files() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let doc = std::fs::read_to_string(format!("{root}/docs/policies.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```rego\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    for (block, file) in [(0, "step1_main_branch.rego"), (1, "step2_library.rego")] {
        let text = std::fs::read_to_string(format!("{root}/policies/walkthrough/{file}")).unwrap();
        assert_eq!(
            blocks[block], text,
            "docs/policies.md block {block} != {file}"
        );
    }
}

/// Every Envoy cluster TLS context that users may copy (the docs and `envoy-config/`) verifies
/// the issuer's certificate: without a `validation_context` Envoy accepts any certificate, and
/// whoever intercepts the key fetch chooses the keys.
#[test]
fn every_copyable_upstream_tls_context_validates_the_certificate() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files: Vec<std::path::PathBuf> = ["docs", "envoy-config", "envoy-config/bench"]
        .iter()
        .flat_map(|d| std::fs::read_dir(format!("{root}/{d}")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md" || x == "yaml"))
        .collect();
    files.push(format!("{root}/README.md").into());
    let mut contexts = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.contains("UpstreamTlsContext") {
                continue;
            }
            contexts += 1;
            // The context's body: the lines indented deeper than its `typed_config`.
            let indent = |l: &str| l.len() - l.trim_start().len();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|b| b.trim().is_empty() || indent(b) >= indent(l))
                .copied()
                .collect();
            assert!(
                body.iter().any(|b| b.contains("validation_context:"))
                    && body.iter().any(|b| b.contains("trusted_ca")),
                "{}:{}: an UpstreamTlsContext without validation_context/trusted_ca",
                f.display(),
                i + 1
            );
        }
    }
    assert!(contexts >= 3, "found {contexts} TLS contexts in {files:?}");
}
