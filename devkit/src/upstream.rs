//! [`Echo`]: the API behind the gate in the demo and the end-to-end tests. It answers every
//! request `200` with a JSON description of what reached it, so a test can see exactly which
//! headers got through Envoy (claim headers present, token and forged identity headers gone).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Map, Value};

use crate::serve::{Bound, Incoming, Reply, Server};

/// How many echoed requests [`Echo::received`] keeps (the oldest are dropped first).
pub const KEEP: usize = 1000;

/// An HTTP echo server on 127.0.0.1 (a free port). Every request gets `200`,
/// `content-type: application/json` and the body
/// `{"method": "POST", "path": "/deploy?x=1", "headers": {"name": "value", ...}}`: header names
/// lower-cased, repeated headers joined with `", "`. Stops on drop.
pub struct Echo {
    server: Server,
    received: Arc<Mutex<Vec<Value>>>,
}

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Echo").field("port", &self.port()).finish()
    }
}

impl Echo {
    /// Starts on a free port of 127.0.0.1.
    pub fn start() -> io::Result<Echo> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let server = Bound::new(0)?.serve(
            2,
            "gateward-echo",
            Arc::new(move |req: &Incoming| {
                let echoed = echo(req);
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() >= KEEP {
                    log.remove(0);
                }
                log.push(echoed.clone());
                Reply::json(200, &echoed)
            }),
        )?;
        Ok(Echo { server, received })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// What it echoed so far (the last [`KEEP`] requests), oldest first: a test can check that a
    /// denied request never reached the upstream.
    pub fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops serving: joins its threads and returns once the port is free.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// The JSON body describing `req`.
fn echo(req: &Incoming) -> Value {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        match headers.get_mut(name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), Value::String(value.clone()));
            }
        }
    }
    json!({"method": req.method, "path": req.url, "headers": headers})
}
