//! Log lines through `proxy_log` (Envoy prefixes them with the plugin's name). Nothing logged
//! here may contain a token or key material: callers pass fingerprints and claims only.

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

fn emit(level: LogLevel, message: &str) {
    // A host that cannot log has nowhere to report that either.
    let _ = hostcalls::log(level, message);
}

/// Debug detail (fetches starting, cache decisions).
pub fn debug(message: &str) {
    emit(LogLevel::Debug, message);
}

/// Normal operation (configuration loaded, keys loaded, decisions).
pub fn info(message: &str) {
    emit(LogLevel::Info, message);
}

/// Something the operator should look at (skipped keys, config warnings).
pub fn warn(message: &str) {
    emit(LogLevel::Warn, message);
}

/// A failure (rejected configuration, failed fetch, internal error).
pub fn error(message: &str) {
    emit(LogLevel::Error, message);
}
