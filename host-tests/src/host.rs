//! [`Host`]: one simulated Envoy process driving VMs of a module through the ABI, in Envoy's
//! order of callbacks (`docs/proxy-wasm-abi.md` §4).

use crate::error::HostError;
use crate::headers::{self, HeaderList};
use crate::imports;
use crate::module::Module;
use crate::state::{
    lock, AfterCall, CallResponse, ContextKind, ContextState, ForeignFn, PendingCall, RootState,
    Shared, StreamState, VmState,
};
use crate::types::{
    Action, CallFailure, CallId, ForeignError, HttpCall, LocalReply, LogLevel, LogLine, Response,
    Stream, StreamId, VmId,
};
use crate::wasi;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use wasmtime::{Instance, Linker, Store, WasmParams, WasmResults};

/// Where the clock starts: 2025-10-09T08:53:20Z, in Unix milliseconds.
pub const START_MS: u64 = 1_760_000_000_000;

/// The body Envoy's async client gives a timed-out call.
const TIMEOUT_BODY: &str = "upstream request timeout";
/// The body Envoy's async client gives a call whose connection was refused.
const REFUSED_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";

/// One simulated Envoy: a clock, shared data (one `vm_id`, with cas), stats, clusters,
/// properties, and any number of VMs of one module (Envoy runs one per worker thread).
///
/// Everything is synchronous: a method returns once the module and every callback it caused
/// (deferred local replies, resumes, queue deliveries) have run.
pub struct Host {
    module: wasmtime::Module,
    linker: Linker<VmState>,
    shared: Arc<Mutex<Shared>>,
    vms: Vec<Vm>,
}

struct Vm {
    store: Store<VmState>,
    instance: Instance,
    /// Set when the module trapped: Envoy marks the VM failed and never calls it again.
    trap: Option<String>,
}

/// Outcome of one host→module call.
enum Invoked<R> {
    Done(R),
    /// The VM has failed, or the module does not export the callback.
    Skipped,
    Trapped,
}

enum Event {
    Tick(VmId, u32),
    Timeout(CallId),
}

enum Outcome {
    Response { headers: HeaderList, body: Vec<u8> },
    Reset,
}

/// Calls an export of the module on behalf of `context`, as cpp-host does: the callee becomes
/// the current context and the effective context is reset first. A trap fails the VM.
fn invoke<P: WasmParams, R: WasmResults>(
    vm: &mut Vm,
    context: u32,
    name: &'static str,
    params: P,
) -> Invoked<R> {
    if vm.trap.is_some() {
        return Invoked::Skipped;
    }
    let Some(func) = vm.instance.get_func(&mut vm.store, name) else {
        return Invoked::Skipped;
    };
    let func = match func.typed::<P, R>(&vm.store) {
        Ok(func) => func,
        Err(e) => {
            vm.trap = Some(format!("export {name} has an unexpected signature: {e}"));
            return Invoked::Trapped;
        }
    };
    let logs_before = vm.store.data().logs.len();
    let state = vm.store.data_mut();
    state.current = context;
    state.effective = 0;
    let result = func.call(&mut vm.store, params);
    let state = vm.store.data_mut();
    state.current = 0;
    state.effective = 0;
    match result {
        Ok(value) => Invoked::Done(value),
        Err(error) => {
            let panic = state
                .logs
                .get(logs_before..)
                .unwrap_or_default()
                .iter()
                .rev()
                .find(|l| l.level == LogLevel::Critical)
                .map(|l| l.message.clone());
            // The root cause ("wasm `unreachable` instruction executed", or the host's own
            // reason) without wasmtime's backtrace context.
            let trap = format!("{name} trapped: {}", error.root_cause());
            vm.trap = Some(match panic {
                Some(panic) => format!("{panic}\n({trap})"),
                None => trap,
            });
            // Whatever the module asked for before trapping is dropped with the VM.
            state.after_call.clear();
            Invoked::Trapped
        }
    }
}

fn as_i32(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl Host {
    /// A host for `module` with the clock at [`START_MS`], no clusters and the properties
    /// `plugin_name`, `plugin_root_id` and `plugin_vm_id` set to `gateward`.
    pub fn new(module: &Module) -> Host {
        let mut linker = Linker::new(module.module.engine());
        imports::define(&mut linker).expect("defining proxy-wasm imports");
        wasi::define(&mut linker).expect("defining WASI imports");
        // Anything else the module imports links, and traps if ever called.
        linker
            .define_unknown_imports_as_traps(&module.module)
            .expect("defining stubs for unknown imports");
        let mut shared = Shared::new(START_MS);
        for name in ["plugin_name", "plugin_root_id", "plugin_vm_id"] {
            shared
                .properties
                .insert(name.as_bytes().to_vec(), b"gateward".to_vec());
        }
        Host {
            module: module.module.clone(),
            linker,
            shared: Arc::new(Mutex::new(shared)),
            vms: Vec::new(),
        }
    }

    fn vm(&self, vm: VmId) -> &Vm {
        self.vms
            .get(vm.0)
            .unwrap_or_else(|| panic!("no VM {vm:?} in this host"))
    }

    fn vm_mut(&mut self, vm: VmId) -> &mut Vm {
        self.vms
            .get_mut(vm.0)
            .unwrap_or_else(|| panic!("no VM {vm:?} in this host"))
    }

    // ---- clock -------------------------------------------------------------------------

    /// The host clock, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        lock(&self.shared).now_ms
    }

    /// Sets the clock without firing anything; timers and timeouts already due fire at the
    /// next [`Host::advance`].
    pub fn set_now_ms(&mut self, ms: u64) {
        lock(&self.shared).now_ms = ms;
    }

    /// Moves the clock forward by `ms`, firing in time order every due `proxy_on_tick` (each
    /// root re-armed by its period) and timing out every http call whose timeout passed (a
    /// `504`, as Envoy delivers it). Events due at the same time fire in the order they were
    /// armed.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now_ms().saturating_add(ms);
        while let Some((due, event)) = self.next_event(target) {
            {
                let mut shared = lock(&self.shared);
                shared.now_ms = shared.now_ms.max(due);
            }
            match event {
                Event::Tick(vm, root) => self.tick(vm, root),
                Event::Timeout(call) => self.fail(call, CallFailure::Timeout),
            }
        }
        let mut shared = lock(&self.shared);
        shared.now_ms = shared.now_ms.max(target);
    }

    fn next_event(&self, target: u64) -> Option<(u64, Event)> {
        let mut best: Option<(u64, u64, Event)> = None;
        let mut consider = |due: u64, seq: u64, event: Event| {
            if due <= target && best.as_ref().is_none_or(|b| (due, seq) < (b.0, b.1)) {
                best = Some((due, seq, event));
            }
        };
        for (i, vm) in self.vms.iter().enumerate() {
            if vm.trap.is_some() {
                continue;
            }
            for (id, ctx) in &vm.store.data().contexts {
                if let ContextKind::Root(RootState {
                    next_tick: Some((due, seq)),
                    ..
                }) = ctx.kind
                {
                    consider(due, seq, Event::Tick(VmId(i), *id));
                }
            }
        }
        for call in &lock(&self.shared).calls {
            if let Some(due) = call.deadline {
                consider(due, call.seq, Event::Timeout(call.call.id));
            }
        }
        best.map(|(due, _, event)| (due, event))
    }

    fn tick(&mut self, vm: VmId, root: u32) {
        let v = self.vm_mut(vm);
        match v.store.data_mut().root_state_mut(root) {
            Some(r) => r.next_tick = None,
            None => return,
        }
        invoke::<i32, ()>(v, root, "proxy_on_tick", root as i32);
        // Envoy re-arms after the handler with the period then in force.
        let shared = Arc::clone(&self.shared);
        if let Some(r) = self.vm_mut(vm).store.data_mut().root_state_mut(root) {
            if r.tick_period_ms > 0 {
                let mut shared = lock(&shared);
                let due = shared.now_ms.saturating_add(r.tick_period_ms);
                r.next_tick = Some((due, shared.seq()));
            }
        }
        self.settle();
    }

    // ---- environment -------------------------------------------------------------------

    /// Declares an upstream cluster; `proxy_http_call` to any other name is BadArgument.
    pub fn add_cluster(&mut self, name: &str) {
        lock(&self.shared).clusters.insert(name.to_owned());
    }

    /// Sets a property for `proxy_get_property` (e.g. `&["plugin_name"]`), for every context;
    /// it takes precedence over what the host derives from a stream (`request.path`, …).
    pub fn set_property(&mut self, path: &[&str], value: &[u8]) {
        lock(&self.shared)
            .properties
            .insert(path.join("\0").into_bytes(), value.to_vec());
    }

    /// Makes a foreign function available to `proxy_call_foreign_function` (Envoy has e.g.
    /// `verify_signature`); by default every name is NotFound.
    pub fn register_foreign_function(
        &mut self,
        name: &str,
        function: impl Fn(&[u8]) -> Result<Vec<u8>, ForeignError> + Send + Sync + 'static,
    ) {
        let function: Arc<ForeignFn> = Arc::new(function);
        lock(&self.shared).foreign.insert(name.to_owned(), function);
    }

    // ---- VMs and configuration -----------------------------------------------------------

    /// Starts a VM the way Envoy does: instantiate, `_initialize` (only `proxy_log` and WASI
    /// allowed), `proxy_on_context_create(1, 0)`, `proxy_on_vm_start(1, len)`. The VM
    /// configuration stays readable (buffer type 6). The plugin configuration is not known yet,
    /// so it reads as NotFound in `proxy_on_vm_start`.
    pub fn start_vm(&mut self, vm_config: &[u8]) -> Result<VmId, HostError> {
        let id = VmId(self.vms.len());
        let state = VmState::new(id, Arc::clone(&self.shared), vm_config.to_vec());
        let mut store = Store::new(self.module.engine(), state);
        let instance = self
            .linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| HostError::Instantiate(format!("{e:#}")))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or(HostError::MissingExport("memory"))?;
        // cpp-host looks for `malloc` first (wasm32-unknown-unknown SDK builds).
        let alloc = ["malloc", "proxy_on_memory_allocate"]
            .into_iter()
            .find_map(|name| instance.get_typed_func::<i32, i32>(&mut store, name).ok())
            .ok_or(HostError::MissingExport("proxy_on_memory_allocate"))?;
        if instance
            .get_func(&mut store, "proxy_abi_version_0_2_1")
            .is_none()
        {
            return Err(HostError::UnsupportedAbi);
        }
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = Some(alloc);
        let mut vm = Vm {
            store,
            instance,
            trap: None,
        };
        let init = ["_initialize", "_start"]
            .into_iter()
            .find(|name| vm.instance.get_func(&mut vm.store, name).is_some());
        if let Some(init) = init {
            vm.store.data_mut().initializing = true;
            let result = invoke::<(), ()>(&mut vm, 0, init, ());
            vm.store.data_mut().initializing = false;
            if let Invoked::Trapped = result {
                return Err(HostError::Trap {
                    phase: init,
                    message: vm.trap.unwrap_or_default(),
                });
            }
        }
        let root = create_root(&mut vm);
        if let Invoked::Trapped =
            invoke::<(i32, i32), ()>(&mut vm, root, "proxy_on_context_create", (root as i32, 0))
        {
            return Err(HostError::Trap {
                phase: "proxy_on_context_create",
                message: vm.trap.unwrap_or_default(),
            });
        }
        let size = as_i32(vm_config.len());
        match invoke::<(i32, i32), i32>(&mut vm, root, "proxy_on_vm_start", (root as i32, size)) {
            Invoked::Done(0) => {
                let logs = vm
                    .store
                    .data()
                    .logs
                    .iter()
                    .map(|l| format!("{:?} {}", l.level, l.message));
                return Err(HostError::VmStartRejected {
                    logs: logs.collect::<Vec<_>>().join("\n"),
                });
            }
            Invoked::Trapped => {
                return Err(HostError::Trap {
                    phase: "proxy_on_vm_start",
                    message: vm.trap.unwrap_or_default(),
                });
            }
            Invoked::Done(_) | Invoked::Skipped => {}
        }
        vm.store.data_mut().current_root = root;
        self.vms.push(vm);
        self.settle();
        Ok(id)
    }

    /// The VMs started so far.
    pub fn vms(&self) -> Vec<VmId> {
        (0..self.vms.len()).map(VmId).collect()
    }

    /// The root context new streams of `vm` are created under.
    pub fn root_context_id(&self, vm: VmId) -> u32 {
        self.vm(vm).store.data().current_root
    }

    /// `proxy_on_configure` on the VM's current root with `plugin_config` readable (buffer
    /// type 7) during the call. False if the module returned false or trapped (Envoy would
    /// reject the configuration).
    pub fn configure(&mut self, vm: VmId, plugin_config: &[u8]) -> bool {
        let v = self.vm_mut(vm);
        let root = v.store.data().current_root;
        let accepted = configure_root(v, root, plugin_config);
        self.settle();
        accepted
    }

    /// Envoy-style reconfiguration: a new root context in the same VM
    /// (`proxy_on_context_create(new, 0)` then `proxy_on_configure`; `proxy_on_vm_start` runs
    /// once per VM). Accepted: new streams use the new root, and the old root gets
    /// `proxy_on_done`/`proxy_on_delete` once its last stream ends (Envoy keeps it alive through
    /// the streams' plugin handles), at once if it has none. Rejected: the new root is shut down
    /// and the old one stays.
    pub fn replace_root(&mut self, vm: VmId, plugin_config: &[u8]) -> bool {
        let v = self.vm_mut(vm);
        let old = v.store.data().current_root;
        let root = create_root(v);
        let created = !matches!(
            invoke::<(i32, i32), ()>(v, root, "proxy_on_context_create", (root as i32, 0)),
            Invoked::Trapped
        );
        let accepted = created && configure_root(v, root, plugin_config);
        if accepted {
            v.store.data_mut().current_root = root;
            if let Some(r) = v.store.data_mut().root_state_mut(old) {
                r.retiring = true;
            }
            self.retire_if_idle(vm, old);
        } else {
            self.shutdown_root(vm, root);
        }
        self.settle();
        accepted
    }

    fn retire_if_idle(&mut self, vm: VmId, root: u32) {
        let state = self.vm(vm).store.data();
        let retiring = matches!(
            state.contexts.get(&root).map(|c| &c.kind),
            Some(ContextKind::Root(RootState { retiring: true, .. }))
        );
        let busy = state
            .contexts
            .iter()
            .any(|(id, c)| *id != root && c.root == root);
        if retiring && !busy {
            self.shutdown_root(vm, root);
        }
    }

    /// cpp-host `startShutdown`: `proxy_on_done`; true → `proxy_on_delete`, false → wait for
    /// `proxy_done`.
    fn shutdown_root(&mut self, vm: VmId, root: u32) {
        let v = self.vm_mut(vm);
        if let Invoked::Done(0) = invoke::<i32, i32>(v, root, "proxy_on_done", root as i32) {
            if let Some(r) = v.store.data_mut().root_state_mut(root) {
                r.pending_done = true;
            }
            return;
        }
        self.delete_root(vm, root);
    }

    /// `proxy_on_delete` and the root is gone; Envoy's `~Context` cancels the http calls it
    /// owns (every call of its streams too, since calls are made on the root).
    fn delete_root(&mut self, vm: VmId, root: u32) {
        let v = self.vm_mut(vm);
        invoke::<i32, ()>(v, root, "proxy_on_delete", root as i32);
        v.store.data_mut().contexts.remove(&root);
        lock(&self.shared)
            .calls
            .retain(|c| !(c.call.id.vm == vm && c.owner == root));
    }

    // ---- streams -----------------------------------------------------------------------

    /// A new HTTP stream under the VM's current root: `proxy_on_context_create(id, root)` then
    /// `proxy_on_request_headers(id, n, end_of_stream = true)` (a GET without body).
    ///
    /// The header map is built as Envoy's connection manager presents it: `:authority`
    /// (default `gateward.test`, or the given `host`), `:path` (default `/`), `:method`
    /// (default `GET`), `:scheme` (default `http`), then the given headers in order, names
    /// lower-cased, then `x-forwarded-proto` and a generated `x-request-id` unless given.
    /// On a failed VM the module is not called: the stream fails with `503 wasm_fail_stream`.
    pub fn request(&mut self, vm: VmId, headers: &[(&str, &str)]) -> StreamId {
        let now = self.now_ms();
        let v = self.vm_mut(vm);
        let state = v.store.data_mut();
        let context = state.next_context_id;
        state.next_context_id += 1;
        let root = state.current_root;
        let request_headers = request_headers(headers, vm, context);
        let count = as_i32(request_headers.len());
        state.streams.insert(
            context,
            Stream {
                action: Action::Pause,
                resumed: false,
                local_reply: None,
                received_headers: request_headers.clone(),
                request_headers,
                failed: false,
                closed: false,
                finished: false,
                response_headers: Vec::new(),
            },
        );
        let id = StreamId {
            vm,
            context_id: context,
        };
        if v.trap.is_some() {
            self.fail_stream(id);
            return id;
        }
        v.store.data_mut().contexts.insert(
            context,
            ContextState {
                root,
                kind: ContextKind::Stream(StreamState {
                    request_live: true,
                    start_ms: now,
                    ..StreamState::default()
                }),
                status: (0, String::new()),
                properties: HashMap::new(),
            },
        );
        let c = context as i32;
        if let Invoked::Trapped =
            invoke::<(i32, i32), ()>(v, context, "proxy_on_context_create", (c, root as i32))
        {
            self.fail_stream(id);
            self.settle();
            return id;
        }
        v.store.data_mut().stop_iteration = false;
        let result =
            invoke::<(i32, i32, i32), i32>(v, context, "proxy_on_request_headers", (c, count, 1));
        let state = v.store.data_mut();
        let stopped = std::mem::take(&mut state.stop_iteration);
        let action = match result {
            Invoked::Trapped => {
                self.fail_stream(id);
                self.settle();
                return id;
            }
            // ABI 0.2.x: StopIteration and anything unknown become "stop all"; so does a
            // callback that sent a local reply.
            Invoked::Done(0 | 2) if !stopped => Action::Continue,
            Invoked::Skipped => Action::Continue,
            Invoked::Done(_) => Action::Pause,
        };
        if let Some(record) = state.streams.get_mut(&context) {
            record.action = action;
        }
        if action == Action::Continue {
            // Envoy drops its pointer to the request headers once they continue.
            if let Some(s) = state.stream_state_mut(context) {
                s.request_live = false;
            }
        }
        self.settle();
        id
    }

    /// The record of a stream (kept after it finished).
    pub fn stream(&self, id: StreamId) -> &Stream {
        self.vm(id.vm)
            .store
            .data()
            .streams
            .get(&id.context_id)
            .unwrap_or_else(|| panic!("no stream {id:?}"))
    }

    /// Ends a stream as Envoy does. A request that went upstream first gets its response (a
    /// `200` without body, through `proxy_on_response_headers`); then `proxy_on_log` (request
    /// and response headers readable), `proxy_on_done`, `proxy_on_delete`. A paused request is
    /// ended as a client disconnect: no response callbacks. Ended streams are left alone.
    pub fn finish(&mut self, id: StreamId) {
        self.finish_with(id, Response::new(200));
    }

    /// [`Host::finish`] with the upstream response a forwarded request gets.
    pub fn finish_with(&mut self, id: StreamId, upstream: Response) {
        let record = self.stream(id);
        if record.finished {
            return;
        }
        let forwarded = record.is_allowed()
            && self
                .vm(id.vm)
                .store
                .data()
                .stream_state(id.context_id)
                .is_some_and(|s| !s.response_started);
        if forwarded {
            let mut headers = vec![(":status".to_owned(), upstream.status.to_string())];
            for (k, v) in &upstream.headers {
                if k != ":status" {
                    headers::add(&mut headers, k, v);
                }
            }
            self.run_response(id, headers, upstream.body);
            self.settle();
        }
        self.end_stream(id);
        self.settle();
    }

    /// The response path for a stream: `proxy_on_response_headers`, then
    /// `proxy_on_response_body` with the whole body if there is one. Returns the body as the
    /// module left it.
    fn run_response(&mut self, id: StreamId, headers: HeaderList, body: Vec<u8>) -> Vec<u8> {
        let v = self.vm_mut(id.vm);
        let context = id.context_id;
        let c = context as i32;
        let count = as_i32(headers.len());
        let eos = i32::from(body.is_empty());
        let state = v.store.data_mut();
        if let Some(record) = state.streams.get_mut(&context) {
            record.response_headers = headers;
        }
        if let Some(s) = state.stream_state_mut(context) {
            s.response_started = true;
            s.response_live = true;
        }
        let result = invoke::<(i32, i32, i32), i32>(
            v,
            context,
            "proxy_on_response_headers",
            (c, count, eos),
        );
        if let Invoked::Trapped = result {
            self.mark_failed(id);
            return body;
        }
        let state = v.store.data_mut();
        state.stop_iteration = false;
        if matches!(result, Invoked::Done(0 | 2) | Invoked::Skipped) {
            if let Some(s) = state.stream_state_mut(context) {
                s.response_live = false;
            }
        }
        if body.is_empty() {
            return body;
        }
        let len = as_i32(body.len());
        if let Some(s) = state.stream_state_mut(context) {
            s.response_body = Some(body.clone());
        }
        if let Invoked::Trapped =
            invoke::<(i32, i32, i32), i32>(v, context, "proxy_on_response_body", (c, len, 1))
        {
            self.mark_failed(id);
            return body;
        }
        v.store
            .data_mut()
            .stream_state_mut(context)
            .and_then(|s| s.response_body.take())
            .unwrap_or(body)
    }

    /// End of a stream: `proxy_on_log` (access-log phase), `proxy_on_done` (its answer is
    /// ignored by Envoy's HTTP filter), `proxy_on_delete`; none of them on a failed VM.
    ///
    /// Http calls the stream dispatched stay pending: Envoy makes every call on the root
    /// context (cpp-host `http_call` uses `root_context()`), and only `~Context` of the owner
    /// cancels calls. The response still reaches the module, whose SDK drops it because the
    /// dispatching context is gone.
    fn end_stream(&mut self, id: StreamId) {
        let v = self.vm_mut(id.vm);
        let context = id.context_id;
        let c = context as i32;
        let state = v.store.data_mut();
        if state.streams.get(&context).is_none_or(|r| r.finished) {
            return;
        }
        let root = state.root_of(context);
        if let Some(s) = state.stream_state_mut(context) {
            s.access_log = true;
            let logged = invoke::<i32, ()>(v, context, "proxy_on_log", c);
            if let Some(s) = v.store.data_mut().stream_state_mut(context) {
                s.access_log = false;
            }
            if let Invoked::Trapped = logged {
                self.mark_failed(id);
            } else {
                invoke::<i32, i32>(v, context, "proxy_on_done", c);
                invoke::<i32, ()>(v, context, "proxy_on_delete", c);
            }
        }
        self.forget_stream(id);
        if let Some(root) = root {
            self.retire_if_idle(id.vm, root);
        }
    }

    fn forget_stream(&mut self, id: StreamId) {
        let state = self.vm_mut(id.vm).store.data_mut();
        state.contexts.remove(&id.context_id);
        if let Some(record) = state.streams.get_mut(&id.context_id) {
            record.finished = true;
        }
    }

    fn mark_failed(&mut self, id: StreamId) {
        if let Some(record) = self
            .vm_mut(id.vm)
            .store
            .data_mut()
            .streams
            .get_mut(&id.context_id)
        {
            record.failed = true;
        }
    }

    /// Envoy's `failStream` after the VM failed on this stream (fail-closed, the default
    /// policy): a `503` local reply with details `wasm_fail_stream`, and the stream ends
    /// without calling the module again.
    fn fail_stream(&mut self, id: StreamId) {
        let state = self.vm_mut(id.vm).store.data_mut();
        let started = state
            .stream_state(id.context_id)
            .is_some_and(|s| s.response_started);
        let root = state.root_of(id.context_id);
        if let Some(record) = state.streams.get_mut(&id.context_id) {
            record.failed = true;
            if record.local_reply.is_none() && !started && !record.finished {
                let headers = vec![(":status".to_owned(), "503".to_owned())];
                record.response_headers.clone_from(&headers);
                record.local_reply = Some(LocalReply {
                    status: 503,
                    details: "wasm_fail_stream".to_owned(),
                    body: Vec::new(),
                    headers,
                });
            }
        }
        self.forget_stream(id);
        if let Some(root) = root {
            self.retire_if_idle(id.vm, root);
        }
    }

    /// Runs what Envoy defers to the end of a callback, and queue deliveries, until nothing is
    /// left.
    fn settle(&mut self) {
        loop {
            let mut worked = false;
            for i in 0..self.vms.len() {
                while let Some(action) = self
                    .vms
                    .get_mut(i)
                    .and_then(|v| v.store.data_mut().after_call.pop_front())
                {
                    worked = true;
                    self.after_call(VmId(i), action);
                }
            }
            let ready = lock(&self.shared).queues.ready.pop_front();
            if let Some((vm, root, token)) = ready {
                worked = true;
                let v = self.vm_mut(vm);
                if v.store.data().contexts.contains_key(&root) {
                    invoke::<(i32, i32), ()>(
                        v,
                        root,
                        "proxy_on_queue_ready",
                        (root as i32, token as i32),
                    );
                }
            }
            if !worked {
                break;
            }
        }
    }

    fn after_call(&mut self, vm: VmId, action: AfterCall) {
        match action {
            AfterCall::LocalReply {
                context,
                status,
                details,
                body,
                headers,
            } => self.local_reply(
                StreamId {
                    vm,
                    context_id: context,
                },
                status,
                &details,
                body,
                &headers,
            ),
            AfterCall::Close { context } => {
                let id = StreamId {
                    vm,
                    context_id: context,
                };
                if let Some(record) = self.vm_mut(vm).store.data_mut().streams.get_mut(&context) {
                    if record.finished {
                        return;
                    }
                    record.closed = true;
                }
                self.end_stream(id);
            }
            AfterCall::DeleteRoot { context } => self.delete_root(vm, context),
        }
    }

    /// Envoy's `sendLocalReply` (`Utility::prepareLocalReply`/`encodeLocalReply`): `:status`,
    /// the module's headers added, then `content-length` and (unless given) `content-type:
    /// text/plain` for a body — neither without one; a HEAD request gets the headers only. The reply then runs through this filter's
    /// response callbacks and the stream ends. After the response started Envoy can only reset.
    fn local_reply(
        &mut self,
        id: StreamId,
        status: u32,
        details: &str,
        body: Vec<u8>,
        extra: &[(String, String)],
    ) {
        let state = self.vm(id.vm).store.data();
        let Some(record) = state.streams.get(&id.context_id) else {
            return;
        };
        if record.finished || record.local_reply.is_some() {
            return;
        }
        if state
            .stream_state(id.context_id)
            .is_some_and(|s| s.response_started)
        {
            if let Some(record) = self
                .vm_mut(id.vm)
                .store
                .data_mut()
                .streams
                .get_mut(&id.context_id)
            {
                record.closed = true;
            }
            self.end_stream(id);
            return;
        }
        let head = record.header(":method") == Some("HEAD");
        let mut headers = vec![(":status".to_owned(), status.to_string())];
        for (k, v) in extra {
            headers::add(&mut headers, k, v);
        }
        if body.is_empty() {
            headers::remove(&mut headers, "content-length");
            headers::remove(&mut headers, "content-type");
        } else {
            headers::replace(&mut headers, "content-length", &body.len().to_string());
            if headers::get(&headers, "content-type").is_none() {
                headers::add(&mut headers, "content-type", "text/plain");
            }
        }
        // HEAD: the same headers, ending the stream, and no body.
        let body = if head { Vec::new() } else { body };
        let details: String = details
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let reply = LocalReply {
            status,
            details,
            body: body.clone(),
            headers: headers.clone(),
        };
        if let Some(record) = self
            .vm_mut(id.vm)
            .store
            .data_mut()
            .streams
            .get_mut(&id.context_id)
        {
            record.local_reply = Some(reply);
        }
        let body = self.run_response(id, headers, body);
        if let Some(record) = self
            .vm_mut(id.vm)
            .store
            .data_mut()
            .streams
            .get_mut(&id.context_id)
        {
            let final_headers = record.response_headers.clone();
            if let Some(reply) = record.local_reply.as_mut() {
                reply.headers = final_headers;
                reply.body = body;
            }
        }
        self.end_stream(id);
    }

    // ---- http calls --------------------------------------------------------------------

    /// Calls dispatched and not yet answered, all VMs, in dispatch order.
    pub fn pending_calls(&self) -> Vec<HttpCall> {
        lock(&self.shared)
            .calls
            .iter()
            .map(|c| c.call.clone())
            .collect()
    }

    fn take_call(&mut self, id: CallId) -> PendingCall {
        let mut shared = lock(&self.shared);
        let index = shared
            .calls
            .iter()
            .position(|c| c.call.id == id)
            .unwrap_or_else(|| {
                panic!("no pending http call {id:?} (answered, timed out or cancelled?)")
            });
        shared.calls.remove(index)
    }

    /// Answers a pending call: `proxy_on_http_call_response(root, token, …)` on the root that
    /// owns it, with `:status` and the headers (lower-cased) readable as map 6 and the body as
    /// buffer 4 during the callback only. Panics if the call is not pending.
    pub fn respond(&mut self, call: CallId, response: Response) {
        let pending = self.take_call(call);
        let mut headers = vec![(":status".to_owned(), response.status.to_string())];
        for (k, v) in &response.headers {
            if k != ":status" {
                headers::add(&mut headers, k, v);
            }
        }
        self.deliver(
            pending,
            Outcome::Response {
                headers,
                body: response.body,
            },
        );
    }

    /// Fails a pending call as Envoy 1.40 reports it: a timeout is a `504` response with body
    /// `upstream request timeout`; a refused connection a `503` with Envoy's "upstream connect
    /// error…" body (both with `content-length` and `content-type: text/plain`); a reset is a
    /// callback with no headers and no body, `proxy_get_status` on the root giving 11 / `reset`.
    pub fn fail(&mut self, call: CallId, failure: CallFailure) {
        let pending = self.take_call(call);
        let (status, body) = match failure {
            CallFailure::Timeout => ("504", TIMEOUT_BODY),
            CallFailure::ConnectionRefused => ("503", REFUSED_BODY),
            CallFailure::Reset => return self.deliver(pending, Outcome::Reset),
        };
        let headers = vec![
            (":status".to_owned(), status.to_owned()),
            ("content-length".to_owned(), body.len().to_string()),
            ("content-type".to_owned(), "text/plain".to_owned()),
        ];
        self.deliver(
            pending,
            Outcome::Response {
                headers,
                body: body.as_bytes().to_vec(),
            },
        );
    }

    fn deliver(&mut self, pending: PendingCall, outcome: Outcome) {
        let CallId { vm, token } = pending.call.id;
        let owner = pending.owner;
        let v = self.vm_mut(vm);
        let state = v.store.data_mut();
        // A failed VM gets no callbacks; a deleted root's calls were cancelled.
        if v.trap.is_some() || !state.contexts.contains_key(&owner) {
            return;
        }
        let reset = matches!(outcome, Outcome::Reset);
        let counts = match outcome {
            Outcome::Response { headers, body } => {
                let counts = (as_i32(headers.len()), as_i32(body.len()), 0);
                state.call_response = Some(CallResponse {
                    headers,
                    body,
                    trailers: Vec::new(),
                });
                counts
            }
            Outcome::Reset => {
                if let Some(ctx) = state.contexts.get_mut(&owner) {
                    ctx.status = (crate::abi::status::BROKEN_CONNECTION, "reset".to_owned());
                }
                (0, 0, 0)
            }
        };
        let o = owner as i32;
        invoke::<(i32, i32, i32, i32, i32), ()>(
            v,
            owner,
            "proxy_on_http_call_response",
            (o, token as i32, counts.0, counts.1, counts.2),
        );
        let state = v.store.data_mut();
        state.call_response = None;
        if reset {
            // Envoy clears the message after the callback; the code stays.
            if let Some(ctx) = state.contexts.get_mut(&owner) {
                ctx.status.1.clear();
            }
        }
        self.settle();
    }

    // ---- observations --------------------------------------------------------------------

    /// Everything the module logged in `vm` (proxy_log at all levels, WASI stdout/stderr).
    pub fn logs(&self, vm: VmId) -> &[LogLine] {
        &self.vm(vm).store.data().logs
    }

    /// Takes the logs of `vm`, leaving it empty.
    pub fn take_logs(&mut self, vm: VmId) -> Vec<LogLine> {
        std::mem::take(&mut self.vm_mut(vm).store.data_mut().logs)
    }

    /// A stat by the name the module defined: counters and gauges by value (gauges may be
    /// negative), histograms by their number of samples. Shared by all VMs like Envoy's stats.
    pub fn metric(&self, name: &str) -> Option<i64> {
        lock(&self.shared).metrics.value(name)
    }

    /// Every stat, as [`Host::metric`] reports it.
    pub fn metrics(&self) -> BTreeMap<String, i64> {
        let shared = lock(&self.shared);
        shared
            .metrics
            .by_name
            .keys()
            .filter_map(|name| Some((name.clone(), shared.metrics.value(name)?)))
            .collect()
    }

    /// The samples recorded in a histogram.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        lock(&self.shared)
            .metrics
            .by_name
            .get(name)
            .filter(|m| m.kind == crate::abi::metric::HISTOGRAM)
            .map(|m| m.samples.clone())
    }

    /// A shared-data entry: value and cas.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.shared).shared_data.get(key)
    }

    /// Sets a shared-data entry unconditionally (as another plugin or an earlier VM would);
    /// returns the new cas.
    pub fn put_shared_data(&mut self, key: &str, value: &[u8]) -> u32 {
        lock(&self.shared)
            .shared_data
            .set(key, value, 0)
            .unwrap_or_default()
    }

    /// Fault injection: from now on `vm`'s edits of the request headers (add, replace, remove)
    /// are answered BadArgument, as Envoy answers them once it no longer holds the map.
    pub fn refuse_header_edits(&mut self, vm: VmId, refuse: bool) {
        self.vm_mut(vm).store.data_mut().refuse_header_edits = refuse;
    }

    /// Why `vm` failed: the module's last critical log line (the SDK's panic message) and the
    /// trap. A failed VM is never called again; its new requests fail with `503`.
    pub fn trap(&self, vm: VmId) -> Option<&str> {
        self.vm(vm).trap.as_deref()
    }

    /// The tick period of the VM's current root, if one is set.
    pub fn tick_period_ms(&self, vm: VmId) -> Option<u64> {
        let state = self.vm(vm).store.data();
        match state.contexts.get(&state.current_root).map(|c| &c.kind) {
            Some(ContextKind::Root(r)) if r.tick_period_ms > 0 => Some(r.tick_period_ms),
            _ => None,
        }
    }
}

fn create_root(vm: &mut Vm) -> u32 {
    let state = vm.store.data_mut();
    let id = state.next_context_id;
    state.next_context_id += 1;
    state.contexts.insert(
        id,
        ContextState {
            root: id,
            kind: ContextKind::Root(RootState::default()),
            status: (0, String::new()),
            properties: HashMap::new(),
        },
    );
    id
}

fn configure_root(vm: &mut Vm, root: u32, config: &[u8]) -> bool {
    vm.store.data_mut().plugin_config = Some(config.to_vec());
    let result = invoke::<(i32, i32), i32>(
        vm,
        root,
        "proxy_on_configure",
        (root as i32, as_i32(config.len())),
    );
    vm.store.data_mut().plugin_config = None;
    match result {
        Invoked::Done(r) => r != 0,
        // Envoy treats a module without `proxy_on_configure` as configured.
        Invoked::Skipped => vm.trap.is_none(),
        Invoked::Trapped => false,
    }
}

/// The request header map as Envoy's connection manager hands it to filters (§4.3).
fn request_headers(given: &[(&str, &str)], vm: VmId, context: u32) -> HeaderList {
    let given: Vec<(String, &str)> = given
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    let find = |name: &str| given.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let authority = find(":authority")
        .or_else(|| find("host"))
        .unwrap_or("gateward.test");
    let scheme = find(":scheme").unwrap_or("http");
    let mut map = vec![
        (":authority".to_owned(), authority.to_owned()),
        (":path".to_owned(), find(":path").unwrap_or("/").to_owned()),
        (
            ":method".to_owned(),
            find(":method").unwrap_or("GET").to_owned(),
        ),
        (":scheme".to_owned(), scheme.to_owned()),
    ];
    let standard = [":authority", ":path", ":method", ":scheme", "host"];
    for (k, v) in &given {
        if standard.contains(&k.as_str()) {
            continue;
        }
        // Envoy keeps `authorization` as an inline header and joins a repeated one into one
        // value with "," (observed with Envoy 1.40 over HTTP/1.1); other repeated headers,
        // `cookie` included, stay separate entries.
        match map
            .iter_mut()
            .find(|(name, _)| name == k && k == "authorization")
        {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(v);
            }
            None => headers::add(&mut map, k, v),
        }
    }
    if headers::get(&map, "x-forwarded-proto").is_none() {
        headers::add(&mut map, "x-forwarded-proto", scheme);
    }
    if headers::get(&map, "x-request-id").is_none() {
        let id = format!("6a1e0000-0000-4000-8000-{:06x}{:06x}", vm.0, context);
        headers::add(&mut map, "x-request-id", &id);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_modules_can_move_between_threads() {
        fn send<T: Send>() {}
        fn sync<T: Send + Sync>() {}
        send::<Host>();
        sync::<Module>();
    }

    #[test]
    fn request_headers_look_like_envoys() {
        let map = request_headers(
            &[
                ("Host", "api.example"),
                ("Authorization", "Bearer x"),
                (":path", "/a?b=1"),
            ],
            VmId(0),
            2,
        );
        let names: Vec<&str> = map.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                ":authority",
                ":path",
                ":method",
                ":scheme",
                "authorization",
                "x-forwarded-proto",
                "x-request-id"
            ]
        );
        assert_eq!(headers::get(&map, ":authority"), Some("api.example"));
        assert_eq!(headers::get(&map, ":path"), Some("/a?b=1"));
        assert_eq!(headers::get(&map, "x-forwarded-proto"), Some("http"));
    }
}
