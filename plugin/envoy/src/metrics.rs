//! Counters through proxy-wasm metrics. Envoy shows them as `wasmcustom.gateward.*`.

use std::cell::RefCell;
use std::collections::HashMap;

use policy_engine::DenyCode;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// The filter's counters, defined once per VM.
#[derive(Debug, Default)]
pub struct Metrics {
    allowed: Option<u32>,
    denied: Option<u32>,
    report_denied: Option<u32>,
    token_cache_hit: Option<u32>,
    token_cache_miss: Option<u32>,
    jwks_fetch_success: Option<u32>,
    jwks_fetch_failure: Option<u32>,
    policy_error: Option<u32>,
    by_code: RefCell<HashMap<&'static str, Option<u32>>>,
}

fn define(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn bump(id: Option<u32>) {
    if let Some(id) = id {
        // A metric the host refused must not fail the request.
        let _ = hostcalls::increment_metric(id, 1);
    }
}

impl Metrics {
    /// Defines every counter (a host that refuses one just loses that counter).
    pub fn define() -> Metrics {
        Metrics {
            allowed: define("gateward.allowed"),
            denied: define("gateward.denied"),
            report_denied: define("gateward.report_only_denied"),
            token_cache_hit: define("gateward.token_cache_hit"),
            token_cache_miss: define("gateward.token_cache_miss"),
            jwks_fetch_success: define("gateward.jwks_fetch_success"),
            jwks_fetch_failure: define("gateward.jwks_fetch_failure"),
            policy_error: define("gateward.policy_error"),
            by_code: RefCell::new(HashMap::new()),
        }
    }

    /// A request was let through.
    pub fn allowed(&self) {
        bump(self.allowed);
    }

    /// A request was refused (or would have been, in report mode): `gateward.denied` (or
    /// `gateward.report_only_denied`) and `gateward.denied.<code>`.
    pub fn denied(&self, code: DenyCode, enforced: bool) {
        bump(if enforced {
            self.denied
        } else {
            self.report_denied
        });
        if code == DenyCode::PolicyError {
            bump(self.policy_error);
        }
        let name = code.as_str();
        let id = *self
            .by_code
            .borrow_mut()
            .entry(name)
            .or_insert_with(|| define(&format!("gateward.denied.{name}")));
        bump(id);
    }

    /// A token was found in the verified-token cache.
    pub fn cache_hit(&self) {
        bump(self.token_cache_hit);
    }

    /// A token had to be verified.
    pub fn cache_miss(&self) {
        bump(self.token_cache_miss);
    }

    /// A key set was fetched and installed.
    pub fn fetch_success(&self) {
        bump(self.jwks_fetch_success);
    }

    /// A key fetch failed or its document was rejected.
    pub fn fetch_failure(&self) {
        bump(self.jwks_fetch_failure);
    }
}
