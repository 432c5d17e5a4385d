//! A structured fuzzer for the Envoy filter's request path.
//!
//! libFuzzer's coverage cannot see inside the wasm module (cranelift compiles it at load), so
//! this target draws hostile requests from a seeded grammar instead: tokens valid and broken, in
//! every configured place and in several at once, odd query and cookie spellings, forged
//! identity headers, many and huge headers, CORS preflights. Each request goes through the built
//! module in the wasmtime host, one VM serving many requests (so the filter's token and
//! decision caches are in play), and must satisfy:
//!
//! - the VM does not trap and the request is answered (the keys are static: nothing waits);
//! - the filter allows exactly when the core's [`Gate::check`] allows (or the request is a
//!   bypassed CORS preflight), and denies with the core's status and code;
//! - on an allow, the located token is gone from what the upstream gets, identity headers hold
//!   the token's own claims (never a client's copy), no header carries CR, LF or NUL, and every
//!   other header reaches the upstream unchanged, and the token's RSA signature (the pool holds
//!   a PS256 token and its `s + n` twin) is below the modulus;
//! - no token's signature appears in a log line or a local reply.
//!
//! A failure is a [`Finding`]: the requests the VM had served, shrunk to the last one alone when
//! that reproduces it. `cargo xtask fuzz --target filter` writes it under
//! `fuzz/regressions/filter/`, which `cargo test` replays.

// Test tooling: fixtures that fail to build are bugs here, and JSON values are indexed with
// `value["name"]`, which gives Null rather than panicking.
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gateward_devkit::hostile::rsa_twin;
use gateward_devkit::{claims, fixtures, mint, public_pem, sign_hmac, SigningKey};
use gateward_host_tests::{Host, LocalReply, Module, Stream, VmId, START_MS};
use policy_engine::request::percent_decode;
use policy_engine::{Decision, Gate, Request};
use serde_json::{json, Value};

/// The host's clock, in Unix seconds (it does not move during a run).
const NOW: i64 = (START_MS / 1000) as i64;
const AUD: &str = "https://github.com/octo-org";
/// Requests one VM serves before a fresh one starts (the host keeps every stream's record).
const REQUESTS_PER_VM: usize = 500;

/// The policy under test: a deploy rule that sets a header, a rule for any verified caller that
/// prefix-matches the path and echoes the query it was given to the upstream (so a token left in
/// the policy input counts as a token that reached the upstream), a deny with its own status, and
/// a conflict between them (an evaluation error).
const POLICY: &str = r#"
package gateward
import rego.v1

default decision := {"allow": false, "reason": "not allowed"}

decision := {"allow": true, "reason": "deploy", "headers": {"x-ci-ref": input.token.claims.ref}} if {
    input.token.claims.repository == "octo-org/deploy"
    input.token.claims.ref == "refs/heads/main"
    input.request.method == "POST"
    input.request.path == "/deploy"
}

decision := {"allow": true, "reason": "status", "headers": {"x-policy-query": json.marshal(input.request.query)}} if {
    input.request.method == "GET"
    startswith(input.request.path, "/status")
}

decision := {"allow": false, "status": 429, "reason": "busy", "response_headers": {"retry-after": "30"}} if {
    input.request.headers["x-busy"] == "1"
}
"#;

/// Claim headers of the configuration: (header, claim).
const CLAIM_HEADERS: &[(&str, &str)] =
    &[("x-ci-repository", "repository"), ("x-ci-subject", "sub")];

/// The Gateward configuration the VM and the core both run.
pub fn config() -> Value {
    json!({
        "issuers": [{
            "name": "github", "preset": "github-actions", "audiences": [AUD],
            "algorithms": ["RS256", "ES256", "PS256"],
            "jwks": {"keys": [
                fixtures::rsa_a().public_jwk("a"),
                fixtures::p256().public_jwk("e"),
                pss_jwk(),
            ]},
        }],
        "token_sources": [
            {"header": "authorization"}, {"header": "x-ci-token", "prefix": ""},
            {"query": "access_token"}, {"cookie": "ci_token"},
        ],
        // `x-ci-ref` is declared, so the allow that does not set it (`/status`) removes a
        // client's copy too.
        "policy": {"modules": [{"name": "fuzz.rego", "rego": POLICY}], "headers": ["x-ci-ref", "x-policy-query"]},
        "claims_to_headers": CLAIM_HEADERS
            .iter()
            .map(|(h, c)| json!({"claim": c, "header": h}))
            .collect::<Vec<_>>(),
        "allow_cors_preflight": true,
    })
}

/// The RSA key again under kid `p`, pinned to PS256 (for the PSS tokens of the pool).
fn pss_jwk() -> Value {
    let mut jwk = fixtures::rsa_a().public_jwk("p");
    jwk["alg"] = json!("PS256");
    jwk
}

/// Whether `token`'s signature, as an integer, is not below the RSA modulus `n` (an `s + n`
/// twin): such a token must never be allowed.
fn not_below_modulus(token: &str, n: &[u8]) -> bool {
    let sig = token
        .rsplit('.')
        .next()
        .and_then(|s| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .ok()
        })
        .unwrap_or_default();
    let sig = &sig[sig.iter().take_while(|b| **b == 0).count()..];
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    (sig.len(), sig) >= (n.len(), n)
}

/// One request: method, path (with any query) and headers besides the pseudo-headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// Other headers, in order (names lower-case, as Envoy presents them).
    pub headers: Vec<(String, String)>,
}

impl Case {
    /// As stored in a regression file.
    pub fn to_json(&self) -> Value {
        json!({"method": self.method, "path": self.path, "headers": self.headers})
    }

    /// From a regression file.
    pub fn from_json(v: &Value) -> Option<Case> {
        let headers = v["headers"]
            .as_array()?
            .iter()
            .map(|h| Some((h[0].as_str()?.to_string(), h[1].as_str()?.to_string())))
            .collect::<Option<Vec<_>>>()?;
        Some(Case {
            method: v["method"].as_str()?.to_string(),
            path: v["path"].as_str()?.to_string(),
            headers,
        })
    }
}

/// A broken property: what went wrong, and the requests that lead to it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Which property failed, and how.
    pub message: String,
    /// The requests to replay on a fresh VM, in order.
    pub cases: Vec<Case>,
}

impl Finding {
    /// As stored in `fuzz/regressions/filter/`.
    pub fn to_json(&self) -> Value {
        json!({
            "finding": self.message,
            "cases": self.cases.iter().map(Case::to_json).collect::<Vec<_>>(),
        })
    }
}

/// SplitMix64: small, seedable, and the same on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens the generator places: valid ones and each way a token can be wrong.
pub fn token_pool() -> Vec<String> {
    let rsa = fixtures::rsa_a();
    let ec = fixtures::p256();
    let good = claims::github_actions(NOW - 10, AUD);
    let signed = |key: &SigningKey, kid: &str, c: &Value| {
        mint(key, Some(kid), c).unwrap_or_else(|e| panic!("minting a pool token: {e}"))
    };
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        c
    };
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let pss = rsa_twin(&rsa, "p", "PS256", &good);
    vec![
        signed(&rsa, "a", &good),
        signed(&ec, "e", &good),
        signed(
            &rsa,
            "a",
            &with(&|c| c["repository"] = "octo-org/other".into()),
        ),
        signed(
            &rsa,
            "a",
            &with(&|c| c["ref"] = "refs/heads/feature".into()),
        ),
        signed(&rsa, "a", &claims::github_actions(NOW - 1000, AUD)),
        signed(
            &rsa,
            "a",
            &claims::github_actions(NOW - 10, "https://other"),
        ),
        signed(
            &rsa,
            "a",
            &with(&|c| c["iss"] = "https://evil.example".into()),
        ),
        signed(&rsa, "a", &with(&|c| c["nbf"] = (NOW + 3600).into())),
        signed(
            &rsa,
            "a",
            &with(&|c| c["aud"] = json!(["https://other", AUD])),
        ),
        // Claims that would break a header if copied as they are.
        signed(
            &rsa,
            "a",
            &with(&|c| c["repository"] = "octo-org/deploy\r\nx-admin: 1".into()),
        ),
        signed(
            &rsa,
            "a",
            &with(&|c| c["sub"] = "repo:octo-org/deploy:ref:refs/heads/main\u{0}".into()),
        ),
        // Over `max_token_bytes`.
        signed(&rsa, "a", &with(&|c| c["pad"] = "x".repeat(9000).into())),
        // An unknown kid, another key under a known kid, an ES256 token under the RSA kid.
        signed(&rsa, "z", &good),
        signed(&fixtures::rsa_b(), "a", &good),
        signed(&ec, "a", &good),
        // PSS: a valid PS256 token and its `s + n` twin (same length, same claims).
        pss.0,
        pss.1,
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "a"})),
            b64(&good)
        ),
        sign_hmac(
            &json!({"alg": "HS256", "kid": "a"}),
            &good,
            public_pem(&rsa).as_bytes(),
            false,
        ),
    ]
}

/// Draws one request.
pub fn generate(rng: &mut Rng, pool: &[String]) -> Case {
    // A third of the requests are ones the policy may allow (a valid token in the usual place,
    // a route a rule covers), so that the checks on what reaches the upstream run often.
    let plausible = rng.percent(30);
    let (method, path) = if plausible {
        let (m, p) = rng.pick(&[
            ("POST", "/deploy"),
            ("GET", "/status"),
            ("GET", "/status/x"),
        ]);
        (m.to_string(), p.to_string())
    } else {
        let m = rng.pick(&[
            "GET", "GET", "POST", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "post", "get", "Get",
            "pOST", "PURGE", "G ET", "",
        ]);
        let p = rng.pick(&[
            "/deploy",
            "/status",
            "/",
            "/deploy/",
            "//deploy",
            "/%64eploy",
            "/deploy/../admin",
            "/status?verbose=1",
            "/deploy;x=1",
            "/status/..;/deploy",
            "/status/..;x=1/deploy",
            "/status/.;/x",
            "/status/%2e%2e;/admin",
            "/status/%2E./admin",
            "/status/a;v=1",
            "/status;x/..;/deploy",
            "/status/x%2fy",
            "/status/x%5Cy",
            "/status\\..\\deploy",
            "/status/x%00",
            "/status/.well-known",
        ]);
        (m.to_string(), p.to_string())
    };
    // Some plausible requests go wrong in the method or the path only: the gate must refuse
    // them before a policy that prefix-matches sees them.
    let (method, mut path) = match rng.below(if plausible { 10 } else { 1 }) {
        1 => (method.to_ascii_lowercase(), path),
        2 => {
            let twist = rng.pick(&["/..;/deploy", "/..;a=b/x", "/.;", ";v=1", "/%2e%2e;/x"]);
            (method, format!("{path}{twist}"))
        }
        _ => (method, path),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut params: Vec<String> = Vec::new();
    let mut cookies: Vec<String> = Vec::new();
    let placements = match rng.below(100) {
        _ if plausible => 1,
        0..=7 => 0,
        8..=84 => 1,
        85..=96 => 2,
        _ => 3,
    };
    for _ in 0..placements {
        let t = match plausible {
            true => rng.pick(&pool[..2.min(pool.len())]).clone(),
            false => token(rng, pool),
        };
        let fill = |template: &str| template.replace("{}", &t);
        // Often the usual spelling, so that many requests get as far as the policy.
        let usual = plausible || rng.percent(50);
        match rng.below(4) {
            0 => {
                let template = if usual {
                    "Bearer {}"
                } else {
                    rng.pick(&[
                        "bearer {}",
                        "BEARER {}",
                        "Bearer  {}",
                        "Bearer\t{}",
                        "Bearer {} ",
                        "Basic {}",
                        "Token {}",
                        "{}",
                        "Bearer",
                        "Bearer {}, Bearer {}",
                    ])
                };
                headers.push(("authorization".into(), fill(template)));
            }
            1 => {
                let template = if usual {
                    "{}"
                } else {
                    rng.pick(&[" {}", "{} {}", "Bearer {}"])
                };
                headers.push(("x-ci-token".into(), fill(template)));
            }
            2 => {
                let name = if usual {
                    "access_token"
                } else {
                    rng.pick(&[
                        "access%5Ftoken",
                        "access%5ftoken",
                        "%61ccess_token",
                        "%61%63%63%65%73%73%5f%74%6f%6b%65%6e",
                        "access%5F%74oken",
                        "ACCESS_TOKEN",
                        "access%5Ftoken[]",
                        "access_token[]",
                        "access+token",
                    ])
                };
                let value = if rng.percent(30) {
                    t.bytes().map(|b| format!("%{b:02X}")).collect()
                } else {
                    t.clone()
                };
                params.push(format!("{name}={value}"));
            }
            _ => {
                let template = if usual {
                    "ci_token={}"
                } else {
                    rng.pick(&[
                        "ci_token=\"{}\"",
                        " ci_token = {}",
                        "CI_TOKEN={}",
                        "ci_token={}; ci_token={}",
                        "ci%5Ftoken={}",
                        "ci%5ftoken={}",
                        "%63i_token={}",
                    ])
                };
                cookies.push(fill(template));
            }
        }
    }
    if rng.percent(30) {
        for _ in 0..=rng.below(3) {
            let p = rng.pick(&["x=1", "a=%zz", "", "=", "access_token", "q=a+b", "%"]);
            params.insert(rng.below(params.len() + 1), p.to_string());
        }
    }
    if !params.is_empty() {
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str(&params.join("&"));
    }
    if rng.percent(40) {
        for _ in 0..=rng.below(2) {
            let c = rng.pick(&["a=b", "session=xyz", "c", "ci_token2=x", "=v"]);
            cookies.insert(rng.below(cookies.len() + 1), c.to_string());
        }
    }
    if !cookies.is_empty() {
        if rng.percent(50) {
            headers.push(("cookie".into(), cookies.join("; ")));
        } else {
            headers.extend(cookies.into_iter().map(|c| ("cookie".to_string(), c)));
        }
    }
    if rng.percent(30) {
        for (name, value) in [
            ("x-ci-repository", "octo-org/deploy"),
            ("x-ci-subject", "repo:octo-org/deploy:environment:prod"),
            ("x-ci-ref", "refs/heads/main"),
        ] {
            for _ in 0..rng.below(3) {
                headers.push((name.into(), value.into()));
            }
        }
    }
    if rng.percent(10) {
        headers.push(("origin".into(), "https://ci.example".into()));
        if rng.percent(70) {
            headers.push(("access-control-request-method".into(), "POST".into()));
        }
    }
    if rng.percent(10) {
        headers.push(("x-busy".into(), rng.pick(&["1", "0", "1 "]).to_string()));
    }
    let noise = if rng.percent(5) {
        100 + rng.below(200)
    } else {
        rng.below(4)
    };
    for _ in 0..noise {
        let name = if rng.percent(70) {
            rng.pick(&[
                "user-agent",
                "accept",
                "x-forwarded-for",
                "content-type",
                "x-a",
                "x-trace",
            ])
            .to_string()
        } else {
            format!("x-{}", rng.below(1000))
        };
        headers.push((name, text(rng, 64)));
    }
    if rng.percent(3) {
        let len = 32 * 1024 + rng.below(32 * 1024);
        headers.push(("x-huge".into(), text(rng, 16).repeat(len / 16 + 1)));
    }
    // Envoy keeps the order it received; shuffle a little so no place is always first.
    if headers.len() > 1 && rng.percent(50) {
        let (a, b) = (rng.below(headers.len()), rng.below(headers.len()));
        headers.swap(a, b);
    }
    Case {
        method,
        path,
        headers,
    }
}

/// A pool token, sometimes damaged.
fn token(rng: &mut Rng, pool: &[String]) -> String {
    // The two valid tokens come first in the pool: pick them often.
    let t = match rng.percent(40) {
        true => rng.pick(&pool[..2.min(pool.len())]).clone(),
        false => rng.pick(pool).clone(),
    };
    if !rng.percent(25) || !t.is_ascii() {
        return t;
    }
    let mut b = t.into_bytes();
    let at = rng.below(b.len());
    let odd = *rng.pick(b"AZaz09-_.=+/ %\"");
    match rng.below(8) {
        0 => b[at] = odd,
        1 => {
            b.remove(at);
        }
        2 => b.insert(at, odd),
        3 => b.truncate(at),
        4 => {
            let first = b.iter().position(|c| *c == b'.').unwrap_or(0);
            let segment = b[..=first.min(b.len() - 1)].to_vec();
            b.splice(0..0, segment);
        }
        5 => {
            // Another token's header on this token's claims and signature.
            let other = rng.pick(pool).clone();
            let head = other.split('.').next().unwrap_or("").to_string();
            let rest = b.iter().position(|c| *c == b'.').unwrap_or(b.len());
            b.splice(0..rest, head.into_bytes());
        }
        6 => b.make_ascii_uppercase(),
        _ => b.clear(),
    }
    String::from_utf8(b).unwrap_or_default()
}

/// Header text: ASCII, punctuation that matters to parsers, and non-ASCII characters; never
/// CR, LF or NUL (Envoy's codecs refuse those before any filter runs).
fn text(rng: &mut Rng, max: usize) -> String {
    const PARTS: &[&str] = &[
        "a",
        "Z",
        "0",
        " ",
        "\t",
        ",",
        ";",
        "=",
        "\"",
        "%",
        "+",
        ".",
        "/",
        "é",
        "\u{202e}",
        "😀",
        "Bearer ",
        "ci_token=",
    ];
    (0..rng.below(max + 1))
        .map(|_| *rng.pick(PARTS))
        .collect::<String>()
}

/// The built module in a wasmtime host, configured, next to the core it must agree with.
pub struct Harness {
    host: Host,
    vm: VmId,
    gate: Gate,
    /// Requests the current VM has served, for a finding's replay.
    served: Vec<Case>,
    /// The configuration's text (each fresh VM gets it).
    config: String,
    /// The signatures of the pool's tokens (what must never be logged).
    secrets: Vec<String>,
    /// The RSA key's modulus (big-endian): no allowed token's signature reaches it.
    modulus: Vec<u8>,
}

impl Harness {
    /// A fresh VM and the core, on [`config`].
    pub fn new(pool: &[String]) -> Harness {
        let config = config().to_string();
        let gate = Gate::from_json(&config).unwrap_or_else(|e| panic!("fuzz configuration: {e}"));
        let (host, vm) = start_vm(&config);
        let secrets = pool
            .iter()
            .filter_map(|t| t.rsplit('.').next())
            .filter(|s| s.len() >= 40)
            .map(str::to_string)
            .collect();
        Harness {
            host,
            vm,
            gate,
            served: Vec::new(),
            config,
            secrets,
            modulus: policy_engine::b64::decode(
                fixtures::rsa_a().public_jwk("a")["n"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .unwrap_or_default(),
        }
    }

    /// Runs one request and checks every property: its outcome (`allow` or the deny code), or
    /// what failed.
    pub fn check(&mut self, case: &Case) -> Result<String, String> {
        if self.served.len() >= REQUESTS_PER_VM {
            let (host, vm) = start_vm(&self.config);
            (self.host, self.vm) = (host, vm);
            self.served.clear();
        }
        self.served.push(case.clone());
        let mut all: Vec<(&str, &str)> = vec![
            (":method", &case.method),
            (":path", &case.path),
            (":authority", "api.internal"),
            (":scheme", "https"),
        ];
        all.extend(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let id = self.host.request(self.vm, &all);
        self.host.finish(id);
        let logs = self.host.take_logs(self.vm);
        if let Some(trap) = self.host.trap(self.vm) {
            return Err(format!("the VM trapped: {trap}"));
        }
        let stream = self.host.stream(id).clone();
        if stream.failed || stream.closed {
            return Err("the stream failed or was reset".into());
        }
        if stream.local_reply.is_none() && !stream.is_allowed() {
            return Err("the request was neither answered nor let through".into());
        }
        self.check_decision(&stream)?;
        for secret in &self.secrets {
            let windows = [&secret[..32], &secret[secret.len() - 32..]];
            let leaked = |text: &str| windows.iter().any(|w| text.contains(*w));
            if let Some(l) = logs.iter().find(|l| leaked(&l.message)) {
                return Err(format!("a token signature is in a log line: {}", l.message));
            }
            if let Some(r) = &stream.local_reply {
                if leaked(&r.body_text()) || r.headers.iter().any(|(_, v)| leaked(v)) {
                    return Err("a token signature is in the local reply".into());
                }
            }
        }
        Ok(match &stream.local_reply {
            None => "allow".into(),
            Some(r) => reply_code(r).unwrap_or_else(|| format!("status {}", r.status)),
        })
    }

    /// The filter's decision against the core's, then what an allowed request carries on.
    fn check_decision(&self, stream: &Stream) -> Result<(), String> {
        let received = &stream.received_headers;
        let pseudo = |name: &str| {
            received
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let req = Request {
            method: pseudo(":method"),
            path: pseudo(":path"),
            host: pseudo(":authority"),
            headers: received,
        };
        let gate = &self.gate;
        if gate.is_bypassed_preflight(&req) {
            if !stream.is_allowed() {
                return Err("a CORS preflight the configuration lets through was refused".into());
            }
            // Unauthenticated: no identity header (claim or declared policy header) may go
            // with it.
            let (identity, _) = gate.unverified_rewrite(&req);
            return match identity
                .iter()
                .find(|h| stream.request_headers.iter().any(|(k, _)| k == *h))
            {
                Some(h) => Err(format!("{h} went upstream with a CORS preflight")),
                None => Ok(()),
            };
        }
        let expected = gate.check(&req, &|id, _| gate.static_keys(id), NOW);
        match (expected, &stream.local_reply) {
            (Decision::Deny(d), None) => Err(format!(
                "ALLOWED a request the core denies ({}: {})",
                d.code.as_str(),
                d.message
            )),
            (Decision::Deny(d), Some(reply)) => {
                let code = reply_code(reply).unwrap_or_default();
                // A reply to HEAD has no body, so only its status tells.
                let head = req.method == "HEAD" && reply.body.is_empty();
                if reply.status == u32::from(d.status) && (head || code == d.code.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "the core denies {} {}, the filter answered {} {code}",
                        d.status,
                        d.code.as_str(),
                        reply.status
                    ))
                }
            }
            (Decision::Allow(_), Some(reply)) => Err(format!(
                "the core allows, the filter answered {}: {}",
                reply.status,
                reply.body_text()
            )),
            (Decision::Allow(a), None) => {
                upstream_reads_the_same(&req)?;
                let located = gate
                    .locate(&req)
                    .map_err(|d| format!("allowed, but the core locates no token: {d:?}"))?;
                if not_below_modulus(located.token, &self.modulus) {
                    return Err("ALLOWED a token whose RSA signature is not below n".into());
                }
                forwarded(
                    received,
                    &stream.request_headers,
                    located.token,
                    &a.headers,
                    &a.remove_headers,
                )
            }
        }
    }
}

/// An allowed request means the same to any upstream: its method is upper case, and its path,
/// read as Tomcat, Jetty and Spring read it (percent-decoded, `;parameters` stripped from each
/// segment, `\\` as `/`), has no `.` or `..` segment and no control character. Restated here
/// rather than calling the core's check.
fn upstream_reads_the_same(req: &Request<'_>) -> Result<(), String> {
    if req.method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!("allowed the method {:?}", req.method));
    }
    let raw = req.path.split('?').next().unwrap_or_default();
    let decoded = percent_decode(&raw.replace('+', "%2B")).replace('\\', "/");
    for segment in decoded.split('/') {
        let bare = segment.split(';').next().unwrap_or_default();
        if bare == "." || bare == ".." {
            return Err(format!(
                "allowed {raw:?}, which an upstream reads with {segment:?}"
            ));
        }
        if bare.chars().any(char::is_control) {
            return Err(format!("allowed {raw:?}, a control character upstream"));
        }
    }
    Ok(())
}

/// What an allowed request carries to the upstream (`upstream`), given what Envoy received:
/// `set` by the decision, every other header of `removed` gone.
fn forwarded(
    received: &[(String, String)],
    upstream: &[(String, String)],
    token: &str,
    set: &[(String, String)],
    removed: &[String],
) -> Result<(), String> {
    // The token: one copy fewer than the client sent (its source), wherever else it was.
    let copies = |headers: &[(String, String)]| -> usize {
        headers
            .iter()
            .map(|(k, v)| match k.as_str() {
                ":path" => percent_decode(v).matches(token).count(),
                _ => v.matches(token).count(),
            })
            .sum()
    };
    if copies(upstream) >= copies(received) {
        return Err("the token reached the upstream".into());
    }
    let values = |headers: &'_ [(String, String)], name: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    // Identity headers: the token's own claims, once, or nothing (a client's copy never).
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
        })
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .unwrap_or(Value::Null);
    for (header, claim) in CLAIM_HEADERS {
        match values(upstream, header).as_slice() {
            [] => {}
            [v] if claims[claim].as_str() == Some(v.as_str()) => {}
            other => return Err(format!("{header} reached the upstream as {other:?}")),
        }
    }
    for (header, value) in set {
        if values(upstream, header) != [value.clone()] {
            return Err(format!(
                "{header}: the policy set {value:?}, the upstream got {:?}",
                values(upstream, header)
            ));
        }
    }
    // Declared policy headers the decision did not set: a client's copy never.
    for name in removed {
        let claim = CLAIM_HEADERS.iter().any(|(h, _)| h == name);
        if !claim && !set.iter().any(|(h, _)| h == name) && !values(upstream, name).is_empty() {
            return Err(format!(
                "{name} reached the upstream though the decision removes it and sets none"
            ));
        }
    }
    if let Some((k, v)) = upstream
        .iter()
        .find(|(_, v)| v.contains(['\r', '\n', '\0']))
    {
        return Err(format!(
            "{k} reached the upstream with a control character: {v:?}"
        ));
    }
    // Everything else, untouched.
    let changed = ["authorization", "x-ci-token", "cookie", ":path"];
    for (name, _) in received.iter().chain(upstream) {
        let ours = changed.contains(&name.as_str())
            || CLAIM_HEADERS.iter().any(|(h, _)| h == name)
            || set.iter().any(|(h, _)| h == name)
            || removed.contains(name);
        if !ours && values(received, name) != values(upstream, name) {
            return Err(format!("{name} was changed on its way to the upstream"));
        }
    }
    Ok(())
}

/// The deny code in a local reply's JSON body (none for a reply without a body, as to HEAD).
fn reply_code(reply: &LocalReply) -> Option<String> {
    serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|b| b["code"].as_str().map(str::to_string))
}

fn start_vm(config: &str) -> (Host, VmId) {
    let mut host = Host::new(Module::gateward());
    let vm = host
        .start_vm(b"")
        .unwrap_or_else(|e| panic!("starting the VM: {e}"));
    if !host.configure(vm, config.as_bytes()) {
        panic!("configuration refused: {:?}", host.logs(vm));
    }
    host.take_logs(vm);
    (host, vm)
}

/// Runs a finding's requests on a fresh VM; Err with the first broken property.
pub fn replay(pool: &[String], cases: &[Case]) -> Result<(), String> {
    let mut h = Harness::new(pool);
    cases.iter().try_for_each(|c| h.check(c).map(drop))
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// A fixed number of requests.
    Cases(u64),
    /// Requests until this much time has passed.
    Time(Duration),
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests checked.
    pub cases: u64,
    /// How many the filter answered with each outcome (`allow` or a deny code).
    pub outcomes: BTreeMap<String, u64>,
    /// The first broken property, if any (the run stops there).
    pub finding: Option<Finding>,
    /// Time spent generating and checking requests (start-up excluded).
    pub seconds: f64,
}

/// Generates and checks requests from `seed` until the budget is spent or a property breaks.
pub fn run(seed: u64, budget: Budget) -> Stats {
    let pool = token_pool();
    let mut rng = Rng::new(seed);
    let mut harness = Harness::new(&pool);
    let mut stats = Stats::default();
    let started = Instant::now();
    loop {
        let done = match budget {
            Budget::Cases(n) => stats.cases >= n,
            Budget::Time(d) => started.elapsed() >= d,
        };
        stats.seconds = started.elapsed().as_secs_f64();
        if done {
            return stats;
        }
        let case = generate(&mut rng, &pool);
        stats.cases += 1;
        match harness.check(&case) {
            Ok(outcome) => *stats.outcomes.entry(outcome).or_default() += 1,
            Err(message) => {
                // Shrink to the last request alone when a fresh VM fails on it the same way.
                let cases = match replay(&pool, std::slice::from_ref(&case)) {
                    Err(m) if m == message => vec![case],
                    _ => harness.served.clone(),
                };
                stats.finding = Some(Finding { message, cases });
                stats.seconds = started.elapsed().as_secs_f64();
                return stats;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool holds a PSS twin (`s + n` of its valid PS256 signature) that the oracle's
    /// `not_below_modulus` recognises, and the grammar places it. (That the filter refuses it as
    /// the core does is what every run checks.)
    #[test]
    fn the_grammar_places_pss_twins() {
        let pool = token_pool();
        let n = policy_engine::b64::decode(
            fixtures::rsa_a().public_jwk("a")["n"]
                .as_str()
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        let twins: Vec<&String> = pool.iter().filter(|t| not_below_modulus(t, &n)).collect();
        assert_eq!(twins.len(), 1, "the pool holds one PSS twin");
        let (input, signature) = twins[0].rsplit_once('.').unwrap_or_default();
        assert!(
            pool.iter()
                .any(|t| t.starts_with(input) && !t.ends_with(signature)),
            "the twin's original is in the pool"
        );
        let mut rng = Rng::new(1);
        let placed = (0..400)
            .map(|_| generate(&mut rng, &pool))
            .filter(|c| {
                c.path.contains(signature) || c.headers.iter().any(|(_, v)| v.contains(signature))
            })
            .count();
        assert!(placed > 0, "400 requests never carried the PSS twin");
    }
}
