//! Numeric values shared with the module (proxy-wasm ABI 0.2.1; `docs/proxy-wasm-abi.md` §2).

/// `proxy_status_t`. Only the values the Rust SDK knows are ever returned to the module
/// (it panics on, or misreads, the others), plus `Unimplemented` where Envoy returns it.
pub(crate) mod status {
    pub(crate) const OK: i32 = 0;
    pub(crate) const NOT_FOUND: i32 = 1;
    pub(crate) const BAD_ARGUMENT: i32 = 2;
    pub(crate) const SERIALIZATION_FAILURE: i32 = 3;
    pub(crate) const EMPTY: i32 = 7;
    pub(crate) const CAS_MISMATCH: i32 = 8;
    pub(crate) const INTERNAL_FAILURE: i32 = 10;
    /// Written by `proxy_get_status` after a reset http call; never a return value.
    pub(crate) const BROKEN_CONNECTION: u32 = 11;
    pub(crate) const UNIMPLEMENTED: i32 = 12;
}

/// `proxy_buffer_type_t`.
pub(crate) mod buffer {
    pub(crate) const HTTP_RESPONSE_BODY: i32 = 1;
    pub(crate) const HTTP_CALL_RESPONSE_BODY: i32 = 4;
    pub(crate) const VM_CONFIGURATION: i32 = 6;
    pub(crate) const PLUGIN_CONFIGURATION: i32 = 7;
    pub(crate) const MAX: i32 = 8;
}

/// `proxy_map_type_t`.
pub(crate) mod map {
    pub(crate) const REQUEST_HEADERS: i32 = 0;
    pub(crate) const RESPONSE_HEADERS: i32 = 2;
    pub(crate) const HTTP_CALL_RESPONSE_HEADERS: i32 = 6;
    pub(crate) const HTTP_CALL_RESPONSE_TRAILERS: i32 = 7;
    pub(crate) const MAX: i32 = 7;
}

/// `proxy_stream_type_t`.
pub(crate) mod stream {
    pub(crate) const HTTP_REQUEST: i32 = 0;
    pub(crate) const HTTP_RESPONSE: i32 = 1;
    pub(crate) const DOWNSTREAM: i32 = 2;
    pub(crate) const UPSTREAM: i32 = 3;
}

/// `proxy_metric_type_t`; Envoy also keeps the type in the low two bits of a metric id.
pub(crate) mod metric {
    pub(crate) const COUNTER: u32 = 0;
    pub(crate) const GAUGE: u32 = 1;
    pub(crate) const HISTOGRAM: u32 = 2;
    pub(crate) const TYPE_MASK: u32 = 3;
    /// Ids advance by 4 so the type bits survive: counters 4, 8, …; gauges 5, 9, …
    pub(crate) const ID_INCREMENT: u32 = 4;
}

/// WASI errno values used by the hand-written WASI functions.
pub(crate) mod errno {
    pub(crate) const SUCCESS: i32 = 0;
    pub(crate) const BADF: i32 = 8;
    pub(crate) const FAULT: i32 = 21;
    pub(crate) const NOSYS: i32 = 52;
    pub(crate) const NOTSUP: i32 = 58;
}
