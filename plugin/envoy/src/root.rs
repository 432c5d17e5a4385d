//! The root context: one per plugin configuration in each VM. It validates the configuration
//! (`on_configure`), owns the compiled [`Plugin`] that new streams share, and drives background
//! key work from `on_tick`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use policy_engine::{Gate, IssuerId, KeySource, Mode};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use crate::cache::TokenCache;
use crate::keystore::{Kind, SourceId};
use crate::stream::{self, Stream};
use crate::{log, vm};

/// How often each VM looks at shared key state: the delay before a request paused in one VM
/// sees keys fetched by another.
pub const TICK: Duration = Duration::from_millis(TICK_MS);
/// [`TICK`] in milliseconds.
pub const TICK_MS: u64 = 100;

/// A validated configuration and its per-configuration state.
#[derive(Debug)]
pub struct Plugin {
    /// The compiled gate.
    pub gate: Gate,
    /// Verified tokens (per configuration: a reconfiguration starts afresh).
    pub cache: RefCell<TokenCache>,
    /// For each issuer, its remote key source (None: static keys).
    sources: Vec<Option<SourceId>>,
}

impl Plugin {
    /// The remote key source of issuer `id`, if its keys are fetched.
    pub fn source(&self, id: IssuerId) -> Option<&SourceId> {
        self.sources.get(id).and_then(Option::as_ref)
    }
}

/// The root context.
pub struct Root {
    id: u32,
    plugin: Option<Rc<Plugin>>,
}

impl Root {
    /// A root context without configuration yet.
    pub fn new(id: u32) -> Root {
        Root { id, plugin: None }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        vm::set_current(self.id);
        on_fetch_response(token, headers, body, self);
    }

    fn on_done(&mut self) -> bool {
        let id = self.id;
        vm::with(|vm| vm.keys.abandon(id));
        true
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        vm::set_current(self.id);
        vm::init();
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        vm::set_current(self.id);
        let text = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map_err(|_| vec![String::from("$: the configuration is not UTF-8")]),
            _ => Err(vec![String::from(
                "$: no configuration: give Gateward's JSON configuration as the plugin configuration",
            )]),
        };
        #[cfg(feature = "selftest")]
        if let Some(()) = text.as_deref().ok().and_then(crate::selftest::run) {
            return true;
        }
        let started_us = vm::now_us();
        match text.and_then(|t| configure(&t)) {
            Ok(plugin) => {
                log::info(&format!(
                    "configured in {:.1} ms: issuers {}; mode {}; policy {}",
                    vm::now_us().saturating_sub(started_us) as f64 / 1000.0,
                    plugin
                        .gate
                        .issuers()
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    match plugin.gate.mode() {
                        Mode::Enforce => "enforce",
                        Mode::Report => "report",
                    },
                    if plugin.gate.policy().is_some() {
                        "loaded"
                    } else {
                        "none"
                    },
                ));
                if let Some(layout) = plugin.gate.replay_layout() {
                    crate::replay::prepare(&layout);
                }
                // Replacing the Rc is the whole reconfiguration: streams already running keep
                // the configuration they started with.
                self.plugin = Some(Rc::new(plugin));
                if let Err(s) = hostcalls::set_tick_period(TICK) {
                    log::error(&format!("cannot set the tick period: {s:?}"));
                }
                true
            }
            Err(errors) => {
                log::error(&format!(
                    "configuration rejected ({} problem(s)):",
                    errors.len()
                ));
                for e in &errors {
                    log::error(&format!("  {e}"));
                }
                false
            }
        }
    }

    fn on_tick(&mut self) {
        vm::set_current(self.id);
        let now = vm::now_ms();
        let id = self.id;
        let cx: &dyn Context = self;
        vm::with(|vm| {
            vm.keys.tick(now, cx);
            if !vm.waiters.is_empty() {
                stream::wake(vm, now, cx, id);
            }
        });
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream::new(context_id, self.plugin.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Validates a configuration for this host and registers its remote key sources.
fn configure(text: &str) -> Result<Plugin, Vec<String>> {
    let gate =
        Gate::from_json(text).map_err(|e| e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let mut errors = Vec::new();
    for (i, issuer) in gate.issuers().iter().enumerate() {
        let url = match &issuer.keys {
            KeySource::Static(_) => continue,
            KeySource::JwksUri(u) | KeySource::Discovery(u) => u,
        };
        if issuer.fetch.cluster.is_none() {
            errors.push(format!(
                "issuers[{i}].fetch.cluster: required for remote keys: the Envoy cluster that reaches {url} (Envoy fetches through clusters, not URLs)"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    for w in gate.warnings() {
        log::warn(w);
    }
    let sources = vm::with(|vm| {
        gate.issuers()
            .iter()
            .map(|issuer| {
                let kind = match &issuer.keys {
                    KeySource::Static(_) => return None,
                    KeySource::JwksUri(u) => Kind::Jwks(u.clone()),
                    KeySource::Discovery(u) => Kind::Discovery {
                        url: u.clone(),
                        issuer: issuer.iss().to_string(),
                    },
                };
                Some(vm.keys.register(kind, issuer.fetch.clone(), &issuer.name))
            })
            .collect::<Vec<_>>()
    })
    .ok_or_else(|| vec![String::from("$: internal: filter state busy")])?;
    Ok(Plugin {
        cache: RefCell::new(TokenCache::new(gate.token_cache_size())),
        gate,
        sources,
    })
}

/// A key fetch answered (delivered to whichever context dispatched it): install the result
/// and finish the requests that waited for it.
pub fn on_fetch_response(token: u32, headers: usize, body: usize, cx: &dyn Context) {
    let now = vm::now_ms();
    let current = vm::current_context();
    vm::with(|vm| {
        let vm = &mut *vm;
        if vm
            .keys
            .on_response(token, headers, body, now, cx, &vm.metrics)
            .is_some()
        {
            stream::wake(vm, now, cx, current);
        }
    });
}
