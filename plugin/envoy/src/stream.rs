//! One HTTP request: find the token, verify it (or find it in the cache), evaluate the policy,
//! then let the request through with claim headers and without the token, or answer it with a
//! local reply. A request whose issuer's keys are still loading is paused and finished later,
//! from whichever callback brings the keys (see [`wake`]).

use std::rc::Rc;

use policy_engine::jws::{fingerprint_of, token_hash, UntrustedToken};
use policy_engine::{
    Decision, Deny, DenyCode, Gate, IssuerId, KeySet, Located, Mode, Request, Strip,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::cache::Entry;
use crate::keystore::{Availability, SourceId};
use crate::root::Plugin;
use crate::vm::{self, VmState};
use crate::{headers, log, root};

/// Most requests one VM holds paused waiting for keys; more are refused (503) at once.
const MAX_WAITERS: usize = 4096;

/// The request headers, read once in `on_request_headers` (Envoy drops them once the request
/// continues, and a paused request is finished from another callback).
#[derive(Debug, Clone)]
pub struct Snapshot {
    headers: Vec<(String, String)>,
}

impl Snapshot {
    fn pseudo(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn request(&self) -> Request<'_> {
        Request {
            method: self.pseudo(":method"),
            path: self.pseudo(":path"),
            host: self.pseudo(":authority"),
            headers: &self.headers,
        }
    }
}

/// A request being decided, possibly paused waiting for keys.
#[derive(Debug)]
pub struct Pending {
    /// Its stream context.
    pub context: u32,
    /// The configuration it arrived under (a reconfiguration does not change it midway).
    plugin: Rc<Plugin>,
    snapshot: Snapshot,
    started_us: u64,
    /// When it last started waiting, and the latest it may still be waiting.
    since_ms: u64,
    deadline_ms: u64,
    /// The key source it waits for.
    source: SourceId,
    /// A refetch for an unknown `kid` was already done for it.
    refetched: bool,
}

/// The result of evaluating a request.
enum Step {
    Done(Outcome),
    Wait { source: SourceId, refetch: bool },
}

/// A decision plus what the log line reports about how it was reached.
struct Outcome {
    /// None: a CORS preflight let through without authentication.
    decision: Option<Decision>,
    fingerprint: Option<String>,
    cache: Option<&'static str>,
}

impl Outcome {
    fn deny(d: Deny, fingerprint: Option<&str>) -> Step {
        Step::Done(Outcome {
            decision: Some(Decision::Deny(d)),
            fingerprint: fingerprint.map(str::to_string),
            cache: None,
        })
    }
}

/// The filter instance for one HTTP stream.
pub struct Stream {
    id: u32,
    plugin: Option<Rc<Plugin>>,
}

impl Stream {
    /// A stream under the root's current configuration (None: the root has none, and every
    /// request is refused).
    pub fn new(id: u32, plugin: Option<Rc<Plugin>>) -> Stream {
        Stream { id, plugin }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        vm::set_current(self.id);
        root::on_fetch_response(token, headers, body, self);
    }

    fn on_done(&mut self) -> bool {
        let id = self.id;
        vm::with(|vm| {
            vm.waiters.retain(|w| w.context != id);
            vm.keys.abandon(id);
        });
        true
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        vm::set_current(self.id);
        let started_us = vm::now_us();
        let Some(plugin) = self.plugin.clone() else {
            return internal_error("no valid configuration");
        };
        let headers = match headers::request_headers() {
            Ok(h) => h,
            Err(e) => return internal_error(&format!("cannot read request headers: {e}")),
        };
        let pending = Pending {
            context: self.id,
            plugin,
            snapshot: Snapshot { headers },
            started_us,
            since_ms: 0,
            deadline_ms: 0,
            source: SourceId::new(),
            refetched: false,
        };
        let now = vm::now_ms();
        let cx: &dyn Context = self;
        vm::with(|vm| drive(vm, pending, now, false, cx))
            .unwrap_or_else(|| internal_error("filter state busy"))
    }
}

/// Evaluates a request and acts on the result, or queues it to wait for keys. `resumed`: the
/// request was paused before, so it continues with `resume_http_request` rather than by the
/// returned action (the effective context must already be its stream).
pub fn drive(
    vm: &mut VmState,
    mut p: Pending,
    now_ms: u64,
    resumed: bool,
    cx: &dyn Context,
) -> Action {
    match evaluate(vm, &p, now_ms, cx) {
        Step::Done(outcome) => {
            let outcome = spend_token(&p.plugin.gate, outcome, now_ms);
            respond(vm, &p, outcome, resumed)
        }
        Step::Wait { source, refetch } => {
            if vm.waiters.len() >= MAX_WAITERS {
                let d = Deny::new(
                    DenyCode::KeysUnavailable,
                    "too many requests waiting for keys",
                );
                return respond(vm, &p, deny_outcome(d), resumed);
            }
            if p.deadline_ms == 0 {
                p.deadline_ms = now_ms + vm.keys.wait_limit_ms(&source);
            }
            p.since_ms = now_ms;
            p.source = source;
            p.refetched |= refetch;
            vm.waiters.push(p);
            Action::Pause
        }
    }
}

/// Looks again at every paused request after key state may have changed: those whose fetch
/// is over are finished, those past their deadline fail with `keys_unavailable`. `current` is
/// the context whose callback runs, restored as the effective context afterwards.
pub fn wake(vm: &mut VmState, now_ms: u64, cx: &dyn Context, current: u32) {
    let waiting = std::mem::take(&mut vm.waiters);
    let mut switched = false;
    for w in waiting {
        let settled = vm.keys.settled_since(&w.source, w.since_ms, now_ms);
        if !settled && now_ms < w.deadline_ms {
            vm.waiters.push(w);
            continue;
        }
        if hostcalls::set_effective_context(w.context).is_err() {
            // The stream is gone; nothing to answer.
            continue;
        }
        switched = true;
        if settled {
            drive(vm, w, now_ms, true, cx);
        } else {
            let d = Deny::new(
                DenyCode::KeysUnavailable,
                "timed out waiting for the issuer's keys",
            );
            respond(vm, &w, deny_outcome(d), true);
        }
    }
    if switched {
        let _ = hostcalls::set_effective_context(current);
    }
}

/// With replay protection on, an allow stands only once its token is in the replay record
/// (cached decisions included: a reused token is exactly what the record refuses).
fn spend_token(gate: &Gate, outcome: Outcome, now_ms: u64) -> Outcome {
    let Some(Decision::Allow(a)) = &outcome.decision else {
        return outcome;
    };
    let now = i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX);
    let spent = gate
        .replay_entry(a)
        .and_then(|entry| entry.map_or(Ok(()), |e| crate::replay::record(gate, &e, now)));
    match spent {
        Ok(()) => outcome,
        Err(mut d) => {
            d.issuer = Some(a.issuer.clone());
            d.subject = a.subject.clone();
            Outcome {
                decision: Some(Decision::Deny(d)),
                ..outcome
            }
        }
    }
}

fn deny_outcome(d: Deny) -> Outcome {
    Outcome {
        decision: Some(Decision::Deny(d)),
        fingerprint: None,
        cache: None,
    }
}

/// The pipeline: locate → (cache | route → keys → verify) → authorize.
fn evaluate(vm: &mut VmState, p: &Pending, now_ms: u64, cx: &dyn Context) -> Step {
    let gate = &p.plugin.gate;
    let req = p.snapshot.request();
    let now = i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX);
    if now_ms < vm::CLOCK_FLOOR_MS {
        return Outcome::deny(
            Deny::new(DenyCode::InternalError, "the host clock is unavailable"),
            None,
        );
    }
    if gate.is_bypassed_preflight(&req) {
        return Step::Done(Outcome {
            decision: None,
            fingerprint: None,
            cache: None,
        });
    }
    let located = match gate.locate(&req) {
        Ok(l) => l,
        Err(d) => return Outcome::deny(d, None),
    };
    let hash = token_hash(located.token);
    let fp = fingerprint_of(&hash);
    let done = |decision, cache| {
        Step::Done(Outcome {
            decision: Some(decision),
            fingerprint: Some(fp.clone()),
            cache: Some(cache),
        })
    };

    let cached = p.plugin.cache.borrow().get(&hash).cloned();
    if let Some(entry) = cached {
        // A cached verification counts only while its key set is still the usable one: after
        // a rotation it is verified again, and with keys too stale to use it fails closed.
        let issuer = entry.verified.issuer;
        let generation = match keys_for(vm, p, issuer, now_ms, cx) {
            KeysFor::Ready(_, g) => g,
            KeysFor::Else(step) => return step.with_fingerprint(&fp),
        };
        if entry.generation == generation {
            vm.metrics.cache_hit();
            return match gate.revalidate(&entry.verified, now) {
                Ok(()) => {
                    let (decision, reused) = authorize(gate, &entry, &req, &located, now);
                    done(decision, if reused { "decision" } else { "hit" })
                }
                Err(d) => {
                    p.plugin.cache.borrow_mut().remove(&hash);
                    Outcome::deny(d, Some(&fp))
                }
            };
        }
        p.plugin.cache.borrow_mut().remove(&hash);
    }
    vm.metrics.cache_miss();

    let (token, id) = match gate.route(located.token) {
        Ok(r) => r,
        Err(d) => return Outcome::deny(d, Some(&fp)),
    };
    let (keys, generation) = match keys_for(vm, p, id, now_ms, cx) {
        KeysFor::Ready(k, g) => (k, g),
        KeysFor::Else(step) => return step.with_fingerprint(&fp),
    };
    let keys: &KeySet = match &keys {
        Keys::Static(k) => k,
        Keys::Fetched(k) => k,
    };
    let source = p.plugin.source(id);
    match gate.verify_with(&token, id, keys, now, &crate::hostcrypto::verify) {
        Ok(v) => {
            let entry = Entry::new(Rc::new(v), generation);
            p.plugin.cache.borrow_mut().insert(hash, entry.clone());
            done(authorize(gate, &entry, &req, &located, now).0, "miss")
        }
        Err(d) if d.code == DenyCode::KeyNotFound && !p.refetched && unknown_kid(&token, keys) => {
            match source {
                Some(src) if vm.keys.refetch(src, now_ms, cx) => Step::Wait {
                    source: src.clone(),
                    refetch: true,
                },
                _ => Outcome::deny(d, Some(&fp)),
            }
        }
        Err(d) => Outcome::deny(d, Some(&fp)),
    }
}

/// The policy's decision for a verified token, reused from an equal earlier request when the
/// gate says that is sound ([`Gate::decision_key`]); true when it was reused. Policy errors
/// are never kept: the next request evaluates again.
fn authorize(
    gate: &Gate,
    entry: &Entry,
    req: &Request<'_>,
    located: &Located<'_>,
    now: i64,
) -> (Decision, bool) {
    let key = gate.decision_key(req, located, now);
    if let Some(d) = key.as_ref().and_then(|k| entry.decision(k)) {
        return (d, true);
    }
    let decision = gate.authorize(&entry.verified, req, located, now);
    if let Some(k) = key {
        if decision.code() != Some(DenyCode::PolicyError) {
            entry.remember(k, decision.clone());
        }
    }
    (decision, false)
}

/// An issuer's keys: borrowed from the configuration, or a fetched set.
enum Keys<'a> {
    Static(&'a KeySet),
    Fetched(Rc<KeySet>),
}

/// The keys of issuer `id` and their generation, or the step to take when there are none
/// usable (wait for a fetch, or fail closed).
fn keys_for<'p>(
    vm: &mut VmState,
    p: &'p Pending,
    id: IssuerId,
    now_ms: u64,
    cx: &dyn Context,
) -> KeysFor<'p> {
    let gate = &p.plugin.gate;
    let Some(src) = p.plugin.source(id) else {
        return match gate.static_keys(id) {
            Some(k) => KeysFor::Ready(Keys::Static(k), 0),
            None => KeysFor::Else(Step::Done(deny_outcome(Deny::new(
                DenyCode::InternalError,
                "issuer has no key source",
            )))),
        };
    };
    match vm.keys.availability(src, now_ms, cx) {
        Availability::Ready(k, g) => KeysFor::Ready(Keys::Fetched(k), g),
        Availability::Loading => KeysFor::Else(Step::Wait {
            source: src.clone(),
            refetch: false,
        }),
        Availability::Unavailable(why) => {
            let mut d = Deny::new(DenyCode::KeysUnavailable, why);
            d.issuer = gate.issuers().get(id).map(|i| i.name.clone());
            KeysFor::Else(Step::Done(deny_outcome(d)))
        }
    }
}

/// What [`keys_for`] found: keys and their generation, or the step to take instead.
enum KeysFor<'a> {
    Ready(Keys<'a>, u64),
    Else(Step),
}

impl Step {
    fn with_fingerprint(mut self, fp: &str) -> Step {
        if let Step::Done(o) = &mut self {
            o.fingerprint = Some(fp.to_string());
        }
        self
    }
}

/// A rotation shows up as a `kid` the current keys lack (not as a known key of the wrong type).
fn unknown_kid(token: &UntrustedToken<'_>, keys: &KeySet) -> bool {
    token.kid.as_deref().is_some_and(|k| !keys.has_kid(k))
}

/// Acts on an outcome: header changes and continue, or a local reply. Logs the decision.
fn respond(vm: &VmState, p: &Pending, mut outcome: Outcome, resumed: bool) -> Action {
    let gate = &p.plugin.gate;
    let report = gate.mode() == Mode::Report;
    let unverified = || {
        let (remove, strip) = gate.unverified_rewrite(&p.snapshot.request());
        rewrite(&remove, &[], &strip)
    };
    let applied = match &outcome.decision {
        Some(Decision::Allow(a)) => rewrite(&a.remove_headers, &a.headers, &a.strip_token),
        // The request goes on unauthenticated (a CORS preflight, a denial in report mode): no
        // identity header a client could have forged, and no token, goes with it.
        None => unverified(),
        Some(Decision::Deny(_)) if report => unverified(),
        Some(Decision::Deny(_)) => Ok(()),
    };
    // Failing to remove the token or a forged header must not let the request through, in
    // report mode either.
    let failed = applied.is_err();
    if let Err(e) = applied {
        log::error(&format!(
            "internal error: cannot rewrite request headers: {e}"
        ));
        let d = Deny::new(DenyCode::InternalError, "internal error");
        outcome.decision = Some(Decision::Deny(d));
    }
    let enforce = !report || failed;
    match &outcome.decision {
        None => {}
        Some(Decision::Allow(_)) => vm.metrics.allowed(),
        Some(Decision::Deny(d)) => vm.metrics.denied(d.code, enforce),
    }
    log_decision(p, &outcome, !enforce);
    if let (Some(Decision::Deny(d)), true) = (&outcome.decision, enforce) {
        return local_reply(gate.realm(), d);
    }
    if resumed {
        if let Err(s) = hostcalls::resume_http_request() {
            log::error(&format!("cannot resume request: {s:?}"));
        }
    }
    Action::Continue
}

/// Rewrites the request for the upstream: identity headers removed then set, the token
/// removed.
fn rewrite(
    remove: &[String],
    set: &[(String, String)],
    strip: &Option<Strip>,
) -> Result<(), String> {
    for h in remove {
        remove_header(h)?;
    }
    for (h, v) in set {
        headers::add(h, v)?;
    }
    match strip {
        None => Ok(()),
        Some(Strip::Header(h)) => remove_header(h),
        Some(Strip::Path(path)) => headers::set(":path", Some(path)),
        Some(Strip::Cookie(rest)) => {
            // HTTP/2 clients send one `cookie` header per cookie, and a set replaces only the
            // first: remove them all, then add back what remains.
            remove_header("cookie")?;
            match rest {
                Some(c) => headers::add("cookie", c),
                None => Ok(()),
            }
        }
    }
}

fn remove_header(name: &str) -> Result<(), String> {
    headers::set(name, None)
}

/// Answers the request: the deny's status, `WWW-Authenticate` for token problems, a small
/// JSON body, and any headers the policy asked for.
fn local_reply(realm: &str, d: &Deny) -> Action {
    let body = serde_json::json!({ "code": d.code.as_str(), "message": d.message }).to_string();
    let challenge = d.www_authenticate(realm);
    let mut headers: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    if let Some(c) = &challenge {
        headers.push(("www-authenticate", c));
    }
    for (k, v) in &d.response_headers {
        headers.push((k, v));
    }
    if let Err(s) =
        hostcalls::send_http_response(u32::from(d.status), headers, Some(body.as_bytes()))
    {
        log::error(&format!("cannot send the local reply: {s:?}"));
    }
    Action::Pause
}

/// A bug or host failure: fail closed with a 500 and a log line.
fn internal_error(why: &str) -> Action {
    log::error(&format!("internal error: {why}"));
    let d = Deny::new(DenyCode::InternalError, "internal error");
    local_reply("gateward", &d)
}

/// One structured line per decision. Never the token: its fingerprint stands in. Written field
/// by field rather than through a JSON map: it is built on every request.
fn log_decision(p: &Pending, outcome: &Outcome, report: bool) {
    let req = p.snapshot.request();
    let latency_us = vm::now_us().saturating_sub(p.started_us);
    let mut line = log::JsonLine::new("decision ");
    line.str("method", req.method);
    line.str("path", req.path_only());
    line.num("latency_us", latency_us);
    match &outcome.decision {
        None => {
            line.str("decision", "bypass");
            line.str("reason", "CORS preflight");
        }
        Some(Decision::Allow(a)) => {
            line.str("decision", "allow");
            line.str("issuer", &a.issuer);
            line.opt_str("sub", a.subject.as_deref());
            line.opt_str("jti", a.jti.as_deref());
            line.opt_str("reason", a.reason.as_deref());
        }
        Some(Decision::Deny(d)) => {
            line.str(
                "decision",
                if report { "deny (report only)" } else { "deny" },
            );
            line.num("status", u64::from(d.status));
            line.str("code", d.code.as_str());
            line.opt_str("issuer", d.issuer.as_deref());
            line.opt_str("sub", d.subject.as_deref());
            line.str("reason", &d.message);
        }
    }
    line.opt_str("token", outcome.fingerprint.as_deref());
    line.opt_str("cache", outcome.cache);
    log::info(&line.finish());
}
