//! A small HTTP/1.1 load generator for the latency runs and the memory run.
//!
//! Why not wrk: wrk is closed loop (each connection sends its next request when the previous
//! answer arrives), so it cannot hold a fixed rate, and a slow answer delays the requests behind
//! it without counting that wait (coordinated omission). wrk2 (`-R`) fixes both but is not in
//! Debian. This one is open loop: request `i` is due at `start + i / rate`, spread over the
//! keep-alive connections (one thread each), and its latency is measured from when it was due,
//! so time spent waiting behind a slow answer counts. Without a rate it sends as fast as the
//! connections allow (the memory run).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Where requests go: `POST <path>` on 127.0.0.1:`port`.
#[derive(Debug, Clone)]
pub struct Target {
    /// The listener's port.
    pub port: u16,
    /// The request path.
    pub path: String,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Requests asked for.
    pub planned: u64,
    /// Requests sent (fewer than planned when the run hit its time limit: an overloaded server).
    pub sent: u64,
    /// Answers with another status than 200.
    pub bad_status: u64,
    /// Requests that failed on the socket (the connection is reopened).
    pub io_errors: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Latency percentiles, microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// The slowest.
    pub max_us: u64,
}

impl LoadResult {
    /// Requests that did not get a 200.
    pub fn failed(&self) -> u64 {
        self.bad_status + self.io_errors
    }

    /// Requests per second achieved.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.sent as f64 / self.seconds
        } else {
            0.0
        }
    }
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn connect(port: u16) -> io::Result<Conn> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(Conn {
        stream,
        buf: Vec::with_capacity(8192),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    /// Sends one request and reads its answer (`Content-Length` framed; Envoy's direct and
    /// local replies all are). Returns the status.
    fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request)?;
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("no status line"))?;
                if head.contains("transfer-encoding: chunked") {
                    return Err(bad("chunked answers are not supported"));
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let need = end + 4 + length;
                while self.buf.len() < need {
                    let n = self.stream.read(&mut chunk)?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                if head.contains("connection: close") {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed"));
                }
                return Ok(status);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The request bytes for each token.
fn requests(target: &Target, tokens: &[String]) -> Vec<Vec<u8>> {
    tokens
        .iter()
        .map(|t| {
            format!(
                "POST {} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: Bearer {t}\r\ncontent-length: 0\r\n\r\n",
                target.path, target.port
            )
            .into_bytes()
        })
        .collect()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sends `count` requests over `connections` keep-alive connections, request `i` carrying token
/// `i % tokens.len()`; at `rate` requests/s (open loop) or as fast as possible (`None`). Stops
/// sending after `limit` (a server slower than the rate would otherwise stretch the run).
pub fn run(
    target: &Target,
    tokens: &[String],
    rate: Option<u32>,
    count: usize,
    connections: usize,
    limit: Duration,
) -> Result<LoadResult, String> {
    if tokens.is_empty() || connections == 0 {
        return Err("no tokens or no connections".into());
    }
    let reqs = requests(target, tokens);
    let mut conns = (0..connections)
        .map(|_| connect(target.port))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot connect to 127.0.0.1:{}: {e}", target.port))?;
    let interval = rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    // Everyone starts together, a little after the threads are up.
    let start = Instant::now() + Duration::from_millis(20);
    let stop = start + limit;
    let per_thread: Vec<(Vec<u64>, u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .iter_mut()
            .enumerate()
            .map(|(c, conn)| {
                let reqs = &reqs;
                s.spawn(move || {
                    let mut lat = Vec::with_capacity(count / connections + 1);
                    let (mut bad, mut errs, mut sent) = (0u64, 0u64, 0u64);
                    let now = Instant::now();
                    if start > now {
                        std::thread::sleep(start - now);
                    }
                    let mut i = c;
                    while i < count && Instant::now() < stop {
                        sent += 1;
                        let due = match interval {
                            Some(iv) => {
                                let due = start + iv.mul_f64(i as f64);
                                let now = Instant::now();
                                if due > now {
                                    std::thread::sleep(due - now);
                                }
                                due
                            }
                            None => Instant::now(),
                        };
                        match conn.exchange(&reqs[i % reqs.len()]) {
                            Ok(200) => lat.push(due.elapsed().as_micros() as u64),
                            Ok(_) => {
                                bad += 1;
                                lat.push(due.elapsed().as_micros() as u64);
                            }
                            Err(_) => {
                                errs += 1;
                                if let Ok(fresh) = connect(target.port) {
                                    *conn = fresh;
                                }
                            }
                        }
                        i += connections;
                    }
                    (lat, bad, errs, sent)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut all = Vec::with_capacity(count);
    let (mut bad_status, mut io_errors, mut sent) = (0, 0, 0);
    for (lat, bad, errs, n) in per_thread {
        all.extend(lat);
        bad_status += bad;
        io_errors += errs;
        sent += n;
    }
    all.sort_unstable();
    Ok(LoadResult {
        planned: count as u64,
        sent,
        bad_status,
        io_errors,
        seconds,
        p50_us: percentile(&all, 50.0),
        p99_us: percentile(&all, 99.0),
        p999_us: percentile(&all, 99.9),
        max_us: all.last().copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 99.9), 100);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
