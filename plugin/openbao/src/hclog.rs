//! Logs as hclog JSON lines on stderr, through the `log` facade.
//!
//! go-plugin reads the plugin's stderr line by line: a JSON object with `@level`, `@message` and
//! `@timestamp` is re-logged by OpenBao at that level under the mount's logger
//! (`auth.<plugin>.<accessor>`), other keys as fields; anything else is logged at debug. So
//! every line we write is one such object. Messages never carry tokens or keys: callers log
//! operations and paths, never request data.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};
use serde_json::{Map, Value};

/// The `@module` of our lines.
pub const MODULE: &str = "gateward-openbao";

/// Environment variable choosing the level (`trace`, `debug`, `info`, `warn`, `error`; default
/// `info`). Set it in the catalog entry (`bao plugin register -env=...`) or OpenBao's
/// environment; the server's own `log_level` still filters what it re-logs.
pub const LEVEL_ENV: &str = "GATEWARD_LOG";

struct HcLogger;

static LOGGER: HcLogger = HcLogger;

/// Installs the logger with the level from [`LEVEL_ENV`]. Idempotent: a second call is a no-op.
pub fn init() {
    let level = std::env::var(LEVEL_ENV)
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

impl Log for HcLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = line(
            record.level(),
            record.target(),
            &record.args().to_string(),
            SystemTime::now(),
        );
        // One write per line so concurrent lines do not interleave; a closed stderr (host gone)
        // is not worth a panic.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// One hclog JSON line (with its newline).
pub fn line(level: Level, target: &str, message: &str, at: SystemTime) -> String {
    let mut o = Map::new();
    o.insert("@level".into(), Value::from(level_name(level)));
    o.insert("@message".into(), Value::from(message));
    o.insert("@module".into(), Value::from(MODULE));
    o.insert("@timestamp".into(), Value::from(timestamp(at)));
    // Lines from other crates (the auth logic, rustls) say where they come from.
    if !target.starts_with("gateward_openbao") || target.contains("auth") {
        o.insert("target".into(), Value::from(target));
    }
    let mut s = Value::Object(o).to_string();
    s.push('\n');
    s
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// `2006-01-02T15:04:05.000000Z`: the layout go-plugin parses (exactly six fraction digits).
pub fn timestamp(at: SystemTime) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, day) = policy_engine::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_use_go_plugins_layout() {
        let at = UNIX_EPOCH + Duration::from_micros(1_760_000_000_123_456);
        assert_eq!(timestamp(at), "2025-10-09T08:53:20.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn lines_are_hclog_json() {
        let l = line(
            Level::Warn,
            "gateward_openbao::backend",
            "a \"quoted\"\nmessage",
            UNIX_EPOCH,
        );
        assert!(l.ends_with('\n'));
        assert_eq!(l.matches('\n').count(), 1, "one line: {l}");
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "a \"quoted\"\nmessage");
        assert_eq!(v["@module"], MODULE);
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000000Z");
        assert!(v.get("target").is_none());
        let other = line(Level::Info, "gateward_openbao_auth::login", "m", UNIX_EPOCH);
        let v: Value = serde_json::from_str(&other).unwrap();
        assert_eq!(v["target"], "gateward_openbao_auth::login");
    }
}
