//! The host's state: what all VMs share (clock, shared data, stats, clusters, calls) and what
//! each VM owns (its contexts and streams). Host functions read and write these; [`crate::Host`]
//! drives the module from them.

use crate::abi::{map, metric};
use crate::headers::HeaderList;
use crate::types::{ForeignError, HttpCall, LogLine, Stream, VmId};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::{Memory, TypedFunc};

/// A foreign function the test made available to the module.
pub(crate) type ForeignFn = dyn Fn(&[u8]) -> Result<Vec<u8>, ForeignError> + Send + Sync;

/// State shared by every VM of one [`crate::Host`] (one Envoy process, one `vm_id`).
pub(crate) struct Shared {
    /// Unix time in milliseconds.
    pub now_ms: u64,
    /// Orders timers and calls that fall due at the same time (first armed fires first).
    pub next_seq: u64,
    pub shared_data: SharedData,
    pub metrics: Metrics,
    pub clusters: BTreeSet<String>,
    /// `proxy_get_property` values the test set, keyed by the NUL-joined path.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    /// Dispatched and not yet answered, in dispatch order.
    pub calls: Vec<PendingCall>,
    pub queues: Queues,
    pub foreign: HashMap<String, Arc<ForeignFn>>,
    /// Echo module logs to stderr (captured by the test harness, shown on failure).
    pub echo_logs: bool,
}

impl Shared {
    pub fn new(now_ms: u64) -> Shared {
        Shared {
            now_ms,
            next_seq: 0,
            shared_data: SharedData::default(),
            metrics: Metrics::default(),
            clusters: BTreeSet::new(),
            properties: HashMap::new(),
            calls: Vec::new(),
            queues: Queues::default(),
            foreign: HashMap::new(),
            echo_logs: std::env::var_os("GATEWARD_HOST_LOG").is_none_or(|v| v != "0"),
        }
    }

    pub fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The `vm_id` (shared-queue namespace): the `plugin_vm_id` property.
    pub fn vm_id(&self) -> Vec<u8> {
        self.properties
            .get(b"plugin_vm_id".as_slice())
            .cloned()
            .unwrap_or_default()
    }
}

/// Locks shared state; a poisoned lock only means an earlier test assertion panicked.
pub(crate) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An http call waiting for the test (or the clock) to answer it.
pub(crate) struct PendingCall {
    pub call: HttpCall,
    /// The root context that owns the call: cpp-host's `http_call` dispatches on
    /// `root_context()`, so the callback goes to the root and only the root's deletion
    /// cancels the call.
    pub owner: u32,
    /// When the timeout fires (none for timeout 0), and the tie-breaking sequence number.
    pub deadline: Option<u64>,
    pub seq: u64,
}

/// Envoy's shared data for one `vm_id` (cpp-host `shared_data.cc`).
#[derive(Debug)]
pub(crate) struct SharedData {
    entries: HashMap<String, (Vec<u8>, u32)>,
    /// Process-wide cas counter: starts at 1, skips 0 on wrap.
    next_cas: u32,
}

impl Default for SharedData {
    fn default() -> Self {
        SharedData {
            entries: HashMap::new(),
            next_cas: 1,
        }
    }
}

/// `proxy_set_shared_data` was refused because the cas did not match.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CasMismatch;

impl SharedData {
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    /// cas 0 sets unconditionally; a non-zero cas must match the key's current cas — but a
    /// missing key is created whatever the cas (as cpp-host does and Envoy 1.40 showed).
    pub fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Result<u32, CasMismatch> {
        let next = self.bump();
        match self.entries.get_mut(key) {
            Some(entry) => {
                if cas != 0 && cas != entry.1 {
                    // cpp-host draws the cas only on success; give the number back.
                    self.next_cas = next;
                    return Err(CasMismatch);
                }
                *entry = (value.to_vec(), next);
            }
            None => {
                self.entries.insert(key.to_owned(), (value.to_vec(), next));
            }
        }
        Ok(next)
    }

    fn bump(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

/// Stats by name, shared by every VM like Envoy's global stats store.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub by_name: BTreeMap<String, MetricValue>,
}

#[derive(Debug, Clone)]
pub(crate) struct MetricValue {
    pub kind: u32,
    /// Counter or gauge value; gauges wrap below zero like Envoy's u64 gauges.
    pub value: u64,
    /// Histogram samples.
    pub samples: Vec<u64>,
}

impl Metrics {
    /// Registers a stat (the first definition fixes its type, like Envoy's stats store).
    pub fn define(&mut self, kind: u32, name: &str) {
        self.by_name
            .entry(name.to_owned())
            .or_insert_with(|| MetricValue {
                kind,
                value: 0,
                samples: Vec::new(),
            });
    }

    /// The value a test sees: counters and gauges as i64, histograms as their sample count.
    pub fn value(&self, name: &str) -> Option<i64> {
        self.by_name.get(name).map(|m| match m.kind {
            metric::HISTOGRAM => i64::try_from(m.samples.len()).unwrap_or(i64::MAX),
            _ => m.value as i64,
        })
    }
}

/// Shared queues (cpp-host `SharedData` queues), one namespace per `vm_id`.
#[derive(Default)]
pub(crate) struct Queues {
    /// Token `i + 1` is `list[i]`.
    pub list: Vec<Queue>,
    /// `proxy_on_queue_ready` deliveries waiting to run: (vm, root context, token).
    pub ready: VecDeque<(VmId, u32, u32)>,
}

pub(crate) struct Queue {
    pub vm_id: Vec<u8>,
    pub name: Vec<u8>,
    pub owner: (VmId, u32),
    pub items: VecDeque<Vec<u8>>,
}

impl Queues {
    pub fn find(&self, vm_id: &[u8], name: &[u8]) -> Option<u32> {
        self.list
            .iter()
            .position(|q| q.vm_id == vm_id && q.name == name)
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    pub fn get_mut(&mut self, token: u32) -> Option<&mut Queue> {
        let index = usize::try_from(token).ok()?.checked_sub(1)?;
        self.list.get_mut(index)
    }
}

/// The response being delivered by `proxy_on_http_call_response`; Envoy keeps it on the root
/// context only for the duration of that callback.
pub(crate) struct CallResponse {
    pub headers: HeaderList,
    pub body: Vec<u8>,
    pub trailers: HeaderList,
}

/// Work Envoy defers until the running callback returns (cpp-host `DeferAfterCallActions`).
pub(crate) enum AfterCall {
    LocalReply {
        context: u32,
        status: u32,
        details: String,
        body: Vec<u8>,
        headers: HeaderList,
    },
    Close {
        context: u32,
    },
    /// `proxy_done` from a root whose `proxy_on_done` returned false.
    DeleteRoot {
        context: u32,
    },
}

/// A context the module knows about.
pub(crate) struct ContextState {
    /// The root context: its own id for a root.
    pub root: u32,
    pub kind: ContextKind,
    /// `proxy_get_status`: (code, message).
    pub status: (u32, String),
    /// `proxy_set_property` values (Envoy: filter state `wasm.<path>`, streams only).
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
}

pub(crate) enum ContextKind {
    Root(RootState),
    Stream(StreamState),
}

#[derive(Default)]
pub(crate) struct RootState {
    pub tick_period_ms: u64,
    /// (due time, sequence number) of the next `proxy_on_tick`.
    pub next_tick: Option<(u64, u64)>,
    /// Replaced by a newer root; shut down once its last stream ends.
    pub retiring: bool,
    /// `proxy_on_done` returned false: waiting for `proxy_done`.
    pub pending_done: bool,
}

#[derive(Default)]
pub(crate) struct StreamState {
    /// Envoy still holds the request header map (during `on_request_headers`, and while the
    /// request stays paused).
    pub request_live: bool,
    /// Envoy holds the response header map (during `on_response_headers`, or paused there).
    pub response_live: bool,
    /// Inside `proxy_on_log`: maps are the access log's (read-only, missing → NotFound).
    pub access_log: bool,
    /// Response headers were produced (local reply or upstream).
    pub response_started: bool,
    /// The response body, readable during `proxy_on_response_body`.
    pub response_body: Option<Vec<u8>>,
    /// Stream start, for `request.time`.
    pub start_ms: u64,
}

/// Everything one VM (one wasmtime store) owns.
pub(crate) struct VmState {
    pub vm: VmId,
    pub shared: Arc<Mutex<Shared>>,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<i32, i32>>,
    pub vm_config: Vec<u8>,
    /// The plugin configuration, readable only during `proxy_on_configure` (Envoy's
    /// `temp_plugin_`).
    pub plugin_config: Option<Vec<u8>>,
    /// Inside `_initialize`: only `proxy_log` and WASI are allowed.
    pub initializing: bool,
    /// The context whose callback is running (0 = none / the VM context).
    pub current: u32,
    /// Set by `proxy_set_effective_context`; reset at every host→module call.
    pub effective: u32,
    pub contexts: BTreeMap<u32, ContextState>,
    /// Public records, kept after the context is deleted.
    pub streams: BTreeMap<u32, Stream>,
    /// The root new streams are created under.
    pub current_root: u32,
    pub next_context_id: u32,
    pub next_call_token: u32,
    pub call_response: Option<CallResponse>,
    pub after_call: VecDeque<AfterCall>,
    /// `proxy_send_local_response` ran in this callback: Envoy stops iteration.
    pub stop_iteration: bool,
    pub logs: Vec<LogLine>,
    /// Metric id → stat name (ids are per VM, stats are shared).
    pub metric_ids: HashMap<u32, String>,
    pub next_metric_id: [u32; 3],
    pub rng: u64,
    /// Fault injection: every edit of the request headers is refused (`Host::refuse_header_edits`).
    pub refuse_header_edits: bool,
}

impl VmState {
    pub fn new(vm: VmId, shared: Arc<Mutex<Shared>>, vm_config: Vec<u8>) -> VmState {
        VmState {
            vm,
            shared,
            memory: None,
            alloc: None,
            vm_config,
            plugin_config: None,
            initializing: false,
            current: 0,
            effective: 0,
            contexts: BTreeMap::new(),
            streams: BTreeMap::new(),
            current_root: 0,
            next_context_id: 1,
            next_call_token: 0,
            call_response: None,
            after_call: VecDeque::new(),
            stop_iteration: false,
            logs: Vec::new(),
            metric_ids: HashMap::new(),
            next_metric_id: [
                metric::COUNTER + metric::ID_INCREMENT,
                metric::GAUGE + metric::ID_INCREMENT,
                metric::HISTOGRAM + metric::ID_INCREMENT,
            ],
            rng: 0x9E37_79B9_7F4A_7C15 ^ (vm.0 as u64),
            refuse_header_edits: false,
        }
    }

    /// The context host calls act on: the effective context while it exists, else the callee
    /// (cpp-host `ContextOrEffectiveContext`).
    pub fn effective_context(&self) -> u32 {
        if self.effective != 0 && self.contexts.contains_key(&self.effective) {
            self.effective
        } else {
            self.current
        }
    }

    pub fn root_of(&self, context: u32) -> Option<u32> {
        self.contexts.get(&context).map(|c| c.root)
    }

    pub fn stream_state(&self, context: u32) -> Option<&StreamState> {
        match &self.contexts.get(&context)?.kind {
            ContextKind::Stream(s) => Some(s),
            ContextKind::Root(_) => None,
        }
    }

    pub fn stream_state_mut(&mut self, context: u32) -> Option<&mut StreamState> {
        match &mut self.contexts.get_mut(&context)?.kind {
            ContextKind::Stream(s) => Some(s),
            ContextKind::Root(_) => None,
        }
    }

    pub fn root_state_mut(&mut self, context: u32) -> Option<&mut RootState> {
        match &mut self.contexts.get_mut(&context)?.kind {
            ContextKind::Root(r) => Some(r),
            ContextKind::Stream(_) => None,
        }
    }

    /// Envoy's `getConstMap`: the map readable from `context` now, `None` when Envoy has none.
    pub fn const_map(&self, context: u32, map_type: i32) -> Option<&[(String, String)]> {
        match map_type {
            map::REQUEST_HEADERS => {
                let s = self.stream_state(context)?;
                (s.request_live || s.access_log)
                    .then(|| self.streams.get(&context))
                    .flatten()
                    .map(|r| r.request_headers.as_slice())
            }
            map::RESPONSE_HEADERS => {
                let s = self.stream_state(context)?;
                (s.response_live || (s.access_log && s.response_started))
                    .then(|| self.streams.get(&context))
                    .flatten()
                    .map(|r| r.response_headers.as_slice())
            }
            map::HTTP_CALL_RESPONSE_HEADERS => {
                self.call_response.as_ref().map(|r| r.headers.as_slice())
            }
            map::HTTP_CALL_RESPONSE_TRAILERS => self
                .call_response
                .as_ref()
                .filter(|r| !r.trailers.is_empty())
                .map(|r| r.trailers.as_slice()),
            // Trailers and gRPC metadata never exist in the requests we simulate.
            _ => None,
        }
    }

    /// Envoy's `getMap`: the map writable from `context` now.
    pub fn mut_map(&mut self, context: u32, map_type: i32) -> Option<&mut HeaderList> {
        let live = match (map_type, self.stream_state(context)) {
            (map::REQUEST_HEADERS, Some(s)) => s.request_live,
            (map::RESPONSE_HEADERS, Some(s)) => s.response_live,
            _ => false,
        };
        if !live {
            return None;
        }
        let record = self.streams.get_mut(&context)?;
        Some(if map_type == map::REQUEST_HEADERS {
            &mut record.request_headers
        } else {
            &mut record.response_headers
        })
    }

    /// splitmix64, for `random_get`: deterministic per VM.
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_data_cas_follows_cpp_host() {
        let mut data = SharedData::default();
        assert_eq!(data.get("k"), None);
        // A missing key is created whatever the cas.
        assert_eq!(data.set("k", b"v1", 77), Ok(1));
        assert_eq!(data.get("k"), Some((b"v1".to_vec(), 1)));
        // Wrong cas on an existing key.
        assert_eq!(data.set("k", b"v2", 5), Err(CasMismatch));
        // A failed set does not consume a cas.
        assert_eq!(data.set("k", b"v2", 1), Ok(2));
        // Stale cas.
        assert_eq!(data.set("k", b"v3", 1), Err(CasMismatch));
        // cas 0 is unconditional; cas numbers are process-wide.
        assert_eq!(data.set("k", b"v3", 0), Ok(3));
        assert_eq!(data.set("other", b"", 0), Ok(4));
        assert_eq!(data.get("other"), Some((Vec::new(), 4)));
    }

    #[test]
    fn cas_skips_zero_on_wrap() {
        let mut data = SharedData {
            entries: HashMap::new(),
            next_cas: u32::MAX,
        };
        assert_eq!(data.set("a", b"", 0), Ok(u32::MAX));
        assert_eq!(data.set("a", b"", 0), Ok(1));
    }

    #[test]
    fn metrics_report_histograms_as_sample_counts() {
        let mut m = Metrics::default();
        m.define(metric::GAUGE, "g");
        m.define(metric::HISTOGRAM, "h");
        m.by_name.get_mut("g").unwrap().value = 0u64.wrapping_sub(12);
        m.by_name.get_mut("h").unwrap().samples.extend([3, 4]);
        assert_eq!(m.value("g"), Some(-12));
        assert_eq!(m.value("h"), Some(2));
        assert_eq!(m.value("absent"), None);
    }
}
