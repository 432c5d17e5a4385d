//! BENCHMARKS.md and the SVG chart, from a run's numbers (no plotting dependency).

use std::fmt::Write as _;
use std::path::Path;

use super::{Results, Row, CONNECTIONS, RATE};

/// The median of `v` (0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Medians of one row over its rounds.
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    rps: f64,
    /// (max - min) / median of the rounds' throughput, percent.
    spread: f64,
    wrk_p50: f64,
    wrk_p99: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    /// The rate the fixed-rate runs achieved (below the target: the generator fell behind).
    achieved: f64,
    /// Requests that failed in any round (wrk status/socket errors, generator failures).
    failures: u64,
}

fn summarize(row: &Row) -> Summary {
    let rps: Vec<f64> = row.throughput.iter().map(|w| w.rps()).collect();
    let lo = rps.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rps.iter().copied().fold(0.0, f64::max);
    let m = median(rps);
    Summary {
        rps: m,
        spread: if m > 0.0 { (hi - lo) / m * 100.0 } else { 0.0 },
        wrk_p50: median(row.throughput.iter().map(|w| w.p50_us).collect()),
        wrk_p99: median(row.throughput.iter().map(|w| w.p99_us).collect()),
        p50: median(row.latency.iter().map(|l| l.p50_us as f64).collect()),
        p99: median(row.latency.iter().map(|l| l.p99_us as f64).collect()),
        p999: median(row.latency.iter().map(|l| l.p999_us as f64).collect()),
        max: median(row.latency.iter().map(|l| l.max_us as f64).collect()),
        achieved: median(row.latency.iter().map(|l| l.rate()).collect()),
        failures: row
            .throughput
            .iter()
            .map(|w| w.errors + w.bad_status)
            .sum::<u64>()
            + row.latency.iter().map(|l| l.failed()).sum::<u64>(),
    }
}

fn row<'a>(r: &'a Results, key: &str) -> Option<&'a Row> {
    r.rows.iter().find(|row| row.scenario.key == key)
}

fn get(r: &Results, key: &str) -> Option<Summary> {
    row(r, key).map(summarize)
}

/// The median over rounds of `f(a's figure, b's figure)` from the same round, None when no
/// round has both figures positive. The machine's speed drifts over a run (a shared host);
/// both figures of one round were measured minutes apart, so a per-round ratio or difference
/// cancels most of that drift where a ratio of the two medians would not.
fn paired(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Option<f64> {
    let v = per_round(a, b, f);
    (!v.is_empty()).then(|| median(v))
}

/// `f(a's figure, b's figure)` for each round where both are positive.
fn per_round(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .filter(|(x, y)| **x > 0.0 && **y > 0.0)
        .map(|(x, y)| f(*x, *y))
        .collect()
}

/// Each round's throughput of one configuration.
fn rps_by_round(r: &Results, key: &str) -> Option<Vec<f64>> {
    row(r, key).map(|x| x.throughput.iter().map(|w| w.rps()).collect())
}

/// Each round's p99 at the fixed rate of one configuration.
fn p99_by_round(r: &Results, key: &str) -> Option<Vec<f64>> {
    row(r, key).map(|x| x.latency.iter().map(|l| l.p99_us as f64).collect())
}

/// A comparison over the rounds: the median of the rounds' ratios, and their range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ratio {
    median: f64,
    lo: f64,
    hi: f64,
}

impl Ratio {
    /// The rounds' ratios of `a` to `b` (rounds where both are positive).
    fn of(a: &[f64], b: &[f64]) -> Option<Ratio> {
        let v = per_round(a, b, |x, y| x / y);
        (!v.is_empty()).then(|| Ratio {
            lo: v.iter().copied().fold(f64::INFINITY, f64::min),
            hi: v.iter().copied().fold(0.0, f64::max),
            median: median(v),
        })
    }

    /// "0.72× (rounds 0.57–1.39×)".
    fn show(self) -> String {
        format!(
            "{:.2}× (rounds {:.2}–{:.2}×)",
            self.median, self.lo, self.hi
        )
    }

    /// Whether the target is met: in every round, by the median only (the rounds disagree,
    /// so the machine's noise decides), or not.
    fn verdict(self, ok: impl Fn(f64) -> bool) -> &'static str {
        match (ok(self.median), ok(self.lo) && ok(self.hi)) {
            (true, true) => "yes",
            (true, false) => "median only (not in every round)",
            (false, _) => "**no**",
        }
    }
}

/// `a`'s throughput over `b`'s, round by round.
fn rps_ratio(r: &Results, a: &str, b: &str) -> Option<Ratio> {
    Ratio::of(&rps_by_round(r, a)?, &rps_by_round(r, b)?)
}

fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.2}×"))
}

/// `YYYY-MM-DD HH:MM UTC` of now.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = policy_engine::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The whole BENCHMARKS.md.
pub fn markdown(r: &Results, svg: &str) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "<!-- Generated by `cargo xtask bench`: do not edit by hand, run it again. -->\n"
    );
    if r.smoke {
        let _ = writeln!(
            w,
            "**Smoke run** (`cargo xtask bench --smoke`): a few hundred requests per configuration to \
             check the harness works. These numbers mean nothing.\n"
        );
    }
    let _ = writeln!(
        w,
        "Gateward's Envoy filter against what Envoy already ships: the native C++ `jwt_authn` filter \
         plus the RBAC filter matching claims from its metadata (issue 8). Measured {} at commit {}, \
         {}; the whole run took {:.0} s.\n",
        utc_now(),
        r.machine.commit,
        r.opts_desc,
        r.wall_seconds
    );
    let _ = writeln!(w, "![throughput and latency per configuration]({svg})\n");

    // Targets first: what the issue asks.
    let _ = writeln!(w, "## Targets\n");
    let _ = writeln!(
        w,
        "Throughputs and p99s are medians over the rounds. A ratio is the median of the rounds' \
         own ratios (both figures of a round measured minutes apart), with the rounds' range: \
         this machine's speed drifts during a run, and pairing by round keeps most of that drift \
         out of the comparison (see the spread column under All configurations). A target is \
         met when every round meets it; \"median only\" when the rounds disagree.\n"
    );
    let _ = writeln!(
        w,
        "| target | Gateward | jwt_authn + RBAC | ratio | wanted | met |\n|---|---|---|---|---|---|"
    );
    let pair = |a: &str, b: &str| Some((get(r, a)?, get(r, b)?));
    let yes = |ok: bool| if ok { "yes" } else { "**no**" };
    let overloaded = |x: &Summary| x.achieved < 0.95 * f64::from(RATE);
    for (policy, hot, cold) in [
        ("policy library", "gateward-hot", "gateward-cold"),
        (
            "policy library, compiled evaluator",
            "gateward-compiled-hot",
            "gateward-compiled-cold",
        ),
        (
            "compact policy",
            "gateward-compact-hot",
            "gateward-compact-cold",
        ),
    ] {
        if let Some((g, j)) = pair(hot, "jwt-cache-hot") {
            let q = rps_ratio(r, hot, "jwt-cache-hot");
            let _ = writeln!(
                w,
                "| hot path throughput, {policy} (one token; jwt_authn with `jwt_cache_config`) | {} req/s | {} req/s | {} | ≥ 1.0× | {} |",
                thousands(g.rps),
                thousands(j.rps),
                q.map_or("–".into(), Ratio::show),
                q.map_or("**no**", |q| q.verdict(|x| x >= 1.0))
            );
        }
        if let Some((g, j)) = pair(cold, "jwt-nocache-cold") {
            let q = rps_ratio(r, cold, "jwt-nocache-cold");
            let _ = writeln!(
                w,
                "| cold path throughput, {policy} (fresh token per request; jwt_authn without cache) | {} req/s | {} req/s | {} | ≥ 0.8× | {} |",
                thousands(g.rps),
                thousands(j.rps),
                q.map_or("–".into(), Ratio::show),
                q.map_or("**no**", |q| q.verdict(|x| x >= 0.8))
            );
        }
        for (what, a, b) in [
            ("hot", hot, "jwt-cache-hot"),
            ("cold", cold, "jwt-nocache-cold"),
        ] {
            if let Some((g, j)) = pair(a, b) {
                let q = p99_by_round(r, a)
                    .zip(p99_by_round(r, b))
                    .and_then(|(x, y)| Ratio::of(&x, &y));
                let note = |x: &Summary| {
                    if overloaded(x) {
                        format!(" (overloaded: {} req/s achieved)", thousands(x.achieved))
                    } else {
                        String::new()
                    }
                };
                let _ = writeln!(
                    w,
                    "| p99 latency at {} req/s, {what}, {policy} | {:.0} µs{} | {:.0} µs{} | {} | ≤ 1.2× | {} |",
                    thousands(f64::from(RATE)),
                    g.p99,
                    note(&g),
                    j.p99,
                    note(&j),
                    q.map_or("–".into(), Ratio::show),
                    match q {
                        Some(q) if !overloaded(&g) => q.verdict(|x| x <= 1.2),
                        _ => "**no**",
                    }
                );
            }
        }
    }
    let mib = r.module_bytes as f64 / 1_048_576.0;
    let _ = writeln!(
        w,
        "| release module size | {mib:.2} MiB ({} bytes) | | | ≤ 1.5 MiB | {} |",
        thousands(r.module_bytes as f64),
        yes(mib <= 1.5)
    );
    let conf = r.configure.millis.iter().copied().fold(0.0, f64::max);
    if r.configure.millis.is_empty() {
        let _ = writeln!(
            w,
            "| `on_configure` with five provider policies (V8) | not measurable from the log (see Start-up) | | | ≤ 50 ms | ? |"
        );
    } else {
        let _ = writeln!(
            w,
            "| `on_configure` with five provider policies (V8), slowest VM | {conf:.1} ms | | | ≤ 50 ms | {} |",
            yes(conf <= 50.0)
        );
    }
    if let (Some((_, first)), Some((n, last))) = (r.memory.get(1), r.memory.last()) {
        let _ = writeln!(
            w,
            "| memory after {} distinct tokens | worker VM linear memory {:.1} MiB ({:+.1} MiB over the last {} tokens); Envoy RSS {:.1} MiB ({:+.1} MiB) | | | bounded (reported) | see Memory |",
            thousands(*n as f64),
            last.wasm_max_kib() as f64 / 1024.0,
            (last.wasm_max_kib() as f64 - first.wasm_max_kib() as f64) / 1024.0,
            thousands((*n - r.memory.get(1).map_or(0, |m| m.0)) as f64),
            last.rss_kib as f64 / 1024.0,
            (last.rss_kib as f64 - first.rss_kib as f64) / 1024.0
        );
    }

    costs(w, r, mib);

    let _ = writeln!(w, "\n## All configurations\n");
    let _ = writeln!(
        w,
        "Medians over the rounds. Throughput: wrk, {CONNECTIONS} connections, one thread, closed loop \
         (each connection sends when its previous answer arrives); its p50/p99 are at saturation. \
         Latency at a fixed {} req/s: an open-loop generator over {CONNECTIONS} keep-alive \
         connections, measured from each request's scheduled time (see Method). Ratios compare \
         with jwt_authn on the same path (hot with hot, cold with cold), round by round: each is \
         the median of the rounds' ratios, so it can differ from the quotient of the two medians. \
         Spread: (max − min) / \
         median of the rounds' throughput. An achieved rate below {} req/s means the \
         configuration could not keep up (the generator stops sending after twice the planned \
         time): its latencies are queueing, not service time.\n",
        thousands(f64::from(RATE)),
        thousands(f64::from(RATE))
    );
    let _ = writeln!(
        w,
        "| configuration | path | req/s | spread | wrk p50 / p99 (µs) | at {} req/s p50 / p99 / p99.9 / max (µs) | achieved rate | vs jwt_authn cache | vs jwt_authn no cache | failed requests |\n|---|---|---|---|---|---|---|---|---|---|",
        thousands(f64::from(RATE))
    );
    for row in &r.rows {
        let s = summarize(row);
        let path = row.scenario.path();
        let (jc, jn) = match path {
            "cold" => ("jwt-cache-cold", "jwt-nocache-cold"),
            _ => ("jwt-cache-hot", "jwt-nocache-hot"),
        };
        let vs = |k: &str| fmt_ratio(rps_ratio(r, row.scenario.key, k).map(|q| q.median));
        let _ = writeln!(
            w,
            "| {} | {path} | {} | {:.1} % | {:.0} / {:.0} | {:.0} / {:.0} / {:.0} / {:.0} | {} | {} | {} | {} |",
            row.scenario.label(),
            thousands(s.rps),
            s.spread,
            s.wrk_p50,
            s.wrk_p99,
            s.p50,
            s.p99,
            s.p999,
            s.max,
            thousands(s.achieved),
            vs(jc),
            vs(jn),
            s.failures
        );
    }

    let _ = writeln!(w, "\n## Start-up\n");
    if r.configure.millis.is_empty() {
        let _ = writeln!(w, "`on_configure`: {}.", r.configure.method);
    } else {
        let _ = writeln!(
            w,
            "`on_configure` with the five-provider configuration \
             (`envoy-config/bench/gateward-five-providers.json`: GitHub Actions, GitLab, CircleCI, \
             Buildkite and SPIFFE issuers with inline keys, and the whole `policies/` library — \
             common, six provider packages, six examples and `gateward.rego` — with \
             `policies/examples/gateward.data.json`): {} ms, one figure per VM Envoy created. \
             Measured from {}.",
            r.configure
                .millis
                .iter()
                .map(|m| format!("{m:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.configure.method
        );
    }
    if !r.configure.self_reported.is_empty() {
        let _ = writeln!(
            w,
            "\nGateward's own figures (its `configured in … ms` log line, the host clock around \
             building the gate): {} ms.",
            r.configure
                .self_reported
                .iter()
                .map(|m| format!("{m:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        w,
        "\nEnvoy start to ready (process start to admin `/ready`, including compiling the module): \
         {:.0} ms with that configuration, {:.0} ms with one issuer and no policy.",
        r.configure.ready_ms, r.configure.ready_baseline_ms
    );

    let _ = writeln!(w, "\n## Memory\n");
    let _ = writeln!(
        w,
        "A fresh Envoy with the Gateward configuration (default `token_cache_size`, 1,024), warmed \
         with 1,000 requests of one token, then sent distinct valid tokens as fast as {CONNECTIONS} \
         connections allow. Wasm linear memory: each VM's memory size (what `memory.grow` reached; \
         it never shrinks), read from `/proc/<pid>/smaps`: V8 reserves each wasm memory with a \
         guard region of several GiB and maps its current pages read-write in front of it. Envoy \
         runs one VM per worker plus one on the main thread (and one more while validating the \
         configuration); the worker's serves the requests. RSS: the Envoy process's `VmRSS`. Envoy \
         heap: `allocated` from the admin `/memory` page (tcmalloc; wasm memory is not in it). \
         Envoy 1.40 has no per-VM memory statistic in `/stats` (only \
         `wasm.envoy.wasm.runtime.v8.active`/`created`).\n"
    );
    let _ = writeln!(
        w,
        "| distinct tokens sent | wasm linear memory per VM, size (resident) (MiB) | Envoy RSS (MiB) | Envoy heap (MiB) |\n|---|---|---|---|"
    );
    for (n, m) in &r.memory {
        let vms = m
            .wasm
            .iter()
            .map(|(size, rss)| {
                format!("{:.1} ({:.1})", *size as f64 / 1024.0, *rss as f64 / 1024.0)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            w,
            "| {} | {vms} | {:.1} | {:.1} |",
            thousands(*n as f64),
            m.rss_kib as f64 / 1024.0,
            m.heap_allocated as f64 / 1_048_576.0
        );
    }
    if let Some(miss) = r.memory_cache_misses {
        let _ = writeln!(
            w,
            "\nGateward counted {} token cache misses in that run.",
            thousands(miss as f64)
        );
    }

    let _ = writeln!(w, "\n## Method\n");
    let _ = writeln!(
        w,
        "- Every configuration is a real Envoy with one worker (`--concurrency 1`), a listener on \
         127.0.0.1 and a `direct_response` route (no upstream); all run side by side, and each round \
         measures them one after the other, each round starting one configuration later. \
         Templates: `envoy-config/bench/` (rendered copies under the target directory).\n\
         - Requests: `POST /deploy` with `Authorization: Bearer <token>` (no auth too, so every \
         configuration gets the same bytes). Tokens: RS256 with the devkit's fixture key A, GitHub \
         Actions claims from `gateward_devkit::claims::github_actions` (31 claims, about 1.4 KB), \
         valid for {} days, minted once and kept under the target directory for later runs ({} \
         tokens; {:.1} s to mint or load them this time).\n\
         - Hot path: one token, reused. Cold path: {} distinct tokens, round robin (wrk's Lua \
         `request()` hook; `envoy-config/bench/wrk.lua`), more than Gateward's (1,024) or \
         jwt_authn's (100) cache holds, so every request verifies a signature.\n\
         - jwt_authn: the same issuer, audience and key (`local_jwks`), `forward: false`, \
         `payload_in_metadata`, four `claim_to_headers`; RBAC allows `POST` under `/deploy` when \
         the payload has `repository_owner_id` 9919, `repository_id` 74839201, `ref_type` branch, \
         `ref` refs/heads/main, `environment` prod and `event_name` push \
         (`envoy-config/bench/jwt-authn-rbac.yaml`). With cache: `jwt_cache_config` \
         (`jwt_cache_size: 100`).\n\
         - Gateward: the release module, `envoy-config/bench/gateward-github.json`: the \
         `github-actions` preset with inline `jwks` (no fetch; `max_lifetime_seconds` raised to the \
         tokens' lifetime), and the policy library's GitHub example (`policies/common.rego`, \
         `policies/github_actions.rego`, `policies/examples/github_deploy.rego`) over a route table \
         whose `/deploy` route has a five-rule GitHub rule (owner id, repository ids, branches, \
         environments, events); the allow sets five headers. The compact-policy rows use the same \
         issuer with `envoy-config/bench/github-compact.rego` instead: the RBAC conditions written \
         out in one rule, the same five headers. The compiled-evaluator rows run the library with \
         `policy.evaluator: compiled` (regorus's RVM; errors have OPA's semantics, see \
         `docs/config.md`); the others use the default interpreter. The no-policy rows run the same \
         configuration without `policy`: signature, issuer, audience, time and required-claim \
         checks only (every verified token is allowed). Envoy's log level is `info` (its default), so \
         Gateward writes one decision line per request; the `--log-level warn` row shows that \
         line's cost.\n\
         - Latency at a fixed rate: wrk cannot hold a rate and Debian has no wrk2, so \
         `xtask/src/bench/load.rs` sends request i at start + i / rate over {CONNECTIONS} \
         keep-alive connections (a thread each) and measures from that scheduled time, so waiting \
         behind a slow answer counts (no coordinated omission).\n\
         - {}\n\
         - Every configuration is checked before measuring: 200 for a valid token; 401 without a \
         token, with another key's signature or an expired token; 403 for a feature-branch token \
         (policy / RBAC), except from the configurations without one. No auth answers 200 to all.",
        super::TOKEN_LIFETIME_S / 86400,
        thousands(r.mint_count as f64),
        r.mint_seconds,
        thousands(r.cold_count as f64),
        if r.machine.pinned {
            "Envoy runs on CPU 0 and wrk on CPU 1 (`taskset`); the fixed-rate generator is not pinned."
        } else {
            "Nothing is pinned to a CPU (fewer than 2 CPUs, or no `taskset`)."
        }
    );

    let _ = writeln!(w, "\n### Answers checked\n");
    for c in &r.checks {
        let _ = writeln!(w, "- {c}");
    }
    if !r.cache_notes.is_empty() {
        let _ = writeln!(w, "\n### Counters after the runs\n");
        for c in &r.cache_notes {
            let _ = writeln!(w, "- {c}");
        }
    }

    let m = &r.machine;
    let _ = writeln!(w, "\n## Machine and versions\n");
    let _ = writeln!(
        w,
        "- CPUs: {} × {}; memory {}; Linux {}\n- load average (1, 5, 15 min) before: {}; after: {}\n- Envoy: `{}` (`envoy --version`)\n- wrk: `{}`\n- rustc: `{}`\n- Gateward: commit {}",
        m.cpus, m.cpu_model, m.memory, m.kernel, m.load_before, m.load_after, m.envoy, m.wrk, m.rustc, m.commit
    );
    let _ = writeln!(w, "\n## Commands\n");
    let _ = writeln!(
        w,
        "```sh\ncargo xtask bench {}   # {}\n```\n\nWhat it ran (paths relative to the workspace root; the fixed-rate generator is `cargo xtask bench` itself, re-run as a child to pin it):\n\n```sh",
        r.args,
        r.opts_desc
    );
    for c in &r.commands {
        let _ = writeln!(w, "{c}");
    }
    let _ = writeln!(w, "```");
    md
}

/// `command` with its paths relative to the workspace `root` (`target/…`, `.tools/…`), and the
/// cargo `target` directory as `$CARGO_TARGET_DIR` when it lies outside the root, so the report
/// names no directory of the machine it ran on.
pub fn relative_paths(command: &str, root: &Path, target: &Path) -> String {
    let root = format!("{}/", root.display());
    let target = target.display().to_string();
    let command = if target.starts_with(&root) {
        command.to_string()
    } else {
        command.replace(&format!("{target}/"), "$CARGO_TARGET_DIR/")
    };
    command.replace(&root, "")
}

/// Per-request cost over no auth: 1/throughput − 1/throughput without auth, in µs. Both run
/// the same Envoy, listener and route, so the difference is the filters' own work per request.
fn cost_us(r: &Results, key: &str) -> Option<f64> {
    extra_us(r, key, "no-auth")
}

/// What configuration `key` costs per request over configuration `base`, in µs (median of
/// the rounds' differences).
fn extra_us(r: &Results, key: &str, base: &str) -> Option<f64> {
    paired(&rps_by_round(r, key)?, &rps_by_round(r, base)?, |x, b| {
        1e6 / x - 1e6 / b
    })
}

/// "Where the time goes": what each filter adds per request, and the gaps read from it.
fn costs(w: &mut String, r: &Results, module_mib: f64) {
    let rows: [(&str, &str); 10] = [
        ("jwt-cache-hot", "hot"),
        ("gateward-nopolicy-hot", "hot"),
        ("gateward-hot", "hot"),
        ("gateward-compiled-hot", "hot"),
        ("gateward-compact-hot", "hot"),
        ("jwt-nocache-cold", "cold"),
        ("gateward-nopolicy-cold", "cold"),
        ("gateward-compact-cold", "cold"),
        ("gateward-compiled-cold", "cold"),
        ("gateward-cold", "cold"),
    ];
    let known: Vec<_> = rows
        .iter()
        .filter_map(|(k, path)| {
            let label = r
                .rows
                .iter()
                .find(|x| x.scenario.key == *k)?
                .scenario
                .label();
            Some((*k, *path, label, cost_us(r, k)?))
        })
        .collect();
    if known.is_empty() {
        return;
    }
    let _ = writeln!(w, "\n## Where the time goes\n");
    let _ = writeln!(
        w,
        "What each filter adds to a request: 1 / its throughput − 1 / the throughput without \
         auth in the same round, the median over the rounds (the same Envoy, listener and route, \
         so the difference is the filters' own work).\n"
    );
    let _ = writeln!(
        w,
        "| path | configuration | µs per request over no auth |\n|---|---|---|"
    );
    for (_, path, label, us) in &known {
        let _ = writeln!(w, "| {path} | {label} | {us:.0} |");
    }
    let c = |k: &str| cost_us(r, k);
    let _ = writeln!(w);
    if let (Some(jwt), Some(bare), Some(lib)) = (
        c("jwt-cache-hot"),
        c("gateward-nopolicy-hot"),
        c("gateward-hot"),
    ) {
        let _ = writeln!(
            w,
            "- **Hot path.** A reused token's verification is cached \
             (`wasmcustom.gateward.token_cache_hit` under Counters) and so is the policy's \
             decision for an equal request, so the signature is checked once and the policy runs \
             again only when the request changes or, for a policy that reads `input.now` as the \
             library does, the second does: Gateward with the library costs {lib:.0} µs per request, and {bare:.0} µs \
             with no policy at all, against {jwt:.0} µs for jwt_authn (cache) + RBAC. What is left \
             is the proxy-wasm filter's fixed cost: Envoy calling into the V8 module for each \
             stream, the header map read and the header edits through the ABI, the token's \
             SHA-256 (the cache key), the decision log line. On the machine of issue 8, a bare \
             proxy-wasm filter running one small policy served about 62,000 req/s against \
             jwt_authn (cache) + RBAC's 70,000 (0.89×): the 1.0× target asks a wasm filter to \
             cost less than that."
        );
    }
    if let (Some(jwt), Some(bare)) = (c("jwt-nocache-cold"), c("gateward-nopolicy-cold")) {
        let mut line = format!(
            "- **Cold path.** Without a policy, a fresh token costs Gateward {bare:.0} µs \
             (decoding, the signature checked by Envoy's BoringSSL through `verify_signature`, \
             claim checks, the cache insert), against {jwt:.0} µs for jwt_authn (no cache) + RBAC."
        );
        let added: Vec<String> = [
            ("the compact policy", "gateward-compact-cold"),
            ("the library on the RVM", "gateward-compiled-cold"),
            ("the library on the interpreter", "gateward-cold"),
        ]
        .iter()
        .filter_map(|(what, k)| {
            let us = extra_us(r, k, "gateward-nopolicy-cold")?;
            Some(format!("{what} {us:.0} µs"))
        })
        .collect();
        let q = rps_ratio(r, "gateward-nopolicy-cold", "jwt-nocache-cold").map(|q| q.median);
        if let Some(q) = q {
            let _ = write!(
                line,
                " That alone is {} the cold throughput of jwt_authn: {}",
                fmt_ratio(Some(q)),
                if q >= 0.8 {
                    "the signature path meets the 0.8× target, and the policy is what misses it."
                } else {
                    "the filter's own work per fresh token already misses the 0.8× target, and \
                     the policy adds to it."
                }
            );
        }
        if !added.is_empty() {
            let _ = write!(
                line,
                " Evaluating the policy (regorus, inside the module, once per fresh token) adds \
                 {}. The library costs more than the compact policy because it does more per \
                 request: it selects the route from a table in `data`, checks the route's rule \
                 for mistakes, and builds a reason for the decision.",
                added.join(", ")
            );
        }
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(
        w,
        "- **Module size.** {module_mib:.2} MiB: the core with regorus's parser, interpreter and \
         RVM (`policy.evaluator: compiled`, and the load-time check that every function a policy \
         calls exists), the regular-expression engine behind Rego's `regex.*` builtins, and \
         pure-Rust RSA, ECDSA (P-256, P-384) and Ed25519 for hosts without `verify_signature`. \
         1.5 MiB would take removing {:.0} % of it.",
        (1.0 - 1.5 / module_mib.max(1.5)) * 100.0
    );
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn color(key: &str) -> (&'static str, &'static str) {
    if key.starts_with("gateward") {
        ("#e8730c", "#f6b87a")
    } else if key.starts_with("jwt") {
        ("#3b6ea8", "#9dbbe0")
    } else {
        ("#7a7a7a", "#c4c4c4")
    }
}

/// A latency for a chart label: µs below 1 ms, else ms or s.
fn human_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1_000_000.0)
    }
}

/// A two-panel horizontal bar chart: throughput (linear), and p50/p99 at the fixed rate (log).
pub fn svg(r: &Results) -> String {
    let rows: Vec<(String, &str, Summary)> = r
        .rows
        .iter()
        .map(|row| (row.scenario.label(), row.scenario.key, summarize(row)))
        .collect();
    let (width, label_w, bar_h, gap) = (1000.0, 400.0, 18.0, 8.0);
    let plot_w = width - label_w - 190.0;
    let panel_h = rows.len() as f64 * (bar_h + gap);
    let top1 = 60.0;
    let top2 = top1 + panel_h + 80.0;
    let height = top2 + panel_h + 60.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="12" y="24" font-size="16" font-weight="bold">Gateward vs Envoy jwt_authn + RBAC{}</text>"##,
        if r.smoke {
            " (smoke run: meaningless numbers)"
        } else {
            ""
        }
    );
    let max_rps = rows.iter().map(|x| x.2.rps).fold(1.0, f64::max);
    let _ = writeln!(
        s,
        r#"<text x="12" y="{}" font-weight="bold">Throughput, requests/s ({CONNECTIONS} connections, one Envoy worker; median of the rounds)</text>"#,
        top1 - 12.0
    );
    for (i, (label, key, sum)) in rows.iter().enumerate() {
        let y = top1 + i as f64 * (bar_h + gap);
        let len = sum.rps / max_rps * plot_w;
        let (dark, _) = color(key);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{label_w}" y="{y}" width="{len:.1}" height="{bar_h}" fill="{dark}"/><text x="{:.1}" y="{}">{}</text>"#,
            label_w - 8.0,
            y + 13.0,
            esc(label),
            label_w + len + 6.0,
            y + 13.0,
            thousands(sum.rps)
        );
    }
    // Latencies span orders of magnitude (a configuration that cannot keep up queues for
    // seconds): a log axis from 10 µs.
    let lo = 10.0_f64;
    let max_lat = rows.iter().map(|x| x.2.p99).fold(1000.0, f64::max);
    let decades = (max_lat / lo).log10().ceil().max(1.0);
    let x_of = |us: f64| (us.max(lo) / lo).log10() / decades * plot_w;
    let _ = writeln!(
        s,
        r#"<text x="12" y="{}" font-weight="bold">Latency at a fixed {} requests/s: p50 (dark) and p99 (light), log scale</text>"#,
        top2 - 26.0,
        thousands(f64::from(RATE))
    );
    for d in 0..=(decades as i32) {
        let us = lo * 10f64.powi(d);
        let x = label_w + x_of(us);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#dddddd"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555" font-size="10">{}</text>"##,
            top2 - 4.0,
            top2 + panel_h,
            top2 - 8.0,
            human_us(us).replace(".0 ", " ")
        );
    }
    for (i, (label, key, sum)) in rows.iter().enumerate() {
        let y = top2 + i as f64 * (bar_h + gap);
        let l99 = x_of(sum.p99);
        let l50 = x_of(sum.p50);
        let (dark, light) = color(key);
        let over = if sum.achieved < 0.95 * f64::from(RATE) {
            format!(" (overloaded: {}/s)", thousands(sum.achieved))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{label_w}" y="{y}" width="{l99:.1}" height="{bar_h}" fill="{light}"/><rect x="{label_w}" y="{y}" width="{l50:.1}" height="{bar_h}" fill="{dark}"/><text x="{:.1}" y="{}">{} / {}{over}</text>"#,
            label_w - 8.0,
            y + 13.0,
            esc(label),
            label_w + l99.max(l50) + 6.0,
            y + 13.0,
            human_us(sum.p50),
            human_us(sum.p99)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="12" y="{}" fill="#555">{} × {}; Envoy {}; generated by cargo xtask bench.</text>"##,
        height - 16.0,
        r.machine.cpus,
        esc(&r.machine.cpu_model),
        esc(&r.machine.envoy)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_paths_relative_to_the_workspace() {
        let envoy = "taskset -c 0 /w/main/.tools/python/envoy/_bin/envoy -c /w/main/target/gateward-bench/no-auth/envoy.yaml --log-level info > /w/main/target/gateward-bench/no-auth/envoy.log 2>&1";
        assert_eq!(
            relative_paths(envoy, Path::new("/w/main"), Path::new("/w/main/target")),
            "taskset -c 0 .tools/python/envoy/_bin/envoy -c target/gateward-bench/no-auth/envoy.yaml --log-level info > target/gateward-bench/no-auth/envoy.log 2>&1"
        );
        // A target directory elsewhere (CARGO_TARGET_DIR) is named by the variable; system
        // binaries keep their path.
        let wrk = "/usr/bin/wrk -s /w/main/envoy-config/bench/wrk.lua http://127.0.0.1:1/deploy -- /w/t/gateward-bench/tokens-hot.txt 0";
        assert_eq!(
            relative_paths(wrk, Path::new("/w/main"), Path::new("/w/t")),
            "/usr/bin/wrk -s envoy-config/bench/wrk.lua http://127.0.0.1:1/deploy -- $CARGO_TARGET_DIR/gateward-bench/tokens-hot.txt 0"
        );
        // A sibling directory whose name starts like the root's is not the root.
        assert_eq!(
            relative_paths(
                "/w/main2/x /w/main/y",
                Path::new("/w/main"),
                Path::new("/w/main/target")
            ),
            "/w/main2/x y"
        );
    }

    #[test]
    fn paired_figures_cancel_a_drifting_machine() {
        // Full speed in round 1, half speed after: A is about half of B in every round, but the
        // ratio of the medians pairs figures from different rounds.
        let a = [100.0, 55.0, 45.0];
        let b = [200.0, 100.0, 100.0];
        assert_eq!(median(a.to_vec()) / median(b.to_vec()), 0.55);
        assert_eq!(paired(&a, &b, |x, y| x / y), Some(0.5));
        assert_eq!(paired(&[0.0], &[1.0], |x, y| x / y), None);
        let q = Ratio::of(&a, &b).unwrap();
        assert_eq!((q.median, q.lo, q.hi), (0.5, 0.45, 0.55));
        assert_eq!(q.show(), "0.50× (rounds 0.45–0.55×)");
        assert_eq!(q.verdict(|x| x >= 0.4), "yes");
        assert_eq!(q.verdict(|x| x >= 0.5), "median only (not in every round)");
        assert_eq!(q.verdict(|x| x >= 0.6), "**no**");
        assert_eq!(paired(&[], &[], |x, y| x / y), None);
    }

    #[test]
    fn medians_and_thousands() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
