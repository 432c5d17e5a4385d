//! The subcommands.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use policy_engine::{
    explain, jws, Config, Decision, Gate, Issuer, IssuerId, KeySet, KeySource, Request,
};
use serde_json::{json, Value};

use crate::args::Args;
use crate::{time, CliError};

fn read(path: &str) -> Result<String, CliError> {
    let result = if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(path)
    };
    result.map_err(|source| CliError::Read {
        path: path.to_string(),
        source,
    })
}

fn now_arg(args: &Args) -> Result<i64, CliError> {
    match args.get("now") {
        Some(n) => n
            .parse()
            .map_err(|_| CliError::Usage(format!("--now {n:?} is not a Unix time"))),
        None => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
    }
}

/// Loads a config file, resolving policy `file`s relative to it.
pub fn load_gate(path: &str) -> Result<Gate, CliError> {
    let text = read(path)?;
    let config_err = |errors| CliError::Config {
        path: path.to_string(),
        errors,
    };
    let config = Config::from_json(&text).map_err(config_err)?;
    let base = Path::new(path)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let gate = Gate::new(&config, &mut |file| {
        std::fs::read_to_string(base.join(file)).map_err(|e| e.to_string())
    })
    .map_err(config_err)?;
    for w in gate.warnings() {
        eprintln!("warning: {w}");
    }
    Ok(gate)
}

/// A request assembled from `check`/`eval` arguments, with the keys to verify it.
struct Prepared {
    gate: Gate,
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    extra_keys: Option<KeySet>,
    now: i64,
}

impl Prepared {
    fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            host: &self.host,
            headers: &self.headers,
        }
    }

    fn keys<'g>(&'g self) -> impl Fn(IssuerId, &'g Issuer) -> Option<&'g KeySet> {
        move |id, issuer| match &issuer.keys {
            KeySource::Static(_) => self.gate.static_keys(id),
            _ => self.extra_keys.as_ref(),
        }
    }
}

const REQUEST_FLAGS: [&str; 8] = [
    "config", "token", "now", "method", "path", "host", "header", "jwks",
];

fn prepare(args: &Args) -> Result<Prepared, CliError> {
    let gate = load_gate(args.require("config")?)?;
    let token = read(args.require("token")?)?.trim().to_string();
    let now = now_arg(args)?;
    let extra_keys = match args.get("jwks") {
        Some(path) => Some(
            KeySet::from_jwks(read(path)?.as_bytes())
                .map_err(|e| CliError::Input(format!("{path}: {e}")))?,
        ),
        None => None,
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    for h in args.all("header") {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("--header {h:?} must be 'Name: value'")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    // Put the token where the config's first source looks for it.
    let mut path = args.get("path").unwrap_or("/").to_string();
    match gate.token_sources().first() {
        Some(src) if src.header.is_some() => {
            let name = src.header.clone().unwrap_or_default();
            headers.push((name, format!("{}{token}", src.header_prefix())));
        }
        Some(src) if src.query.is_some() => {
            let sep = if path.contains('?') { '&' } else { '?' };
            path = format!(
                "{path}{sep}{}={token}",
                src.query.clone().unwrap_or_default()
            );
        }
        Some(src) => headers.push((
            "cookie".into(),
            format!("{}={token}", src.cookie.clone().unwrap_or_default()),
        )),
        None => {}
    }
    Ok(Prepared {
        gate,
        method: args.get("method").unwrap_or("GET").to_string(),
        path,
        host: args.get("host").unwrap_or("localhost").to_string(),
        headers,
        extra_keys,
        now,
    })
}

/// The decision as JSON, with the challenge a deny would carry.
fn decision_json(gate: &Gate, decision: &Decision) -> Value {
    let mut out = serde_json::to_value(decision).unwrap_or_default();
    if let (Decision::Deny(d), Some(obj)) = (decision, out.as_object_mut()) {
        if let Some(www) = d.www_authenticate(gate.realm()) {
            obj.insert("www_authenticate".into(), www.into());
        }
        if d.code == policy_engine::DenyCode::KeysUnavailable {
            eprintln!("hint: this issuer's keys are remote; pass them with --jwks FILE");
        }
    }
    out
}

fn exit_code(decision: &Decision) -> ExitCode {
    if decision.is_allow() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `gateward check`.
pub fn check(raw: Vec<String>) -> Result<ExitCode, CliError> {
    let args = Args::parse(raw, &[])?;
    args.only(&REQUEST_FLAGS)?;
    let p = prepare(&args)?;
    let decision = p.gate.check(&p.request(), &p.keys(), p.now);
    let out = decision_json(&p.gate, &decision);
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(exit_code(&decision))
}

/// `gateward eval`: the decision, and with `--explain` why (rule values, evaluated lines,
/// prints); `--json` prints the whole explanation as JSON.
pub fn eval(raw: Vec<String>) -> Result<ExitCode, CliError> {
    let args = Args::parse(raw, &["explain", "json"])?;
    let mut known = REQUEST_FLAGS.to_vec();
    known.extend(["explain", "json"]);
    args.only(&known)?;
    let p = prepare(&args)?;
    let explanation = explain::check_explained(&p.gate, &p.request(), &p.keys(), p.now);
    if args.switch("json") {
        let mut out = serde_json::to_value(&explanation).unwrap_or_default();
        if let Some(obj) = out.as_object_mut() {
            obj.insert(
                "decision".into(),
                decision_json(&p.gate, &explanation.decision),
            );
        }
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!(
            "{}",
            crate::explain_text::render(&explanation, &p.gate, args.switch("explain"))
        );
    }
    Ok(exit_code(&explanation.decision))
}

/// `gateward config validate`.
pub fn validate(raw: Vec<String>) -> Result<ExitCode, CliError> {
    let args = Args::parse(raw, &[])?;
    args.only(&[])?;
    let [path] = args.positional.as_slice() else {
        return Err(CliError::Usage("expected one config file".into()));
    };
    let gate = load_gate(path)?;
    println!("{path}: valid");
    for issuer in gate.issuers() {
        let keys = match &issuer.keys {
            KeySource::Static(k) => format!("{} inline key(s)", k.keys.len()),
            KeySource::JwksUri(u) => format!("JWKS from {u}"),
            KeySource::Discovery(u) => format!("discovery at {u}"),
        };
        let algs: Vec<&str> = issuer.algorithms.iter().map(|a| a.name()).collect();
        println!(
            "  issuer {}: {} ({}; {})",
            issuer.name,
            issuer.iss(),
            algs.join(", "),
            keys
        );
    }
    match gate.policy() {
        Some(p) => println!("  policy: entrypoint {}", p.entrypoint()),
        None => println!("  policy: none (every verified token is allowed)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `gateward token inspect`.
pub fn inspect(raw: Vec<String>) -> Result<ExitCode, CliError> {
    let args = Args::parse(raw, &[])?;
    args.only(&["now"])?;
    let [path] = args.positional.as_slice() else {
        return Err(CliError::Usage(
            "expected one token file, or - for stdin".into(),
        ));
    };
    let token = read(path)?.trim().to_string();
    let now = now_arg(&args)?;
    let parsed = jws::parse(&token, 64 * 1024)
        .map_err(|e| CliError::Input(format!("not a token Gateward accepts: {e}")))?;
    let mut times = serde_json::Map::new();
    for claim in ["iat", "nbf", "exp"] {
        if let Some(t) = parsed.claims.get(claim).and_then(Value::as_i64) {
            times.insert(
                claim.into(),
                json!(format!("{} ({})", time::rfc3339(t), time::relative(t, now))),
            );
        }
    }
    let out = json!({
        "warning": "UNVERIFIED: the signature and claims have not been checked",
        "header": parsed.header,
        "claims": parsed.claims,
        "times": times,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
