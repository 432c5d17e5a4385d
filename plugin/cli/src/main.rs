//! `gateward`: drive Gateward's core from a terminal.
//!
//! Exit codes: 0 allow / success, 1 deny, 2 bad input (unreadable file, invalid config, usage).

mod args;
mod commands;
mod dev_issuer;
mod explain_text;
mod policy_test;
mod time;

use std::process::ExitCode;

/// A failure that ends the command with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong arguments.
    #[error("{0}\n\nRun `gateward help` for usage.")]
    Usage(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("invalid configuration {path}:\n{errors}")]
    Config {
        /// The config file.
        path: String,
        /// Every problem, one per line.
        errors: policy_engine::ConfigErrors,
    },
    /// Other bad input.
    #[error("{0}")]
    Input(String),
}

const USAGE: &str = "\
gateward — verify CI OIDC tokens and evaluate Rego policies

USAGE:
  gateward check --config FILE --token FILE|- [--now UNIX] [--method M] [--path P]
                 [--host H] [--header 'K: V']... [--jwks FILE]
      Print the decision as JSON. Exit 0 allow, 1 deny, 2 bad input.
      --now makes old tokens reproducible; --jwks supplies keys for an issuer
      whose keys are remote (the CLI does not fetch them).
  gateward eval --config FILE --token FILE|- [--method M] [--path P] [--explain] [--json]
                [--now UNIX] [--host H] [--header 'K: V']... [--jwks FILE]
      The decision in words; --explain adds the value of every rule in the policy's
      packages, the Rego lines the entrypoint evaluated and print() output; --json
      prints all of it as JSON. Exit codes as for check.
  gateward config validate FILE
      Print every configuration error with its JSON path (exit 2), or a summary.
  gateward token inspect FILE|- [--now UNIX]
      Print a token's header and claims, UNVERIFIED, with times in human form.
  gateward test [PATH...] [--verbose] [--run SUBSTRING]
      Run the `test_*` rules of every .rego file under PATH (default .), like
      `opa test`, on the engine the gate uses. Exit 0 all pass, 1 a failure, 2 bad input.
  gateward dev-issuer [--port N] [--audience A] [--key rsa|p256|p384|ed25519]
      Run a local DEVELOPMENT OIDC issuer on 127.0.0.1 (throwaway keys; never
      trust it in production): discovery, JWKS, and tokens for the presets
      github-actions, gitlab, circleci, buildkite, spiffe, generic. Prints its
      URLs and curl examples, then serves until Ctrl-C. --port 0 (the default)
      picks a free port; --audience sets the default `aud`; --key defaults to rsa.
  gateward help | version
";

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let cmd = argv.next().unwrap_or_else(|| "help".to_string());
    let rest: Vec<String> = argv.collect();
    let result = match cmd.as_str() {
        "check" => commands::check(rest),
        "eval" => commands::eval(rest),
        "config" => match rest.split_first() {
            Some((sub, rest)) if sub == "validate" => commands::validate(rest.to_vec()),
            _ => Err(CliError::Usage(
                "expected `gateward config validate FILE`".into(),
            )),
        },
        "token" => match rest.split_first() {
            Some((sub, rest)) if sub == "inspect" => commands::inspect(rest.to_vec()),
            _ => Err(CliError::Usage(
                "expected `gateward token inspect FILE|-`".into(),
            )),
        },
        "dev-issuer" => dev_issuer::run(rest),
        "test" => policy_test::run(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        "version" | "--version" => {
            println!("gateward {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        other => Err(CliError::Usage(format!("unknown command {other:?}"))),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}
