//! The quick start's sample tokens, minted with the devkit's throwaway keys at a fixed time so
//! `gateward check --now 1760000000` reproduces every decision.

use std::path::Path;

use gateward_devkit::{claims, fixtures, mint};
use serde_json::json;

/// The time the samples are minted for (`--now` in the README).
pub const SAMPLE_NOW: i64 = 1_760_000_000;
const AUD: &str = "https://github.com/octo-org";

/// Writes `examples/tokens/*.jwt` and the matching JWKS into `examples/github-deploy.json`.
pub fn write(examples: &Path) -> Result<(), String> {
    let dir = examples.join("tokens");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key = fixtures::rsa_a();
    let base = || claims::github_actions(SAMPLE_NOW - 10, AUD);
    let mut tokens = vec![];
    tokens.push(("allowed", mint(&key, Some("demo-1"), &base())));
    let mut c = base();
    c["exp"] = json!(SAMPLE_NOW - 600);
    c["iat"] = json!(SAMPLE_NOW - 900);
    c["nbf"] = json!(SAMPLE_NOW - 900);
    tokens.push(("expired", mint(&key, Some("demo-1"), &c)));
    let mut c = base();
    c["aud"] = json!("https://github.com/someone-else");
    tokens.push(("wrong-audience", mint(&key, Some("demo-1"), &c)));
    tokens.push((
        "wrong-key",
        mint(&fixtures::rsa_b(), Some("demo-1"), &base()),
    ));
    let mut c = base();
    c["ref"] = json!("refs/heads/feature/x");
    c["sub"] = json!("repo:octo-org/deploy:ref:refs/heads/feature/x");
    tokens.push(("feature-branch", mint(&key, Some("demo-1"), &c)));
    for (name, token) in tokens {
        let token = token.map_err(|e| e.to_string())?;
        std::fs::write(dir.join(format!("{name}.jwt")), format!("{token}\n"))
            .map_err(|e| e.to_string())?;
    }
    // A header, a payload that is not JSON, and a signature: the shape of a JWT, nothing more.
    std::fs::write(
        dir.join("malformed.jwt"),
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln\n",
    )
    .map_err(|e| e.to_string())?;
    let config_path = examples.join("github-deploy.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| e.to_string())?;
    let mut config: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    config["issuers"][0]["jwks"] = gateward_devkit::jwks(&[("demo-1", &key)]);
    std::fs::write(&config_path, format!("{config:#}\n")).map_err(|e| e.to_string())?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
