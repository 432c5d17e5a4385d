//! The `env` host functions of proxy-wasm ABI 0.2.1, with the statuses Envoy 1.40 returns
//! (`docs/proxy-wasm-abi.md` §2.2, §4). Every function acts on the effective context.

use crate::abi::{buffer, map, metric, status, stream};
use crate::headers;
use crate::memory::{
    copy_out, lossy, parse_string_pairs, read, read_string, serialize_pairs, write_u32, write_u64,
};
use crate::state::{lock, AfterCall, ContextKind, PendingCall, Queue, VmState};
use crate::types::{CallId, HttpCall, LogLevel, LogLine};
use wasmtime::{format_err, Caller, Linker, Result};

type C<'a> = Caller<'a, VmState>;

/// Defines every `env` import an SDK 0.2.5 module may have. gRPC calls trap: the test host
/// has no gRPC upstreams, and no status it could return is valid for the SDK.
pub(crate) fn define(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap("env", "proxy_log", proxy_log)?;
    linker.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", get_time)?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", set_tick)?;
    linker.func_wrap("env", "proxy_get_buffer_bytes", get_buffer_bytes)?;
    linker.func_wrap("env", "proxy_set_buffer_bytes", set_buffer_bytes)?;
    linker.func_wrap("env", "proxy_get_header_map_pairs", get_map_pairs)?;
    linker.func_wrap("env", "proxy_set_header_map_pairs", set_map_pairs)?;
    linker.func_wrap("env", "proxy_get_header_map_value", get_map_value)?;
    linker.func_wrap("env", "proxy_add_header_map_value", add_map_value)?;
    linker.func_wrap("env", "proxy_replace_header_map_value", replace_map_value)?;
    linker.func_wrap("env", "proxy_remove_header_map_value", remove_map_value)?;
    linker.func_wrap("env", "proxy_continue_stream", continue_stream)?;
    linker.func_wrap("env", "proxy_close_stream", close_stream)?;
    linker.func_wrap("env", "proxy_send_local_response", send_local_response)?;
    linker.func_wrap("env", "proxy_http_call", http_call)?;
    linker.func_wrap("env", "proxy_get_status", get_status)?;
    linker.func_wrap("env", "proxy_set_effective_context", set_effective_context)?;
    linker.func_wrap("env", "proxy_done", done)?;
    linker.func_wrap("env", "proxy_get_shared_data", get_shared_data)?;
    linker.func_wrap("env", "proxy_set_shared_data", set_shared_data)?;
    linker.func_wrap("env", "proxy_register_shared_queue", register_queue)?;
    linker.func_wrap("env", "proxy_resolve_shared_queue", resolve_queue)?;
    linker.func_wrap("env", "proxy_enqueue_shared_queue", enqueue)?;
    linker.func_wrap("env", "proxy_dequeue_shared_queue", dequeue)?;
    linker.func_wrap("env", "proxy_get_property", get_property)?;
    linker.func_wrap("env", "proxy_set_property", set_property)?;
    linker.func_wrap("env", "proxy_define_metric", define_metric)?;
    linker.func_wrap("env", "proxy_increment_metric", increment_metric)?;
    linker.func_wrap("env", "proxy_record_metric", record_metric)?;
    linker.func_wrap("env", "proxy_get_metric", get_metric)?;
    linker.func_wrap("env", "proxy_call_foreign_function", call_foreign)?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |_: C<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> Result<i32> { Err(no_grpc("proxy_grpc_call")) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_: C<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> Result<i32> { Err(no_grpc("proxy_grpc_stream")) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| -> Result<i32> {
            Err(no_grpc("proxy_grpc_send"))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |_: C<'_>, _: i32| -> Result<i32> { Err(no_grpc("proxy_grpc_cancel")) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |_: C<'_>, _: i32| -> Result<i32> { Err(no_grpc("proxy_grpc_close")) },
    )?;
    Ok(())
}

fn no_grpc(name: &str) -> wasmtime::Error {
    format_err!("{name}: the test host has no gRPC upstreams")
}

/// cpp-host lets a module's `_initialize` call only `proxy_log` and WASI; anything else fails
/// the VM. A trap says so.
fn not_initializing(caller: &C<'_>, name: &str) -> Result<()> {
    if caller.data().initializing {
        return Err(format_err!(
            "{name} called during _initialize; Envoy allows only proxy_log and WASI there"
        ));
    }
    Ok(())
}

/// Records a log line (and echoes it for the test harness).
pub(crate) fn push_log(state: &mut VmState, level: LogLevel, message: String) {
    if lock(&state.shared).echo_logs {
        eprintln!(
            "[vm{} ctx{} {level:?}] {message}",
            state.vm.0,
            state.effective_context()
        );
    }
    state.logs.push(LogLine { level, message });
}

fn proxy_log(mut caller: C<'_>, level: i32, ptr: i32, len: i32) -> Result<i32> {
    let Some(level) = LogLevel::from_abi(level) else {
        return Ok(status::BAD_ARGUMENT);
    };
    let message = read_string(&caller, ptr, len)?;
    push_log(caller.data_mut(), level, message);
    Ok(status::OK)
}

/// Always trace, so the test sees every line the module would log.
fn proxy_get_log_level(mut caller: C<'_>, out: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_get_log_level")?;
    write_u32(&mut caller, out, 0)?;
    Ok(status::OK)
}

fn get_time(mut caller: C<'_>, out: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_get_current_time_nanoseconds")?;
    let now = lock(&caller.data().shared).now_ms;
    write_u64(&mut caller, out, now.saturating_mul(1_000_000))?;
    Ok(status::OK)
}

/// The timer belongs to the caller's root context; re-armed from now (Envoy's `setTickPeriod`).
fn set_tick(mut caller: C<'_>, period: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_set_tick_period_milliseconds")?;
    let period = u64::from(period as u32);
    let state = caller.data_mut();
    let context = state.effective_context();
    let Some(root) = state.root_of(context) else {
        return Ok(status::OK);
    };
    let next = {
        let mut shared = lock(&state.shared);
        let due = shared.now_ms.saturating_add(period);
        (period > 0).then(|| (due, shared.seq()))
    };
    if let Some(root) = state.root_state_mut(root) {
        root.tick_period_ms = period;
        root.next_tick = next;
    }
    Ok(status::OK)
}

/// A buffer as Envoy's `getBuffer` returns it: `None` = NotFound. Bodies we never simulate
/// read as empty, like Envoy's buffer wrapper around a null body.
fn buffer_bytes(state: &VmState, context: u32, kind: i32) -> Option<Vec<u8>> {
    match kind {
        buffer::HTTP_RESPONSE_BODY => Some(
            state
                .stream_state(context)
                .and_then(|s| s.response_body.clone())
                .unwrap_or_default(),
        ),
        buffer::HTTP_CALL_RESPONSE_BODY => state.call_response.as_ref().map(|r| r.body.clone()),
        buffer::VM_CONFIGURATION => Some(state.vm_config.clone()),
        buffer::PLUGIN_CONFIGURATION => state.plugin_config.clone(),
        _ => Some(Vec::new()),
    }
}

fn get_buffer_bytes(
    mut caller: C<'_>,
    kind: i32,
    start: i32,
    max: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_get_buffer_bytes")?;
    if !(0..=buffer::MAX).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let state = caller.data();
    let Some(bytes) = buffer_bytes(state, state.effective_context(), kind) else {
        return Ok(status::NOT_FOUND);
    };
    let start = start as u32 as usize;
    let end = start.saturating_add(max as u32 as usize).min(bytes.len());
    // An empty slice returns Ok without touching the out pointers (cpp-host).
    if let Some(slice) = bytes.get(start..end).filter(|s| !s.is_empty()) {
        copy_out(&mut caller, slice, ptr_ptr, size_ptr)?;
    }
    Ok(status::OK)
}

/// Envoy's `Buffer::copyFrom` on the response body (the only mutable buffer we model): start 0
/// replaces the first `size` bytes, start ≥ length appends, anything else is BadArgument.
fn set_buffer_bytes(
    mut caller: C<'_>,
    kind: i32,
    start: i32,
    size: i32,
    ptr: i32,
    len: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_set_buffer_bytes")?;
    if !(0..=buffer::MAX).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let data = read(&caller, ptr, len)?;
    let state = caller.data_mut();
    let context = state.effective_context();
    if buffer_bytes(state, context, kind).is_none() {
        return Ok(status::NOT_FOUND);
    }
    let body = match state.stream_state_mut(context) {
        Some(s) if kind == buffer::HTTP_RESPONSE_BODY => s.response_body.as_mut(),
        _ => None,
    };
    let Some(body) = body else {
        return Ok(status::BAD_ARGUMENT);
    };
    let (start, size) = (start as u32 as usize, size as u32 as usize);
    if start == 0 {
        body.drain(..size.min(body.len()));
        body.splice(0..0, data);
    } else if start >= body.len() {
        body.extend_from_slice(&data);
    } else {
        return Ok(status::BAD_ARGUMENT);
    }
    Ok(status::OK)
}

fn get_map_pairs(mut caller: C<'_>, kind: i32, ptr_ptr: i32, size_ptr: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_get_header_map_pairs")?;
    if !(0..=map::MAX).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let state = caller.data();
    // No map → an empty map, Ok (Envoy `headerMapToPairs(nullptr)`); empty → 0/0.
    let bytes = match state.const_map(state.effective_context(), kind) {
        Some(pairs) if !pairs.is_empty() => serialize_pairs(pairs),
        _ => Vec::new(),
    };
    copy_out(&mut caller, &bytes, ptr_ptr, size_ptr)?;
    Ok(status::OK)
}

fn set_map_pairs(mut caller: C<'_>, kind: i32, ptr: i32, len: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_set_header_map_pairs")?;
    if !(0..=map::MAX).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let pairs = parse_string_pairs(&read(&caller, ptr, len)?);
    let state = caller.data_mut();
    let context = state.effective_context();
    match state.mut_map(context, kind) {
        Some(map) => {
            headers::set_all(map, &pairs);
            Ok(status::OK)
        }
        None => Ok(status::BAD_ARGUMENT),
    }
}

fn get_map_value(
    mut caller: C<'_>,
    kind: i32,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_get_header_map_value")?;
    if !(0..=map::MAX).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let key = read_string(&caller, key_ptr, key_len)?;
    let state = caller.data();
    let context = state.effective_context();
    let value = match state.const_map(context, kind) {
        Some(pairs) => headers::get(pairs, &key).map(str::to_owned),
        // In the access-log phase a missing map is NotFound; otherwise BadArgument (observed:
        // the SDK panics on it).
        None if state.stream_state(context).is_some_and(|s| s.access_log) => None,
        None => return Ok(status::BAD_ARGUMENT),
    };
    let Some(value) = value else {
        return Ok(status::NOT_FOUND);
    };
    copy_out(&mut caller, value.as_bytes(), ptr_ptr, size_ptr)?;
    Ok(status::OK)
}

/// Shared body of add/replace/remove: BadArgument unless the map is writable now.
fn edit_map(
    caller: &mut C<'_>,
    name: &str,
    kind: i32,
    key: (i32, i32),
    value: Option<(i32, i32)>,
    edit: fn(&mut headers::HeaderList, &str, &str),
) -> Result<i32> {
    not_initializing(caller, name)?;
    if !(0..=map::MAX).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let key = read_string(caller, key.0, key.1)?;
    let value = match value {
        Some((ptr, len)) => read_string(caller, ptr, len)?,
        None => String::new(),
    };
    let state = caller.data_mut();
    if state.refuse_header_edits && kind == map::REQUEST_HEADERS {
        return Ok(status::BAD_ARGUMENT);
    }
    let context = state.effective_context();
    match state.mut_map(context, kind) {
        Some(map) => {
            edit(map, &key, &value);
            Ok(status::OK)
        }
        None => Ok(status::BAD_ARGUMENT),
    }
}

fn add_map_value(mut c: C<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32) -> Result<i32> {
    edit_map(
        &mut c,
        "proxy_add_header_map_value",
        kind,
        (kp, kl),
        Some((vp, vl)),
        headers::add,
    )
}

fn replace_map_value(mut c: C<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32) -> Result<i32> {
    edit_map(
        &mut c,
        "proxy_replace_header_map_value",
        kind,
        (kp, kl),
        Some((vp, vl)),
        headers::replace,
    )
}

fn remove_map_value(mut c: C<'_>, kind: i32, kp: i32, kl: i32) -> Result<i32> {
    edit_map(
        &mut c,
        "proxy_remove_header_map_value",
        kind,
        (kp, kl),
        None,
        |m, k, _| headers::remove(m, k),
    )
}

/// Envoy's `continueStream`: the resume itself is deferred until the callback returns, but the
/// request maps are dropped at once (later reads are BadArgument).
fn continue_stream(mut caller: C<'_>, kind: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_continue_stream")?;
    let state = caller.data_mut();
    let context = state.effective_context();
    match kind {
        stream::HTTP_REQUEST | stream::HTTP_RESPONSE => {
            if let Some(s) = state.stream_state_mut(context) {
                s.request_live = false;
                if kind == stream::HTTP_RESPONSE {
                    s.response_live = false;
                }
                if kind == stream::HTTP_REQUEST {
                    if let Some(record) = state.streams.get_mut(&context) {
                        record.resumed = true;
                    }
                }
            }
            Ok(status::OK)
        }
        stream::DOWNSTREAM => Ok(status::OK),
        stream::UPSTREAM => Ok(status::UNIMPLEMENTED),
        _ => Ok(status::BAD_ARGUMENT),
    }
}

/// Envoy's `closeStream`: a deferred reset of an HTTP stream; Ok and nothing from a root.
fn close_stream(mut caller: C<'_>, kind: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_close_stream")?;
    if !(0..=stream::UPSTREAM).contains(&kind) {
        return Ok(status::BAD_ARGUMENT);
    }
    let state = caller.data_mut();
    let context = state.effective_context();
    if kind <= stream::HTTP_RESPONSE && state.stream_state(context).is_some() {
        state.after_call.push_back(AfterCall::Close { context });
    }
    Ok(status::OK)
}

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn send_local_response(
    mut caller: C<'_>,
    status_code: i32,
    details_ptr: i32,
    details_len: i32,
    body_ptr: i32,
    body_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    _grpc_status: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_send_local_response")?;
    let details = read_string(&caller, details_ptr, details_len)?;
    let body = read(&caller, body_ptr, body_len)?;
    let headers = parse_string_pairs(&read(&caller, headers_ptr, headers_len)?);
    let state = caller.data_mut();
    let context = state.effective_context();
    // From a root context (no decoder callbacks) Envoy does nothing and returns Ok.
    if state.stream_state(context).is_some() {
        state.after_call.push_back(AfterCall::LocalReply {
            context,
            status: status_code as u32,
            details,
            body,
            headers,
        });
    }
    state.stop_iteration = true;
    Ok(status::OK)
}

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn http_call(
    mut caller: C<'_>,
    upstream_ptr: i32,
    upstream_len: i32,
    headers_ptr: i32,
    headers_len: i32,
    body_ptr: i32,
    body_len: i32,
    trailers_ptr: i32,
    trailers_len: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_http_call")?;
    let cluster = read_string(&caller, upstream_ptr, upstream_len)?;
    let raw_headers = parse_string_pairs(&read(&caller, headers_ptr, headers_len)?);
    let body = read(&caller, body_ptr, body_len)?;
    let raw_trailers = parse_string_pairs(&read(&caller, trailers_ptr, trailers_len)?);
    // cpp-host writes a 0 token first to check the pointer.
    write_u32(&mut caller, token_ptr, 0)?;
    // Envoy's `httpCall` checks, in its order.
    if timeout_ms < 0 {
        return Ok(status::BAD_ARGUMENT);
    }
    let mut call_headers = headers::HeaderList::new();
    for (k, v) in &raw_headers {
        headers::add(&mut call_headers, k, v);
    }
    let state = caller.data_mut();
    let context = state.effective_context();
    // The call belongs to the root context (cpp-host `http_call` uses `root_context()`).
    let owner = state.root_of(context).unwrap_or(state.current_root);
    let vm = state.vm;
    let token = {
        let mut shared = lock(&state.shared);
        if !shared.clusters.contains(&cluster) {
            return Ok(status::BAD_ARGUMENT);
        }
        if [":path", ":method", ":authority"]
            .iter()
            .any(|h| headers::get(&call_headers, h).is_none())
        {
            return Ok(status::BAD_ARGUMENT);
        }
        if !body.is_empty() {
            headers::replace(&mut call_headers, "content-length", &body.len().to_string());
        }
        let mut trailers = headers::HeaderList::new();
        for (k, v) in &raw_trailers {
            headers::add(&mut trailers, k, v);
        }
        state.next_call_token += 4;
        let token = state.next_call_token;
        let timeout = u64::from(timeout_ms as u32);
        let deadline = (timeout > 0).then(|| shared.now_ms.saturating_add(timeout));
        let seq = shared.seq();
        shared.calls.push(PendingCall {
            call: HttpCall {
                id: CallId { vm, token },
                cluster,
                headers: call_headers,
                body,
                trailers,
                timeout_ms: timeout,
            },
            owner,
            deadline,
            seq,
        });
        token
    };
    write_u32(&mut caller, token_ptr, token)?;
    Ok(status::OK)
}

/// The status of the effective context. After a reset call Envoy sets it on the root (which
/// owns the call): a stream context reads its own, normally (0, "").
fn get_status(mut caller: C<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_get_status")?;
    let state = caller.data();
    let (code, message) = state
        .contexts
        .get(&state.effective_context())
        .map(|c| c.status.clone())
        .unwrap_or_default();
    write_u32(&mut caller, code_ptr, code)?;
    copy_out(&mut caller, message.as_bytes(), ptr_ptr, size_ptr)?;
    Ok(status::OK)
}

fn set_effective_context(mut caller: C<'_>, context: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_set_effective_context")?;
    let state = caller.data_mut();
    let context = context as u32;
    if !state.contexts.contains_key(&context) {
        return Ok(status::BAD_ARGUMENT);
    }
    state.effective = context;
    Ok(status::OK)
}

/// Finishes a root whose `proxy_on_done` returned false; NotFound otherwise (cpp-host `done`).
fn done(mut caller: C<'_>) -> Result<i32> {
    not_initializing(&caller, "proxy_done")?;
    let state = caller.data_mut();
    let context = state.effective_context();
    match state.root_state_mut(context) {
        Some(root) if root.pending_done => {
            root.pending_done = false;
            state
                .after_call
                .push_back(AfterCall::DeleteRoot { context });
            Ok(status::OK)
        }
        _ => Ok(status::NOT_FOUND),
    }
}

fn get_shared_data(
    mut caller: C<'_>,
    key_ptr: i32,
    key_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_get_shared_data")?;
    let key = read_string(&caller, key_ptr, key_len)?;
    let entry = lock(&caller.data().shared).shared_data.get(&key);
    let Some((value, cas)) = entry else {
        return Ok(status::NOT_FOUND);
    };
    copy_out(&mut caller, &value, ptr_ptr, size_ptr)?;
    write_u32(&mut caller, cas_ptr, cas)?;
    Ok(status::OK)
}

fn set_shared_data(
    caller: C<'_>,
    key_ptr: i32,
    key_len: i32,
    value_ptr: i32,
    value_len: i32,
    cas: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_set_shared_data")?;
    let key = read_string(&caller, key_ptr, key_len)?;
    let value = read(&caller, value_ptr, value_len)?;
    let result = lock(&caller.data().shared)
        .shared_data
        .set(&key, &value, cas as u32);
    Ok(match result {
        Ok(_) => status::OK,
        Err(_) => status::CAS_MISMATCH,
    })
}

/// Registers (or re-registers) a queue in this `vm_id`; readiness goes to the caller's root.
fn register_queue(mut caller: C<'_>, name_ptr: i32, name_len: i32, out: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_register_shared_queue")?;
    let name = read(&caller, name_ptr, name_len)?;
    let state = caller.data();
    let context = state.effective_context();
    let owner = (
        state.vm,
        state.root_of(context).unwrap_or(state.current_root),
    );
    let token = {
        let mut shared = lock(&state.shared);
        let vm_id = shared.vm_id();
        match shared.queues.find(&vm_id, &name) {
            Some(token) => {
                if let Some(queue) = shared.queues.get_mut(token) {
                    queue.owner = owner;
                }
                token
            }
            None => {
                shared.queues.list.push(Queue {
                    vm_id,
                    name,
                    owner,
                    items: Default::default(),
                });
                u32::try_from(shared.queues.list.len())?
            }
        }
    };
    write_u32(&mut caller, out, token)?;
    Ok(status::OK)
}

fn resolve_queue(
    mut caller: C<'_>,
    vm_id_ptr: i32,
    vm_id_len: i32,
    name_ptr: i32,
    name_len: i32,
    out: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_resolve_shared_queue")?;
    let mut vm_id = read(&caller, vm_id_ptr, vm_id_len)?;
    let name = read(&caller, name_ptr, name_len)?;
    let token = {
        let shared = lock(&caller.data().shared);
        if vm_id.is_empty() {
            vm_id = shared.vm_id();
        }
        shared.queues.find(&vm_id, &name)
    };
    let Some(token) = token else {
        return Ok(status::NOT_FOUND);
    };
    write_u32(&mut caller, out, token)?;
    Ok(status::OK)
}

fn enqueue(caller: C<'_>, token: i32, ptr: i32, len: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_enqueue_shared_queue")?;
    let data = read(&caller, ptr, len)?;
    let mut shared = lock(&caller.data().shared);
    let Some(queue) = shared.queues.get_mut(token as u32) else {
        return Ok(status::NOT_FOUND);
    };
    queue.items.push_back(data);
    let (vm, root) = queue.owner;
    // Envoy posts `proxy_on_queue_ready` to the owner's dispatcher: it runs later, not inside
    // this call.
    shared.queues.ready.push_back((vm, root, token as u32));
    Ok(status::OK)
}

fn dequeue(mut caller: C<'_>, token: i32, ptr_ptr: i32, size_ptr: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_dequeue_shared_queue")?;
    let item = {
        let mut shared = lock(&caller.data().shared);
        let Some(queue) = shared.queues.get_mut(token as u32) else {
            return Ok(status::NOT_FOUND);
        };
        queue.items.pop_front()
    };
    let Some(item) = item else {
        return Ok(status::EMPTY);
    };
    copy_out(&mut caller, &item, ptr_ptr, size_ptr)?;
    Ok(status::OK)
}

/// A property as Envoy's `getProperty` serializes it; `None` = NotFound. The test's values win;
/// then per-stream values (`proxy_set_property`), then what Envoy derives from the stream.
fn property(state: &VmState, path: &[u8]) -> Option<Vec<u8>> {
    let context = state.effective_context();
    if let Some(value) = lock(&state.shared).properties.get(path) {
        return Some(value.clone());
    }
    let ctx = state.contexts.get(&context)?;
    if let Some(value) = path
        .split(|b| *b == 0)
        .next()
        .and_then(|top| ctx.properties.get(top))
    {
        return Some(value.clone());
    }
    let ContextKind::Stream(stream) = &ctx.kind else {
        return None;
    };
    let int = |v: i64| Some(v.to_le_bytes().to_vec());
    match path {
        b"request\0time" => int(stream.start_ms as i64 * 1_000_000),
        b"request\0protocol" => Some(b"HTTP/1.1".to_vec()),
        b"source\0address" => Some(b"127.0.0.1:39090".to_vec()),
        b"source\0port" => int(39090),
        b"destination\0address" => Some(b"127.0.0.1:10000".to_vec()),
        b"destination\0port" => int(10000),
        _ => {
            // Header-derived attributes exist only while Envoy holds the request headers.
            let headers = state.const_map(context, map::REQUEST_HEADERS)?;
            let header = |name: &str| headers::get(headers, name).map(|v| v.as_bytes().to_vec());
            let full_path = headers::get(headers, ":path").unwrap_or_default();
            match path {
                b"request\0path" => header(":path"),
                b"request\0url_path" => Some(
                    full_path
                        .split('?')
                        .next()
                        .unwrap_or_default()
                        .as_bytes()
                        .to_vec(),
                ),
                b"request\0query" => Some(
                    full_path
                        .split_once('?')
                        .map(|(_, q)| q)
                        .unwrap_or_default()
                        .as_bytes()
                        .to_vec(),
                ),
                b"request\0host" => header(":authority"),
                b"request\0scheme" => header(":scheme"),
                b"request\0method" => header(":method"),
                b"request\0id" => header("x-request-id"),
                b"request\0referer" => header("referer"),
                b"request\0useragent" => header("user-agent"),
                b"request\0headers" => Some(serialize_pairs(headers)),
                _ => {
                    let rest = path.strip_prefix(b"request\0headers\0")?;
                    header(&lossy(rest))
                }
            }
        }
    }
}

fn get_property(mut caller: C<'_>, ptr: i32, len: i32, ptr_ptr: i32, size_ptr: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_get_property")?;
    let path = read(&caller, ptr, len)?;
    let Some(value) = property(caller.data(), &path) else {
        return Ok(status::NOT_FOUND);
    };
    copy_out(&mut caller, &value, ptr_ptr, size_ptr)?;
    Ok(status::OK)
}

/// Envoy stores into the stream's filter state; without a stream it is NotFound.
fn set_property(
    mut caller: C<'_>,
    ptr: i32,
    len: i32,
    value_ptr: i32,
    value_len: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_set_property")?;
    let path = read(&caller, ptr, len)?;
    let value = read(&caller, value_ptr, value_len)?;
    let state = caller.data_mut();
    let context = state.effective_context();
    match state.contexts.get_mut(&context) {
        Some(ctx) if matches!(ctx.kind, ContextKind::Stream(_)) => {
            ctx.properties.insert(path, value);
            Ok(status::OK)
        }
        _ => Ok(status::NOT_FOUND),
    }
}

fn define_metric(
    mut caller: C<'_>,
    kind: i32,
    name_ptr: i32,
    name_len: i32,
    out: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_define_metric")?;
    let kind = kind as u32;
    if kind > metric::HISTOGRAM {
        return Ok(status::BAD_ARGUMENT);
    }
    let name = read_string(&caller, name_ptr, name_len)?;
    let state = caller.data_mut();
    let slot = state
        .next_metric_id
        .get_mut(kind as usize)
        .ok_or_else(|| format_err!("metric type {kind}"))?;
    let id = *slot;
    *slot += metric::ID_INCREMENT;
    state.metric_ids.insert(id, name.clone());
    lock(&state.shared).metrics.define(kind, &name);
    write_u32(&mut caller, out, id)?;
    Ok(status::OK)
}

/// Runs `f` on the stat behind a metric id; `None` when this VM never defined the id.
fn with_metric<R>(
    caller: &C<'_>,
    id: u32,
    f: impl FnOnce(&mut crate::state::MetricValue) -> R,
) -> Option<R> {
    let state = caller.data();
    let name = state.metric_ids.get(&id)?;
    let mut shared = lock(&state.shared);
    shared.metrics.by_name.get_mut(name).map(f)
}

/// Counters take only positive deltas (0 and negatives are BadArgument); gauges add or
/// subtract; histograms cannot be incremented.
fn increment_metric(caller: C<'_>, id: i32, delta: i64) -> Result<i32> {
    not_initializing(&caller, "proxy_increment_metric")?;
    let id = id as u32;
    Ok(match id & metric::TYPE_MASK {
        metric::COUNTER => match with_metric(&caller, id, |m| {
            if delta > 0 {
                m.value = m.value.wrapping_add(delta as u64);
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        }) {
            Some(s) => s,
            None => status::NOT_FOUND,
        },
        metric::GAUGE => with_metric(&caller, id, |m| {
            m.value = m.value.wrapping_add(delta as u64);
            status::OK
        })
        .unwrap_or(status::NOT_FOUND),
        _ => status::BAD_ARGUMENT,
    })
}

/// Counter: adds; gauge: sets; histogram: records (Envoy `recordMetric`).
fn record_metric(caller: C<'_>, id: i32, value: i64) -> Result<i32> {
    not_initializing(&caller, "proxy_record_metric")?;
    let id = id as u32;
    let value = value as u64;
    let kind = id & metric::TYPE_MASK;
    let recorded = with_metric(&caller, id, |m| match kind {
        metric::COUNTER => m.value = m.value.wrapping_add(value),
        metric::GAUGE => m.value = value,
        _ => m.samples.push(value),
    });
    Ok(match recorded {
        Some(()) => status::OK,
        None => status::NOT_FOUND,
    })
}

fn get_metric(mut caller: C<'_>, id: i32, out: i32) -> Result<i32> {
    not_initializing(&caller, "proxy_get_metric")?;
    let id = id as u32;
    if !matches!(id & metric::TYPE_MASK, metric::COUNTER | metric::GAUGE) {
        return Ok(status::BAD_ARGUMENT);
    }
    let Some(value) = with_metric(&caller, id, |m| m.value) else {
        return Ok(status::NOT_FOUND);
    };
    write_u64(&mut caller, out, value)?;
    Ok(status::OK)
}

/// Unknown names are NotFound, as in an Envoy without that extension; the test may register
/// functions (e.g. a `verify_signature` double) with `Host::register_foreign_function`.
fn call_foreign(
    mut caller: C<'_>,
    name_ptr: i32,
    name_len: i32,
    args_ptr: i32,
    args_len: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<i32> {
    not_initializing(&caller, "proxy_call_foreign_function")?;
    let name = read_string(&caller, name_ptr, name_len)?;
    let args = read(&caller, args_ptr, args_len)?;
    let function = lock(&caller.data().shared).foreign.get(&name).cloned();
    let Some(function) = function else {
        return Ok(status::NOT_FOUND);
    };
    match function(&args) {
        Ok(result) => {
            copy_out(&mut caller, &result, ptr_ptr, size_ptr)?;
            Ok(status::OK)
        }
        Err(e) => Ok(match e {
            crate::types::ForeignError::NotFound => status::NOT_FOUND,
            crate::types::ForeignError::BadArgument => status::BAD_ARGUMENT,
            crate::types::ForeignError::SerializationFailure => status::SERIALIZATION_FAILURE,
            crate::types::ForeignError::InternalFailure => status::INTERNAL_FAILURE,
        }),
    }
}
