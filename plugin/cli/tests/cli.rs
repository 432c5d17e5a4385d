//! The `gateward` binary on the quick start's sample files: the decisions, exit codes and
//! messages a user sees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn gateward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateward"))
        .args(args)
        .output()
        .unwrap()
}

/// `gateward <command>` on the example config and a sample token, as `POST path`.
fn run_on_sample(command: &str, token: &str, path: &str, extra: &[&str]) -> Output {
    let config = examples().join("github-deploy.json");
    let token = examples().join("tokens").join(format!("{token}.jwt"));
    let mut args = vec![
        command,
        "--config",
        config.to_str().unwrap(),
        "--token",
        token.to_str().unwrap(),
        "--now",
        "1760000000",
        "--method",
        "POST",
        "--path",
        path,
    ];
    args.extend(extra);
    gateward(&args)
}

fn check(token: &str, path: &str) -> (i32, Value, String) {
    let out = run_on_sample("check", token, path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn allowed_token_exits_zero_with_headers() {
    let (code, json, _) = check("allowed", "/deploy");
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["decision"], "allow");
    assert_eq!(json["issuer"], "github");
    let headers = json["headers"].to_string();
    assert!(
        headers.contains("x-ci-repository") && headers.contains("octo-org/deploy"),
        "{headers}"
    );
}

#[test]
fn each_bad_token_exits_one_with_its_code() {
    for (token, path, code) in [
        ("malformed", "/deploy", "token_malformed"),
        ("expired", "/deploy", "expired"),
        ("wrong-audience", "/deploy", "audience_mismatch"),
        ("wrong-key", "/deploy", "signature_invalid"),
        ("feature-branch", "/deploy", "policy_denied"),
        ("allowed", "/admin", "policy_denied"),
    ] {
        let (exit, json, _) = check(token, path);
        assert_eq!(exit, 1, "{token}: {json}");
        assert_eq!(json["decision"], "deny", "{token}");
        assert_eq!(json["code"], code, "{token}: {json}");
    }
    let (_, json, _) = check("feature-branch", "/deploy");
    assert_eq!(
        json["message"],
        "deploys must come from refs/heads/main, not refs/heads/feature/x"
    );
    let (_, json, _) = check("expired", "/deploy");
    assert!(json["www_authenticate"]
        .as_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[test]
fn broken_config_prints_every_error_and_exits_two() {
    let dir = std::env::temp_dir().join(format!("gateward-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        r#"{"issuers": [{"name": "x", "issuer": "https://x.example", "audiences": [], "jwks_uri": "ftp://x"},
                        {"name": "y", "issuer": "https://y.example", "audiences": ["a"], "algorithms": ["HS256"], "discovery": true}],
            "policy": {"modules": [{"file": "missing.rego"}]}}"#,
    )
    .unwrap();
    let out = gateward(&["config", "validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        "issuers[0].audiences: must not be empty",
        "issuers[0].jwks_uri: must be an https:// URL",
        "issuers[1].algorithms[0]: \"HS256\"",
        "policy.modules[0].file: missing.rego",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    let out = gateward(&["check", "--config", path.to_str().unwrap(), "--token", "-"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_policy_syntax_error_is_reported_beside_the_issuers_naming_its_place_once() {
    let dir = std::env::temp_dir().join(format!("gateward-cli-syntax-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        r#"{"issuers": [{"name": "x", "issuer": "https://x.example", "audiences": [], "jwks_uri": "https://x.example/keys"}],
            "policy": {"modules": [{"rego": "package gateward\ndecision := input.token.claims.ref ==\n"}]}}"#,
    )
    .unwrap();
    let out = gateward(&["config", "validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: invalid configuration {}:\n\
             issuers[0].audiences: must not be empty\n\
             policy: policy.modules[0]:3:1: expecting expression\n\
             \x20 |\n\
             3 | \n\
             \x20 | ^\n",
            path.display()
        )
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn valid_config_summary_and_unreadable_files() {
    let config = examples().join("github-deploy.json");
    let out = gateward(&["config", "validate", config.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("issuer github: https://token.actions.githubusercontent.com"));
    let out = gateward(&["check", "--config", "/nonexistent.json", "--token", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.json"));
    let out = gateward(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn inspect_marks_unverified_and_shows_human_times() {
    let token = examples().join("tokens/expired.jwt");
    let out = gateward(&[
        "token",
        "inspect",
        token.to_str().unwrap(),
        "--now",
        "1760000000",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["warning"].as_str().unwrap().starts_with("UNVERIFIED"));
    assert_eq!(json["claims"]["repository"], "octo-org/deploy");
    assert_eq!(json["times"]["exp"], "2025-10-09T08:43:20Z (10 min ago)");
    let bad = examples().join("tokens/malformed.jwt");
    let out = gateward(&["token", "inspect", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// Kills the child on drop, so a failed assertion never leaves a server running.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn dev_issuer_serves_discovery_until_killed() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_gateward"))
            .args(["dev-issuer", "--port", &port.to_string(), "--key", "p256"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let doc = loop {
        match gateward_devkit::http::get(&format!("{url}/.well-known/openid-configuration")) {
            Ok(r) => break r,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the dev issuer never answered: {e}"
                );
                assert!(
                    child.0.try_wait().unwrap().is_none(),
                    "the dev issuer exited"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert_eq!(doc.status, 200);
    let doc = doc.json().unwrap();
    assert_eq!(doc["issuer"], url.as_str());
    assert_eq!(doc["jwks_uri"], format!("{url}/.well-known/jwks"));
    assert_eq!(doc["id_token_signing_alg_values_supported"][0], "ES256");

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let mut banner = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut banner)
        .unwrap();
    assert!(banner.contains("DEVELOPMENT ONLY"), "{banner}");
    assert!(banner.contains("Never trust it"), "{banner}");
    assert!(
        banner.contains(&format!("curl -s -X POST {url}/rotate")),
        "{banner}"
    );

    let out = gateward(&["dev-issuer", "--key", "rsa4096"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
}

#[test]
fn rego_tests_pass_fail_and_bad_input_have_their_exit_codes() {
    let dir = std::env::temp_dir().join(format!("gateward-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(
        dir.join("lib/lib.rego"),
        "package lib\nimport rego.v1\nallow if input.ok == true\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("lib/lib_test.rego"),
        "package lib_test\nimport rego.v1\nimport data.lib\n\
         test_allows if lib.allow with input as {\"ok\": true}\n\
         test_denies if not lib.allow with input as {\"ok\": false}\n",
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let out = gateward(&["test", d, "--verbose"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("data.lib_test.test_allows: PASS"), "{text}");
    assert!(text.contains("PASS: 2/2"), "{text}");

    std::fs::write(
        dir.join("lib/more_test.rego"),
        "package more_test\nimport rego.v1\nimport data.lib\n\
         test_wrong if lib.allow with input as {\"ok\": false}\n",
    )
    .unwrap();
    let out = gateward(&["test", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("data.more_test.test_wrong: FAIL"), "{text}");
    assert!(
        !text.contains("test_allows"),
        "passing tests shown without --verbose"
    );
    assert!(text.contains("FAIL: 1/3"), "{text}");

    std::fs::write(dir.join("lib/broken.rego"), "package broken\nx if {").unwrap();
    let out = gateward(&["test", d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.rego"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_explain_shows_rule_values_and_where_the_deny_came_from() {
    let run = |token: &str, extra: &[&str]| {
        let out = run_on_sample("eval", token, "/deploy", extra);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let (code, text) = run("feature-branch", &["--explain"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("decision: DENY 403 policy_denied"),
        "{text}"
    );
    assert!(text.contains("not refs/heads/feature/x"), "{text}");
    assert!(
        text.contains("data.gateward.decision = {\"allow\":false"),
        "{text}"
    );
    // The allow rule's body stopped at the branch check; the deny rule's condition held.
    assert!(
        text.contains("!   14 \tclaims.ref == \"refs/heads/main\""),
        "{text}"
    );
    assert!(
        text.contains("-   15 \tclaims.environment == \"prod\""),
        "{text}"
    );
    assert!(
        text.contains("+   21 \tclaims.ref != \"refs/heads/main\""),
        "{text}"
    );

    let (code, text) = run("allowed", &["--json"]);
    assert_eq!(code, 0, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["decision"]["decision"], "allow", "{v}");
    assert_eq!(v["decision"]["issuer"], "github");
    assert_eq!(v["claims"]["repository"], "octo-org/deploy");
    assert_eq!(v["input"]["request"]["method"], "POST");
    assert!(v["coverage"][0]["covered"].as_array().unwrap().len() > 3);

    // A token refused before the policy: said so, no rules.
    let (code, text) = run("expired", &["--explain"]);
    assert_eq!(code, 1);
    assert!(text.contains("DENY 401 expired"), "{text}");
    assert!(text.contains("The policy did not run"), "{text}");
}
