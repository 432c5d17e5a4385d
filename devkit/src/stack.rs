//! The whole local stack on free loopback ports: the development issuer, an echo upstream, and
//! a real Envoy running the Gateward module with `envoy-config/demo.yaml` and `demo.json`.
//! `cargo xtask demo` shows it to a newcomer; the end-to-end tests drive it.
//!
//! Envoy reads the listener (and with it the Gateward configuration) from a file it watches
//! ([`crate::lds`]), so [`Stack::reload`] can swap the configuration under traffic as an
//! operator without a control plane would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::envoy::{self, Envoy, EnvoyError, ListenerCounters};
use crate::http::{self, Response};
use crate::issuer::{DevIssuer, IssuerOptions};
use crate::lds::{self, ListenerFile};
use crate::upstream::Echo;

/// How long Envoy may take to run a new listener on every worker.
const RELOAD_LIMIT: Duration = Duration::from_secs(30);

/// The filter's failure policy as `demo.yaml` sets it; [`StackOptions::failure_policy`]
/// replaces it.
const TEMPLATE_FAILURE_POLICY: &str = "failure_policy: FAIL_RELOAD";

/// How to run the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Envoy worker threads.
    pub concurrency: u32,
    /// `enforce` or `report`.
    pub mode: String,
    /// `fetch.min_refetch_seconds` of the demo issuer.
    pub min_refetch_seconds: u64,
    /// `fetch.cache_seconds` of the demo issuer (how often its keys are refreshed).
    pub cache_seconds: u64,
    /// `fetch.max_stale_seconds` of the demo issuer (how long failed refreshes keep old keys).
    pub max_stale_seconds: u64,
    /// Start the issuer with the stack (false: its port is reserved, [`Stack::start_issuer`]
    /// brings it up later, to show Envoy starting while the issuer is down).
    pub issuer_up: bool,
    /// Rego to run instead of the demo's policy (`examples/deploy.rego`), as one module.
    pub policy: Option<String>,
    /// The filter's `failure_policy` instead of `demo.yaml`'s `FAIL_RELOAD` (e.g.
    /// `UNSPECIFIED`, Envoy's default).
    pub failure_policy: Option<String>,
    /// Envoy's `--drain-time-s`: how long a replaced listener's connections may finish before
    /// Envoy closes them and frees it (None: Envoy's default, 600 s).
    pub drain_seconds: Option<u32>,
    /// Where configs and logs go.
    pub dir: PathBuf,
}

impl Default for StackOptions {
    fn default() -> StackOptions {
        StackOptions {
            concurrency: 1,
            mode: "enforce".into(),
            min_refetch_seconds: 30,
            cache_seconds: 600,
            max_stale_seconds: 86_400,
            issuer_up: true,
            policy: None,
            failure_policy: None,
            drain_seconds: None,
            dir: envoy::workspace_root().join("target/gateward-demo"),
        }
    }
}

/// The running stack; everything stops on drop.
#[derive(Debug)]
pub struct Stack {
    /// The development issuer (None while "down").
    pub issuer: Option<DevIssuer>,
    /// The issuer's port (reserved even while it is down).
    pub issuer_port: u16,
    /// The API behind the gate.
    pub upstream: Echo,
    /// Envoy.
    pub envoy: Envoy,
    listen_port: u16,
    /// `demo.yaml` (failure policy applied) and its placeholders but the Gateward
    /// configuration, to render the listener again on a reload.
    template: String,
    vars: Vec<(&'static str, String)>,
    /// The Gateward configuration the listener runs (compact JSON).
    gateward: String,
    listeners: ListenerFile,
}

impl Stack {
    /// Starts the issuer, the upstream and Envoy with the module at `wasm`.
    pub fn start(wasm: &Path, opts: &StackOptions) -> Result<Stack, EnvoyError> {
        let port = |what: &str| {
            envoy::free_port()
                .map_err(|e| EnvoyError::Config(format!("no free port for {what}: {e}")))
        };
        let issuer_port = port("the issuer")?;
        let issuer = if opts.issuer_up {
            Some(start_issuer(issuer_port)?)
        } else {
            None
        };
        let upstream = Echo::start()
            .map_err(|e| EnvoyError::Config(format!("cannot start the echo upstream: {e}")))?;
        let root = envoy::workspace_root().join("envoy-config");
        let issuer_url = format!("http://127.0.0.1:{issuer_port}");
        let refetch = opts.min_refetch_seconds.to_string();
        let cache = opts.cache_seconds.to_string();
        let stale = opts.max_stale_seconds.to_string();
        let mut gateward = envoy::gateward_config(
            &root.join("demo.json"),
            &[
                ("ISSUER_URL", &issuer_url),
                ("MIN_REFETCH_SECONDS", &refetch),
                ("CACHE_SECONDS", &cache),
                ("MAX_STALE_SECONDS", &stale),
                ("MODE", &opts.mode),
            ],
        )?;
        if let Some(rego) = &opts.policy {
            gateward = with_policy(&gateward, rego)?;
        }
        let mut template =
            std::fs::read_to_string(root.join("demo.yaml")).map_err(|source| EnvoyError::Io {
                path: root.join("demo.yaml"),
                source,
            })?;
        if let Some(policy) = &opts.failure_policy {
            if !template.contains(TEMPLATE_FAILURE_POLICY) {
                return Err(EnvoyError::Config(format!(
                    "demo.yaml has no `{TEMPLATE_FAILURE_POLICY}` to replace"
                )));
            }
            template = template.replace(
                TEMPLATE_FAILURE_POLICY,
                &format!("failure_policy: {policy}"),
            );
        }
        let args: Vec<String> = opts
            .drain_seconds
            .map(|s| vec!["--drain-time-s".to_string(), s.to_string()])
            .unwrap_or_default();
        // A port free when chosen can be taken before Envoy binds it (by another test's Envoy,
        // or as the ephemeral port of some connection): then choose again.
        let mut attempts = 0;
        let (envoy, listen_port, vars, listeners) = loop {
            let (listen_port, admin_port) = (port("Envoy's listener")?, port("Envoy's admin")?);
            let mut listeners = ListenerFile::new(&opts.dir);
            let vars = vec![
                ("ADMIN_PORT", admin_port.to_string()),
                ("LISTEN_PORT", listen_port.to_string()),
                ("ISSUER_PORT", issuer_port.to_string()),
                ("UPSTREAM_PORT", upstream.port().to_string()),
                ("WASM", envoy::yaml_string(&wasm.display().to_string())),
            ];
            let split = lds::split(&render(&template, &vars, &gateward)?, &listeners)?;
            listeners.write(&split.listeners)?;
            let started = Envoy::start_with_args(
                &split.bootstrap,
                &opts.dir,
                opts.concurrency,
                admin_port,
                &args,
            )
            .and_then(|envoy| {
                // Ready means LDS answered; the listener may still be on its way to the workers,
                // or refused (its port taken).
                envoy.wait_listener_update(ListenerCounters::default(), RELOAD_LIMIT)?;
                Ok(envoy)
            });
            match started {
                Ok(envoy) => break (envoy, listen_port, vars, listeners),
                Err(e) if attempts < 3 && e.to_string().contains("Address already in use") => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Stack {
            issuer,
            issuer_port,
            upstream,
            envoy,
            listen_port,
            template,
            vars,
            gateward,
            listeners,
        })
    }

    /// The Gateward configuration Envoy's listener runs now (compact JSON).
    pub fn gateward_config(&self) -> &str {
        &self.gateward
    }

    /// Replaces the listener's Gateward configuration through its LDS file and returns once
    /// every worker runs it: requests on connections opened from then on are decided by
    /// `gateward` (compact or not, JSON), those already under way finish under the previous
    /// one. Err([`EnvoyError::Rejected`]) when Envoy refuses it (e.g. the filter refused the
    /// configuration): the previous one keeps serving. The running configuration again is a
    /// no-op.
    pub fn reload(&mut self, gateward: &str) -> Result<(), EnvoyError> {
        let gateward = serde_json::from_str::<Value>(gateward)
            .map_err(|e| EnvoyError::Config(format!("the Gateward configuration: {e}")))?
            .to_string();
        if gateward == self.gateward {
            return Ok(());
        }
        let split = lds::split(
            &render(&self.template, &self.vars, &gateward)?,
            &self.listeners,
        )?;
        let before = self.envoy.listener_counters()?;
        self.listeners.write(&split.listeners)?;
        self.envoy.wait_listener_update(before, RELOAD_LIMIT)?;
        self.gateward = gateward;
        Ok(())
    }

    /// The LDS file Envoy reads the listener from (rename a new one into its directory to
    /// reload by hand).
    pub fn listener_file(&self) -> &Path {
        self.listeners.path()
    }

    /// How many listener updates this Envoy was given, rejected ones included (the LDS file's
    /// `version_info`; 1 at start).
    pub fn listener_version(&self) -> u64 {
        self.listeners.version()
    }

    /// Brings the issuer up on its reserved port (after starting "down").
    pub fn start_issuer(&mut self) -> Result<(), EnvoyError> {
        if self.issuer.is_none() {
            self.issuer = Some(start_issuer(self.issuer_port)?);
        }
        Ok(())
    }

    /// The issuer, which must be up.
    pub fn issuer(&self) -> Result<&DevIssuer, EnvoyError> {
        self.issuer
            .as_ref()
            .ok_or_else(|| EnvoyError::Config("the issuer is down".into()))
    }

    /// `http://127.0.0.1:<listener>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.listen_port)
    }

    /// Sends `method path` through Envoy, with `Authorization: Bearer <token>` if given.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>) -> std::io::Result<Response> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        http::request(method, &format!("{}{path}", self.url()), &headers, b"")
    }
}

/// `demo.yaml` rendered with `vars` and the Gateward configuration `gateward`.
fn render(
    template: &str,
    vars: &[(&'static str, String)],
    gateward: &str,
) -> Result<String, EnvoyError> {
    let config = envoy::yaml_string(gateward);
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.push(("GATEWARD_CONFIG", &config));
    envoy::render(template, &all)
}

/// `gateward` (JSON) with `rego` as its only policy module (and without the demo policy's
/// `headers` list, which names what that policy sets).
fn with_policy(gateward: &str, rego: &str) -> Result<String, EnvoyError> {
    let mut config: Value = serde_json::from_str(gateward)
        .map_err(|e| EnvoyError::Config(format!("the Gateward configuration: {e}")))?;
    if let Some(policy) = config.get_mut("policy").and_then(Value::as_object_mut) {
        policy.remove("headers");
    }
    let modules = config
        .get_mut("policy")
        .and_then(|p| p.get_mut("modules"))
        .ok_or_else(|| EnvoyError::Config("demo.json has no policy.modules".into()))?;
    *modules = json!([{"name": "policy.rego", "rego": rego}]);
    Ok(config.to_string())
}

fn start_issuer(port: u16) -> Result<DevIssuer, EnvoyError> {
    DevIssuer::start(IssuerOptions {
        port,
        ..IssuerOptions::default()
    })
    .map_err(|e| EnvoyError::Config(format!("cannot start the dev issuer on port {port}: {e}")))
}
