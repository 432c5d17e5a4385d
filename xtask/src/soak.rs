//! `cargo xtask soak`: the filter in a real Envoy under steady traffic while its issuer
//! misbehaves, judged request by request.
//!
//! A fixed request rate goes through Envoy (two workers) to the echo upstream: valid tokens
//! reused (the cache path) and freshly minted (the verification path), forged, expired and
//! wrong-audience tokens, and requests with none. Meanwhile the issuer's key endpoints go
//! through phases: healthy, answering 500, slower than the fetch timeout, answering garbage,
//! answering bytes that are not HTTP, rotating its key, down (connection refused), healthy
//! again. The filter refreshes keys every 3 s and keeps stale ones 10 s, so every fault
//! reaches it. Last, with the issuer healthy, the listener's Gateward configuration is reloaded
//! (Envoy's LDS file replaced) every half second, alternating between the demo's audience and
//! the one the wrong-audience tokens carry, so those and the valid tokens swap places.
//!
//! Judged: no bad or missing token is ever let through; no request takes longer than the fetch
//! timeout plus a margin; valid tokens are served again by the end of the last healthy phase.
//! During the reloads each request must be right under a configuration that could have served
//! it (the one before a reload or the one after, while Envoy applies it): nothing invalid under
//! both is let through, and after the last reload the new configuration holds.
//! Reported: per phase, the outcome counts and latency percentiles, and the worker VMs' linear
//! memory over time (`SOAK.md` and `docs/soak.svg`; `--smoke`: a short run, report under the
//! target directory).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gateward_devkit::envoy::cargo_target_dir;
use gateward_devkit::issuer::{DevIssuer, Fault};
use gateward_devkit::stack::{Stack, StackOptions};
use gateward_devkit::{fixtures, http, mint};
use serde_json::{json, Value};

/// Longest acceptable answer: the fetch timeout (2 s in `demo.json`) plus the wait margin.
const HANG_LIMIT: Duration = Duration::from_secs(5);
/// Client threads sending the load.
const CLIENTS: usize = 8;
/// How often the reload phase replaces the configuration.
const RELOAD_EVERY: Duration = Duration::from_millis(500);
/// Envoy's drain time for replaced listeners: their connections are long finished by then (no
/// request may take 5 s), and the old filter chains with their root contexts are freed during
/// the phase rather than piling up for Envoy's default 600 s.
const DRAIN_SECONDS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Healthy,
    Status500,
    Slow,
    Garbage,
    NotHttp,
    Rotation,
    Down,
    Recovered,
    Reload,
}

const PHASES: [Phase; 9] = [
    Phase::Healthy,
    Phase::Status500,
    Phase::Slow,
    Phase::Garbage,
    Phase::NotHttp,
    Phase::Rotation,
    Phase::Down,
    Phase::Recovered,
    Phase::Reload,
];

/// The index of the phase that must end recovered.
const RECOVERED: usize = 7;
/// The index of the reload phase.
const RELOAD: usize = 8;

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Status500 => "keys answer 500",
            Phase::Slow => "keys slower than the fetch timeout (3 s)",
            Phase::Garbage => "keys answer non-JSON",
            Phase::NotHttp => "keys answer non-HTTP bytes",
            Phase::Rotation => "key rotation",
            Phase::Down => "issuer down (connection refused)",
            Phase::Recovered => "healthy again",
            Phase::Reload => "configuration reloads (the accepted audience flips)",
        }
    }
}

/// What a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A valid token seen before (cache path).
    Reused,
    /// A valid token never seen (verification path).
    Fresh,
    /// A valid token's signature altered.
    Forged,
    /// Signed by the issuer's key, expired.
    Expired,
    /// Signed by the issuer's key, for another audience.
    WrongAudience,
    /// Signed by a key the issuer never published.
    UnknownKey,
    /// No token.
    Missing,
}

impl Kind {
    fn of(n: u64) -> Kind {
        match n % 20 {
            0..=7 => Kind::Reused,
            8..=11 => Kind::Fresh,
            12 => Kind::Forged,
            13 => Kind::Expired,
            14 => Kind::WrongAudience,
            15 => Kind::UnknownKey,
            _ => Kind::Missing,
        }
    }

    fn valid(self) -> bool {
        matches!(self, Kind::Reused | Kind::Fresh)
    }

    /// Whether the configuration `config` lets this token through: 0 is the demo's, 1 the
    /// reload phase's other one, which accepts [`OTHER_AUD`] instead of [`AUD`].
    fn allowed_under(self, config: usize) -> bool {
        match config {
            0 => self.valid(),
            _ => self == Kind::WrongAudience,
        }
    }
}

/// One answered (or failed) request.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    phase: usize,
    kind: Kind,
    /// 0: no HTTP answer.
    status: u16,
    latency: Duration,
}

struct Options {
    phase: Duration,
    rate: u64,
    smoke: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        phase: Duration::from_secs(75),
        rate: 200,
        smoke: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => {
                o.smoke = true;
                o.phase = Duration::from_secs(6);
                o.rate = 60;
            }
            "--minutes" => {
                o.phase = Duration::from_secs(
                    crate::next_number(&mut it, "--minutes")? * 60 / PHASES.len() as u64,
                )
            }
            "--rate" => o.rate = crate::next_number(&mut it, "--rate")?.max(1),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// Tokens for the load. Minting is slow in a debug build, so everything but the fresh tokens
/// comes from small pools minted up front (and again after a rotation); fresh ones come from a
/// minting thread, and when it falls behind a reused token goes instead.
struct Tokens {
    pools: Mutex<Pools>,
    fresh: Mutex<mpsc::Receiver<String>>,
}

struct Pools {
    reused: Vec<String>,
    expired: Vec<String>,
    wrong_audience: Vec<String>,
    unknown_key: Vec<String>,
}

impl Pools {
    fn mint(issuer: &RwLock<DevIssuer>) -> Pools {
        let many = |n: usize, claims: &dyn Fn(usize) -> Value| -> Vec<String> {
            (0..n)
                .filter_map(|i| mint_with(issuer, claims(i)))
                .collect()
        };
        let url = read(issuer).url();
        Pools {
            reused: many(16, &|i| json!({"run_id": format!("reused-{i}")})),
            expired: many(4, &|_| json!({"iat": now() - 7200, "exp": now() - 3600})),
            wrong_audience: many(4, &|_| json!({"aud": OTHER_AUD})),
            unknown_key: (0..4)
                .filter_map(|i| {
                    let mut claims = gateward_devkit::claims::github_actions(now() - 5, AUD);
                    claims["iss"] = json!(url);
                    claims["run_id"] = json!(format!("unknown-key-{i}"));
                    mint(&fixtures::rsa_b(), Some("dev-1"), &claims).ok()
                })
                .collect(),
        }
    }
}

impl Tokens {
    /// The token for request `n`, and what it really is.
    fn pick(&self, n: u64) -> (Kind, Option<String>) {
        let kind = Kind::of(n);
        let pools = lock(&self.pools);
        let from = |pool: &[String]| pool.get(n as usize % pool.len().max(1)).cloned();
        match kind {
            Kind::Missing => (kind, None),
            Kind::Fresh => match lock(&self.fresh).try_recv() {
                Ok(t) => (kind, Some(t)),
                Err(_) => (Kind::Reused, from(&pools.reused)),
            },
            Kind::Reused => (kind, from(&pools.reused)),
            Kind::Forged => {
                let mut t = from(&pools.reused).unwrap_or_default();
                // Change one character of the signature (not the last: its low bits may be
                // padding that base64url decoders ignore).
                let at = t.len().saturating_sub(6);
                let swapped = if t.get(at..=at) == Some("A") {
                    "B"
                } else {
                    "A"
                };
                t.replace_range(at..=at, swapped);
                (kind, Some(t))
            }
            Kind::Expired => (kind, from(&pools.expired)),
            Kind::WrongAudience => (kind, from(&pools.wrong_audience)),
            Kind::UnknownKey => (kind, from(&pools.unknown_key)),
        }
    }
}

const AUD: &str = "https://github.com/octo-org";
/// The audience of the wrong-audience tokens, which the reload phase's second configuration
/// accepts instead of [`AUD`].
const OTHER_AUD: &str = "https://github.com/someone-else";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn mint_with(issuer: &RwLock<DevIssuer>, claims: Value) -> Option<String> {
    read(issuer).mint("github-actions", &claims).ok()
}

/// Runs the soak; Err when a judged property failed (the report is written either way).
pub fn run(args: &[String]) -> Result<(), String> {
    let o = options(args)?;
    let wasm = crate::build()?;
    let dir = cargo_target_dir().join("gateward-soak");
    let mut stack = Stack::start(
        &wasm,
        &StackOptions {
            concurrency: 2,
            min_refetch_seconds: 1,
            cache_seconds: 3,
            max_stale_seconds: 10,
            drain_seconds: Some(DRAIN_SECONDS),
            dir: dir.clone(),
            ..StackOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let issuer = Arc::new(RwLock::new(
        stack.issuer.take().ok_or("the stack's issuer is down")?,
    ));
    let url = stack.url();
    let pid = stack.envoy.pid().ok_or("Envoy is not running")?;
    let configs = [
        stack.gateward_config().to_string(),
        with_audience(stack.gateward_config(), OTHER_AUD)?,
    ];
    let mut reloads = Reloads::default();

    let (fresh_tx, fresh_rx) = mpsc::sync_channel::<String>(64);
    let tokens = Arc::new(Tokens {
        pools: Mutex::new(Pools::mint(&issuer)),
        fresh: Mutex::new(fresh_rx),
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let minter = {
        let (issuer, stop) = (Arc::clone(&issuer), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let Some(t) = mint_with(&issuer, json!({"run_id": format!("fresh-{i}")})) else {
                    break;
                };
                if fresh_tx.send(t).is_err() {
                    break;
                }
            }
        })
    };
    // Envoy has fetched the keys once before the clock starts.
    let first = lock(&tokens.pools).reused.first().cloned();
    let warm = stack.send("POST", "/deploy", first.as_deref());
    if warm.map(|r| r.status).unwrap_or(0) != 200 {
        return Err(format!(
            "a valid token was not served before the soak:\n{}",
            stack.envoy.log()
        ));
    }

    let phase_index = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = o.phase * PHASES.len() as u32;
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (tokens, counter, samples, phase_index, url) = (
                Arc::clone(&tokens),
                Arc::clone(&counter),
                Arc::clone(&samples),
                Arc::clone(&phase_index),
                url.clone(),
            );
            let rate = o.rate;
            std::thread::spawn(move || loop {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let due = Duration::from_secs_f64(n as f64 / rate as f64);
                if due >= end {
                    break;
                }
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                let (kind, token) = tokens.pick(n);
                let auth = token.map(|t| format!("Bearer {t}"));
                let headers: Vec<(&str, &str)> =
                    auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let sent = Instant::now();
                let status = http::request("POST", &format!("{url}/deploy"), &headers, b"")
                    .map_or(0, |r| r.status);
                let sample = Sample {
                    at: started.elapsed(),
                    phase: phase_index.load(Ordering::SeqCst) as usize,
                    kind,
                    status,
                    latency: sent.elapsed(),
                };
                lock(&samples).push(sample);
            })
        })
        .collect();

    // The phases, and the VMs' memory every second.
    let mut memory: Vec<(f64, u64)> = Vec::new();
    for (i, phase) in PHASES.iter().enumerate() {
        phase_index.store(i as u64, Ordering::SeqCst);
        eprintln!("==> soak phase {}: {}", i + 1, phase.name());
        {
            let mut iss = write(&issuer);
            match phase {
                Phase::Healthy | Phase::Recovered | Phase::Reload => iss.set_fault(None),
                Phase::Status500 => iss.set_fault(Some(Fault::Status(500))),
                Phase::Slow => iss.set_fault(Some(Fault::Slow(Duration::from_secs(3)))),
                Phase::Garbage => iss.set_fault(Some(Fault::Garbage)),
                Phase::NotHttp => iss.set_fault(Some(Fault::NotHttp)),
                Phase::Rotation => {
                    iss.set_fault(None);
                    iss.rotate();
                }
                Phase::Down => iss.go_down(),
            }
        }
        // New pools every phase: GitHub-style tokens live 5 minutes, and after the rotation
        // new tokens carry the new key's kid. The old pool serves until the new one is ready.
        let pools = Pools::mint(&issuer);
        *lock(&tokens.pools) = pools;
        let phase_end = o.phase * (i as u32 + 1);
        if *phase == Phase::Reload {
            reload_phase(
                &mut stack,
                &configs,
                &mut reloads,
                started,
                phase_end,
                o.phase,
                |t| {
                    memory.push((
                        t,
                        crate::bench::wasm_memories(pid).iter().map(|w| w.0).sum(),
                    ))
                },
            );
        }
        while started.elapsed() < phase_end {
            let wasm = crate::bench::wasm_memories(pid);
            memory.push((
                started.elapsed().as_secs_f64(),
                wasm.iter().map(|w| w.0).sum(),
            ));
            std::thread::sleep(
                Duration::from_secs(1).min(phase_end - started.elapsed().min(phase_end)),
            );
        }
        if *phase == Phase::Down {
            write(&issuer)
                .come_back()
                .map_err(|e| format!("the issuer cannot come back: {e}"))?;
        }
    }
    for c in clients {
        let _ = c.join();
    }
    stop.store(true, Ordering::SeqCst);
    drop(tokens);
    let _ = minter.join();

    let samples = std::mem::take(&mut *lock(&samples));
    let verdict = judge(&samples, o.phase, &reloads);
    let report = report(&o, &samples, &memory, &verdict, &reloads);
    let (md, svg) = if o.smoke {
        (dir.join("SOAK.md"), dir.join("soak.svg"))
    } else {
        (
            crate::root().join("SOAK.md"),
            crate::root().join("docs/soak.svg"),
        )
    };
    std::fs::write(&md, report).map_err(|e| format!("{}: {e}", md.display()))?;
    std::fs::write(&svg, chart(&samples, &memory, o.phase))
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    eprintln!("==> wrote {} and {}", md.display(), svg.display());
    if verdict.failures.is_empty() {
        Ok(())
    } else {
        Err(verdict.failures.join("\n"))
    }
}

/// `config` (Gateward JSON) accepting `audience` instead of its own.
fn with_audience(config: &str, audience: &str) -> Result<String, String> {
    let mut v: Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
    let audiences = v
        .pointer_mut("/issuers/0/audiences")
        .ok_or("the stack's configuration has no issuers[0].audiences")?;
    *audiences = json!([audience]);
    Ok(v.to_string())
}

/// The reload phase's record: when each reload began and when every worker ran it (since the
/// soak's start; reload `k`, from 1, installs configuration `k % 2`), and any that failed.
#[derive(Default)]
struct Reloads {
    done: Vec<(Duration, Duration)>,
    failures: Vec<String>,
}

/// Reloads every [`RELOAD_EVERY`] through the first two thirds of the phase, an odd number of
/// times so that it ends on the other configuration; samples the memory between reloads.
fn reload_phase(
    stack: &mut Stack,
    configs: &[String; 2],
    reloads: &mut Reloads,
    started: Instant,
    phase_end: Duration,
    phase: Duration,
    mut sample_memory: impl FnMut(f64),
) {
    let reload_until = phase_end.saturating_sub(phase / 3);
    while started.elapsed() < reload_until || reloads.done.len().is_multiple_of(2) {
        let k = reloads.done.len() + 1;
        let from = started.elapsed();
        let Some(config) = configs.get(k % 2) else {
            return;
        };
        if let Err(e) = stack.reload(config) {
            reloads.failures.push(format!("reload {k}: {e}"));
            return;
        }
        reloads.done.push((from, started.elapsed()));
        sample_memory(started.elapsed().as_secs_f64());
        std::thread::sleep(RELOAD_EVERY.saturating_sub(started.elapsed().saturating_sub(from)));
    }
}

/// The reload phase's requests judged against the configurations that could have served them.
#[derive(Default)]
struct ReloadVerdict {
    requests: usize,
    /// Let through where no configuration that could have served it allows the token.
    wrongly_allowed: usize,
    /// Let through though invalid under both configurations.
    invalid_allowed: usize,
    /// Refused (or unanswered) where every configuration that could have served it allows it.
    wrongly_refused: usize,
    /// Sent after the last reload ran on every worker: (all, let through, right).
    after_last: (usize, usize, usize),
}

/// The configurations (0 or 1) that could have decided a request in flight from `sent` to
/// `done`: reload `k` may apply from when it began until it ran everywhere, so the configuration
/// before it holds until that end and the one after it from that beginning.
fn candidates(reloads: &[(Duration, Duration)], sent: Duration, done: Duration) -> [bool; 2] {
    let mut can = [false; 2];
    for j in 0..=reloads.len() {
        let from = j
            .checked_sub(1)
            .and_then(|p| reloads.get(p))
            .map_or(Duration::ZERO, |r| r.0);
        let until = reloads.get(j).map_or(Duration::MAX, |r| r.1);
        if from <= done && sent <= until {
            if let Some(c) = can.get_mut(j % 2) {
                *c = true;
            }
        }
    }
    can
}

fn judge_reloads(samples: &[Sample], reloads: &Reloads) -> ReloadVerdict {
    let mut v = ReloadVerdict::default();
    let last = reloads.done.last().map_or(Duration::MAX, |r| r.1);
    let final_config = reloads.done.len() % 2;
    for s in samples.iter().filter(|s| s.phase == RELOAD) {
        let sent = s.at.saturating_sub(s.latency);
        let can = candidates(&reloads.done, sent, s.at);
        let allowed = s.status == 200;
        // Right under configuration `c` if `c` could have decided it and decides that way.
        let right_under =
            |c: usize| can.get(c) == Some(&true) && allowed == s.kind.allowed_under(c);
        v.requests += 1;
        if !(right_under(0) || right_under(1)) {
            if allowed {
                v.wrongly_allowed += 1;
            } else {
                v.wrongly_refused += 1;
            }
        }
        if allowed && !s.kind.allowed_under(0) && !s.kind.allowed_under(1) {
            v.invalid_allowed += 1;
        }
        if sent > last {
            v.after_last.0 += 1;
            v.after_last.1 += usize::from(allowed);
            v.after_last.2 += usize::from(allowed == s.kind.allowed_under(final_config));
        }
    }
    v
}

struct Verdict {
    wrongly_allowed: usize,
    hung: usize,
    reload: ReloadVerdict,
    failures: Vec<String>,
}

fn judge(samples: &[Sample], phase: Duration, reloads: &Reloads) -> Verdict {
    let reload = judge_reloads(samples, reloads);
    // Outside the reload phase every configuration is the demo's.
    let wrongly_allowed = samples
        .iter()
        .filter(|s| s.phase != RELOAD && !s.kind.valid() && s.status == 200)
        .count()
        + reload.wrongly_allowed;
    let hung = samples.iter().filter(|s| s.latency > HANG_LIMIT).count();
    let mut failures = Vec::new();
    if wrongly_allowed > 0 {
        failures.push(format!(
            "{wrongly_allowed} request(s) without a valid token were let through"
        ));
    }
    if hung > 0 {
        failures.push(format!("{hung} request(s) took longer than {HANG_LIMIT:?}"));
    }
    // Recovered: in the second half of the last fault phase, every valid token is served.
    let settle = phase * RECOVERED as u32 + phase / 2;
    let late: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.phase == RECOVERED && s.at >= settle && s.kind.valid())
        .collect();
    let served = late.iter().filter(|s| s.status == 200).count();
    if late.is_empty() || served < late.len() {
        failures.push(format!(
            "not recovered: {served} of {} valid requests served in the second half of the last fault phase",
            late.len()
        ));
    }
    failures.extend(reloads.failures.iter().cloned());
    if reload.wrongly_refused > 0 {
        failures.push(format!(
            "{} request(s) refused during the reloads though every configuration that could have decided them allows them",
            reload.wrongly_refused
        ));
    }
    let (after, _, right) = reload.after_last;
    if after == 0 || right < after {
        failures.push(format!(
            "after the last reload {right} of {after} requests were decided by the new configuration"
        ));
    }
    Verdict {
        wrongly_allowed,
        hung,
        reload,
        failures,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn report(
    o: &Options,
    samples: &[Sample],
    memory: &[(f64, u64)],
    v: &Verdict,
    reloads: &Reloads,
) -> String {
    let mut r = String::from("# Soak and fault report (cargo xtask soak)\n\n");
    let _ = writeln!(
        r,
        "Envoy {} with two workers, the release module, the dev issuer on loopback; {} requests/s \
         from {CLIENTS} clients for {} phases of {} s. Keys refreshed every 3 s, kept stale 10 s, \
         fetch timeout 2 s; replaced listeners drain for {DRAIN_SECONDS} s. Machine: {} cores; \
         other work on it shows in the latencies.\n",
        gateward_devkit::envoy::ENVOY_VERSION,
        o.rate,
        PHASES.len(),
        o.phase.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let _ = writeln!(
        r,
        "**Wrongly allowed: {}. Over {HANG_LIMIT:?}: {}. {}**\n",
        v.wrongly_allowed,
        v.hung,
        if v.failures.is_empty() {
            "Recovered by itself.".to_string()
        } else {
            v.failures.join("; ")
        }
    );
    r.push_str("| phase | requests | valid served | valid 503 | valid other | invalid refused | invalid let through | no answer | p50 | p99 | max |\n");
    r.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    // The reload phase has a table of its own: there "valid" depends on the configuration.
    for (i, phase) in PHASES.iter().enumerate().filter(|(i, _)| *i != RELOAD) {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.phase == i).collect();
        let count = |f: &dyn Fn(&Sample) -> bool| mine.iter().filter(|s| f(s)).count();
        let mut lat: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
        lat.sort();
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            phase.name(),
            mine.len(),
            count(&|s| s.kind.valid() && s.status == 200),
            count(&|s| s.kind.valid() && s.status == 503),
            count(&|s| s.kind.valid() && !matches!(s.status, 200 | 503)),
            count(&|s| !s.kind.valid() && matches!(s.status, 401 | 403 | 503)),
            count(&|s| !s.kind.valid() && s.status == 200),
            count(&|s| s.status == 0),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    let mut took: Vec<Duration> = reloads.done.iter().map(|(a, b)| *b - *a).collect();
    took.sort();
    let rv = &v.reload;
    let _ = writeln!(
        r,
        "\n**Phase {}, {}:** the listener's Gateward configuration was replaced {} times, every \
         {} ms for the first two thirds of the phase, through Envoy's LDS file (a new file renamed \
         into the watched directory), alternating between the demo's audience and `{OTHER_AUD}`: \
         valid and wrong-audience tokens swap places. Each reload was running on both workers \
         after {:.1} ms (p50), {:.1} ms (max). A request counts as right if it is right under a \
         configuration that could have decided it: the one before a reload until the reload ran \
         everywhere, the one after from when the reload began.\n",
        RELOAD + 1,
        Phase::Reload.name(),
        reloads.done.len(),
        RELOAD_EVERY.as_millis(),
        percentile(&took, 0.5).as_secs_f64() * 1e3,
        took.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    r.push_str("| requests | right | wrongly let through | invalid under both, let through | wrongly refused | after the last reload: requests, let through, right |\n|---|---|---|---|---|---|\n");
    let (after, after_allowed, after_right) = rv.after_last;
    let _ = writeln!(
        r,
        "| {} | {} | {} | {} | {} | {after}, {after_allowed}, {after_right} |",
        rv.requests,
        rv.requests - rv.wrongly_allowed - rv.wrongly_refused,
        rv.wrongly_allowed,
        rv.invalid_allowed,
        rv.wrongly_refused,
    );
    r.push_str("\n| token | requests | answers | p50 | p99 | max |\n|---|---|---|---|---|---|\n");
    for kind in [
        Kind::Reused,
        Kind::Fresh,
        Kind::Forged,
        Kind::Expired,
        Kind::WrongAudience,
        Kind::UnknownKey,
        Kind::Missing,
    ] {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.kind == kind).collect();
        let mut statuses: std::collections::BTreeMap<u16, usize> = Default::default();
        for s in &mine {
            *statuses.entry(s.status).or_default() += 1;
        }
        let mut lat: Vec<Duration> = mine.iter().map(|s| s.latency).collect();
        lat.sort();
        let _ = writeln!(
            r,
            "| {kind:?} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            mine.len(),
            statuses
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect::<Vec<_>>()
                .join(", "),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    let kib: Vec<u64> = memory.iter().map(|m| m.1).collect();
    let _ = writeln!(
        r,
        "\nWorker VMs' linear memory (sum, from /proc/<pid>/smaps): first {} KiB, after the \
         first phase {} KiB, last {} KiB, peak {} KiB.\n",
        kib.first().copied().unwrap_or(0),
        memory
            .iter()
            .find(|m| m.0 >= o.phase.as_secs_f64())
            .map_or(0, |m| m.1),
        kib.last().copied().unwrap_or(0),
        kib.iter().max().copied().unwrap_or(0),
    );
    r.push_str(
        "\"valid 503\" is `keys_unavailable`: the keys went stale (10 s) with the issuer failing, \
         the fail-closed answer. \"valid other\" is a valid token refused for another reason: \
         after the rotation, `key_not_found` for the new key's first tokens when a fetch that \
         began just before the rotation installed the old set, and the unknown-kid refetch \
         waits out `min_refetch_seconds` (1 s here) before it may run again. \"no answer\" is \
         a connection that failed. The per-token answers include the reload phase, where \
         wrong-audience tokens are let through under the second configuration.\n\n![soak](docs/soak.svg)\n",
    );
    r
}

/// p99 latency per 2-s window and the VMs' memory over time, phases shaded.
fn chart(samples: &[Sample], memory: &[(f64, u64)], phase: Duration) -> String {
    let (w, h, left, top) = (900.0, 380.0, 60.0, 20.0);
    let total = phase.as_secs_f64() * PHASES.len() as f64;
    let x = |t: f64| left + (w - left - 60.0) * t / total.max(1.0);
    let mut windows: Vec<Vec<Duration>> = vec![Vec::new(); (total / 2.0).ceil() as usize + 1];
    for s in samples {
        if let Some(win) = windows.get_mut((s.at.as_secs_f64() / 2.0) as usize) {
            win.push(s.latency);
        }
    }
    let p99: Vec<(f64, f64)> = windows
        .iter_mut()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| {
            v.sort();
            (
                i as f64 * 2.0 + 1.0,
                percentile(v, 0.99).as_secs_f64() * 1e3,
            )
        })
        .collect();
    let max_ms = p99.iter().map(|p| p.1).fold(10.0, f64::max);
    let max_kib = memory.iter().map(|m| m.1).max().unwrap_or(1).max(1) as f64;
    let plot_h = h - top - 60.0;
    let y_ms = |v: f64| top + plot_h * (1.0 - v / max_ms);
    let y_mem = |v: f64| top + plot_h * (1.0 - v / (max_kib * 1.2));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, p) in PHASES.iter().enumerate() {
        let (a, b) = (
            x(phase.as_secs_f64() * i as f64),
            x(phase.as_secs_f64() * (i + 1) as f64),
        );
        let fill = match p {
            Phase::Healthy | Phase::Recovered => "#f4f4f4",
            Phase::Reload => "#e6eefa",
            _ => "#fde8e8",
        };
        let _ = writeln!(
            s,
            "<rect x=\"{a:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"{fill}\" stroke=\"white\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            b - a,
            (a + b) / 2.0,
            top + plot_h + 14.0,
            i + 1
        );
    }
    let line = |pts: Vec<(f64, f64)>, color: &str| {
        let d: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            d.join(" ")
        )
    };
    s.push_str(&line(
        p99.iter().map(|(t, v)| (x(*t), y_ms(*v))).collect(),
        "#c0392b",
    ));
    s.push_str(&line(
        memory
            .iter()
            .map(|(t, v)| (x(*t), y_mem(*v as f64)))
            .collect(),
        "#2c6fbb",
    ));
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"12\" fill=\"#c0392b\">p99 latency per 2 s (max {max_ms:.0} ms)</text>\
         <text x=\"{:.0}\" y=\"12\" fill=\"#2c6fbb\">worker VMs' memory (max {:.0} KiB)</text>\
",
        left + 300.0,
        max_kib,
    );
    // The phase legend, four to a line.
    for (row, names) in PHASES.chunks(4).enumerate() {
        let text: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}: {}", row * 4 + i + 1, p.name()))
            .collect();
        let _ = writeln!(
            s,
            "<text x=\"{left}\" y=\"{:.0}\">{}</text>",
            top + plot_h + 28.0 + 14.0 * row as f64,
            text.join(" · ")
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_request_may_be_decided_by_the_configurations_around_a_reload_in_flight() {
        // Reload 1 (to configuration 1) from 10 to 12 ms, reload 2 (back to 0) from 20 to 21 ms.
        let reloads = [(ms(10), ms(12)), (ms(20), ms(21))];
        assert_eq!(candidates(&reloads, ms(5), ms(6)), [true, false]);
        assert_eq!(candidates(&reloads, ms(11), ms(11)), [true, true]);
        assert_eq!(candidates(&reloads, ms(5), ms(10)), [true, true]);
        assert_eq!(candidates(&reloads, ms(13), ms(19)), [false, true]);
        assert_eq!(candidates(&reloads, ms(12), ms(13)), [true, true]);
        assert_eq!(candidates(&reloads, ms(22), ms(30)), [true, false]);
    }

    #[test]
    fn reload_samples_are_judged_under_the_configurations_that_could_decide_them() {
        let reloads = Reloads {
            done: vec![(ms(1000), ms(1010))],
            failures: Vec::new(),
        };
        let sample = |at: u64, kind: Kind, status: u16| Sample {
            at: ms(at),
            phase: RELOAD,
            kind,
            status,
            latency: ms(2),
        };
        let samples = [
            // Before the reload: the demo's configuration.
            sample(500, Kind::Reused, 200),
            sample(500, Kind::WrongAudience, 401),
            // While it is applied: either answer.
            sample(1005, Kind::Reused, 200),
            sample(1005, Kind::Reused, 401),
            // After: the other configuration only.
            sample(1500, Kind::WrongAudience, 200),
            sample(1500, Kind::Fresh, 200),
            sample(1500, Kind::Forged, 200),
            sample(1500, Kind::WrongAudience, 401),
        ];
        let v = judge_reloads(&samples, &reloads);
        assert_eq!(v.requests, 8);
        assert_eq!(v.wrongly_allowed, 2, "the fresh token and the forged one");
        assert_eq!(v.invalid_allowed, 1, "the forged one");
        assert_eq!(v.wrongly_refused, 1);
        assert_eq!(v.after_last, (4, 3, 1));
    }
}
