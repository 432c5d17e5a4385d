//! The request attributes a host passes in, and finding the token in them.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

/// One HTTP request as the host sees it. Header names may be in any case.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path with its query string, as sent (Envoy's `:path`).
    pub path: &'a str,
    /// The authority (`:authority` / `Host`).
    pub host: &'a str,
    /// Every header, in order.
    pub headers: &'a [(String, String)],
}

impl<'a> Request<'a> {
    /// Values of the header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &'a str {
        self.path.split_once('?').map_or(self.path, |(p, _)| p)
    }

    /// The raw query string (after `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        self.path.split_once('?').map(|(_, q)| q)
    }

    /// Refuses a method or path that upstreams may read differently from the policy
    /// (`docs/policies.md#what-the-gate-refuses-before-the-policy`).
    ///
    /// The method must be an RFC 9110 token in upper case: frameworks that upper-case it
    /// (Django, Flask) and ones that compare it exactly (Go) would otherwise disagree with a
    /// policy that compares strings. The path (before `?`) may hold no control character, no
    /// backslash, no percent-encoded `.`, `/`, `\` or control character, and no `.` or `..`
    /// segment, with or without `;` parameters: Tomcat, Jetty and Spring strip `;parameters`
    /// and then resolve `..`, so `/status/..;/admin` is `/admin` upstream.
    pub fn check(&self) -> Result<(), RequestError> {
        check_method(self.method)?;
        check_path(self.path_only())
    }
}

/// Why a request's method or path is refused before the token is looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The method is empty or has a character outside RFC 9110's `tchar`.
    #[error("method {0:?} is not an RFC 9110 token")]
    MethodNotToken(String),
    /// The method has lower-case letters (`post`): upstreams disagree on what it means.
    #[error("method {0:?} is not upper case (send {1:?})")]
    MethodNotUpperCase(String, String),
    /// A control character (U+0000–U+001F, U+007F) in the path, at this byte offset.
    #[error("path has a control character at byte {0}")]
    PathControl(usize),
    /// A backslash in the path, at this byte offset (some servers read it as `/`).
    #[error("path has a backslash at byte {0}")]
    PathBackslash(usize),
    /// A percent-encoded `.`, `/`, `\` or control character, at this byte offset.
    #[error("path has the percent-encoded character {escape} at byte {at}")]
    PathEncoded {
        /// The escape as written, e.g. `%2E`.
        escape: String,
        /// Its byte offset in the path.
        at: usize,
    },
    /// A `.` or `..` segment (possibly with `;` parameters: `..;x`), at this byte offset.
    #[error("path has the dot segment {segment:?} at byte {at}")]
    PathDotSegment {
        /// The segment as written.
        segment: String,
        /// Its byte offset in the path.
        at: usize,
    },
}

impl RequestError {
    /// The deny code for this refusal: `method_invalid` or `path_ambiguous`.
    pub fn code(&self) -> crate::DenyCode {
        match self {
            RequestError::MethodNotToken(_) | RequestError::MethodNotUpperCase(..) => {
                crate::DenyCode::MethodInvalid
            }
            _ => crate::DenyCode::PathAmbiguous,
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The method is a non-empty upper-case token (see [`Request::check`]).
pub fn check_method(method: &str) -> Result<(), RequestError> {
    let shown = || method.chars().take(32).collect::<String>();
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(RequestError::MethodNotToken(shown()));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        let upper = method.to_ascii_uppercase().chars().take(32).collect();
        return Err(RequestError::MethodNotUpperCase(shown(), upper));
    }
    Ok(())
}

/// The path (without its query) has nothing upstreams may resolve differently (see
/// [`Request::check`]).
pub fn check_path(path: &str) -> Result<(), RequestError> {
    let bytes = path.as_bytes();
    for (at, &b) in bytes.iter().enumerate() {
        match b {
            0..=0x1f | 0x7f => return Err(RequestError::PathControl(at)),
            b'\\' => return Err(RequestError::PathBackslash(at)),
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
                if let (Some(h), Some(l)) = (hex(at + 1), hex(at + 2)) {
                    let decoded = h * 16 + l;
                    if matches!(decoded, 0..=0x1f | 0x7f | 0x2e | 0x2f | 0x5c) {
                        return Err(RequestError::PathEncoded {
                            escape: String::from(path.get(at..at + 3).unwrap_or("%")),
                            at,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    let mut at = 0;
    for segment in path.split('/') {
        // `..;x=1` is `..` to a server that strips path parameters.
        let bare = segment.split_once(';').map_or(segment, |(s, _)| s);
        if bare == "." || bare == ".." {
            return Err(RequestError::PathDotSegment {
                segment: segment.chars().take(64).collect(),
                at,
            });
        }
        at += segment.len() + 1;
    }
    Ok(())
}

/// Where a token may be found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSource {
    /// A header name, e.g. `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// With `header`: the scheme before the token, matched case-insensitively
    /// (default `Bearer `; empty for a header that holds the bare token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A query parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A cookie name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

impl TokenSource {
    /// `Authorization: Bearer <token>`, the default.
    pub fn bearer() -> TokenSource {
        TokenSource {
            header: Some(String::from("authorization")),
            prefix: None,
            query: None,
            cookie: None,
        }
    }

    /// The scheme prefix used for a header source.
    pub fn header_prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("Bearer ")
    }

    /// Finds this source's token in `req`. A header present without the prefix (another auth
    /// scheme) is not a token.
    pub fn find<'r>(&self, req: &Request<'r>) -> Vec<&'r str> {
        let mut found = Vec::new();
        if let Some(name) = &self.header {
            let prefix = self.header_prefix();
            // A proxy may join repeated headers into one with commas (Envoy does for
            // `authorization`); a JWS never contains a comma, so each part is its own credential.
            for v in req
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .flat_map(|(_, v)| v.split(','))
            {
                let v = v.trim_start();
                if let Some(head) = v.get(..prefix.len()) {
                    if head.eq_ignore_ascii_case(prefix) {
                        found.push(v.get(prefix.len()..).unwrap_or(""));
                    }
                }
            }
        }
        if let (Some(name), Some(q)) = (&self.query, req.query()) {
            found.extend(q.split('&').filter_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                name_matches(k, name).then_some(v)
            }));
        }
        if let Some(name) = &self.cookie {
            for header in req
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            {
                found.extend(
                    cookies(&header.1)
                        .filter(|(k, _)| name_matches(k, name))
                        .map(|(_, v)| v),
                );
            }
        }
        found
    }
}

/// Iterates `name=value` pairs of a `Cookie` header.
pub fn cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        Some((k.trim(), v.trim()))
    })
}

/// Whether a query parameter or cookie name `k`, as written, is the configured `name`: compared
/// after percent-decoding, as the upstream's framework may read it (`access%5Ftoken` and
/// `access%5ftoken` are `access_token`). The one comparison for finding a token, stripping it
/// and keeping it out of the policy input, so that whatever is found is also removed.
pub fn name_matches(k: &str, name: &str) -> bool {
    k == name || (k.contains(['%', '+']) && percent_decode(k) == name)
}

/// `path` with every `name=...` query parameter removed, however its name is percent-encoded
/// (so a token in the query never reaches the upstream).
pub fn strip_query_param(path: &str, name: &str) -> String {
    let Some((p, q)) = path.split_once('?') else {
        return String::from(path);
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| !name_matches(kv.split_once('=').map_or(*kv, |(k, _)| k), name))
        .collect();
    if kept.is_empty() {
        String::from(p)
    } else {
        alloc::format!("{p}?{}", kept.join("&"))
    }
}

/// A `Cookie` header value with the cookie `name` removed, however its name is
/// percent-encoded; None when nothing is left.
pub fn strip_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<String> = cookies(header)
        .filter(|(k, _)| !name_matches(k, name))
        .map(|(k, v)| alloc::format!("{k}={v}"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Percent-decodes a query component (`+` is a space). Invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match b {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b),
            },
            b'+' => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;

    fn h(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn finds_tokens_in_headers_queries_and_cookies() {
        let headers = vec![
            h("Authorization", "bearer abc"),
            h("cookie", "a=1; ci=tok; b=2"),
        ];
        let req = Request {
            method: "GET",
            path: "/x?access_token=q1&y=2",
            host: "h",
            headers: &headers,
        };
        assert_eq!(TokenSource::bearer().find(&req), vec!["abc"]);
        let q = TokenSource {
            header: None,
            prefix: None,
            query: Some("access_token".into()),
            cookie: None,
        };
        assert_eq!(q.find(&req), vec!["q1"]);
        let c = TokenSource {
            header: None,
            prefix: None,
            query: None,
            cookie: Some("ci".into()),
        };
        assert_eq!(c.find(&req), vec!["tok"]);
        let basic = vec![h("authorization", "Basic Zm9v")];
        let req = Request {
            method: "GET",
            path: "/",
            host: "h",
            headers: &basic,
        };
        assert!(TokenSource::bearer().find(&req).is_empty());
    }

    #[test]
    fn strips_tokens() {
        assert_eq!(strip_query_param("/a?t=1&b=2&t=3", "t"), "/a?b=2");
        assert_eq!(strip_query_param("/a?t=1", "t"), "/a");
        // However the name is encoded: the upstream decodes it back to `access_token`.
        assert_eq!(
            strip_query_param("/a?access%5Ftoken=1&access%5ftoken=2&b=3", "access_token"),
            "/a?b=3"
        );
        let q = TokenSource {
            header: None,
            prefix: None,
            query: Some("access_token".into()),
            cookie: None,
        };
        let req = Request {
            method: "GET",
            path: "/x?access%5Ftoken=q1&access_token=q2",
            host: "h",
            headers: &[],
        };
        assert_eq!(q.find(&req), vec!["q1", "q2"], "both count (so: ambiguous)");
        assert_eq!(strip_cookie("a=1; t=x", "t").unwrap(), "a=1");
        assert_eq!(strip_cookie("t=x", "t"), None);
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b c%zz");
    }
}
