//! `cargo xtask demo`: the quick start. Builds the module, starts the development issuer, an
//! echo upstream and a real Envoy on free loopback ports, walks through allowed and denied
//! requests, then leaves the stack up with copy-paste `curl` lines (or exits with `--once`).

use std::time::Duration;

use gateward_devkit::http::Response;
use gateward_devkit::stack::{Stack, StackOptions};
use serde_json::{json, Value};

/// Runs the demo; `once` exits after the walkthrough.
pub fn run(once: bool) -> Result<(), String> {
    let wasm = crate::build()?;
    println!("\n==> starting the development issuer, an echo upstream and Envoy (first run installs Envoy into .tools/)");
    let opts = StackOptions {
        min_refetch_seconds: 1,
        ..StackOptions::default()
    };
    let stack = Stack::start(&wasm, &opts).map_err(|e| e.to_string())?;
    let issuer = stack.issuer().map_err(|e| e.to_string())?;
    println!(
        "    issuer   {} (DEVELOPMENT ONLY: throwaway keys)\n    envoy    {}  (admin {})\n    upstream http://127.0.0.1:{} (echoes the headers it receives)\n",
        issuer.url(),
        stack.url(),
        stack.envoy.admin_url(),
        stack.upstream.port()
    );

    let now = now();
    let steps: [(&str, Value); 5] = [
        ("a deploy from octo-org/deploy on main", json!({})),
        (
            "the same workflow from a fork",
            json!({"repository": "mallory/deploy", "repository_owner": "mallory", "repository_owner_id": "666"}),
        ),
        (
            "a feature branch",
            json!({"ref": "refs/heads/feature", "sub": "repo:octo-org/deploy:ref:refs/heads/feature"}),
        ),
        (
            "an expired token",
            json!({"iat": now - 900, "nbf": now - 900, "exp": now - 600}),
        ),
        (
            "a token for another audience",
            json!({"aud": "https://github.com/other-org"}),
        ),
    ];
    for (what, claims) in steps {
        let token = issuer
            .mint("github-actions", &claims)
            .map_err(|e| e.to_string())?;
        show(what, stack.send("POST", "/deploy", Some(&token)));
    }
    show("no token at all", stack.send("POST", "/deploy", None));

    std::thread::sleep(Duration::from_millis(1100));
    let kid = issuer.rotate();
    let token = issuer
        .mint("github-actions", &json!({}))
        .map_err(|e| e.to_string())?;
    show(
        &format!("after a key rotation (new kid {kid}: one refetch)"),
        stack.send("POST", "/deploy", Some(&token)),
    );

    if once {
        return Ok(());
    }
    println!(
        "\nThe stack stays up until Ctrl-C. Try:\n\n  TOKEN=$(curl -s -X POST {iss}/token)\n  curl -i -X POST -H \"Authorization: Bearer $TOKEN\" {envoy}/deploy\n  curl -s '{iss}/token?claim.ref=refs/heads/dev'    # a token the policy refuses\n  curl -s {admin}/stats | grep gateward\n\nLogs: {dir}/envoy.out\nListener and Gateward configuration: {lds} (Envoy reloads it when a new file is renamed over it)",
        iss = issuer.url(),
        lds = stack.listener_file().display(),
        envoy = stack.url(),
        admin = stack.envoy.admin_url(),
        dir = opts.dir.display(),
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn show(what: &str, result: std::io::Result<Response>) {
    match result {
        Err(e) => println!("  {what:<58} request failed: {e}"),
        Ok(r) => {
            let body = r.json().unwrap_or(Value::Null);
            let detail = if r.status == 200 {
                format!(
                    "→ upstream saw x-ci-repository={} x-ci-ref={}, no authorization header: {}",
                    body["headers"]["x-ci-repository"],
                    body["headers"]["x-ci-ref"],
                    body["headers"].get("authorization").is_none()
                )
            } else {
                format!("{}: {}", body["code"], body["message"])
            };
            println!("  {what:<58} {} {detail}", r.status);
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
