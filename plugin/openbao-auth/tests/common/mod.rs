#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(dead_code)]
//! Shared test helpers: a settable clock, a scripted fetcher, requests, tokens.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateward_devkit::{claims, fixtures, SigningKey};
use gateward_openbao_auth::fetch::BoxFuture;
use gateward_openbao_auth::{
    Backend, Clock, Error, FetchError, HttpFetch, HttpsFetcher, MemoryStorage, Operation, Request,
    Response,
};
use serde_json::{json, Map, Value};

pub const GITHUB: &str = "https://token.actions.githubusercontent.com";
pub const AUD: &str = "https://github.com/octo-org";
/// The tests' "now" for static-key tests.
pub const NOW: i64 = 1_760_000_000;

/// A clock at a settable offset from a base (Unix seconds).
#[derive(Debug)]
pub struct TestClock {
    base: AtomicI64,
}

impl TestClock {
    pub fn at(secs: i64) -> Arc<TestClock> {
        Arc::new(TestClock {
            base: AtomicI64::new(secs),
        })
    }
    /// The system time, as a settable clock.
    pub fn system() -> Arc<TestClock> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        TestClock::at(now)
    }
    pub fn set(&self, secs: i64) {
        self.base.store(secs, Ordering::SeqCst);
    }
    pub fn advance(&self, secs: i64) {
        self.base.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn secs(&self) -> i64 {
        self.base.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.secs() as u64)
    }
}

/// A fetcher answering from a script of documents per URL (the last one repeats), counting
/// requests: the network as seen by the key cache, without a server.
type Answers = VecDeque<Result<Vec<u8>, String>>;

#[derive(Debug, Default)]
pub struct ScriptedFetcher {
    script: Mutex<Vec<(String, Answers)>>,
    pub calls: AtomicUsize,
}

impl ScriptedFetcher {
    pub fn new() -> Arc<ScriptedFetcher> {
        Arc::new(ScriptedFetcher::default())
    }
    pub fn push(&self, url: &str, answer: Result<Vec<u8>, String>) {
        let mut s = self.script.lock().unwrap();
        match s.iter_mut().find(|(u, _)| u == url) {
            Some((_, q)) => q.push_back(answer),
            None => s.push((url.to_string(), VecDeque::from([answer]))),
        }
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl HttpFetch for ScriptedFetcher {
    fn get<'a>(
        &'a self,
        url: &'a str,
        max_bytes: usize,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = {
            let mut s = self.script.lock().unwrap();
            match s.iter_mut().find(|(u, _)| u == url) {
                Some((_, q)) if q.len() > 1 => q.pop_front().unwrap(),
                Some((_, q)) => q.front().cloned().unwrap(),
                None => Err(format!("no route to {url}")),
            }
        };
        Box::pin(async move {
            let body = answer.map_err(FetchError)?;
            if body.len() > max_bytes {
                return Err(FetchError(format!("{url}: over {max_bytes} bytes")));
            }
            Ok(body)
        })
    }
}

pub fn backend(clock: Arc<TestClock>) -> Backend {
    Backend::with_parts(Arc::new(HttpsFetcher::new()), clock)
}

pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub fn req(op: Operation, path: &str, data: Value) -> Request {
    let mut r = Request::new(op, path);
    r.data = obj(data);
    r.remote_addr = Some(String::from("127.0.0.1"));
    r
}

pub async fn write(
    b: &Backend,
    s: &MemoryStorage,
    path: &str,
    data: Value,
) -> Result<Response, Error> {
    let (_, exists) = b
        .existence_check(s, &req(Operation::Update, path, Value::Null))
        .await?;
    let op = if exists {
        Operation::Update
    } else {
        Operation::Create
    };
    b.handle(s, req(op, path, data)).await
}

pub async fn read(b: &Backend, s: &MemoryStorage, path: &str) -> Response {
    b.handle(s, req(Operation::Read, path, Value::Null))
        .await
        .unwrap()
}

pub async fn login(
    b: &Backend,
    s: &MemoryStorage,
    role: &str,
    jwt: &str,
) -> Result<Response, Error> {
    b.handle(
        s,
        req(
            Operation::Update,
            "login",
            json!({"role": role, "jwt": jwt}),
        ),
    )
    .await
}

/// The message of a user error, or a panic naming what came instead.
pub fn invalid(r: Result<Response, Error>) -> String {
    match r {
        Err(Error::Invalid(m)) => m,
        other => panic!("expected a user error, got {other:?}"),
    }
}

pub fn key_a() -> SigningKey {
    fixtures::rsa_a()
}
pub fn key_b() -> SigningKey {
    fixtures::rsa_b()
}

/// A GitHub Actions issuer trusting key A (kid "a") inline.
pub fn github_config() -> Value {
    json!({"issuers": [{
        "name": "github",
        "preset": "github-actions",
        "audiences": [AUD],
        "jwks": gateward_devkit::jwks(&[("a", &key_a())]),
    }]})
}

/// GitHub Actions claims issued at `iat` (exp = iat + 300), with overrides (`null` removes).
pub fn github_claims(iat: i64, overrides: Value) -> Value {
    let mut c = claims::github_actions(iat, AUD);
    if let (Value::Object(c), Value::Object(o)) = (&mut c, overrides) {
        for (k, v) in o {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    c
}

pub fn mint(key: &SigningKey, kid: &str, claims: &Value) -> String {
    gateward_devkit::mint(key, Some(kid), claims).unwrap()
}

/// A token from key A, issued at NOW - 10.
pub fn github_token(overrides: Value) -> String {
    mint(&key_a(), "a", &github_claims(NOW - 10, overrides))
}

/// Every log line of this test binary (`<LEVEL> <message>`), captured from the first
/// [`capture_logs`] on: what the plugin's logger would send to OpenBao's log.
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOGS.lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Starts capturing log lines (once per test binary; later calls do nothing).
pub fn capture_logs() {
    if log::set_logger(&CAPTURE).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Whether a captured log line contains every one of `parts`.
pub fn logged(parts: &[&str]) -> bool {
    LOGS.lock()
        .unwrap()
        .iter()
        .any(|l| parts.iter().all(|p| l.contains(p)))
}
