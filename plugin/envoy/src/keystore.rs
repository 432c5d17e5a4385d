//! Remote key sets (`jwks_uri`, OIDC discovery), fetched through Envoy clusters.
//!
//! Every VM (one per Envoy worker thread) keeps its own parsed copy of each key set, but the
//! fetching is coordinated through proxy-wasm shared data so N workers make one fetch, not N:
//!
//! - `gateward.v1.<source>.state` holds a small [`State`]: a fetch lease (which VM fetches, until
//!   when), the last attempt and its outcome, and the generation of the last good key set. A VM
//!   takes the lease with a compare-and-swap; the others wait and watch.
//! - `gateward.v1.<source>.keys` holds the last good JWKS document ([`KeysRecord`]), written by
//!   the lease holder before it bumps the generation in the state.
//!
//! Other VMs notice a new generation on their next tick (or when a request needs the keys) and
//! parse the document themselves. Failures never replace a good key set: it is served until it
//! is `max_stale_seconds` old, after which requests fail closed.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use policy_engine::config::FetchConfig;
use policy_engine::discovery::{self, MAX_DISCOVERY_BYTES};
use policy_engine::freshness::Freshness;
use policy_engine::keys::MAX_JWKS_BYTES;
use policy_engine::KeySet;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;
use proxy_wasm::types::{BufferType, MapType, Status};
use serde::{Deserialize, Serialize};

use crate::log;

/// Identifies one remote key source: its kind and URL (shared by every issuer using it).
pub type SourceId = String;

/// What a source fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A JWKS document at this URL.
    Jwks(String),
    /// An OIDC discovery document at this URL, whose `issuer` must equal the given one; its
    /// `jwks_uri` is then fetched.
    Discovery {
        /// The discovery document URL.
        url: String,
        /// The issuer the document must name.
        issuer: String,
    },
}

impl Kind {
    /// The source id for this kind.
    pub fn id(&self) -> SourceId {
        match self {
            Kind::Jwks(url) => format!("jwks {url}"),
            Kind::Discovery { url, .. } => format!("discovery {url}"),
        }
    }
}

/// Whether a source's keys can be used now.
#[derive(Debug, Clone)]
pub enum Availability {
    /// Usable keys, with their generation (cache entries verified with another generation are
    /// verified again).
    Ready(Rc<KeySet>, u64),
    /// A fetch is under way (here or in another VM); wait.
    Loading,
    /// No usable keys and no fetch under way: fail closed with this reason.
    Unavailable(String),
}

/// The shared, small per-source record: fetch lease and last outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// The VM holding the fetch lease (0: nobody).
    owner: u64,
    /// The lease ends then even if its holder vanished.
    until_ms: u64,
    /// When the last fetch started.
    attempt_ms: u64,
    /// When the last fetch ended (success or failure).
    done_ms: u64,
    /// Whether it failed.
    failed: bool,
    /// Why (no secrets: URLs, statuses and parse errors only).
    error: String,
    /// Generation of the last good key set (0: none yet).
    generation: u64,
}

/// The shared last good key set.
#[derive(Debug, Serialize, Deserialize)]
struct KeysRecord {
    generation: u64,
    fetched_at_ms: u64,
    jwks: String,
}

/// Which document an in-flight call fetches.
#[derive(Debug, Clone)]
enum Stage {
    Discovery,
    Jwks(String),
}

#[derive(Debug, Clone)]
struct InFlight {
    token: u32,
    stage: Stage,
    /// The context whose callback will receive the response (the SDK routes by token).
    context: u32,
}

/// One source as this VM sees it.
#[derive(Debug)]
struct Source {
    kind: Kind,
    fetch: FetchConfig,
    /// Issuer names using this source, for logs.
    issuers: String,
    keys: Option<Rc<KeySet>>,
    generation: u64,
    fetched_at_ms: u64,
    in_flight: Option<InFlight>,
    /// The shared state as last read.
    state: State,
    /// A refetch for an unknown `kid` was asked for and not yet started.
    refetch_wanted: bool,
    /// When the shared state was last read.
    synced_ms: u64,
}

impl Source {
    fn state_key(id: &str) -> String {
        format!("gateward.v1.{id}.state")
    }
    fn keys_key(id: &str) -> String {
        format!("gateward.v1.{id}.keys")
    }
    fn lease_ms(&self) -> u64 {
        let stages = if matches!(self.kind, Kind::Discovery { .. }) {
            2
        } else {
            1
        };
        self.fetch.timeout_ms.saturating_mul(stages) + 1_000
    }
    fn age_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.fetched_at_ms)
    }
    /// This source's timestamps for the core's freshness rules (shared with the OpenBao
    /// plugin): the shared state holds the attempt and outcome, this VM the key set's age.
    fn freshness(&self) -> Freshness {
        let known = |t: u64| (t != 0).then_some(t);
        Freshness {
            fetched_at_ms: self.keys.as_ref().map(|_| self.fetched_at_ms),
            attempt_ms: known(self.state.attempt_ms),
            done_ms: known(self.state.done_ms),
            failed: self.state.failed,
        }
    }
    fn usable(&self, now: u64) -> bool {
        self.freshness().usable(&self.fetch, now)
    }
    fn refresh_due(&self, now: u64) -> bool {
        self.freshness().refresh_due(&self.fetch, now)
    }
    fn retry_allowed(&self, now: u64) -> bool {
        self.freshness().retry_allowed(&self.fetch, now)
    }
    fn busy(&self, now: u64) -> bool {
        self.in_flight.is_some() || (self.state.owner != 0 && self.state.until_ms > now)
    }
}

/// Why a fetch could not start.
enum Start {
    Started,
    Busy,
    Failed(String),
}

/// This VM's view of every remote key source.
#[derive(Debug, Default)]
pub struct KeyStore {
    /// This VM's id in leases (unique among the VMs sharing data).
    vm: u64,
    sources: BTreeMap<SourceId, Source>,
}

impl KeyStore {
    /// A store for the VM with lease id `vm` (non-zero).
    pub fn new(vm: u64) -> KeyStore {
        KeyStore {
            vm,
            sources: BTreeMap::new(),
        }
    }

    /// Declares a source (at configuration); re-declaring updates its fetch settings and keeps
    /// its keys, so a reconfiguration does not refetch unchanged sources.
    pub fn register(&mut self, kind: Kind, fetch: FetchConfig, issuer: &str) -> SourceId {
        let id = kind.id();
        let source = self.sources.entry(id.clone()).or_insert_with(|| Source {
            kind: kind.clone(),
            fetch: fetch.clone(),
            issuers: String::new(),
            keys: None,
            generation: 0,
            fetched_at_ms: 0,
            in_flight: None,
            state: State::default(),
            refetch_wanted: false,
            synced_ms: 0,
        });
        source.kind = kind;
        source.fetch = fetch;
        if !source.issuers.split(", ").any(|n| n == issuer) {
            if !source.issuers.is_empty() {
                source.issuers.push_str(", ");
            }
            source.issuers.push_str(issuer);
        }
        // Create the state record now, so that later lease takes are real compare-and-swaps.
        // Envoy creates a missing key whatever cas is given but refuses a wrong cas on an
        // existing one, so an impossible cas means "create if absent": a VM starting late
        // never wipes a lease another VM already holds.
        let key = Source::state_key(&id);
        if let Ok((None, None)) = hostcalls::get_shared_data(&key) {
            write_state(&key, &State::default(), Some(u32::MAX));
        }
        id
    }

    /// How long a request may wait for a fetch of `id`: the fetch's own time limit plus a margin.
    pub fn wait_limit_ms(&self, id: &str) -> u64 {
        self.sources.get(id).map_or(1_000, |s| s.lease_ms() + 1_000)
    }

    /// The current generation of a source's keys (0 when it has none).
    pub fn generation(&self, id: &str) -> u64 {
        self.sources.get(id).map_or(0, |s| s.generation)
    }

    /// Whether a source's keys can be used at `now`, starting a fetch when there are none.
    pub fn availability(&mut self, id: &str, now: u64, cx: &dyn Context) -> Availability {
        let vm = self.vm;
        let Some(source) = self.sources.get_mut(id) else {
            return Availability::Unavailable(format!("unknown key source {id}"));
        };
        // Per request, the shared state is read at most once per tick period: ticks and
        // fetch completions keep it current in between.
        if source.keys.is_none() || now >= source.synced_ms + crate::root::TICK_MS {
            sync(id, source, now);
        }
        if source.usable(now) {
            if source.refresh_due(now) && source.retry_allowed(now) && !source.busy(now) {
                // Background refresh: the current keys keep serving meanwhile.
                let _ = start(vm, id, source, now, cx);
            }
            if let Some(keys) = &source.keys {
                return Availability::Ready(keys.clone(), source.generation);
            }
        }
        if source.busy(now) {
            return Availability::Loading;
        }
        if !source.retry_allowed(now) {
            return Availability::Unavailable(unavailable(source));
        }
        match start(vm, id, source, now, cx) {
            Start::Started | Start::Busy => Availability::Loading,
            Start::Failed(e) => Availability::Unavailable(e),
        }
    }

    /// A token named a `kid` the keys lack: refetch, at most once per `min_refetch_seconds` per
    /// source (across VMs). True when a fetch is under way that the request should wait for.
    pub fn refetch(&mut self, id: &str, now: u64, cx: &dyn Context) -> bool {
        let vm = self.vm;
        let Some(source) = self.sources.get_mut(id) else {
            return false;
        };
        sync(id, source, now);
        if source.busy(now) {
            return true;
        }
        if !source.freshness().refetch_allowed(&source.fetch, now) {
            return false;
        }
        source.refetch_wanted = true;
        matches!(start(vm, id, source, now, cx), Start::Started | Start::Busy)
    }

    /// True when no fetch of `id` is under way anywhere and either one ended after `since_ms` or
    /// the keys are usable: a request waiting since then should look again.
    pub fn settled_since(&mut self, id: &str, since_ms: u64, now: u64) -> bool {
        let Some(source) = self.sources.get_mut(id) else {
            return true;
        };
        sync(id, source, now);
        !source.busy(now) && (source.state.done_ms >= since_ms || source.usable(now))
    }

    /// Whether this VM started the call with `token`.
    pub fn owns(&self, token: u32) -> bool {
        self.sources
            .values()
            .any(|s| s.in_flight.as_ref().is_some_and(|f| f.token == token))
    }

    /// Handles the response to one of our fetches; returns the source it belonged to once the
    /// fetch is over (success or failure), None while it continues (discovery → JWKS).
    pub fn on_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        now: u64,
        cx: &dyn Context,
        metrics: &crate::metrics::Metrics,
    ) -> Option<SourceId> {
        let vm = self.vm;
        let (id, source) = self
            .sources
            .iter_mut()
            .find(|(_, s)| s.in_flight.as_ref().is_some_and(|f| f.token == token))?;
        let flight = source.in_flight.take()?;
        let result = read_response(num_headers, body_size, &flight.stage, source);
        let outcome = result.and_then(|body| match flight.stage {
            Stage::Discovery => {
                let Kind::Discovery { issuer, .. } = &source.kind else {
                    return Err(String::from("internal: discovery stage for a JWKS source"));
                };
                let uri = discovery::jwks_uri(&body, issuer).map_err(|e| e.to_string())?;
                let cluster = source
                    .fetch
                    .jwks_cluster
                    .clone()
                    .or_else(|| source.fetch.cluster.clone())
                    .unwrap_or_default();
                let token = dispatch(&cluster, &uri, source.fetch.timeout_ms, cx)?;
                source.in_flight = Some(InFlight {
                    token,
                    stage: Stage::Jwks(uri),
                    // The SDK delivers the response to the context whose callback runs now.
                    context: crate::vm::current_context(),
                });
                Ok(None)
            }
            Stage::Jwks(_) => Ok(Some(body)),
        });
        match outcome {
            Ok(None) => None,
            Ok(Some(body)) => {
                match install(vm, id, source, &body, now) {
                    Ok(()) => metrics.fetch_success(),
                    Err(e) => {
                        metrics.fetch_failure();
                        fail(vm, id, source, now, &e);
                    }
                }
                Some(id.clone())
            }
            Err(e) => {
                metrics.fetch_failure();
                fail(vm, id, source, now, &e);
                Some(id.clone())
            }
        }
    }

    /// The stream `context` is gone; a fetch whose response would have reached it is lost, so
    /// its lease is released for another attempt (from the root's next tick).
    pub fn abandon(&mut self, context: u32) {
        let vm = self.vm;
        for (id, source) in &mut self.sources {
            if source
                .in_flight
                .as_ref()
                .is_some_and(|f| f.context == context)
            {
                source.in_flight = None;
                release(vm, id, |_| {});
            }
        }
    }

    /// Background work from the root's tick: pick up other VMs' results, refresh keys nearing
    /// the end of their cache lifetime, retry failed or wanted fetches. Returns the sources
    /// whose state may have changed (their waiting requests should look again).
    pub fn tick(&mut self, now: u64, cx: &dyn Context) -> Vec<SourceId> {
        let vm = self.vm;
        let mut changed = Vec::new();
        for (id, source) in &mut self.sources {
            let before = (source.generation, source.state.done_ms, source.busy(now));
            sync(id, source, now);
            let wanted = source.refetch_wanted
                && now >= source.state.attempt_ms + source.fetch.min_refetch_seconds * 1_000;
            if !source.busy(now) && source.retry_allowed(now) && (source.refresh_due(now) || wanted)
            {
                let _ = start(vm, id, source, now, cx);
            }
            if before != (source.generation, source.state.done_ms, source.busy(now)) {
                changed.push(id.clone());
            }
        }
        changed
    }
}

/// Reads the shared state and, on a new generation, the shared key set.
fn sync(id: &str, source: &mut Source, now: u64) {
    let Some((state, _)) = read_state(&Source::state_key(id)) else {
        return;
    };
    source.synced_ms = now;
    source.state = state;
    if source.state.generation == source.generation {
        return;
    }
    let record = match hostcalls::get_shared_data(&Source::keys_key(id)) {
        Ok((Some(bytes), _)) => serde_json::from_slice::<KeysRecord>(&bytes).ok(),
        _ => None,
    };
    let Some(record) = record else {
        return;
    };
    if record.generation <= source.generation {
        return;
    }
    match KeySet::from_jwks(record.jwks.as_bytes()) {
        Ok(keys) => {
            source.keys = Some(Rc::new(keys));
            source.generation = record.generation;
            source.fetched_at_ms = record.fetched_at_ms;
        }
        Err(e) => log::error(&format!(
            "keys for {}: shared key set unreadable: {e}",
            source.issuers
        )),
    }
}

/// Takes the fetch lease and dispatches the first request.
fn start(vm: u64, id: &str, source: &mut Source, now: u64, cx: &dyn Context) -> Start {
    let key = Source::state_key(id);
    let Some((mut state, cas)) = read_state(&key) else {
        return Start::Failed(String::from("shared data unavailable"));
    };
    if state.owner != 0 && state.until_ms > now {
        source.state = state;
        return Start::Busy;
    }
    state.owner = vm;
    state.until_ms = now + source.lease_ms();
    state.attempt_ms = now;
    if !write_state(&key, &state, cas) {
        return Start::Busy;
    }
    source.state = state;
    source.refetch_wanted = false;
    let (stage, url, cluster) = match &source.kind {
        Kind::Jwks(url) => (Stage::Jwks(url.clone()), url, &source.fetch.cluster),
        Kind::Discovery { url, .. } => (Stage::Discovery, url, &source.fetch.cluster),
    };
    let cluster = cluster.clone().unwrap_or_default();
    match dispatch(&cluster, url, source.fetch.timeout_ms, cx) {
        Ok(token) => {
            log::debug(&format!(
                "keys for {}: fetching {url} through cluster {cluster}",
                source.issuers
            ));
            source.in_flight = Some(InFlight {
                token,
                stage,
                // The SDK delivers the response to the context whose callback runs now.
                context: crate::vm::current_context(),
            });
            Start::Started
        }
        Err(e) => {
            fail(vm, id, source, now, &e);
            Start::Failed(unavailable(source))
        }
    }
}

/// Sends one GET through `cluster`.
fn dispatch(cluster: &str, url: &str, timeout_ms: u64, cx: &dyn Context) -> Result<u32, String> {
    let Some((authority, path)) = split_url(url) else {
        return Err(format!("{url} is not an http(s) URL"));
    };
    let headers = vec![
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", authority),
        ("accept", "application/json"),
        ("user-agent", "gateward"),
    ];
    cx.dispatch_http_call(
        cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(timeout_ms),
    )
    .map_err(|status| match status {
        Status::BadArgument => {
            format!("cannot fetch {url}: Envoy refused the call (is cluster {cluster:?} defined?)")
        }
        other => format!("cannot fetch {url} through cluster {cluster:?}: {other:?}"),
    })
}

/// The body of a successful (200) response within the size limit of its stage.
fn read_response(
    num_headers: usize,
    body_size: usize,
    stage: &Stage,
    source: &Source,
) -> Result<Vec<u8>, String> {
    let url = match (stage, &source.kind) {
        (Stage::Jwks(url), _) => url.as_str(),
        (Stage::Discovery, Kind::Discovery { url, .. }) => url.as_str(),
        (Stage::Discovery, Kind::Jwks(url)) => url.as_str(),
    };
    if num_headers == 0 {
        return Err(format!("fetching {url}: connection reset"));
    }
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .unwrap_or_default();
    if status != "200" {
        return Err(format!(
            "fetching {url}: HTTP status {status:?}, expected 200"
        ));
    }
    let limit = match stage {
        Stage::Discovery => MAX_DISCOVERY_BYTES,
        Stage::Jwks(_) => MAX_JWKS_BYTES,
    };
    if body_size > limit {
        return Err(format!(
            "fetching {url}: document of {body_size} bytes exceeds the {limit}-byte limit"
        ));
    }
    match hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Ok(Vec::new()),
        Err(status) => Err(format!("fetching {url}: cannot read the body: {status:?}")),
    }
}

/// Validates a fetched JWKS and publishes it to every VM.
fn install(vm: u64, id: &str, source: &mut Source, body: &[u8], now: u64) -> Result<(), String> {
    let keys = KeySet::from_jwks(body).map_err(|e| format!("JWKS rejected: {e}"))?;
    for skipped in &keys.skipped {
        log::warn(&format!("keys for {}: {skipped}", source.issuers));
    }
    if keys.keys.is_empty() {
        return Err(String::from("JWKS rejected: no usable key in it"));
    }
    let jwks = String::from_utf8(body.to_vec()).map_err(|_| "JWKS rejected: not UTF-8")?;
    let key = Source::state_key(id);
    let generation = read_state(&key)
        .map_or(source.generation, |(s, _)| s.generation)
        .max(source.generation)
        + 1;
    let record = KeysRecord {
        generation,
        fetched_at_ms: now,
        jwks,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string())?;
    hostcalls::set_shared_data(&Source::keys_key(id), Some(&bytes), None)
        .map_err(|s| format!("cannot share the key set: {s:?}"))?;
    let count = keys.keys.len();
    source.keys = Some(Rc::new(keys));
    source.generation = generation;
    source.fetched_at_ms = now;
    release(vm, id, |s| {
        s.generation = generation;
        s.failed = false;
        s.error.clear();
        s.done_ms = now;
    });
    sync(id, source, now);
    log::info(&format!(
        "keys for {}: {count} key(s) loaded (generation {generation})",
        source.issuers
    ));
    Ok(())
}

/// Records a failed fetch; the last good keys stay.
fn fail(vm: u64, id: &str, source: &mut Source, now: u64, error: &str) {
    let stale = if source.keys.is_some() {
        format!(
            "; serving the previous key set ({} s old)",
            source.age_ms(now) / 1_000
        )
    } else {
        String::from("; no key set yet: requests fail with keys_unavailable")
    };
    log::error(&format!("keys for {}: {error}{stale}", source.issuers));
    let error = error.to_string();
    release(vm, id, |s| {
        s.failed = true;
        s.error = error.clone();
        s.done_ms = now;
    });
    sync(id, source, now);
}

/// Ends our lease (if we still hold it) after applying `update`.
fn release(vm: u64, id: &str, update: impl Fn(&mut State)) {
    let key = Source::state_key(id);
    // A few rounds: another VM may write between our read and our compare-and-swap.
    for _ in 0..4 {
        let Some((mut state, cas)) = read_state(&key) else {
            return;
        };
        update(&mut state);
        if state.owner == vm {
            state.owner = 0;
            state.until_ms = 0;
        }
        if write_state(&key, &state, cas) {
            return;
        }
    }
}

fn unavailable(source: &Source) -> String {
    if source.state.error.is_empty() {
        format!("keys for issuer {} are unavailable", source.issuers)
    } else {
        format!(
            "keys for issuer {} are unavailable: {}",
            source.issuers, source.state.error
        )
    }
}

fn read_state(key: &str) -> Option<(State, Option<u32>)> {
    match hostcalls::get_shared_data(key) {
        Ok((Some(bytes), cas)) => Some((serde_json::from_slice(&bytes).unwrap_or_default(), cas)),
        Ok((None, cas)) => Some((State::default(), cas)),
        Err(_) => None,
    }
}

fn write_state(key: &str, state: &State, cas: Option<u32>) -> bool {
    let Ok(bytes) = serde_json::to_vec(state) else {
        return false;
    };
    hostcalls::set_shared_data(key, Some(&bytes), cas).is_ok()
}

/// Splits an http(s) URL into `:authority` and `:path` (with query, without fragment).
pub fn split_url(url: &str) -> Option<(&str, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Some((authority, path))
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split_url("https://token.actions.githubusercontent.com/.well-known/jwks"),
            Some((
                "token.actions.githubusercontent.com",
                "/.well-known/jwks".to_string()
            ))
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080"),
            Some(("127.0.0.1:8080", "/".to_string()))
        );
        assert_eq!(
            split_url("https://h/k?x=1#frag"),
            Some(("h", "/k?x=1".to_string()))
        );
        assert_eq!(split_url("https://h?x=1"), Some(("h", "/?x=1".to_string())));
        assert_eq!(split_url("https://user@h/"), None);
        assert_eq!(split_url("ftp://h/"), None);
    }
}
