#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! End to end: the built plugin binary in a real OpenBao 2.7.2 dev server (installed into
//! `.tools/` on first use), with tokens from the development issuer.
//!
//! Each test starts its own server and issuer on free loopback ports; both stop when the test
//! ends. `GATEWARD_KEEP_BAO=1` keeps the server's folder (its log shows the plugin's lines).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateward_devkit::http::Response;
use gateward_devkit::issuer::{DevIssuer, IssuerOptions};
use gateward_devkit::openbao::Bao;
use serde_json::{json, Map, Value};

const PLUGIN: &str = "gateward-openbao";
const AUD: &str = "https://github.com/octo-org";

/// Allows `octo-org/deploy` on `main`; grants `deployer` and adds metadata when it does.
const POLICY: &str = r#"package gateward

import rego.v1

claims := input.token.claims

default decision := {"allow": false, "reason": "not an allowed deploy"}

decision := {"allow": true, "policies": ["deployer"], "metadata": {"decided_by": input.role}} if {
	claims.repository == "octo-org/deploy"
	claims.ref == "refs/heads/main"
}

decision := {"allow": false, "reason": sprintf("deploys come from main, not %s", [claims.ref])} if {
	claims.ref != "refs/heads/main"
}
"#;

struct Stack {
    issuer: DevIssuer,
    bao: Bao,
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

impl Stack {
    /// Issuer + server, the plugin copied into the plugin directory and registered.
    fn start() -> Stack {
        let (issuer, bao, sha) = Stack::install();
        let out = bao
            .cli(&[
                "plugin",
                "register",
                &format!("-sha256={sha}"),
                "auth",
                PLUGIN,
            ])
            .unwrap_or_else(|e| panic!("{e}\n{}", bao.log()));
        assert!(out.contains("Registered plugin"), "{out}");
        Stack { issuer, bao }
    }

    /// The same, registered through the catalog API with `env` for the plugin process.
    fn start_with_env(env: &[&str]) -> Stack {
        let (issuer, bao, sha) = Stack::install();
        let r = bao
            .api(
                "POST",
                &format!("sys/plugins/catalog/auth/{PLUGIN}"),
                Some(&json!({"sha256": sha, "command": PLUGIN, "env": env})),
            )
            .unwrap();
        assert_eq!(r.status, 204, "{}\n{}", r.text(), bao.log());
        Stack { issuer, bao }
    }

    fn install() -> (DevIssuer, Bao, String) {
        let issuer = DevIssuer::start(IssuerOptions::default()).unwrap();
        let bao = Bao::start().unwrap_or_else(|e| panic!("{e}"));
        let sha = bao
            .install_plugin(Path::new(env!("CARGO_BIN_EXE_gateward-openbao")), PLUGIN)
            .unwrap();
        (issuer, bao, sha)
    }

    fn cli(&self, args: &[&str]) -> String {
        self.bao
            .cli(args)
            .unwrap_or_else(|e| panic!("{e}\n--- server log ---\n{}", self.bao.log()))
    }

    /// Enables the plugin at `auth/<mount>` and writes a config trusting the dev issuer.
    fn enable(&self, mount: &str) {
        self.cli(&["auth", "enable", &format!("-path={mount}"), PLUGIN]);
        let config = json!({"issuers": [{
            "name": "dev",
            "issuer": self.issuer.url(),
            "audiences": [AUD],
            "discovery": true,
            "algorithms": ["RS256"],
        }]});
        self.write(&format!("auth/{mount}/config"), &config);
    }

    fn write(&self, path: &str, body: &Value) -> Response {
        let r = self.bao.api("POST", path, Some(body)).unwrap();
        assert!(
            r.status == 200 || r.status == 204,
            "write {path}: {} {}\n--- server log ---\n{}",
            r.status,
            r.text(),
            self.bao.log()
        );
        r
    }

    fn deploy_role(&self, mount: &str, name: &str) {
        self.write(
            &format!("auth/{mount}/role/{name}"),
            &json!({
                "policy": POLICY,
                "user_claim": "sub",
                "bound_audiences": [AUD],
                "claim_mappings": {"repository": "repo", "ref": "ref"},
                "token_policies": ["ci"],
                "token_ttl": "1h",
                "token_max_ttl": "2h",
            }),
        );
    }

    fn token(&self, overrides: &Value) -> String {
        self.issuer.mint("github-actions", overrides).unwrap()
    }

    fn login(&self, mount: &str, role: &str, jwt: &str) -> Response {
        self.bao
            .api_as(
                None,
                "POST",
                &format!("auth/{mount}/login"),
                Some(&json!({"role": role, "jwt": jwt})),
            )
            .unwrap()
    }

    /// A successful login's `auth` object.
    fn login_ok(&self, mount: &str, role: &str, jwt: &str) -> Value {
        let r = self.login(mount, role, jwt);
        assert_eq!(
            r.status,
            200,
            "login on {mount}: {}\n--- server log ---\n{}",
            r.text(),
            self.bao.log()
        );
        r.json().unwrap()["auth"].clone()
    }

    /// A refused login's single error message.
    fn login_err(&self, mount: &str, role: &str, jwt: &str) -> (u16, String) {
        let r = self.login(mount, role, jwt);
        let body = r.json().unwrap();
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{}", r.text());
        (r.status, errors[0].as_str().unwrap().to_string())
    }

    /// Processes running the plugin binary from this server's plugin directory.
    fn plugin_pids(&self) -> Vec<u32> {
        let dir = self.bao.plugin_dir().to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Ok(exe) = std::fs::read_link(entry.path().join("exe")) {
                if exe.to_string_lossy().starts_with(&dir) {
                    pids.push(pid);
                }
            }
        }
        pids.sort_unstable();
        pids
    }

    /// Waits (bounded) until `cond` holds on the plugin processes.
    fn wait_pids(&self, what: &str, cond: impl Fn(&[u32]) -> bool) -> Vec<u32> {
        let start = Instant::now();
        loop {
            let pids = self.plugin_pids();
            if cond(&pids) {
                return pids;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what}: plugin processes {pids:?}\n--- server log ---\n{}",
                self.bao.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn refuses_to_run_outside_openbao() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateward-openbao"))
        .env_remove("VAULT_BACKEND_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no handshake line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OpenBao/Vault auth plugin"), "{err}");
    assert!(err.contains("bao plugin register"), "{err}");
}

#[test]
fn login_issues_a_token_with_policies_metadata_alias_and_a_ttl_capped_by_exp() {
    let s = Stack::start();
    s.enable("gateward");
    s.deploy_role("gateward", "deploy");
    let listed = s.cli(&["plugin", "list", "-detailed", "-format=json", "auth"]);
    let catalog: Value = serde_json::from_str(&listed).unwrap();
    let entry = catalog["details"]
        .as_array()
        .unwrap_or_else(|| panic!("{catalog}"))
        .iter()
        .find(|p| p["name"] == PLUGIN)
        .cloned()
        .unwrap();
    assert_eq!(entry["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(entry["builtin"], false);

    let overrides = json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"});
    let auth = s.login_ok("gateward", "deploy", &s.token(&overrides));
    assert_eq!(
        strings(&auth["policies"]),
        ["ci", "default", "deployer"],
        "{auth}"
    );
    assert_eq!(auth["metadata"]["repo"], "octo-org/deploy");
    assert_eq!(auth["metadata"]["ref"], "refs/heads/main");
    assert_eq!(auth["metadata"]["decided_by"], "deploy");
    assert_eq!(auth["renewable"], true);
    // The role allows an hour; the CI token expires 300 s after it was minted.
    let ttl = auth["lease_duration"].as_i64().unwrap();
    assert!(ttl > 0 && ttl <= 300, "lease_duration {ttl}");

    // The token and the entity alias OpenBao made from the auth we returned.
    let token = auth["client_token"].as_str().unwrap();
    let lookup = s
        .bao
        .api_as(Some(token), "GET", "auth/token/lookup-self", None)
        .unwrap()
        .json()
        .unwrap();
    let data = &lookup["data"];
    assert_eq!(
        data["display_name"],
        "gateward-repo:octo-org/deploy:environment:prod"
    );
    assert_eq!(data["path"], "auth/gateward/login");
    assert_eq!(data["meta"]["repo"], "octo-org/deploy");
    let entity_id = auth["entity_id"].as_str().unwrap();
    assert!(!entity_id.is_empty());
    let entity = s
        .bao
        .api("GET", &format!("identity/entity/id/{entity_id}"), None)
        .unwrap()
        .json()
        .unwrap();
    let aliases = entity["data"]["aliases"].as_array().unwrap();
    assert_eq!(aliases.len(), 1, "{entity}");
    assert_eq!(aliases[0]["name"], "repo:octo-org/deploy:environment:prod");
    assert_eq!(aliases[0]["mount_type"], PLUGIN);
    assert_eq!(aliases[0]["mount_path"], "auth/gateward/");
    assert_eq!(aliases[0]["metadata"]["repo"], "octo-org/deploy");

    // The plugin's hclog lines reach the server's log under the mount's logger.
    let log = s.bao.log();
    assert!(
        log.lines()
            .any(|l| l.contains("set up as auth plugin") && l.contains("[INFO]")),
        "{log}"
    );
    assert!(!log.contains(token), "the client token is never logged");
}

#[test]
fn every_refusal_is_a_400_with_its_deny_code() {
    let s = Stack::start_with_env(&["GATEWARD_LOG=debug"]);
    s.enable("gateward");
    s.deploy_role("gateward", "deploy");
    let good = json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"});
    let with = |extra: Value| {
        let mut o = good.as_object().unwrap().clone();
        o.extend(extra.as_object().unwrap().clone());
        s.token(&Value::Object(o))
    };
    let t = now();
    let other_key = gateward_devkit::fixtures::rsa_b();
    let forged = gateward_devkit::mint(
        &other_key,
        Some(&s.issuer.current_kid()),
        &json!({"iss": s.issuer.url(), "aud": AUD, "sub": "x", "iat": t, "exp": t + 300}),
    )
    .unwrap();
    let unknown_kid = gateward_devkit::mint(
        &other_key,
        Some("no-such-kid"),
        &json!({"iss": s.issuer.url(), "aud": AUD, "sub": "x", "iat": t, "exp": t + 300}),
    )
    .unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong audience",
            s.issuer
                .mint_request(&gateward_devkit::issuer::MintRequest {
                    audience: Some("https://github.com/other-org".into()),
                    ..gateward_devkit::issuer::MintRequest::new("github-actions", &good).unwrap()
                })
                .unwrap(),
            "audience_mismatch",
        ),
        (
            "expired",
            with(json!({"iat": t - 1000, "nbf": t - 1000, "exp": t - 600})),
            "expired",
        ),
        ("signed by another key", forged, "signature_invalid"),
        ("unknown kid", unknown_kid, "key_not_found"),
        (
            "untrusted issuer",
            with(json!({"iss": "https://evil.example"})),
            "issuer_untrusted",
        ),
        (
            "feature branch",
            with(json!({"ref": "refs/heads/feature"})),
            "policy_denied",
        ),
        (
            "other repository",
            with(json!({"repository": "octo-org/other"})),
            "policy_denied",
        ),
        ("garbage", "not.a.jwt".into(), "token_malformed"),
    ];
    for (what, jwt, code) in cases {
        let (status, message) = s.login_err("gateward", "deploy", &jwt);
        assert_eq!(status, 400, "{what}: {message}");
        assert!(
            message.starts_with(&format!("{code}: ")),
            "{what}: expected {code}, got {message:?}"
        );
    }
    let (status, message) = s.login_err(
        "gateward",
        "deploy",
        &with(json!({"ref": "refs/heads/feature"})),
    );
    assert_eq!(status, 400);
    assert!(
        message.contains("deploys come from main, not refs/heads/feature"),
        "{message}"
    );

    let (status, message) = s.login_err("gateward", "nosuchrole", &s.token(&good));
    assert_eq!(status, 400);
    assert!(message.contains("could not be found"), "{message}");
    let (status, _) = s.login_err("gateward", "deploy", "");
    assert_eq!(status, 400);

    // Not a token problem: unknown paths and operations keep OpenBao's own answers.
    let r = s.bao.api("GET", "auth/gateward/nope", None).unwrap();
    assert!(
        r.status == 404 || r.status == 405,
        "{} {}",
        r.status,
        r.text()
    );

    // GATEWARD_LOG=debug from the catalog entry: one line per request, status but no data.
    let log = s.bao.log();
    assert!(
        log.lines()
            .any(|l| l.contains("[DEBUG]") && l.contains("update login: 400")),
        "{log}"
    );
    assert!(!log.contains(&s.token(&good)[..40]), "no token in the log");
}

#[test]
fn renewal_works_until_the_role_is_deleted() {
    let s = Stack::start();
    s.enable("gateward");
    s.deploy_role("gateward", "deploy");
    let jwt = s.token(&json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"}));
    let auth = s.login_ok("gateward", "deploy", &jwt);
    let token = auth["client_token"].as_str().unwrap().to_string();
    let accessor = auth["accessor"].as_str().unwrap().to_string();

    let r = s
        .bao
        .api_as(
            Some(&token),
            "POST",
            "auth/token/renew-self",
            Some(&json!({"increment": "30s"})),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.bao.log());
    let renewed = r.json().unwrap()["auth"].clone();
    assert_eq!(renewed["client_token"], token.as_str());
    assert_eq!(
        renewed["accessor"],
        accessor.as_str(),
        "the accessor survives renewal"
    );
    assert_eq!(strings(&renewed["policies"]), ["ci", "default", "deployer"]);
    let ttl = renewed["lease_duration"].as_i64().unwrap();
    assert!(ttl > 0 && ttl <= 30, "renewed for {ttl} s");

    let r = s
        .bao
        .api("DELETE", "auth/gateward/role/deploy", None)
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s
        .bao
        .api_as(Some(&token), "POST", "auth/token/renew-self", None)
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("does not exist"), "{}", r.text());
}

#[test]
fn reload_restarts_the_plugin_and_logins_go_on() {
    let s = Stack::start();
    s.enable("gateward");
    s.deploy_role("gateward", "deploy");
    let good = json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"});
    s.login_ok("gateward", "deploy", &s.token(&good));
    let before = s.wait_pids("running after enable", |p| p.len() == 1);

    let out = s.cli(&["plugin", "reload", &format!("-plugin={PLUGIN}")]);
    assert!(out.contains("Reloaded"), "{out}");
    s.wait_pids("old process gone after reload", |p| !p.contains(&before[0]));
    // Config and roles live in OpenBao's storage: the new process serves them.
    s.login_ok("gateward", "deploy", &s.token(&good));
    let after = s.wait_pids("one new process", |p| p.len() == 1);
    assert_ne!(after, before);
}

#[test]
fn two_mounts_run_two_processes_with_separate_storage() {
    let s = Stack::start();
    s.enable("gw-a");
    s.enable("gw-b");
    s.deploy_role("gw-a", "only-a");
    s.deploy_role("gw-b", "only-b");
    let jwt = s.token(&json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"}));
    let a = s.login_ok("gw-a", "only-a", &jwt);
    let b = s.login_ok("gw-b", "only-b", &jwt);
    assert_ne!(a["accessor"], b["accessor"]);
    let (status, message) = s.login_err("gw-a", "only-b", &jwt);
    assert_eq!(status, 400);
    assert!(message.contains("could not be found"), "{message}");
    let list = s
        .bao
        .api("LIST", "auth/gw-b/role", None)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(strings(&list["data"]["keys"]), ["only-b"]);
    s.wait_pids("one process per mount", |p| p.len() == 2);
}

#[test]
fn disabling_the_mount_stops_its_process() {
    let s = Stack::start();
    s.enable("gateward");
    let pids = s.wait_pids("running after enable", |p| p.len() == 1);
    s.cli(&["auth", "disable", "gateward"]);
    s.wait_pids("exited after disable", |p| !p.contains(&pids[0]));
    let log = s.bao.log();
    assert!(log.contains("shutdown requested by the host"), "{log}");
}

/// The bound-claims table shared with `gateward-openbao-auth`: the same role on the built-in
/// `jwt` method and on ours must allow and deny the same tokens.
#[test]
fn bound_claims_match_the_builtin_jwt_method() {
    let s = Stack::start();
    s.enable("gateward");
    s.cli(&["auth", "enable", "jwt"]);
    s.write(
        "auth/jwt/config",
        &json!({"oidc_discovery_url": s.issuer.url(), "bound_issuer": s.issuer.url()}),
    );
    let table: Value = serde_json::from_str(gateward_openbao_auth::bound::PARITY_JSON).unwrap();
    let baseline = table["baseline_claims"].as_object().unwrap().clone();
    let cases = table["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let allow_all = "package gateward\nimport rego.v1\ndecision := true\n";
    let mut mismatches = Vec::new();
    let (mut allowed, mut denied) = (0, 0);
    for (i, case) in cases.iter().enumerate() {
        let role = format!("case-{i}");
        // Cases about bound_claims bind the token's audience; the audience cases say theirs.
        let audiences = case.get("bound_audiences").cloned().unwrap_or(json!([AUD]));
        let bound = json!({
            "bound_claims": case["bound_claims"],
            "bound_claims_type": case["bound_claims_type"],
            "bound_audiences": audiences,
            "user_claim": "sub",
        });
        let mut builtin = bound.clone();
        builtin["role_type"] = json!("jwt");
        let r = s
            .bao
            .api("POST", &format!("auth/jwt/role/{role}"), Some(&builtin))
            .unwrap();
        let builtin_role_ok = r.status == 204 || r.status == 200;
        let mut ours = bound;
        ours["policy"] = json!(allow_all);
        let r = s
            .bao
            .api("POST", &format!("auth/gateward/role/{role}"), Some(&ours))
            .unwrap();
        let our_role_ok = r.status == 204 || r.status == 200;
        if builtin_role_ok != our_role_ok {
            mismatches.push(format!(
                "{}: role write builtin={builtin_role_ok} ours={our_role_ok}",
                case["name"]
            ));
            continue;
        }
        if !builtin_role_ok {
            continue;
        }
        let mut claims: Map<String, Value> = baseline.clone();
        // The dev issuer signs as itself.
        claims.remove("iss");
        for (k, v) in case["claims"].as_object().unwrap() {
            claims.insert(k.clone(), v.clone());
        }
        let jwt = s.token(&Value::Object(claims));
        let builtin = s.login("jwt", &role, &jwt);
        let ours = s.login("gateward", &role, &jwt);
        let expected = case["allowed"].as_bool().unwrap();
        if ours.status == 200 {
            allowed += 1;
        } else {
            denied += 1;
            // A refusal is the user's (400), never the plugin's (500).
            assert_eq!(ours.status, 400, "{}: {}", case["name"], ours.text());
        }
        if (builtin.status == 200) != (ours.status == 200) || (ours.status == 200) != expected {
            mismatches.push(format!(
                "{}: builtin {} {} / ours {} {} / table says allowed={expected}",
                case["name"],
                builtin.status,
                builtin.text().trim(),
                ours.status,
                ours.text().trim()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Both outcomes were exercised, not only role writes.
    assert!(
        allowed >= 5 && denied >= 5,
        "allowed {allowed}, denied {denied}"
    );
}

/// Issue 17 items 9 and 7 against the built-in `jwt` method on the same server: a role without
/// `bound_audiences` refuses a token with an `aud` on both; PEM keys without `kid` verify a token
/// that names one on both; a role name with `..` is a 400 that echoes no storage key; and a
/// failing key fetch answers the login without the upstream's status, which goes to the log.
#[test]
fn audiences_kidless_pem_keys_role_names_and_fetch_errors_match_the_builtin() {
    let s = Stack::start();
    let key = gateward_devkit::fixtures::rsa_b();
    let pem = gateward_devkit::public_pem(&key);
    let iss = "https://ci.example";
    s.cli(&["auth", "enable", "-path=gw-pem", PLUGIN]);
    s.write(
        "auth/gw-pem/config",
        &json!({"issuers": [{"name": "pem", "issuer": iss, "audiences": [AUD],
                             "pem_keys": [{"pem": pem}]}]}),
    );
    s.cli(&["auth", "enable", "-path=jwt-pem", "jwt"]);
    s.write(
        "auth/jwt-pem/config",
        &json!({"jwt_validation_pubkeys": [pem], "bound_issuer": iss}),
    );
    let allow_all = "package gateward\nimport rego.v1\ndecision := true\n";
    for (role, audiences) in [("bound", json!([AUD])), ("unbound", json!([]))] {
        let common = json!({"bound_audiences": audiences, "user_claim": "sub",
                            "bound_claims": {"sub": "job-1"}});
        let mut builtin = common.clone();
        builtin["role_type"] = json!("jwt");
        s.write(&format!("auth/jwt-pem/role/{role}"), &builtin);
        let mut ours = common;
        ours["policy"] = json!(allow_all);
        s.write(&format!("auth/gw-pem/role/{role}"), &ours);
    }
    let t = now();
    let claims = json!({"iss": iss, "aud": AUD, "sub": "job-1", "iat": t, "exp": t + 300});
    for kid in [Some("k1"), None] {
        let jwt = gateward_devkit::mint(&key, kid, &claims).unwrap();
        for mount in ["jwt-pem", "gw-pem"] {
            s.login_ok(mount, "bound", &jwt);
            let (status, message) = s.login_err(mount, "unbound", &jwt);
            assert_eq!(status, 400, "{mount} kid {kid:?}: {message}");
            assert!(
                message.contains("audience claim found in JWT but no audiences bound to the role"),
                "{mount}: {message}"
            );
        }
    }

    // A role name that is not one: a 400 naming no storage key (was a 500 echoing role/../gha).
    let jwt = gateward_devkit::mint(&key, Some("k1"), &claims).unwrap();
    for name in ["../gha", "a/../bound"] {
        let (status, message) = s.login_err("gw-pem", name, &jwt);
        assert_eq!(status, 400, "{name}: {message}");
        assert!(message.starts_with("invalid role name: "), "{message}");
        assert!(
            !message.contains("role/") && !message.contains(".."),
            "{message}"
        );
    }

    // Keys that cannot be fetched: the login learns which issuer, the log learns why.
    s.enable("gateward");
    s.deploy_role("gateward", "deploy");
    s.issuer.set_failure(Some(503));
    let good = json!({"repository": "octo-org/deploy", "ref": "refs/heads/main"});
    let (status, message) = s.login_err("gateward", "deploy", &s.token(&good));
    assert_eq!(status, 400, "{message}");
    assert_eq!(
        message,
        "keys_unavailable: could not fetch keys for issuer dev (the plugin's log has the reason)"
    );
    let log = s.bao.log();
    assert!(
        log.lines()
            .any(|l| l.contains("[ERROR]") && l.contains("HTTP status 503")),
        "{log}"
    );
}
