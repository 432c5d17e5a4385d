//! The real filter module in the wasmtime proxy-wasm host. One test binary, so the module is
//! compiled by Cranelift once per run rather than once per file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod abi;
mod common;
mod faults;
mod filter;
mod hostile;
mod keys;
mod rsa;
