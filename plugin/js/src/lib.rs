//! Gateward's core for JavaScript hosts: a wasm-bindgen module (`wasm32-unknown-unknown`) that
//! checks a request against a config in a web page, for the playground and other authoring tools.
//!
//! JavaScript API (`wasm-bindgen --target web`), every function returning a plain object and
//! never throwing on bad input:
//!
//! - `check(config, token, request, now)`: `config` is the core's JSON config (a string or an
//!   object) with inline keys (`jwks`/`pem_keys`) and inline modules (`rego`); `token` is put where
//!   the config's first token source looks (`""`: none); `request` is
//!   `{method, path, host?, headers}`; `now` is Unix seconds (`undefined`: the page's clock).
//!   Returns the decision's fields (`decision: "allow" | "deny"`, `allow`, `status`, and `code`,
//!   `message`, `www_authenticate` for a deny, `headers` for an allow) and its explanation:
//!   `claims`, `input`, `rules` (`[{path, value}]`), `coverage`
//!   (`[{module, covered, not_covered}]`), `prints`, `warnings`, `mode`. Bad input is
//!   `{decision: "error", errors: [{path, message}]}`. Remote keys (`jwks_uri`, discovery) cannot
//!   be fetched in a page: such issuers deny with `keys_unavailable`, saying so.
//! - `inspect(token)`: `{unverified: true, warning, header, claims}` (nothing checked), or
//!   `{unverified: true, error}`.
//! - `validateConfig(config)`: `{valid, errors: [{path, message}], warnings, issuers, policy}`.
//!
//! The JSON glue ([`glue`]) is plain Rust and tested natively; the bindings only convert values.

pub mod glue;

#[cfg(target_arch = "wasm32")]
mod bindings {
    use js_sys::JSON;
    use serde_json::Value;
    use wasm_bindgen::prelude::*;

    use crate::glue::{self, InputError};

    /// A JavaScript value as JSON text: strings as they are, anything else through
    /// `JSON.stringify`.
    fn json_text(value: &JsValue, what: &str) -> Result<String, InputError> {
        if let Some(s) = value.as_string() {
            return Ok(s);
        }
        if value.is_undefined() || value.is_null() {
            return Err(InputError::new(what, "is missing"));
        }
        JSON::stringify(value)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| InputError::new(what, "cannot be turned into JSON"))
    }

    /// `value` as a plain JavaScript object (`JSON.parse` of its text).
    fn to_js(value: &Value) -> JsValue {
        JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
    }

    fn error(e: InputError) -> JsValue {
        to_js(&glue::error_object(&[e]))
    }

    /// Checks one request; see the crate documentation for the shapes.
    #[wasm_bindgen]
    pub fn check(config: JsValue, token: JsValue, request: JsValue, now: JsValue) -> JsValue {
        let config = match json_text(&config, "config") {
            Ok(c) => c,
            Err(e) => return error(e),
        };
        let token = if token.is_undefined() || token.is_null() {
            String::new()
        } else {
            match token.as_string() {
                Some(t) => t,
                None => return error(InputError::new("token", "must be a string")),
            }
        };
        let request = if request.is_undefined() || request.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            match json_text(&request, "request").and_then(|t| {
                serde_json::from_str(&t).map_err(|e| InputError::new("request", e.to_string()))
            }) {
                Ok(r) => r,
                Err(e) => return error(e),
            }
        };
        let now = if now.is_undefined() || now.is_null() {
            (js_sys::Date::now() / 1000.0).floor()
        } else {
            match now.as_f64() {
                Some(n) => n,
                None => return error(InputError::new("now", "must be a number of Unix seconds")),
            }
        };
        match glue::now_from_f64(now) {
            Ok(now) => to_js(&glue::check(&config, &token, &request, now)),
            Err(e) => error(e),
        }
    }

    /// Decodes a token without verifying it.
    #[wasm_bindgen]
    pub fn inspect(token: JsValue) -> JsValue {
        match token.as_string() {
            Some(t) => to_js(&glue::inspect(&t)),
            None => {
                to_js(&serde_json::json!({"unverified": true, "error": "token must be a string"}))
            }
        }
    }

    /// Validates a config and summarises it.
    #[wasm_bindgen(js_name = validateConfig)]
    pub fn validate_config(config: JsValue) -> JsValue {
        match json_text(&config, "config") {
            Ok(c) => to_js(&glue::validate_config(&c)),
            Err(e) => to_js(&serde_json::json!({
                "valid": false,
                "errors": [{"path": e.path, "message": e.message}],
                "warnings": [], "issuers": [], "policy": null,
            })),
        }
    }

    /// The crate version.
    #[wasm_bindgen]
    pub fn version() -> String {
        String::from(env!("CARGO_PKG_VERSION"))
    }
}
