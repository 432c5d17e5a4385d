//! The records a test reads back: streams, local replies, http calls, logs.

use crate::headers;

/// One simulated VM (Envoy runs one per worker thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmId(pub usize);

/// One HTTP stream: the VM and the context id the module saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamId {
    /// The VM running the stream.
    pub vm: VmId,
    /// The stream's context id in that VM (2, 3, … after the root's 1).
    pub context_id: u32,
}

/// One `proxy_http_call`: the VM and the token the module got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallId {
    /// The VM that dispatched the call.
    pub vm: VmId,
    /// The token returned to the module (per VM: 4, 8, 12, …).
    pub token: u32,
}

/// What `proxy_on_request_headers` made Envoy do with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// 0 (Continue) or 2 (ContinueAndEndStream): the request went on.
    Continue,
    /// Anything else — including any callback in which the module sent a local reply — stops
    /// all iteration (ABI 0.2.x turns StopIteration into StopAllIterationAndWatermark).
    Pause,
}

/// A response Envoy generated for the stream instead of proxying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// `%RESPONSE_CODE_DETAILS%`: the module's details with whitespace turned into `_`
    /// (empty from the SDK's `send_http_response`; `wasm_fail_stream` when the VM failed).
    pub details: String,
    /// Body as sent (empty for HEAD requests).
    pub body: Vec<u8>,
    /// Response headers as the client gets them from this filter: `:status` first, the module's
    /// headers added (lower-cased, duplicates kept), `content-length`/`content-type` as Envoy
    /// sets them, and any change the module made in `proxy_on_response_headers`.
    pub headers: Vec<(String, String)>,
}

impl LocalReply {
    /// The first value of a response header (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }

    /// Every value of a response header, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics (failing the test) if it is not JSON.
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("local reply body is not JSON ({e}): {:?}", self.body_text())
        })
    }
}

/// Everything the host recorded about one stream.
#[derive(Debug, Clone)]
pub struct Stream {
    /// What `proxy_on_request_headers` returned, mapped as Envoy maps it.
    pub action: Action,
    /// The module called `proxy_continue_stream(HttpRequest)` for this stream.
    pub resumed: bool,
    /// The local reply sent for this stream, if any.
    pub local_reply: Option<LocalReply>,
    /// The request header map as the module left it (order kept, names lower-case).
    pub request_headers: Vec<(String, String)>,
    /// The request header map as Envoy handed it to the module, before any change.
    pub received_headers: Vec<(String, String)>,
    /// The VM failed while handling this stream, or was failed already: Envoy answered
    /// `503` with details `wasm_fail_stream` (also recorded in `local_reply` when sent).
    pub failed: bool,
    /// The module reset the stream with `proxy_close_stream`.
    pub closed: bool,
    /// The stream ended: `proxy_on_log`, `proxy_on_done` and `proxy_on_delete` ran (unless
    /// the VM had failed) and the context is gone.
    pub finished: bool,
    /// Response headers the filter saw (and possibly modified); empty until a response.
    pub response_headers: Vec<(String, String)>,
}

impl Stream {
    /// A request header after the module's modifications (case-insensitive, first value).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.request_headers, name)
    }

    /// The request went upstream: continued or resumed, and no local reply, reset or failure.
    pub fn is_allowed(&self) -> bool {
        (self.action == Action::Continue || self.resumed)
            && self.local_reply.is_none()
            && !self.failed
            && !self.closed
    }

    /// Still waiting for the module: paused, not resumed, no reply, not ended.
    pub fn is_paused(&self) -> bool {
        self.action == Action::Pause
            && !self.resumed
            && self.local_reply.is_none()
            && !self.closed
            && !self.finished
    }
}

/// An outgoing `proxy_http_call` as Envoy would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// Handle for [`crate::Host::respond`] / [`crate::Host::fail`].
    pub id: CallId,
    /// The cluster name the module gave (`upstream`).
    pub cluster: String,
    /// Request headers, lower-cased, with `content-length` added for a non-empty body.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers (usually none).
    pub trailers: Vec<(String, String)>,
    /// The module's timeout; 0 means none.
    pub timeout_ms: u64,
}

impl HttpCall {
    /// A request header (case-insensitive, first value).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }

    /// `:path` (with the query string).
    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or_default()
    }

    /// `:authority`.
    pub fn authority(&self) -> &str {
        self.header(":authority").unwrap_or_default()
    }

    /// `:method`.
    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or_default()
    }
}

/// An upstream answer to an http call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status; delivered as the `:status` header.
    pub status: u16,
    /// Other response headers (names are lower-cased on delivery).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status and nothing else.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response with `content-type: application/json` and `content-length`.
    pub fn json(status: u16, body: &str) -> Response {
        Response::new(status)
            .with_header("content-type", "application/json")
            .with_body(body.as_bytes())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and a matching `content-length` (as an upstream would send it).
    pub fn with_body(mut self, body: &[u8]) -> Response {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
        self.headers
            .push(("content-length".to_owned(), body.len().to_string()));
        self.body = body.to_vec();
        self
    }
}

/// How an http call can fail; delivered as Envoy 1.40 delivers it (`docs/proxy-wasm-abi.md` §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// The per-call timeout passed: a `504` with body `upstream request timeout`.
    Timeout,
    /// The cluster refused the connection: a `503` with Envoy's "upstream connect error…" body.
    ConnectionRefused,
    /// The stream was reset: no headers, no body; `proxy_get_status` says 11 / `reset`.
    Reset,
}

/// One `proxy_log` line (or WASI stdout/stderr write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Level.
    pub level: LogLevel,
    /// Message.
    pub message: String,
}

/// proxy-wasm log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0.
    Trace,
    /// 1.
    Debug,
    /// 2 (also WASI stdout).
    Info,
    /// 3.
    Warn,
    /// 4 (also WASI stderr).
    Error,
    /// 5 (the SDK's panic hook logs here).
    Critical,
}

impl LogLevel {
    pub(crate) fn from_abi(level: i32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// What a foreign function registered with [`crate::Host::register_foreign_function`] may
/// return instead of a result (the statuses the SDK accepts from `proxy_call_foreign_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignError {
    /// `NotFound` (1).
    NotFound,
    /// `BadArgument` (2): what Envoy's `verify_signature` returns for unparsable arguments.
    BadArgument,
    /// `SerializationFailure` (3).
    SerializationFailure,
    /// `InternalFailure` (10).
    InternalFailure,
}
