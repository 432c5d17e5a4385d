#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Login latency: the built-in `jwt` method against `gateward-openbao`, same server, same
//! issuer, equivalent roles (audience, bound claims, user claim, claim mappings; ours also runs
//! a Rego policy), one fresh HTTP connection per login, alternating between the two mounts.
//! Prints p50/p99/mean for each; no assertions.
//!
//! `cargo bench -p gateward-openbao --bench login` (`GATEWARD_BENCH_LOGINS=N`, default 500).

use std::path::Path;
use std::time::{Duration, Instant};

use gateward_devkit::issuer::{DevIssuer, IssuerOptions};
use gateward_devkit::openbao::Bao;
use serde_json::json;

const AUD: &str = "https://github.com/octo-org";

const POLICY: &str = r#"package gateward

import rego.v1

default decision := false

decision := {"allow": true, "policies": ["deployer"]} if {
	input.token.claims.repository == "octo-org/deploy"
	input.token.claims.ref == "refs/heads/main"
}
"#;

fn main() {
    let n: usize = std::env::var("GATEWARD_BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let issuer = DevIssuer::start(IssuerOptions::default()).unwrap();
    let bao = Bao::start().unwrap_or_else(|e| panic!("{e}"));
    let sha = bao
        .install_plugin(
            Path::new(env!("CARGO_BIN_EXE_gateward-openbao")),
            "gateward-openbao",
        )
        .unwrap();
    let cli = |args: &[&str]| {
        bao.cli(args)
            .unwrap_or_else(|e| panic!("{e}\n{}", bao.log()))
    };
    let write = |path: &str, body: serde_json::Value| {
        let r = bao.api("POST", path, Some(&body)).unwrap();
        assert!(r.status < 300, "{path}: {}", r.text());
    };
    cli(&[
        "plugin",
        "register",
        &format!("-sha256={sha}"),
        "auth",
        "gateward-openbao",
    ]);
    cli(&["auth", "enable", "-path=gateward", "gateward-openbao"]);
    cli(&["auth", "enable", "jwt"]);

    let bound = json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"});
    let mappings = json!({"repository": "repo", "ref": "ref"});
    write(
        "auth/jwt/config",
        json!({"oidc_discovery_url": issuer.url(), "bound_issuer": issuer.url()}),
    );
    write(
        "auth/jwt/role/deploy",
        json!({
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUD],
            "bound_claims": bound, "claim_mappings": mappings,
            "token_policies": ["ci"], "token_ttl": "10m",
        }),
    );
    write(
        "auth/gateward/config",
        json!({"issuers": [{
            "name": "dev", "issuer": issuer.url(), "audiences": [AUD],
            "discovery": true, "algorithms": ["RS256"],
        }]}),
    );
    write(
        "auth/gateward/role/deploy",
        json!({
            "policy": POLICY, "user_claim": "sub", "bound_audiences": [AUD],
            "bound_claims": bound, "claim_mappings": mappings,
            "token_policies": ["ci"], "token_ttl": "10m",
        }),
    );

    // One token for all logins (valid for the whole run): we measure the login, not minting.
    let jwt = issuer
        .mint_request(&gateward_devkit::issuer::MintRequest {
            ttl: Some(3600),
            ..gateward_devkit::issuer::MintRequest::new(
                "github-actions",
                &json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"}),
            )
            .unwrap()
        })
        .unwrap();
    let body = json!({"role": "deploy", "jwt": jwt});
    let login = |mount: &str| {
        let start = Instant::now();
        let r = bao
            .api_as(None, "POST", &format!("auth/{mount}/login"), Some(&body))
            .unwrap();
        let took = start.elapsed();
        assert_eq!(r.status, 200, "{mount}: {}", r.text());
        took
    };
    // Warm-up: key fetches, compiled policies, connections to the plugin.
    for _ in 0..20 {
        login("jwt");
        login("gateward");
    }
    let mut builtin = Vec::with_capacity(n);
    let mut ours = Vec::with_capacity(n);
    for _ in 0..n {
        builtin.push(login("jwt"));
        ours.push(login("gateward"));
    }
    println!(
        "{n} sequential logins each, alternating (OpenBao {}):",
        gateward_devkit::openbao::OPENBAO_VERSION
    );
    report("built-in jwt", &mut builtin);
    report("gateward-openbao", &mut ours);
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        ms(samples[i.min(samples.len() - 1)])
    };
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "  {name:<18} p50 {:>6.2} ms   p99 {:>6.2} ms   mean {:>6.2} ms",
        at(0.5),
        at(0.99),
        mean
    );
}
