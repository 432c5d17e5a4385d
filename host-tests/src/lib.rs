//! A proxy-wasm ABI 0.2.1 host on wasmtime that loads the built Gateward filter
//! (`plugin/envoy`, wasm32-wasip1) and drives it the way Envoy 1.40 does, for `cargo test`.
//!
//! ```no_run
//! use gateward_host_tests::{Host, Module, Response};
//! let mut host = Host::new(Module::gateward());
//! host.add_cluster("jwks");
//! let vm = host.start_vm(b"").unwrap();
//! assert!(host.configure(vm, br#"{"issuers": []}"#));
//! let stream = host.request(vm, &[(":path", "/"), ("authorization", "Bearer …")]);
//! for call in host.pending_calls() {
//!     host.respond(call.id, Response::json(200, r#"{"keys": []}"#));
//! }
//! host.finish(stream);
//! ```
//!
//! The behaviour reproduced is documented in `docs/proxy-wasm-abi.md`; each host function says
//! where it follows Envoy. Module logs are echoed to stderr (the test harness shows them for
//! failing tests); `GATEWARD_HOST_LOG=0` silences that.

// Test support: a panic here is a failing test with a message, which is what we want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod abi;
mod error;
mod headers;
mod host;
mod imports;
mod memory;
mod module;
mod state;
mod types;
mod wasi;

pub use error::HostError;
pub use host::{Host, START_MS};
pub use module::{filter_wasm, Module};
pub use types::{
    Action, CallFailure, CallId, ForeignError, HttpCall, LocalReply, LogLevel, LogLine, Response,
    Stream, StreamId, VmId,
};
