//! Gateward's core: verifies CI OIDC ID tokens (compact JWS) and evaluates Rego policies over
//! their claims and the request, producing one [`Decision`].
//!
//! `#![no_std]` + `alloc`: the core never reads a clock, a file or the network. Hosts pass in the
//! current time, key sets and request attributes; see `ARCHITECTURE.md` for the data flow.
#![no_std]
#![cfg_attr(not(test), warn(missing_docs))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod alg;
pub mod b64;
pub mod calendar;
pub mod claims;
pub mod config;
pub mod decision;
pub mod discovery;
#[cfg(feature = "explain")]
pub mod explain;
pub mod freshness;
pub mod gate;
pub mod headers;
pub mod json;
pub mod jws;
pub mod keys;
pub mod policy;
pub mod presets;
pub mod rego_test;
pub mod replay;
pub mod request;
pub mod verify;

pub use alg::Algorithm;
pub use config::{Config, ConfigError, ConfigErrors, FetchConfig, Mode};
pub use decision::{Allow, Decision, Deny, DenyCode};
pub use gate::{Gate, Issuer, IssuerId, KeySource, Located, Strip, Verified};
pub use keys::{Key, KeySet, PublicKey};
pub use request::{Request, RequestError, TokenSource};
