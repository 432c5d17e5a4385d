//! The host itself, exercised through the real filter where the filter's behaviour is simple:
//! loading and instantiating, VM start, configuration, local replies as Envoy builds them,
//! http calls and their timeouts, the clock, and stats and shared data across VMs. The
//! byte-level pieces (pair serialization, header maps, cas) are unit-tested in `src/`.
use crate::common::*;
use gateward_devkit::fixtures;
use gateward_host_tests::{Action, CallFailure, Host, LogLevel, Module, START_MS};
use serde_json::json;

/// Every import the host implements; anything else links as a stub that traps when called.
const IMPLEMENTED: &[&str] = &[
    "env/proxy_log",
    "env/proxy_get_log_level",
    "env/proxy_get_current_time_nanoseconds",
    "env/proxy_set_tick_period_milliseconds",
    "env/proxy_get_buffer_bytes",
    "env/proxy_set_buffer_bytes",
    "env/proxy_get_header_map_pairs",
    "env/proxy_set_header_map_pairs",
    "env/proxy_get_header_map_value",
    "env/proxy_add_header_map_value",
    "env/proxy_replace_header_map_value",
    "env/proxy_remove_header_map_value",
    "env/proxy_continue_stream",
    "env/proxy_close_stream",
    "env/proxy_send_local_response",
    "env/proxy_http_call",
    "env/proxy_get_status",
    "env/proxy_set_effective_context",
    "env/proxy_done",
    "env/proxy_get_shared_data",
    "env/proxy_set_shared_data",
    "env/proxy_register_shared_queue",
    "env/proxy_resolve_shared_queue",
    "env/proxy_enqueue_shared_queue",
    "env/proxy_dequeue_shared_queue",
    "env/proxy_get_property",
    "env/proxy_set_property",
    "env/proxy_define_metric",
    "env/proxy_increment_metric",
    "env/proxy_record_metric",
    "env/proxy_get_metric",
    "env/proxy_call_foreign_function",
    // Defined so every SDK module links; they trap (no gRPC upstreams here).
    "env/proxy_grpc_call",
    "env/proxy_grpc_stream",
    "env/proxy_grpc_send",
    "env/proxy_grpc_cancel",
    "env/proxy_grpc_close",
    "wasi_snapshot_preview1/fd_write",
    "wasi_snapshot_preview1/fd_read",
    "wasi_snapshot_preview1/fd_fdstat_get",
    "wasi_snapshot_preview1/environ_get",
    "wasi_snapshot_preview1/environ_sizes_get",
    "wasi_snapshot_preview1/args_get",
    "wasi_snapshot_preview1/args_sizes_get",
    "wasi_snapshot_preview1/clock_time_get",
    "wasi_snapshot_preview1/random_get",
    "wasi_snapshot_preview1/proc_exit",
    "wasi_snapshot_preview1/sched_yield",
    "wasi_snapshot_preview1/poll_oneoff",
];

#[test]
fn the_filter_imports_only_what_the_host_implements() {
    let module = Module::gateward();
    let missing: Vec<String> = module
        .imports()
        .into_iter()
        .map(|(m, n)| format!("{m}/{n}"))
        .filter(|i| !IMPLEMENTED.contains(&i.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "imports the host only stubs: {missing:?}"
    );
    let exports = module.exports();
    for export in [
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "_initialize",
        "proxy_on_request_headers",
        "proxy_on_http_call_response",
    ] {
        assert!(exports.iter().any(|e| e == export), "no export {export}");
    }
}

#[test]
fn a_vm_starts_with_root_context_1_and_nothing_counted() {
    let mut host = Host::new(Module::gateward());
    let vm = host.start_vm(b"").unwrap();
    assert_eq!(host.root_context_id(vm), 1);
    assert_eq!(host.trap(vm), None);
    assert!(
        host.metrics().values().all(|v| *v == 0),
        "{:?}",
        host.metrics()
    );
    assert!(
        host.logs(vm).iter().all(|l| l.level < LogLevel::Error),
        "{:#?}",
        host.logs(vm)
    );
    // A second VM of the same host has its own context ids.
    let other = host.start_vm(b"").unwrap();
    assert_eq!(host.root_context_id(other), 1);
    assert_eq!(host.vms(), vec![vm, other]);
}

#[test]
fn configure_rejects_a_non_json_configuration_and_accepts_a_valid_one() {
    let mut host = Host::new(Module::gateward());
    let vm = host.start_vm(b"").unwrap();
    assert!(!host.configure(vm, b"this is not JSON"));
    assert_eq!(
        host.trap(vm),
        None,
        "a rejected configuration is not a failure"
    );
    assert!(
        host.logs(vm).iter().any(|l| l.level == LogLevel::Error),
        "no error logged: {:#?}",
        host.logs(vm)
    );
    assert!(!host.configure(vm, b""));
    assert!(host.configure(vm, static_config(json!({})).to_string().as_bytes()));
    // The filter's root timer is armed by its configuration.
    assert!(host.tick_period_ms(vm).is_some());
    // A reconfiguration is a new root context in the same VM.
    assert!(host.replace_root(vm, static_config(json!({})).to_string().as_bytes()));
    assert_eq!(host.root_context_id(vm), 2);
    assert!(!host.replace_root(vm, b"{"));
    assert_eq!(
        host.root_context_id(vm),
        2,
        "a rejected root does not take over"
    );
    assert_eq!(host.trap(vm), None);
}

#[test]
fn a_local_reply_is_built_and_delivered_as_envoy_does() {
    let (mut host, vm) = start(&static_config(json!({})));
    // No token at all: the filter answers locally.
    let s = request(&mut host, vm, "GET", "/deploy?x=1", &[("X-Client", "1")]);
    let stream = host.stream(s);
    assert_eq!(s.context_id, 2, "the first stream after root 1");
    // The map the filter saw: pseudo-headers first, names lower-cased, Envoy's additions.
    let names: Vec<&str> = stream
        .request_headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        &names[..5],
        [":authority", ":path", ":method", ":scheme", "x-client"]
    );
    assert_eq!(stream.header(":path"), Some("/deploy?x=1"));
    assert!(stream.header("x-request-id").is_some());

    let reply = stream.local_reply.as_ref().expect("a local reply");
    assert_eq!(
        stream.action,
        Action::Pause,
        "a callback that replied stops iteration"
    );
    assert!(!stream.is_allowed());
    assert!(stream.finished, "the reply ends the stream");
    assert!(!stream.failed);
    assert!((400..500).contains(&reply.status), "{reply:?}");
    assert_eq!(
        reply.details, "",
        "the SDK's send_http_response sends no details"
    );
    assert_eq!(
        reply.headers[0],
        (":status".to_string(), reply.status.to_string())
    );
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    assert!(reply.header("content-type").is_some());
    assert_eq!(stream.response_headers, reply.headers);
    assert_eq!(host.trap(vm), None);
}

#[test]
fn an_allowed_stream_ends_with_the_upstream_response() {
    let (mut host, vm) = start(&static_config(json!({})));
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    assert!(host.stream(s).is_allowed());
    assert!(!host.stream(s).finished);
    host.finish(s);
    let stream = host.stream(s);
    assert!(stream.finished);
    assert_eq!(
        stream.response_headers,
        vec![(":status".to_string(), "200".to_string())]
    );
    // Finishing twice is harmless.
    host.finish(s);
    assert_eq!(host.trap(vm), None);
}

#[test]
fn http_calls_wait_for_the_test_and_time_out_with_the_clock() {
    let (mut host, vm) = start(&remote_config(json!({"timeout_ms": 2000})));
    let t = token(&fixtures::rsa_a(), "a");
    let s = deploy(&mut host, vm, &t);
    assert!(host.stream(s).is_paused(), "{:?}", host.stream(s));
    let calls = host.pending_calls();
    assert!(!calls.is_empty(), "no fetch dispatched");
    let call = &calls[0];
    assert_eq!(call.id.vm, vm);
    assert_eq!(call.id.token % 4, 0, "Envoy's tokens are 4, 8, 12, …");
    assert_eq!(call.cluster, "github");
    assert_eq!(call.method(), "GET");
    assert!(!call.authority().is_empty());
    assert!(call.path().starts_with('/'));
    assert_eq!(call.timeout_ms, 2000);

    // Nothing happens until the clock passes the timeout…
    host.advance(1999);
    assert!(host.pending_calls().iter().any(|c| c.id == call.id));
    // …then Envoy's 504 is delivered and the call is gone.
    host.advance(1);
    assert_eq!(host.now_ms(), START_MS + 2000);
    assert!(host.pending_calls().iter().all(|c| c.id != call.id));
    assert_eq!(host.trap(vm), None);
}

#[test]
fn a_response_resumes_the_paused_stream_from_the_callback() {
    let (mut host, vm) = start(&remote_config(json!({})));
    let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
    assert!(host.stream(s).is_paused());
    // Answer everything the filter asks for (discovery or JWKS) with the key set.
    for _ in 0..3 {
        for call in host.pending_calls() {
            host.respond(call.id, jwks_response(&[("a", &fixtures::rsa_a())]));
        }
    }
    let stream = host.stream(s);
    assert!(stream.resumed, "{stream:?}");
    assert!(stream.is_allowed());
    assert_eq!(host.trap(vm), None);
}

#[test]
fn failed_calls_are_delivered_without_trapping_the_filter() {
    for failure in [
        CallFailure::Timeout,
        CallFailure::ConnectionRefused,
        CallFailure::Reset,
    ] {
        let (mut host, vm) = start(&remote_config(json!({})));
        let s = deploy(&mut host, vm, &token(&fixtures::rsa_a(), "a"));
        let call = host.pending_calls()[0].id;
        host.fail(call, failure);
        assert_eq!(host.trap(vm), None, "{failure:?}");
        assert!(!host.stream(s).is_allowed(), "{failure:?}");
        // A retry may be pending; an unknown call id is not.
        assert!(host.pending_calls().iter().all(|c| c.id != call));
    }
}

#[test]
fn the_clock_moves_only_when_told() {
    let (mut host, _vm) = start(&static_config(json!({})));
    assert_eq!(host.now_ms(), START_MS);
    host.advance(250);
    assert_eq!(host.now_ms(), START_MS + 250);
    host.set_now_ms(START_MS + 10_000);
    assert_eq!(host.now_ms(), START_MS + 10_000);
    host.advance(0);
    assert_eq!(host.now_ms(), START_MS + 10_000);
}

#[test]
fn stats_and_shared_data_are_shared_by_every_vm() {
    let config = static_config(json!({}));
    let mut host = Host::new(Module::gateward());
    let vms: Vec<_> = (0..2).map(|_| host.start_vm(b"").unwrap()).collect();
    for vm in &vms {
        assert!(host.configure(*vm, config.to_string().as_bytes()));
    }
    let t = token(&fixtures::rsa_a(), "a");
    for vm in &vms {
        let s = deploy(&mut host, *vm, &t);
        assert!(host.stream(s).is_allowed());
        assert_eq!(s.context_id, 2, "context ids are per VM");
    }
    // Envoy's stats are global by name: both VMs counted into the same stat.
    let allowed = host.metrics();
    assert!(
        allowed.values().any(|v| *v == 2),
        "no stat counted both VMs: {allowed:?}"
    );

    // Shared data: one store, process-wide cas numbers.
    assert_eq!(host.shared_data("test.key"), None);
    let cas = host.put_shared_data("test.key", b"one");
    assert_eq!(host.shared_data("test.key"), Some((b"one".to_vec(), cas)));
    let next = host.put_shared_data("test.key", b"two");
    assert!(next > cas);
    assert_eq!(host.shared_data("test.key"), Some((b"two".to_vec(), next)));
}

#[test]
fn logs_are_kept_per_vm_and_can_be_taken() {
    let (mut host, vm) = start(&static_config(json!({})));
    assert!(!host.logs(vm).is_empty(), "configuration logs something");
    let taken = host.take_logs(vm);
    assert!(!taken.is_empty());
    assert!(host.logs(vm).is_empty());
}
