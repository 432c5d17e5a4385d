//! The loopback HTTP server under [`crate::issuer`] and [`crate::upstream`]: `tiny_http` bound
//! to 127.0.0.1, a few worker threads, one request per connection (`connection: close`, so no
//! idle keep-alive connection outlives a stop), and a stop that joins the workers and returns
//! once the port can be bound again.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Largest request body read; a larger one is answered 413 without reaching the handler.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// How often idle workers look at the stop flag.
const POLL: Duration = Duration::from_millis(25);

/// How long a stop waits for the listening socket to close.
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// One request, read whole.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target: path and query.
    pub url: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Vec<u8>,
}

impl Incoming {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.url
            .split_once('?')
            .map_or(self.url.as_str(), |(p, _)| p)
    }

    /// The raw query string (empty when there is none).
    pub fn query(&self) -> &str {
        self.url.split_once('?').map_or("", |(_, q)| q)
    }
}

/// One response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Write `body` alone, as the whole answer: no status line or headers (fault injection).
    pub raw: bool,
}

impl Reply {
    /// A JSON response (pretty-printed: people read these in terminals).
    pub fn json(status: u16, value: &Value) -> Reply {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body,
            raw: false,
        }
    }

    /// A plain-text response, exactly `text`.
    pub fn text(status: u16, text: String) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "text/plain; charset=utf-8".into())],
            body: text.into_bytes(),
            raw: false,
        }
    }

    /// Exactly `bytes` on the connection, not an HTTP response (fault injection).
    pub fn raw(bytes: Vec<u8>) -> Reply {
        Reply {
            status: 0,
            headers: Vec::new(),
            body: bytes,
            raw: true,
        }
    }

    /// Adds a header unless one of that name is there already.
    pub fn or_header(self, name: &'static str, value: &str) -> Reply {
        if self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            self
        } else {
            self.with(name, value)
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// What answers each request.
pub(crate) type Handler = dyn Fn(&Incoming) -> Reply + Send + Sync;

/// A running server.
pub(crate) struct Server {
    server: Option<Arc<tiny_http::Server>>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

/// A bound listening socket, not serving yet (requests wait in the backlog).
pub(crate) struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// Binds 127.0.0.1:`port` (0: a free port). Loopback only, always: these are development
    /// servers with throwaway keys.
    pub fn new(port: u16) -> io::Result<Bound> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let addr = listener.local_addr()?;
        Ok(Bound { listener, addr })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers requests with `handler` on `workers` threads named `name`.
    pub fn serve(self, workers: usize, name: &str, handler: Arc<Handler>) -> io::Result<Server> {
        let addr = self.addr;
        let server = Arc::new(
            tiny_http::Server::from_listener(self.listener, None)
                .map_err(|e| io::Error::other(e.to_string()))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let mut running = Server {
            server: Some(Arc::clone(&server)),
            stop: Arc::clone(&stop),
            workers: Vec::new(),
            addr,
        };
        for i in 0..workers.max(1) {
            let (server, stop, handler) =
                (Arc::clone(&server), Arc::clone(&stop), Arc::clone(&handler));
            let worker = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&server, &stop, &*handler));
            match worker {
                Ok(w) => running.workers.push(w),
                Err(e) => {
                    running.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(running)
    }
}

impl Server {
    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stops accepting, joins the workers and waits (a few seconds at most) until the port is
    /// free. Idempotent.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(server) = self.server.take() {
            // The last handle: dropping it ends tiny_http's accept thread, which closes the
            // listening socket shortly after.
            drop(server);
            let deadline = Instant::now() + PORT_RELEASE_WAIT;
            while TcpListener::bind(self.addr).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn work(server: &tiny_http::Server, stop: &AtomicBool, handler: &Handler) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => answer(request, handler),
            Ok(None) => {}
            // The accept loop failed (it has stopped); keep polling until told to stop.
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn answer(mut request: tiny_http::Request, handler: &Handler) {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    let reply = match read {
        Err(e) => Reply::json(
            400,
            &serde_json::json!({"error": "bad_request", "message": format!("cannot read the body: {e}")}),
        ),
        Ok(_) if body.len() > MAX_BODY => Reply::json(
            413,
            &serde_json::json!({"error": "too_large", "message": format!("the body is over {MAX_BODY} bytes")}),
        ),
        Ok(_) => {
            let incoming = Incoming {
                method: request.method().as_str().to_string(),
                url: request.url().to_string(),
                headers: request
                    .headers()
                    .iter()
                    .map(|h| {
                        (
                            h.field.as_str().as_str().to_ascii_lowercase(),
                            h.value.as_str().to_string(),
                        )
                    })
                    .collect(),
                body,
            };
            handler(&incoming)
        }
    };
    if reply.raw {
        let mut writer = request.into_writer();
        let _ = writer.write_all(&reply.body);
        let _ = writer.flush();
        return;
    }
    let head_only = *request.method() == tiny_http::Method::Head;
    // Written by hand (tiny_http's `Response` cannot say `connection: close`): one request per
    // connection, so clients never hold idle connections to a server that may stop.
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {}\r\n", one_line(value)));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        reply.body.len()
    ));
    let mut writer = request.into_writer();
    let _ = writer.write_all(head.as_bytes());
    if !head_only {
        let _ = writer.write_all(&reply.body);
    }
    let _ = writer.flush();
}

/// A header value on one line (values are ours, but never let one split the head).
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
