//! `cargo xtask bench`: Gateward in Envoy against what Envoy already ships — the native C++
//! `jwt_authn` filter plus the RBAC filter matching claims from its metadata (issue 8).
//!
//! Every configuration is a real Envoy 1.40 on loopback with one worker and a direct_response
//! route (`envoy-config/bench/*.yaml`); all run side by side and the measurements alternate
//! between them in rounds, so a slow minute hurts every configuration alike. Throughput comes
//! from `wrk` (closed loop, 16 connections, one thread); latency at a fixed 5,000 requests/s
//! from [`load`], an open-loop generator here (wrk cannot hold a fixed rate and Debian has no
//! wrk2). The hot path reuses one token; the cold path takes a fresh token on every request from
//! 20,000 pre-minted ones (more than Gateward's 1,024-entry or jwt_authn's 100-entry cache
//! holds). Also measured: module size, `on_configure` time with five provider policies, and the
//! Envoy process's memory after 100,000 distinct tokens.
//!
//! Writes `BENCHMARKS.md` and `docs/bench.svg`; `--smoke` sends a few hundred requests per
//! configuration, checks every answer, and writes its report under the target directory.

mod load;
mod report;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateward_devkit::envoy as devenvoy;
use gateward_devkit::{claims, fixtures, http, jwks, mint, SigningKey};
use serde_json::{json, Value};

use load::{LoadResult, Target};

/// The audience every benchmark token carries and every configuration accepts.
const AUD: &str = "https://github.com/octo-org";
/// The key id of the benchmark key (devkit fixture RSA key A).
const KID: &str = "bench-1";
/// Token lifetime. Minting 100,000 RS256 tokens takes minutes, so they are minted up front and
/// kept for later runs (Gateward's config raises the GitHub preset's 300 s bound to this; the
/// lifetime changes nothing in what a request costs).
const TOKEN_LIFETIME_S: i64 = 7 * 86400;
/// Stored tokens are reused while they have this much validity left.
const MIN_VALIDITY_S: i64 = 86400;
/// Connections for every load (the setup).
const CONNECTIONS: usize = 16;
/// The fixed rate of the latency runs.
const RATE: u32 = 5_000;

/// How much to measure.
#[derive(Debug, Clone)]
struct Options {
    smoke: bool,
    /// Rounds over all configurations; the report takes medians.
    rounds: usize,
    /// wrk duration per configuration and round.
    seconds: u64,
    /// Fixed-rate duration per configuration and round.
    latency_seconds: u64,
    /// Distinct tokens for the cold path.
    cold_tokens: usize,
    /// Distinct tokens sent to a fresh Gateward for the memory figure.
    memory_tokens: usize,
    /// Requests per configuration in smoke mode.
    smoke_requests: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            smoke: false,
            // Many short rounds rather than a few long ones: ratios are taken round by round, and
            // the more rounds, the less one slow stretch of a shared machine moves their median.
            rounds: 7,
            seconds: 5,
            latency_seconds: 4,
            cold_tokens: 20_000,
            memory_tokens: 100_000,
            smoke_requests: 300,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = |name: &str| -> Result<u64, String> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .filter(|v| *v > 0)
                    .ok_or_else(|| format!("{name} takes a positive number"))
            };
            match a.as_str() {
                "--smoke" => o.smoke = true,
                "--rounds" => o.rounds = num("--rounds")? as usize,
                "--seconds" => o.seconds = num("--seconds")?,
                "--latency-seconds" => o.latency_seconds = num("--latency-seconds")?,
                "--cold-tokens" => o.cold_tokens = num("--cold-tokens")? as usize,
                "--memory-tokens" => o.memory_tokens = num("--memory-tokens")? as usize,
                other => return Err(format!("unknown option {other}\n\n{}", crate::USAGE)),
            }
        }
        if o.smoke {
            o.rounds = 1;
            o.cold_tokens = 2 * o.smoke_requests;
            o.memory_tokens = 2 * o.smoke_requests;
        }
        Ok(o)
    }
}

/// Which tokens a measurement sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tokens {
    /// One token, reused: a CI job calling several times.
    Hot,
    /// A different token on every request, round robin over the cold set.
    Cold,
}

/// One Envoy configuration of the comparison.
struct ProxySpec {
    name: &'static str,
    label: &'static str,
    /// Envoy's `--log-level`.
    log_level: &'static str,
    /// Whether it authenticates (invalid tokens must be refused).
    auth: bool,
    /// Whether it authorizes too (a token the policy or RBAC refuses must get a 403).
    policy: bool,
}

const PROXIES: &[ProxySpec] = &[
    ProxySpec {
        name: "no-auth",
        label: "no auth",
        log_level: "info",
        auth: false,
        policy: false,
    },
    ProxySpec {
        name: "jwt-authn-cache",
        label: "jwt_authn (jwt_cache_config) + RBAC",
        log_level: "info",
        auth: true,
        policy: true,
    },
    ProxySpec {
        name: "jwt-authn-nocache",
        label: "jwt_authn (no cache) + RBAC",
        log_level: "info",
        auth: true,
        policy: true,
    },
    ProxySpec {
        name: "gateward",
        label: "Gateward, policy library",
        log_level: "info",
        auth: true,
        policy: true,
    },
    ProxySpec {
        name: "gateward-compact",
        label: "Gateward, compact policy",
        log_level: "info",
        auth: true,
        policy: true,
    },
    ProxySpec {
        name: "gateward-quiet",
        label: "Gateward, policy library, Envoy --log-level warn",
        log_level: "warn",
        auth: true,
        policy: true,
    },
    ProxySpec {
        name: "gateward-compiled",
        label: "Gateward, policy library, `policy.evaluator: compiled` (RVM)",
        log_level: "info",
        auth: true,
        policy: true,
    },
    ProxySpec {
        name: "gateward-nopolicy",
        label: "Gateward, no policy (signature and claim checks only)",
        log_level: "info",
        auth: true,
        policy: false,
    },
];

/// One measured row: a proxy and the tokens sent to it.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Stable id (also the chart's and the report's key).
    pub key: &'static str,
    /// Index into [`PROXIES`].
    proxy: usize,
    tokens: Tokens,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        key: "no-auth",
        proxy: 0,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "jwt-cache-hot",
        proxy: 1,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "jwt-cache-cold",
        proxy: 1,
        tokens: Tokens::Cold,
    },
    Scenario {
        key: "jwt-nocache-hot",
        proxy: 2,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "jwt-nocache-cold",
        proxy: 2,
        tokens: Tokens::Cold,
    },
    Scenario {
        key: "gateward-hot",
        proxy: 3,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "gateward-cold",
        proxy: 3,
        tokens: Tokens::Cold,
    },
    Scenario {
        key: "gateward-compact-hot",
        proxy: 4,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "gateward-compact-cold",
        proxy: 4,
        tokens: Tokens::Cold,
    },
    Scenario {
        key: "gateward-hot-quiet",
        proxy: 5,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "gateward-compiled-hot",
        proxy: 6,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "gateward-compiled-cold",
        proxy: 6,
        tokens: Tokens::Cold,
    },
    Scenario {
        key: "gateward-nopolicy-hot",
        proxy: 7,
        tokens: Tokens::Hot,
    },
    Scenario {
        key: "gateward-nopolicy-cold",
        proxy: 7,
        tokens: Tokens::Cold,
    },
];

impl Scenario {
    /// What the report calls it.
    pub fn label(&self) -> String {
        let proxy = PROXIES.get(self.proxy).map_or("?", |p| p.label);
        match self.tokens {
            Tokens::Hot => format!("{proxy}, one token"),
            Tokens::Cold => format!("{proxy}, fresh token per request"),
        }
    }

    /// `hot` or `cold`.
    pub fn path(&self) -> &'static str {
        match self.tokens {
            Tokens::Hot => "hot",
            Tokens::Cold => "cold",
        }
    }
}

/// A running Envoy, killed on drop.
struct Proxy {
    name: String,
    child: Option<Child>,
    pid: u32,
    listen_port: u16,
    admin_port: u16,
    dir: PathBuf,
    command: String,
}

impl Proxy {
    /// Starts Envoy with `yaml` (rendered with its ports) in `dir`, pinned to `cpu` if given.
    fn start(
        name: &str,
        template: &Path,
        vars: &[(&str, &str)],
        dir: &Path,
        log_level: &str,
        cpu: Option<usize>,
        extra: &[&str],
    ) -> Result<Proxy, String> {
        let envoy = devenvoy::binary().map_err(|e| e.to_string())?;
        let listen_port = free_port()?;
        let admin_port = free_port()?;
        let text =
            fs::read_to_string(template).map_err(|e| format!("{}: {e}", template.display()))?;
        let (listen, admin) = (listen_port.to_string(), admin_port.to_string());
        let mut all = vec![
            ("LISTEN_PORT", listen.as_str()),
            ("ADMIN_PORT", admin.as_str()),
        ];
        all.extend_from_slice(vars);
        let yaml = devenvoy::render(&text, &all).map_err(|e| e.to_string())?;
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config = dir.join("envoy.yaml");
        fs::write(&config, yaml).map_err(|e| format!("{}: {e}", config.display()))?;
        let log_path = dir.join("envoy.log");
        let log =
            fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut args: Vec<String> = vec![
            "-c".into(),
            config.display().to_string(),
            "--concurrency".into(),
            "1".into(),
            "--disable-hot-restart".into(),
            "--log-level".into(),
            log_level.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let (program, all_args) = pinned(cpu, &envoy.display().to_string(), &args);
        let command = format!(
            "{program} {} > {} 2>&1",
            shell_join(&all_args),
            log_path.display()
        );
        let child = Command::new(&program)
            .args(&all_args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let pid = child.id();
        let mut proxy = Proxy {
            name: name.to_string(),
            child: Some(child),
            pid,
            listen_port,
            admin_port,
            dir: dir.to_path_buf(),
            command,
        };
        proxy.wait_ready()?;
        Ok(proxy)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "Envoy ({}) exited with {status}:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            if http::get(&format!("{}/ready", self.admin_url())).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(format!(
                    "Envoy ({}) not ready after 120 s:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/deploy", self.listen_port)
    }

    fn target(&self) -> Target {
        Target {
            port: self.listen_port,
            path: "/deploy".into(),
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Counters and gauges from the admin `/stats` page.
    fn stats(&self) -> BTreeMap<String, i64> {
        http::get(&format!("{}/stats", self.admin_url()))
            .map(|r| {
                r.text()
                    .lines()
                    .filter_map(|l| l.split_once(": "))
                    .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The process's memory: resident set, Envoy's heap, the wasm VMs' linear memories.
    fn memory(&self) -> MemorySample {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let allocated = http::get(&format!("{}/memory", self.admin_url()))
            .ok()
            .and_then(|r| r.json().ok())
            .and_then(|v| v["allocated"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        MemorySample {
            rss_kib,
            heap_allocated: allocated,
            wasm: wasm_memories(self.pid),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Memory figures of one Envoy process.
#[derive(Debug, Clone, Default)]
pub struct MemorySample {
    /// `VmRSS` of the process, KiB.
    pub rss_kib: u64,
    /// tcmalloc's `allocated` from the admin `/memory` page (Envoy's own heap), bytes.
    pub heap_allocated: u64,
    /// Each wasm VM's linear memory: (size, resident), KiB.
    pub wasm: Vec<(u64, u64)>,
}

impl MemorySample {
    /// The largest linear memory (the worker's VM, which serves the requests), KiB.
    pub fn wasm_max_kib(&self) -> u64 {
        self.wasm.iter().map(|w| w.0).max().unwrap_or(0)
    }
}

/// The wasm VMs' linear memories, from `/proc/<pid>/smaps`: V8 reserves each memory with an
/// inaccessible guard region of several GiB and makes its current pages read-write at the
/// front, so a linear memory is the `rw-p` mapping that ends where such a reservation starts.
pub(crate) fn wasm_memories(pid: u32) -> Vec<(u64, u64)> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    // (start, end, perms, size KiB, rss KiB) per mapping.
    let mut maps: Vec<(u64, u64, String, u64, u64)> = vec![];
    for line in smaps.lines() {
        let kib = |key: &str| -> Option<u64> {
            line.strip_prefix(key)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        let mut words = line.split_whitespace();
        let range = words.next().unwrap_or_default();
        if let (Some((a, b)), Some(perms)) = (range.split_once('-'), words.next()) {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                maps.push((a, b, perms.to_string(), 0, 0));
                continue;
            }
        }
        if let Some(last) = maps.last_mut() {
            if let Some(v) = kib("Size:") {
                last.3 = v;
            } else if let Some(v) = kib("Rss:") {
                last.4 = v;
            }
        }
    }
    maps.windows(2)
        .filter(|w| {
            w[1].2 == "---p" && w[1].3 >= 4 * 1024 * 1024 && w[0].2 == "rw-p" && w[0].1 == w[1].0
        })
        .map(|w| (w[0].3, w[0].4))
        .collect()
}

/// `taskset -c CPU program args` when pinning, else `program args`.
fn pinned(cpu: Option<usize>, program: &str, args: &[String]) -> (String, Vec<String>) {
    match cpu {
        Some(cpu) => {
            let mut all = vec!["-c".to_string(), cpu.to_string(), program.to_string()];
            all.extend(args.iter().cloned());
            ("taskset".into(), all)
        }
        None => (program.to_string(), args.to_vec()),
    }
}

fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn free_port() -> Result<u16, String> {
    devenvoy::free_port().map_err(|e| format!("no free port: {e}"))
}

/// `name` on `$PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// wrk, installed from Debian when missing and we are root.
fn wrk_binary() -> Result<PathBuf, String> {
    if let Some(p) = which("wrk") {
        return Ok(p);
    }
    let hint = "wrk is missing: install it with `apt-get install -y wrk` (Debian/Ubuntu)";
    if !is_root() || which("apt-get").is_none() {
        return Err(hint.into());
    }
    eprintln!("==> apt-get install -y wrk");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        // A fresh machine has no package lists yet.
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        install();
    }
    which("wrk").ok_or_else(|| format!("{hint} (apt-get failed)"))
}

/// The tokens of a run.
struct TokenSet {
    hot: String,
    /// The cold set, also written one a line to `cold_file`.
    cold: Vec<String>,
    /// Distinct tokens for the memory run (they start with `cold`; a fresh Envoy has seen none).
    memory: Vec<String>,
    hot_file: PathBuf,
    cold_file: PathBuf,
    /// Tokens every authenticating configuration must refuse: (what, token, expected status).
    refused: Vec<(&'static str, Option<String>, u16)>,
    mint_seconds: f64,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// GitHub Actions claims for the benchmark: the devkit's realistic job (31 claims), valid for
/// the whole run, with a distinct `jti` (so a distinct token) per index.
fn bench_claims(iat: i64, index: usize) -> Value {
    let mut c = claims::github_actions(iat, AUD);
    c["exp"] = json!(iat + TOKEN_LIFETIME_S);
    c["jti"] = json!(format!("bench-{index:08}-6f7c-4a52-9c8e-2f5a0f3b9d11"));
    c
}

/// Mints `count` tokens from index `first` on all cores.
fn mint_many(
    key: &SigningKey,
    iat: i64,
    first: usize,
    count: usize,
) -> Result<Vec<String>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = count.div_ceil(threads).max(1);
    let chunks: Vec<Result<Vec<String>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = first + t * per;
                let end = (first + (t + 1) * per).min(first + count);
                s.spawn(move || {
                    (start..end)
                        .map(|i| {
                            mint(key, Some(KID), &bench_claims(iat, i)).map_err(|e| e.to_string())
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a minting thread failed".into()))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for c in chunks {
        all.extend(c?);
    }
    Ok(all)
}

/// Tokens a previous run stored in `path` (`# iat=N`, then one token a line, index 0 first), if
/// there are at least `need`, they stay valid long enough, and the first one is exactly what
/// minting index 0 gives now (RS256 signatures are deterministic: same key, same claims).
fn stored_tokens(path: &Path, key: &SigningKey, need: usize) -> Option<(i64, Vec<String>)> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let iat: i64 = lines.next()?.strip_prefix("# iat=")?.trim().parse().ok()?;
    if iat + TOKEN_LIFETIME_S - now() < MIN_VALIDITY_S || iat > now() {
        return None;
    }
    let tokens: Vec<String> = lines.map(str::to_string).collect();
    let first = mint(key, Some(KID), &bench_claims(iat, 0)).ok()?;
    (tokens.len() >= need && tokens.first() == Some(&first)).then_some((iat, tokens))
}

fn make_tokens(opts: &Options, dir: &Path) -> Result<TokenSet, String> {
    let key = fixtures::rsa_a();
    let started = Instant::now();
    let count = 1 + opts.cold_tokens.max(opts.memory_tokens);
    let store = dir.join("tokens-store.txt");
    let (iat, all) = match stored_tokens(&store, &key, count) {
        Some(found) => {
            eprintln!("==> {count} RS256 tokens from {}", store.display());
            found
        }
        None => {
            eprintln!("==> minting {count} RS256 tokens (fixture key A; kept for later runs)");
            let iat = now() - 5;
            let all = mint_many(&key, iat, 0, count)?;
            fs::write(&store, format!("# iat={iat}\n{}\n", all.join("\n")))
                .map_err(|e| format!("{}: {e}", store.display()))?;
            (iat, all)
        }
    };
    let hot = all.first().cloned().unwrap_or_default();
    let cold = all.get(1..=opts.cold_tokens).unwrap_or_default().to_vec();
    let memory = all.get(1..=opts.memory_tokens).unwrap_or_default().to_vec();
    let mint_seconds = started.elapsed().as_secs_f64();
    let hot_file = dir.join("tokens-hot.txt");
    let cold_file = dir.join("tokens-cold.txt");
    fs::write(&hot_file, format!("{hot}\n")).map_err(|e| format!("{}: {e}", hot_file.display()))?;
    fs::write(&cold_file, cold.join("\n") + "\n")
        .map_err(|e| format!("{}: {e}", cold_file.display()))?;

    let mut denied = bench_claims(iat, 0);
    denied["ref"] = json!("refs/heads/feature");
    denied["sub"] = json!("repo:octo-org/deploy:ref:refs/heads/feature");
    let mut expired = bench_claims(now() - 900, 0);
    expired["exp"] = json!(now() - 600);
    expired["iat"] = json!(now() - 900);
    let m = |k: &SigningKey, c: &Value| mint(k, Some(KID), c).map_err(|e| e.to_string());
    let refused = vec![
        ("no token", None, 401),
        (
            "signed by another key",
            Some(m(&fixtures::rsa_b(), &bench_claims(iat, 0))?),
            401,
        ),
        ("expired", Some(m(&key, &expired)?), 401),
        ("feature branch (policy)", Some(m(&key, &denied)?), 403),
    ];
    Ok(TokenSet {
        hot,
        cold,
        memory,
        hot_file,
        cold_file,
        refused,
        mint_seconds,
    })
}

/// Everything the report needs.
pub struct Results {
    /// A smoke run (its numbers mean nothing).
    smoke: bool,
    /// How much was measured, in words.
    opts_desc: String,
    /// The options as given, for the report's command line.
    pub args: String,
    /// One row per scenario, in [`SCENARIOS`] order, with the samples of every round.
    pub rows: Vec<Row>,
    /// The machine and the tools' versions.
    pub machine: Machine,
    /// Size of the release module.
    pub module_bytes: u64,
    /// Start-up figures.
    pub configure: Configure,
    /// (distinct tokens sent so far, memory then) for the memory run.
    pub memory: Vec<(usize, MemorySample)>,
    /// Gateward's `token_cache_miss` counter after the memory run.
    pub memory_cache_misses: Option<i64>,
    /// The command lines run (the first round's).
    pub commands: Vec<String>,
    /// The answers each configuration gave to the check requests.
    pub checks: Vec<String>,
    /// Cache and decision counters of each configuration after the runs.
    pub cache_notes: Vec<String>,
    /// How long the whole run took.
    pub wall_seconds: f64,
    /// How long minting the tokens took.
    pub mint_seconds: f64,
    /// How many tokens were minted.
    pub mint_count: usize,
    /// Distinct tokens of the cold path.
    pub cold_count: usize,
}

/// One scenario's measurements over the rounds.
pub struct Row {
    /// What was measured.
    pub scenario: Scenario,
    /// wrk, one per round.
    pub throughput: Vec<WrkResult>,
    /// The fixed-rate generator, one per round.
    pub latency: Vec<LoadResult>,
}

/// Where and with what the run happened.
pub struct Machine {
    /// CPUs available to the run.
    pub cpus: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal`, in GiB.
    pub memory: String,
    /// The kernel release.
    pub kernel: String,
    /// `/proc/loadavg` before the run (others' work makes the figures noise).
    pub load_before: String,
    /// And after.
    pub load_after: String,
    /// Envoy's version.
    pub envoy: String,
    /// wrk's version.
    pub wrk: String,
    /// rustc's version.
    pub rustc: String,
    /// The Gateward commit, and whether the tree had changes.
    pub commit: String,
    /// Whether Envoy and the load generators were pinned to separate CPUs.
    pub pinned: bool,
}

/// `on_configure` timing.
#[derive(Default)]
pub struct Configure {
    /// Milliseconds per `on_configure` seen (one per VM), when the log shows it.
    pub millis: Vec<f64>,
    /// Gateward's own figures (its `configured in N ms` log line), if it logs them.
    pub self_reported: Vec<f64>,
    /// How it was measured, or why it could not be.
    pub method: String,
    /// Envoy start to ready with that configuration, ms.
    pub ready_ms: f64,
    /// The same for the module with a one-issuer config and no policy, ms.
    pub ready_baseline_ms: f64,
}

/// One wrk run.
#[derive(Debug, Clone, Default)]
pub struct WrkResult {
    /// Responses received.
    pub requests: u64,
    /// The run's duration.
    pub seconds: f64,
    /// Socket errors and timeouts.
    pub errors: u64,
    /// Responses with a status ≥ 400.
    pub bad_status: u64,
    /// Median latency (µs) at saturation.
    pub p50_us: f64,
    /// 99th percentile (µs) at saturation.
    pub p99_us: f64,
}

impl WrkResult {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn run_wrk(
    wrk: &Path,
    cpu: Option<usize>,
    proxy: &Proxy,
    tokens_file: &Path,
    seconds: u64,
    max_requests: usize,
) -> Result<(WrkResult, String), String> {
    let script = crate::root().join("envoy-config/bench/wrk.lua");
    let args: Vec<String> = vec![
        "-t1".into(),
        format!("-c{CONNECTIONS}"),
        format!("-d{seconds}s"),
        "--timeout".into(),
        "5s".into(),
        "-s".into(),
        script.display().to_string(),
        proxy.url(),
        "--".into(),
        tokens_file.display().to_string(),
        max_requests.to_string(),
    ];
    let (program, all) = pinned(cpu, &wrk.display().to_string(), &args);
    let command = format!("{program} {}", shell_join(&all));
    let out = Command::new(&program)
        .args(&all)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_RESULT "))
        .ok_or_else(|| {
            format!(
                "`{command}` printed no result ({}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("wrk result {line}: {e}"))?;
    let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
    Ok((
        WrkResult {
            requests: n("requests") as u64,
            seconds: n("duration_us") / 1e6,
            errors: (n("connect") + n("read") + n("write") + n("timeout")) as u64,
            bad_status: n("status") as u64,
            p50_us: n("p50_us"),
            p99_us: n("p99_us"),
        },
        command,
    ))
}

/// The hidden first argument that makes `cargo xtask bench` the fixed-rate generator (run as a
/// child so it can be pinned to wrk's CPU, away from Envoy's).
const LOAD_CHILD: &str = "--load-child";

/// Runs the fixed-rate generator in a child process (pinned to `cpu`): `count` requests at
/// [`RATE`] to `port`, tokens from `tokens_file`. Returns its result and the command line.
fn fixed_rate(
    port: u16,
    tokens_file: &Path,
    count: usize,
    limit: Duration,
    cpu: Option<usize>,
) -> Result<(LoadResult, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("where is xtask? {e}"))?;
    let args: Vec<String> = vec![
        "bench".into(),
        LOAD_CHILD.into(),
        port.to_string(),
        tokens_file.display().to_string(),
        RATE.to_string(),
        count.to_string(),
        CONNECTIONS.to_string(),
        limit.as_millis().to_string(),
    ];
    let (program, all) = pinned(cpu, &exe.display().to_string(), &args);
    let command = format!("{program} {}", shell_join(&all));
    let out = Command::new(&program)
        .args(&all)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("LOAD_RESULT "))
        .ok_or_else(|| format!("`{command}` printed no result ({})", out.status))?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("{line}: {e}"))?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok((
        LoadResult {
            planned: n("planned"),
            sent: n("sent"),
            bad_status: n("bad_status"),
            io_errors: n("io_errors"),
            seconds: v["seconds"].as_f64().unwrap_or(0.0),
            p50_us: n("p50_us"),
            p99_us: n("p99_us"),
            p999_us: n("p999_us"),
            max_us: n("max_us"),
        },
        command,
    ))
}

/// The child side of [`fixed_rate`]: `PORT TOKENS_FILE RATE COUNT CONNECTIONS LIMIT_MS`.
fn load_child(args: &[String]) -> Result<(), String> {
    let [port, file, rate, count, conns, limit] = args else {
        return Err(format!(
            "{LOAD_CHILD} PORT TOKENS_FILE RATE COUNT CONNECTIONS LIMIT_MS"
        ));
    };
    let num = |s: &String| -> Result<u64, String> {
        s.parse()
            .map_err(|_| format!("{LOAD_CHILD}: not a number: {s}"))
    };
    let tokens: Vec<String> = fs::read_to_string(file)
        .map_err(|e| format!("{file}: {e}"))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let target = Target {
        port: u16::try_from(num(port)?).map_err(|e| e.to_string())?,
        path: "/deploy".into(),
    };
    let r = load::run(
        &target,
        &tokens,
        Some(u32::try_from(num(rate)?).map_err(|e| e.to_string())?),
        num(count)? as usize,
        num(conns)? as usize,
        Duration::from_millis(num(limit)?),
    )?;
    println!(
        "LOAD_RESULT {}",
        json!({
            "planned": r.planned, "sent": r.sent, "bad_status": r.bad_status,
            "io_errors": r.io_errors, "seconds": r.seconds, "p50_us": r.p50_us,
            "p99_us": r.p99_us, "p999_us": r.p999_us, "max_us": r.max_us,
        })
    );
    Ok(())
}

/// Sends one request and returns its status.
fn status_of(proxy: &Proxy, token: Option<&str>) -> Result<u16, String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    http::request("POST", &proxy.url(), &headers, b"")
        .map(|r| r.status)
        .map_err(|e| format!("{}: {e}", proxy.name))
}

/// Checks every configuration answers as the comparison assumes: 200 for the valid tokens, and
/// for each invalid one the same 401/403 from every authenticating configuration.
fn check_answers(
    proxies: &[Proxy],
    tokens: &TokenSet,
    checks: &mut Vec<String>,
) -> Result<(), String> {
    let mut problems = vec![];
    for (spec, proxy) in PROXIES.iter().zip(proxies) {
        let mut cases: Vec<(&str, Option<&str>, u16)> = vec![
            ("hot token", Some(tokens.hot.as_str()), 200),
            ("a cold token", tokens.cold.first().map(String::as_str), 200),
        ];
        for (what, token, status) in &tokens.refused {
            cases.push((
                what,
                token.as_deref(),
                // 403 is the policy's (or RBAC's) refusal; 401s are the token's.
                match (spec.auth, spec.policy) {
                    (true, true) => *status,
                    (true, false) if *status != 403 => *status,
                    _ => 200,
                },
            ));
        }
        let mut seen = vec![];
        for (what, token, want) in cases {
            let got = status_of(proxy, token)?;
            seen.push(format!("{what} {got}"));
            if got != want {
                problems.push(format!("{}: {what}: {got}, expected {want}", spec.name));
            }
        }
        checks.push(format!("{}: {}", spec.name, seen.join(", ")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "configurations do not answer alike:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Runs the benchmark (`args`: the options after `bench`).
pub fn run(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some(LOAD_CHILD) {
        return load_child(args.get(1..).unwrap_or_default());
    }
    let opts = Options::parse(args)?;
    let wall = Instant::now();
    let root = crate::root();
    let out = devenvoy::cargo_target_dir().join(if opts.smoke {
        "gateward-bench-smoke"
    } else {
        "gateward-bench"
    });
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let wrk = wrk_binary()?;
    devenvoy::binary().map_err(|e| e.to_string())?;
    // The smoke run (in `cargo xtask test`) shares the module the host tests just built.
    let wasm = if opts.smoke {
        devenvoy::build_module(None).map_err(|e| e.to_string())?
    } else {
        crate::build()?
    };
    let module_bytes = fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Envoy on core 0, wrk on core 1, as in the setup.
    let pin = cpus >= 2 && which("taskset").is_some();
    let (envoy_cpu, wrk_cpu) = if pin {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let tokens = make_tokens(&opts, &out)?;
    let minted = 1 + tokens.cold.len().max(tokens.memory.len());
    eprintln!("    {:.1} s ({minted} tokens)", tokens.mint_seconds);

    let key = fixtures::rsa_a();
    let jwks_json = jwks(&[(KID, &key)]).to_string();
    let cfg = root.join("envoy-config/bench");
    let lifetime = TOKEN_LIFETIME_S.to_string();
    let gateward_json = devenvoy::gateward_config(
        &cfg.join("gateward-github.json"),
        &[("JWKS", &jwks_json), ("MAX_LIFETIME", &lifetime)],
    )
    .map_err(|e| e.to_string())?;
    let wasm_yaml = devenvoy::yaml_string(&wasm.display().to_string());
    let gateward_yaml = devenvoy::yaml_string(&gateward_json);
    let compact_json = devenvoy::gateward_config(
        &cfg.join("gateward-compact.json"),
        &[("JWKS", &jwks_json), ("MAX_LIFETIME", &lifetime)],
    )
    .map_err(|e| e.to_string())?;
    let compact_yaml = devenvoy::yaml_string(&compact_json);
    let mut compiled: serde_json::Value =
        serde_json::from_str(&gateward_json).map_err(|e| e.to_string())?;
    compiled["policy"]["evaluator"] = "compiled".into();
    let compiled_yaml = devenvoy::yaml_string(&compiled.to_string());
    let mut nopolicy = compiled;
    if let Some(obj) = nopolicy.as_object_mut() {
        obj.remove("policy");
    }
    let nopolicy_yaml = devenvoy::yaml_string(&nopolicy.to_string());
    let jwks_yaml = devenvoy::yaml_string(&jwks_json);

    let start_proxy = |i: usize, dir: &Path| -> Result<Proxy, String> {
        let spec = PROXIES.get(i).ok_or("no such proxy")?;
        let (template, vars): (&str, Vec<(&str, &str)>) = match spec.name {
            "no-auth" => ("no-auth.yaml", vec![]),
            "jwt-authn-cache" => (
                "jwt-authn-rbac.yaml",
                vec![
                    ("JWKS", &jwks_yaml),
                    ("JWT_CACHE", "jwt_cache_config: { jwt_cache_size: 100 }"),
                ],
            ),
            "jwt-authn-nocache" => (
                "jwt-authn-rbac.yaml",
                vec![
                    ("JWKS", &jwks_yaml),
                    ("JWT_CACHE", "# no jwt_cache_config: every request verifies"),
                ],
            ),
            "gateward-compact" => (
                "gateward.yaml",
                vec![("WASM", &wasm_yaml), ("GATEWARD_CONFIG", &compact_yaml)],
            ),
            "gateward-compiled" => (
                "gateward.yaml",
                vec![("WASM", &wasm_yaml), ("GATEWARD_CONFIG", &compiled_yaml)],
            ),
            "gateward-nopolicy" => (
                "gateward.yaml",
                vec![("WASM", &wasm_yaml), ("GATEWARD_CONFIG", &nopolicy_yaml)],
            ),
            _ => (
                "gateward.yaml",
                vec![("WASM", &wasm_yaml), ("GATEWARD_CONFIG", &gateward_yaml)],
            ),
        };
        eprintln!("==> starting Envoy: {}", spec.name);
        Proxy::start(
            spec.name,
            &cfg.join(template),
            &vars,
            &dir.join(spec.name),
            spec.log_level,
            envoy_cpu,
            &[],
        )
    };
    let proxies = (0..PROXIES.len())
        .map(|i| start_proxy(i, &out))
        .collect::<Result<Vec<_>, _>>()?;
    let mut commands: Vec<String> = proxies.iter().map(|p| p.command.clone()).collect();
    let mut checks = vec![];
    check_answers(&proxies, &tokens, &mut checks)?;

    // Requests for the fixed-rate generator, per path.
    let hot_tokens = vec![tokens.hot.clone()];
    let mut rows: Vec<Row> = SCENARIOS
        .iter()
        .map(|s| Row {
            scenario: *s,
            throughput: vec![],
            latency: vec![],
        })
        .collect();
    let n = rows.len();
    for round in 0..opts.rounds {
        eprintln!("==> round {}/{}", round + 1, opts.rounds);
        // Alternate: each round starts one configuration later, so none is always first.
        for j in 0..n {
            let row = &mut rows[(j + round) % n];
            let s = row.scenario;
            let proxy = &proxies[s.proxy];
            let file = match s.tokens {
                Tokens::Hot => &tokens.hot_file,
                Tokens::Cold => &tokens.cold_file,
            };
            let max = if opts.smoke { opts.smoke_requests } else { 0 };
            let secs = if opts.smoke { 2 } else { opts.seconds };
            let (w, command) = run_wrk(&wrk, wrk_cpu, proxy, file, secs, max)?;
            if round == 0 {
                commands.push(format!("# {}: throughput\n{command}", s.key));
            }
            let count = if opts.smoke {
                opts.smoke_requests
            } else {
                (u64::from(RATE) * opts.latency_seconds) as usize
            };
            let limit = if opts.smoke {
                Duration::from_secs(60)
            } else {
                Duration::from_secs(2 * opts.latency_seconds + 5)
            };
            let (l, command) = fixed_rate(proxy.listen_port, file, count, limit, wrk_cpu)?;
            if round == 0 {
                commands.push(format!(
                    "# {}: latency at {RATE} req/s (xtask/src/bench/load.rs)\n{command}",
                    s.key
                ));
            }
            eprintln!(
                "    {:<22} {:>9.0} req/s (p50 {:>6.0} µs, p99 {:>6.0} µs)   at {RATE}/s: achieved {:>5.0}/s, p50 {:>5} µs, p99 {:>6} µs{}",
                s.key,
                w.rps(),
                w.p50_us,
                w.p99_us,
                l.rate(),
                l.p50_us,
                l.p99_us,
                if w.errors + w.bad_status + l.failed() > 0 {
                    format!(
                        "  ERRORS: wrk {} socket, {} status ≥ 400; generator {}",
                        w.errors,
                        w.bad_status,
                        l.failed()
                    )
                } else {
                    String::new()
                }
            );
            if opts.smoke
                && (w.errors + w.bad_status + l.failed() > 0
                    || w.requests == 0
                    || l.sent < l.planned)
            {
                return Err(format!(
                    "{}: {} requests, {} socket errors, {} bad statuses (wrk); {} failures of {} (fixed rate)",
                    s.key, w.requests, w.errors, w.bad_status, l.failed(), l.sent
                ));
            }
            row.throughput.push(w);
            row.latency.push(l);
        }
    }

    let mut cache_notes = vec![];
    for (spec, proxy) in PROXIES.iter().zip(&proxies) {
        let stats = proxy.stats();
        let pick: Vec<String> = stats
            .iter()
            .filter(|(k, _)| {
                k.contains("token_cache_")
                    || k.contains("jwt_authn.jwt_cache")
                    || k.ends_with("jwt_authn.allowed")
                    || k.ends_with("jwt_authn.denied")
                    || k.ends_with("gateward.allowed")
                    || k.ends_with("gateward.denied")
                    || k.contains("rbac.allowed")
                    || k.contains("rbac.denied")
            })
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if !pick.is_empty() {
            cache_notes.push(format!("{}: {}", spec.name, pick.join(", ")));
        }
    }
    drop(proxies);

    // Memory: a fresh Gateward, then distinct tokens in steps.
    eprintln!(
        "==> memory: {} distinct tokens through a fresh Gateward",
        tokens.memory.len()
    );
    let mem_proxy = start_proxy(3, &out.join("memory"))?;
    let long = Duration::from_secs(3600);
    load::run(
        &mem_proxy.target(),
        &hot_tokens,
        None,
        1000,
        CONNECTIONS,
        long,
    )?;
    let mut memory = vec![(0usize, mem_proxy.memory())];
    let steps = 4;
    let step = tokens.memory.len().div_ceil(steps);
    for (k, chunk) in tokens.memory.chunks(step.max(1)).enumerate() {
        let r = load::run(
            &mem_proxy.target(),
            chunk,
            None,
            chunk.len(),
            CONNECTIONS,
            long,
        )?;
        if r.failed() > 0 || r.sent < r.planned {
            return Err(format!(
                "memory run: {} of {} requests failed",
                r.failed(),
                r.sent
            ));
        }
        let sent = ((k + 1) * step).min(tokens.memory.len());
        let m = mem_proxy.memory();
        eprintln!(
            "    after {sent:>6} tokens: RSS {:.1} MiB, wasm linear memory {:.1} MiB, Envoy heap {:.1} MiB",
            m.rss_kib as f64 / 1024.0,
            m.wasm_max_kib() as f64 / 1024.0,
            m.heap_allocated as f64 / 1048576.0
        );
        memory.push((sent, m));
    }
    let memory_cache_misses = mem_proxy
        .stats()
        .into_iter()
        .find(|(k, _)| k.ends_with("gateward.token_cache_miss"))
        .map(|(_, v)| v);
    drop(mem_proxy);

    // Start-up: on_configure with five provider policies.
    let configure = measure_configure(&cfg, &out, &wasm, envoy_cpu)?;

    let machine = machine_info(cpus, pin, load_before, &wrk);
    let results = Results {
        smoke: opts.smoke,
        opts_desc: if opts.smoke {
            format!(
                "--smoke: {} requests per configuration",
                opts.smoke_requests
            )
        } else {
            format!(
                "{} rounds × {} s of wrk + {} s at {RATE} req/s per configuration",
                opts.rounds, opts.seconds, opts.latency_seconds
            )
        },
        args: args.join(" "),
        rows,
        machine,
        module_bytes,
        configure,
        memory,
        memory_cache_misses,
        commands: commands
            .iter()
            .map(|c| report::relative_paths(c, &root, &devenvoy::cargo_target_dir()))
            .collect(),
        checks,
        cache_notes,
        wall_seconds: wall.elapsed().as_secs_f64(),
        mint_seconds: tokens.mint_seconds,
        mint_count: minted,
        cold_count: tokens.cold.len(),
    };
    let (md_path, svg_path) = if opts.smoke {
        (out.join("BENCHMARKS.md"), out.join("bench.svg"))
    } else {
        (root.join("BENCHMARKS.md"), root.join("docs/bench.svg"))
    };
    let svg_link = if opts.smoke {
        "bench.svg".to_string()
    } else {
        "docs/bench.svg".to_string()
    };
    fs::write(&svg_path, report::svg(&results))
        .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    fs::write(&md_path, report::markdown(&results, &svg_link))
        .map_err(|e| format!("{}: {e}", md_path.display()))?;
    eprintln!(
        "==> wrote {} and {} ({:.0} s)",
        md_path.display(),
        svg_path.display(),
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Time spent in `on_configure` for the five-provider configuration, from Envoy's log.
///
/// Envoy's log has microsecond timestamps here (`--log-format`), and at `wasm:trace` its V8
/// integration logs every host→VM call and its return. Also reports Envoy's time to ready with
/// that configuration and with a one-issuer, policy-less one.
fn measure_configure(
    cfg: &Path,
    out: &Path,
    wasm: &Path,
    cpu: Option<usize>,
) -> Result<Configure, String> {
    let rsa = fixtures::rsa_a();
    let p256 = fixtures::p256();
    let jwks_rsa = jwks(&[(KID, &rsa)]).to_string();
    let jwks_p256 = jwks(&[("bench-ec", &p256)]).to_string();
    let data_path = crate::root().join("policies/examples/gateward.data.json");
    let data =
        fs::read_to_string(&data_path).map_err(|e| format!("{}: {e}", data_path.display()))?;
    let circleci_issuer = format!("https://oidc.circleci.com/org/{}", claims::CIRCLECI_ORG_ID);
    let five = devenvoy::gateward_config(
        &cfg.join("gateward-five-providers.json"),
        &[
            ("JWKS_RSA", &jwks_rsa),
            ("JWKS_P256", &jwks_p256),
            ("DATA", &data),
            ("CIRCLECI_ISSUER", &circleci_issuer),
            ("CIRCLECI_ORG_ID", claims::CIRCLECI_ORG_ID),
        ],
    )
    .map_err(|e| e.to_string())?;
    let minimal = json!({
        "issuers": [{"name": "github", "preset": "github-actions", "audiences": [AUD],
                     "jwks": serde_json::from_str::<Value>(&jwks_rsa).unwrap_or(Value::Null),
                     "require": ["repository_owner_id"]}],
    })
    .to_string();
    let wasm_yaml = devenvoy::yaml_string(&wasm.display().to_string());
    let log_format = "[%Y-%m-%d %T.%f][%t][%l][%n] %v";
    let extra = [
        "--component-log-level",
        "wasm:trace",
        "--log-format",
        log_format,
    ];
    let start = |name: &str, config: &str| -> Result<(Proxy, f64), String> {
        eprintln!("==> start-up: {name}");
        let gw = devenvoy::yaml_string(config);
        let t = Instant::now();
        let p = Proxy::start(
            name,
            &cfg.join("gateward.yaml"),
            &[("WASM", &wasm_yaml), ("GATEWARD_CONFIG", &gw)],
            &out.join(name),
            "info",
            cpu,
            &extra,
        )?;
        Ok((p, t.elapsed().as_secs_f64() * 1000.0))
    };
    let (base, ready_baseline_ms) = start("startup-baseline", &minimal)?;
    drop(base);
    let (five_proxy, ready_ms) = start("startup-five-providers", &five)?;
    let log = five_proxy.log();
    drop(five_proxy);
    let (millis, method) = configure_times(&log);
    let self_reported = log
        .lines()
        .filter_map(|l| {
            l.split_once("configured in ")?
                .1
                .split_once(" ms")?
                .0
                .parse()
                .ok()
        })
        .collect();
    Ok(Configure {
        millis,
        self_reported,
        method,
        ready_ms,
        ready_baseline_ms,
    })
}

/// Pairs each `proxy_on_configure` call with its return on the same thread (Envoy's V8
/// integration traces every host→VM call at `wasm:trace`); returns the durations (ms) and how
/// they were found. Falls back to Gateward's `configured:` line as the end.
fn configure_times(log: &str) -> (Vec<f64>, String) {
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let (mut exact, mut fallback) = (vec![], vec![]);
    for line in log.lines() {
        let Some((ts, tid, msg)) = parse_log_line(line) else {
            continue;
        };
        if msg.contains("[host->vm] proxy_on_configure(") {
            open.insert(tid.to_string(), ts);
        } else if msg.contains("[host<-vm] proxy_on_configure return") {
            if let Some(t0) = open.remove(tid) {
                exact.push((ts - t0) * 1000.0);
            }
        } else if msg.contains("gateward: configured:") {
            if let Some(t0) = open.get(tid) {
                fallback.push((ts - t0) * 1000.0);
            }
        }
    }
    if !exact.is_empty() {
        let how = "Envoy's log at `wasm:trace` with microsecond timestamps (`--log-format`): from \
                   `[host->vm] proxy_on_configure(…)` to `[host<-vm] proxy_on_configure return` \
                   on the same thread";
        (exact, how.to_string())
    } else if !fallback.is_empty() {
        let how = "Envoy's log at `wasm:trace` with microsecond timestamps: from \
                   `[host->vm] proxy_on_configure(…)` to Gateward's `configured:` line";
        (fallback, how.to_string())
    } else {
        (
            vec![],
            "no `proxy_on_configure` trace in Envoy's log (a different Envoy build?)".to_string(),
        )
    }
}

/// `[2025-01-01 12:00:00.123456][tid][level][component] msg` → (seconds of day, tid, msg).
fn parse_log_line(line: &str) -> Option<(f64, &str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (ts, rest) = rest.split_once("][")?;
    let (tid, rest) = rest.split_once("][")?;
    let (_, rest) = rest.split_once("][")?;
    let (_, msg) = rest.split_once("] ")?;
    let time = ts.split_whitespace().nth(1)?;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some((h * 3600.0 + m * 60.0 + s, tid, msg))
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_else(|e| format!("? ({e})"))
}

fn machine_info(cpus: usize, pinned: bool, load_before: String, wrk: &Path) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "?".into());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or("?".into(), |kib| format!("{:.1} GiB", kib / 1048576.0));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    // `<path>  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL`: keep the version.
    let envoy = devenvoy::binary()
        .map(|b| first_line(&b.display().to_string(), &["--version"]))
        .unwrap_or_else(|e| e.to_string());
    let envoy = envoy
        .split_once("version: ")
        .map_or(envoy.clone(), |(_, v)| v.trim().to_string());
    let wrk = first_line(&wrk.display().to_string(), &["--version"]);
    let wrk = wrk.split(" Copyright").next().unwrap_or(&wrk).to_string();
    let rustc = first_line("rustc", &["--version"]);
    let root = crate::root();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(&root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(&root)
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    Machine {
        cpus,
        cpu_model,
        memory,
        kernel,
        load_before: load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after: fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        envoy,
        wrk,
        rustc,
        commit: if dirty {
            format!("{commit} + uncommitted changes")
        } else {
            commit
        },
        pinned,
    }
}
