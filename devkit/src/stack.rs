//! The whole local stack on free loopback ports: the development issuer, an echo upstream, and
//! a real Envoy running the Gateward module with `envoy-config/demo.yaml` and `demo.json`.
//! `cargo xtask demo` shows it to a newcomer; the end-to-end tests drive it.

use std::path::{Path, PathBuf};

use crate::envoy::{self, Envoy, EnvoyError};
use crate::http::{self, Response};
use crate::issuer::{DevIssuer, IssuerOptions};
use crate::upstream::Echo;

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
        let gateward = envoy::gateward_config(
            &root.join("demo.json"),
            &[
                ("ISSUER_URL", &issuer_url),
                ("MIN_REFETCH_SECONDS", &refetch),
                ("CACHE_SECONDS", &cache),
                ("MAX_STALE_SECONDS", &stale),
                ("MODE", &opts.mode),
            ],
        )?;
        let template =
            std::fs::read_to_string(root.join("demo.yaml")).map_err(|source| EnvoyError::Io {
                path: root.join("demo.yaml"),
                source,
            })?;
        // A port free when chosen can be taken before Envoy binds it (by another test's Envoy,
        // or as the ephemeral port of some connection): then choose again.
        let mut attempts = 0;
        let (envoy, listen_port) = loop {
            let (listen_port, admin_port) = (port("Envoy's listener")?, port("Envoy's admin")?);
            let yaml = envoy::render(
                &template,
                &[
                    ("ADMIN_PORT", &admin_port.to_string()),
                    ("LISTEN_PORT", &listen_port.to_string()),
                    ("ISSUER_PORT", &issuer_port.to_string()),
                    ("UPSTREAM_PORT", &upstream.port().to_string()),
                    ("WASM", &envoy::yaml_string(&wasm.display().to_string())),
                    ("GATEWARD_CONFIG", &envoy::yaml_string(&gateward)),
                ],
            )?;
            match Envoy::start(&yaml, &opts.dir, opts.concurrency, admin_port) {
                Ok(envoy) => break (envoy, listen_port),
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
        })
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

fn start_issuer(port: u16) -> Result<DevIssuer, EnvoyError> {
    DevIssuer::start(IssuerOptions {
        port,
        ..IssuerOptions::default()
    })
    .map_err(|e| EnvoyError::Config(format!("cannot start the dev issuer on port {port}: {e}")))
}
