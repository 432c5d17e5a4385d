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

/// A log line ending in a one-line JSON object, written field by field.
pub struct JsonLine {
    text: String,
    empty: bool,
}

impl JsonLine {
    /// A line starting with `prefix`, then the object.
    pub fn new(prefix: &str) -> JsonLine {
        let mut text = String::with_capacity(320);
        text.push_str(prefix);
        text.push('{');
        JsonLine { text, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.text.push(',');
        }
        self.empty = false;
        escaped(&mut self.text, key);
        self.text.push(':');
    }

    /// A string field.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        escaped(&mut self.text, value);
    }

    /// A string field, left out when None.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    /// A number field.
    pub fn num(&mut self, key: &str, value: u64) {
        use std::fmt::Write;
        self.key(key);
        let _ = write!(self.text, "{value}");
    }

    /// The finished line.
    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

/// `s` as a JSON string: quotes, backslashes and control characters escaped, so a claim or path
/// cannot break the line (or start another).
fn escaped(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
