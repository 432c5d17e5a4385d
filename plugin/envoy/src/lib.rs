//! Gateward's Envoy HTTP filter: a proxy-wasm module (`wasm32-wasip1`) that authenticates CI
//! jobs by their OIDC token and authorises them with Rego policies, inside Envoy.
//!
//! - [`root`]: configuration (`on_configure`), background key work (`on_tick`).
//! - [`stream`]: one request through the policy-engine pipeline, paused while keys load.
//! - [`keystore`]: remote JWKS / discovery, fetched through Envoy clusters, shared between
//!   worker VMs through shared data.
//! - [`headers`]: the request header map, read without trusting it to be UTF-8.
//! - [`cache`]: verified tokens, so a reused token skips signature verification.
//! - [`hostcrypto`]: RSA signature checks on Envoy's BoringSSL (`verify_signature`).
//! - [`replay`]: the record of tokens already let through, in shared data (`replay.jti`).
//! - [`metrics`], [`log`]: observability without tokens or keys.
//!
//! See `docs/envoy.md` for the configuration an Envoy operator writes.

pub mod cache;
pub mod headers;
pub mod hostcrypto;
pub mod keystore;
pub mod log;
pub mod metrics;
pub mod replay;
pub mod root;
#[cfg(feature = "selftest")]
pub mod selftest;
pub mod stream;
pub mod vm;

#[cfg(target_arch = "wasm32")]
mod entry {
    // The SDK's entry-point macro expands to an exported, unmangled function.
    #![allow(unsafe_code)]

    use proxy_wasm::types::LogLevel;

    proxy_wasm::main! {{
        // Also installs the SDK's panic hook, so a bug logs its location before the VM traps.
        proxy_wasm::set_log_level(LogLevel::Trace);
        proxy_wasm::set_root_context(|id| Box::new(crate::root::Root::new(id)));
    }}
}
