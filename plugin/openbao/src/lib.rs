//! `gateward-openbao`: Gateward as an external OpenBao (and Vault) auth plugin.
//!
//! OpenBao runs the binary itself (`bao plugin register`, `bao auth enable`), one process per
//! mount (no multiplexing), and talks to it over go-plugin's gRPC protocol, version 5:
//!
//! - [`handshake`]: the magic-cookie check, the listener (a unix socket) and the one line on
//!   stdout that tells the host where and how to connect;
//! - [`tls`]: AutoMTLS — our own self-signed certificate, the host's pinned, in both directions;
//! - [`goplugin`]: go-plugin's services (health, the connection broker, shutdown, stdio);
//! - [`backend`]: OpenBao's `pb.Backend` service, translating each request to
//!   [`gateward_openbao_auth`] and back, with storage through the broker ([`storage`]);
//! - [`hclog`]: logs as hclog JSON lines on stderr, which the host re-logs under the mount.
//!
//! The protocol messages are generated at build time from the project's own `proto/` files.

pub mod backend;
pub mod goplugin;
pub mod handshake;
pub mod hclog;
pub mod proto;
pub mod serve;
pub mod storage;
pub mod tls;
