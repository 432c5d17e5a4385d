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

/// A log line ending in a one-line JSON object, written field by field (serde_json escapes
/// the strings, so a claim or path cannot break the line or start another).
pub struct JsonLine {
    bytes: Vec<u8>,
    empty: bool,
}

impl JsonLine {
    /// A line starting with `prefix`, then the object.
    pub fn new(prefix: &str) -> JsonLine {
        let mut bytes = Vec::with_capacity(320);
        bytes.extend_from_slice(prefix.as_bytes());
        bytes.push(b'{');
        JsonLine { bytes, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.bytes.push(b',');
        }
        self.empty = false;
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.bytes, key);
        self.bytes.push(b':');
    }

    /// A string field.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.bytes, value);
    }

    /// A string field, left out when None.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// A number field.
    pub fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = serde_json::to_writer(&mut self.bytes, &value);
    }

    /// The finished line.
    pub fn finish(mut self) -> String {
        self.bytes.push(b'}');
        // Only UTF-8 went in.
        String::from_utf8(self.bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::JsonLine;

    #[test]
    fn json_lines_parse_back_to_what_was_written() {
        let hostile = "a\"b\\c\nd\u{0}e\u{7f}f\u{2028}é\r{}";
        let mut line = JsonLine::new("decision ");
        line.str("reason", hostile);
        line.opt_str("sub", None);
        line.opt_str("jti", Some("j"));
        line.num("latency_us", 42);
        let text = line.finish();
        assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        let json = text.strip_prefix("decision ").unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({"reason": hostile, "jti": "j", "latency_us": 42})
        );
        assert_eq!(JsonLine::new("x ").finish(), "x {}");
    }
}
