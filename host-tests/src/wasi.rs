//! The few `wasi_snapshot_preview1` functions a proxy-wasm module needs, hand-written with
//! cpp-host's semantics (`src/exports.cc`): stdout/stderr become log lines, the clocks read the
//! host clock, randomness is deterministic, and there is no environment, argv or filesystem.
//! Any other WASI import traps if called (see `Host::new`).

use crate::abi::errno;
use crate::imports::push_log;
use crate::memory::{lossy, read, write, write_u32, write_u64};
use crate::state::{lock, VmState};
use crate::types::LogLevel;
use wasmtime::{format_err, Caller, Linker, Result};

const WASI: &str = "wasi_snapshot_preview1";

type C<'a> = Caller<'a, VmState>;

pub(crate) fn define(linker: &mut Linker<VmState>) -> Result<()> {
    linker.func_wrap(WASI, "fd_write", fd_write)?;
    linker.func_wrap(
        WASI,
        "fd_read",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| errno::NOSYS,
    )?;
    linker.func_wrap(WASI, "fd_fdstat_get", fd_fdstat_get)?;
    linker.func_wrap(WASI, "environ_sizes_get", zero_sizes)?;
    linker.func_wrap(WASI, "environ_get", |_: C<'_>, _: i32, _: i32| {
        errno::SUCCESS
    })?;
    linker.func_wrap(WASI, "args_sizes_get", zero_sizes)?;
    linker.func_wrap(WASI, "args_get", |_: C<'_>, _: i32, _: i32| errno::SUCCESS)?;
    linker.func_wrap(WASI, "clock_time_get", clock_time_get)?;
    linker.func_wrap(WASI, "random_get", random_get)?;
    // Imported by the lock of regorus's pattern cache (parking_lot), which yields or sleeps
    // only when another thread holds it: never, in a single-threaded module. Envoy 1.40 links
    // both (the release module runs there); here a yield succeeds and a sleep is refused.
    linker.func_wrap(WASI, "sched_yield", |_: C<'_>| errno::SUCCESS)?;
    linker.func_wrap(
        WASI,
        "poll_oneoff",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| errno::NOTSUP,
    )?;
    linker.func_wrap(WASI, "proc_exit", |_: C<'_>, code: i32| -> Result<()> {
        Err(format_err!("the module called proc_exit({code})"))
    })?;
    Ok(())
}

/// stdout → info, stderr → error, one line per write without its trailing newline.
fn fd_write(mut caller: C<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> Result<i32> {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Ok(errno::BADF),
    };
    let mut text = Vec::new();
    for i in 0..iovs_len {
        let Ok(iov) = read(&caller, iovs.wrapping_add(i * 8), 8) else {
            return Ok(errno::FAULT);
        };
        let word = |at: usize| {
            iov.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(i32::from_le_bytes)
                .unwrap_or_default()
        };
        let Ok(bytes) = read(&caller, word(0), word(4)) else {
            return Ok(errno::FAULT);
        };
        text.extend_from_slice(&bytes);
    }
    let written = text.len();
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if written > 0 {
        push_log(caller.data_mut(), level, lossy(&text));
    }
    write_u32(&mut caller, nwritten, u32::try_from(written)?)?;
    Ok(errno::SUCCESS)
}

/// Only stdout and stderr exist; they report write rights.
fn fd_fdstat_get(mut caller: C<'_>, fd: i32, out: i32) -> Result<i32> {
    if fd != 1 && fd != 2 {
        return Ok(errno::BADF);
    }
    let mut stat = [0u8; 24];
    stat[8] = 64; // fs_rights_base = FD_WRITE
    write(&mut caller, out, &stat)?;
    Ok(errno::SUCCESS)
}

fn zero_sizes(mut caller: C<'_>, count: i32, size: i32) -> Result<i32> {
    write_u32(&mut caller, count, 0)?;
    write_u32(&mut caller, size, 0)?;
    Ok(errno::SUCCESS)
}

/// Realtime reads the host clock, so `SystemTime::now()` in the module follows `Host::advance`.
/// Monotonic is the host clock plus the real time elapsed since the process started: it moves
/// during a call too, as Envoy's does, so a policy's evaluation budget (regorus reads
/// `Instant::now()`) runs out in these tests as it would in Envoy.
fn clock_time_get(mut caller: C<'_>, id: i32, _precision: i64, out: i32) -> Result<i32> {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let now_ns = lock(&caller.data().shared).now_ms.saturating_mul(1_000_000);
    let now_ns = match id {
        0 => now_ns,
        1 => {
            let real = STARTED.get_or_init(std::time::Instant::now).elapsed();
            now_ns.saturating_add(u64::try_from(real.as_nanos()).unwrap_or(u64::MAX))
        }
        _ => return Ok(errno::NOTSUP),
    };
    write_u64(&mut caller, out, now_ns)?;
    Ok(errno::SUCCESS)
}

/// Deterministic bytes (splitmix64 per VM), so runs repeat exactly.
fn random_get(mut caller: C<'_>, buf: i32, len: i32) -> Result<i32> {
    let len = len as u32 as usize;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        let word = caller.data_mut().next_random();
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.truncate(len);
    write(&mut caller, buf, &bytes)?;
    Ok(errno::SUCCESS)
}
