//! A minimal HTTP/1.1 client for the loopback servers of the demo and the end-to-end tests
//! (Envoy's listener and admin API, the dev issuer). One request per connection
//! (`Connection: close`); `Content-Length` and chunked bodies. Plain `http://` only.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a request may take end to end.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body is not JSON ({e}): {}", self.text()),
            )
        })
    }
}

/// `GET url`.
pub fn get(url: &str) -> io::Result<Response> {
    request("GET", url, &[], b"")
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    request_bytes(method, url, &headers, body)
}

/// [`request`] with header values sent byte for byte (bytes 0x80–0xFF are legal in HTTP/1.1
/// field values; tests send them to check nothing trips over them).
pub fn request_bytes(
    method: &str,
    url: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> io::Result<Response> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{url}: {why}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    let mut head = head.into_bytes();
    for (k, v) in headers {
        head.extend_from_slice(format!("{k}: ").as_bytes());
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head)?;
    stream.write_all(body)?;
    let head_only = method == "HEAD";
    // Read until the response is complete rather than until the server closes: Envoy holds a
    // connection it answered locally open for its delayed-close timeout (1 s) first.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while !complete(&raw, head_only) {
        match stream.read(&mut buf)? {
            0 => break,
            n => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    parse(&raw, head_only)
}

/// Whether `raw` holds a whole response: headers, then `content-length` bytes or a chunked body
/// to its last chunk. Without either, only the server closing ends it.
fn complete(raw: &[u8], head_only: bool) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    if head_only {
        return true;
    }
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or_default()).to_ascii_lowercase();
    let body = raw.len() - split - 4;
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body >= len;
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return raw.ends_with(b"\r\n0\r\n\r\n") || (body == 5 && raw.ends_with(b"0\r\n\r\n"));
    }
    false
}

fn parse(raw: &[u8], head_only: bool) -> io::Result<Response> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let (head, rest) = raw.split_at(split);
    let body = rest.get(4..).unwrap_or_default();
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunked body"))?
    } else {
        body.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let (size_line, rest) = data.split_at(line_end);
        let size_text = std::str::from_utf8(size_line).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let rest = rest.get(2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        data = rest.get(size + 2..)?;
    }
}

/// Polls `url` until it answers 200, giving up when `child` exits (then set to None) or after
/// `limit`. Err says which, naming the process `what`.
pub fn wait_for_200(
    child: &mut Option<std::process::Child>,
    what: &str,
    url: &str,
    limit: std::time::Duration,
    interval: std::time::Duration,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    loop {
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                *child = None;
                return Err(format!("{what} exited with {status}"));
            }
        }
        if get(url).is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("{url} did not answer 200 within {limit:?}"));
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::{complete, parse};

    #[test]
    fn a_response_is_complete_by_its_length_or_last_chunk() {
        let head = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n";
        assert!(!complete(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-len",
            false
        ));
        assert!(!complete(head, false));
        assert!(
            complete(head, true),
            "HEAD: the headers are the whole answer"
        );
        assert!(complete(&[&head[..], b"hi"].concat(), false));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
        assert!(!complete(chunked, false));
        assert!(complete(&[&chunked[..], b"0\r\n\r\n"].concat(), false));
        assert!(!complete(b"HTTP/1.0 200 OK\r\n\r\nuntil close", false));
    }

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\ncontent-length: 2\r\n\r\nhi",
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"x\""));
        assert_eq!(r.body, b"hi");
        let r = parse(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            false,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.body, b"abcde");
    }
}
