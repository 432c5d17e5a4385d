//! `gateward dev-issuer`: runs the devkit's local development OIDC issuer in the foreground for
//! trying Gateward by hand (with `curl`, a local Envoy). A development tool with throwaway
//! keys: nothing in the CLI's verification path uses it.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use gateward_devkit::issuer::{DevIssuer, IssuerOptions, DEFAULT_AUDIENCE};
use gateward_devkit::{claims, KeyKind};

use crate::args::Args;
use crate::CliError;

/// `gateward dev-issuer [--port N] [--audience A] [--key rsa|p256|p384|ed25519]`: serves until
/// the process is killed (Ctrl-C).
pub fn run(raw: Vec<String>) -> Result<ExitCode, CliError> {
    let args = Args::parse(raw, &[])?;
    args.only(&["port", "audience", "key"])?;
    if let Some(extra) = args.positional.first() {
        return Err(CliError::Usage(format!(
            "unexpected argument {extra:?} for `gateward dev-issuer`"
        )));
    }
    let port = match args.get("port") {
        Some(p) => p.parse::<u16>().map_err(|_| {
            CliError::Usage(format!(
                "--port {p:?} is not a port (0-65535; 0 = a free one)"
            ))
        })?,
        None => 0,
    };
    let (key, alg) = match args.get("key").unwrap_or("rsa") {
        "rsa" => (KeyKind::Rsa2048, "RS256"),
        "p256" => (KeyKind::P256, "ES256"),
        "p384" => (KeyKind::P384, "ES384"),
        "ed25519" => (KeyKind::Ed25519, "EdDSA"),
        other => {
            return Err(CliError::Usage(format!(
                "--key {other:?}: expected rsa, p256, p384 or ed25519"
            )))
        }
    };
    let audience = args.get("audience").unwrap_or(DEFAULT_AUDIENCE).to_string();
    if key == KeyKind::Rsa2048 {
        eprintln!("generating a throwaway RSA-2048 key (a few seconds in a debug build)...");
    }
    let issuer = DevIssuer::start(IssuerOptions {
        port,
        audience: audience.clone(),
        key,
    })
    .map_err(|e| CliError::Input(format!("cannot start the development issuer: {e}")))?;
    print!("{}", banner(&issuer, &audience, alg));
    let _ = std::io::stdout().flush();
    // Serve on the issuer's threads until the process is killed; `issuer` lives until then.
    loop {
        std::thread::park();
    }
}

fn banner(issuer: &DevIssuer, audience: &str, alg: &str) -> String {
    let url = issuer.url();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // An hour ago: expired, whenever the line is pasted.
    let (iat, exp) = (now.saturating_sub(3900), now.saturating_sub(3600));
    let config = serde_json::json!({
        "name": "dev",
        "issuer": url,
        "audiences": [audience],
        "discovery": true,
        "algorithms": [alg],
    });
    format!(
        "\
================================================================================
 gateward dev-issuer: a local DEVELOPMENT OIDC issuer
 DEVELOPMENT ONLY. Its signing keys are throwaway keys generated at start and lost
 at exit, and anyone who can reach it can mint any token it likes. Never trust it
 in production, and never point a real deployment's configuration at it.
================================================================================

 issuer     {url}
 discovery  {discovery}
 jwks       {jwks}
 key        {kid} ({alg}), listening on 127.0.0.1 only
 audience   {audience} (default `aud`)
 presets    {presets}

 Try it:
   # a GitHub Actions token (octo-org/deploy, environment prod), ready for a header
   TOKEN=$(curl -s -X POST {url}/token)
   curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:<envoy-port>/deploy

   # a GitLab token for branch dev
   curl -s '{url}/token?preset=gitlab&claim.ref=dev&claim.ref_path=refs/heads/dev'

   # an expired token
   curl -s -X POST {url}/token -d '{{\"claims\": {{\"iat\": {iat}, \"nbf\": {iat}, \"exp\": {exp}}}}}'

   # rotate the signing key (older keys stay published until POST /retire)
   curl -s -X POST {url}/rotate

 Trust it from a Gateward configuration (development only):
   {config}

 Serving until Ctrl-C.
",
        discovery = issuer.discovery_url(),
        jwks = issuer.jwks_url(),
        kid = issuer.current_kid(),
        presets = claims::PRESETS.join(", "),
    )
}
