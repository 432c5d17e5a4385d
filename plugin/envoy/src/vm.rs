//! State shared by every context of one VM (one Envoy worker thread): the key store, the
//! counters and the requests waiting for keys. Proxy-wasm VMs are single-threaded, so a
//! thread-local is the natural home; it is only borrowed inside one callback at a time.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use proxy_wasm::hostcalls;

use crate::keystore::KeyStore;
use crate::metrics::Metrics;
use crate::stream::Pending;

/// Everything one VM keeps across contexts.
#[derive(Debug)]
pub struct VmState {
    /// Remote key sets.
    pub keys: KeyStore,
    /// Counters.
    pub metrics: Metrics,
    /// Requests paused until their issuer's keys arrive.
    pub waiters: Vec<Pending>,
}

thread_local! {
    static VM: RefCell<Option<VmState>> = const { RefCell::new(None) };
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// Sets up the VM state (idempotent).
pub fn init() {
    VM.with(|vm| {
        if let Ok(mut vm) = vm.try_borrow_mut() {
            if vm.is_none() {
                *vm = Some(VmState {
                    keys: KeyStore::new(vm_id()),
                    metrics: Metrics::define(),
                    waiters: Vec::new(),
                });
            }
        }
    });
}

/// Runs `f` on the VM state. None only if the state is already borrowed (a re-entrant host
/// callback), which callers turn into a fail-closed error instead of a panic.
pub fn with<R>(f: impl FnOnce(&mut VmState) -> R) -> Option<R> {
    init();
    VM.with(|vm| {
        let mut vm = vm.try_borrow_mut().ok()?;
        vm.as_mut().map(f)
    })
}

/// Records which context's callback is running (the SDK delivers HTTP call responses to the
/// context that dispatched the call, and does not expose its own record of it).
pub fn set_current(context: u32) {
    CURRENT.with(|c| c.set(context));
}

/// The context whose callback is running.
pub fn current_context() -> u32 {
    CURRENT.with(Cell::get)
}

// Read through the ABI: the SDK's `get_current_time` panics (traps the VM) on any status but Ok.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
}

/// Requests are refused while the host clock reads earlier than this (2020-01-01): a clock at
/// or near the epoch would put every `exp` in the future.
pub const CLOCK_FLOOR_MS: u64 = 1_577_836_800_000;

/// The host clock in nanoseconds since the Unix epoch; 0 if the host cannot tell.
fn now_ns() -> u64 {
    let mut ns = 0u64;
    // SAFETY: the host writes one u64 into the local.
    #[allow(unsafe_code)]
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut ns) };
    if status == 0 {
        ns
    } else {
        0
    }
}

/// The host clock in milliseconds since the Unix epoch (0 if the host cannot tell, which
/// [`CLOCK_FLOOR_MS`] refuses).
pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

/// The host clock in microseconds, for latencies.
pub fn now_us() -> u64 {
    now_ns() / 1_000
}

/// A lease id unique among the VMs sharing data: a shared sequence number (unique once the
/// counter exists) mixed with randomness (for VMs that race to create it).
fn vm_id() -> u64 {
    const KEY: &str = "gateward.v1.vm-seq";
    let mut seq = 0u64;
    for _ in 0..16 {
        let (value, cas) = hostcalls::get_shared_data(KEY).unwrap_or((None, None));
        let current = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let next = current.wrapping_add(1);
        if hostcalls::set_shared_data(KEY, Some(next.to_string().as_bytes()), cas).is_ok() {
            seq = next;
            break;
        }
    }
    let random = RandomState::new().hash_one(now_us());
    ((seq << 32) ^ (random & 0xffff_ffff)) | 1
}
