//! The request header map through the ABI directly, so that no host answer can panic the
//! module.
//!
//! The SDK's `hostcalls::get_map` unwraps `String::from_utf8` on every name and value, but
//! HTTP/1.1 allows bytes 0x80–0xFF in header values (obs-text) and Envoy passes them on: one
//! such header from any client would panic the module and trap the VM. Here invalid UTF-8
//! becomes U+FFFD, so the request is decided like any other (a token carrying such bytes fails
//! to decode; the policy sees the replacement). Likewise the SDK's header edits panic on any
//! status but Ok; these return it, so a refused edit fails the request closed (a 500) instead of
//! trapping the VM.

/// Map type `HttpRequestHeaders` in proxy-wasm ABI 0.2.1.
const HTTP_REQUEST_HEADERS: u32 = 0;
/// Status `Ok`.
const OK: u32 = 0;

// Declared here rather than taken from the SDK, whose wrappers panic on what they dislike.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        name: *const u8,
        name_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        name: *const u8,
        name_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, name: *const u8, name_size: usize) -> u32;
}

/// Adds a request header beside any others of that name.
pub fn add(name: &str, value: &str) -> Result<(), String> {
    // SAFETY: the host only reads the two slices, during the call.
    #[allow(unsafe_code)]
    let status = unsafe {
        proxy_add_header_map_value(
            HTTP_REQUEST_HEADERS,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
    checked("add", name, status)
}

/// Sets a request header (Envoy replaces the first of that name) or, with None, removes every
/// one of that name.
pub fn set(name: &str, value: Option<&str>) -> Result<(), String> {
    // SAFETY: as in `add`.
    #[allow(unsafe_code)]
    let status = unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                HTTP_REQUEST_HEADERS,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(HTTP_REQUEST_HEADERS, name.as_ptr(), name.len()),
        }
    };
    checked(if value.is_some() { "set" } else { "remove" }, name, status)
}

fn checked(what: &str, name: &str, status: u32) -> Result<(), String> {
    match status {
        OK => Ok(()),
        s => Err(format!("{what} {name}: the host answered status {s}")),
    }
}

/// The request's headers, pseudo-headers included, in Envoy's order.
pub fn request_headers() -> Result<Vec<(String, String)>, String> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size into the two locals. The buffer it points
    // to was allocated through the SDK's `proxy_on_memory_allocate`, which hands out a
    // `Vec<u8>` of exactly `size` bytes and forgets it, so it is taken back as that `Vec`
    // (and freed with it) exactly once.
    #[allow(unsafe_code)]
    let bytes = unsafe {
        let status = proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, &mut data, &mut size);
        if status != OK {
            return Err(format!(
                "proxy_get_header_map_pairs returned status {status}"
            ));
        }
        if data.is_null() {
            return Ok(Vec::new());
        }
        Vec::from_raw_parts(data, size, size)
    };
    parse(&bytes).ok_or_else(|| format!("the host's header map ({} bytes) is malformed", size))
}

/// Reads a serialized map: a `u32` count, a (`u32` name length, `u32` value length) pair per
/// entry, then each name and value followed by a NUL byte (little-endian, as on wasm32).
/// None when the sizes do not add up.
pub fn parse(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let count = word(0)?;
    // Each entry takes at least 10 bytes (two lengths, two NULs): a bound before allocating.
    if count > bytes.len() / 10 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = count.checked_mul(8)?.checked_add(4)?;
    let mut text = |len: usize| -> Option<String> {
        let end = at.checked_add(len)?;
        let raw = bytes.get(at..end)?;
        // `from_utf8` checks ASCII a word at a time; the lossy conversion walks byte by byte,
        // so it runs only for the rare value that is not UTF-8.
        let s = match core::str::from_utf8(raw) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        };
        if *bytes.get(end)? != 0 {
            return None;
        }
        at = end + 1;
        Some(s)
    };
    for i in 0..count {
        let lengths = 4 + i * 8;
        let (name_len, value_len) = (word(lengths)?, word(lengths + 4)?);
        let name = text(name_len)?;
        let value = text(value_len)?;
        pairs.push((name, value));
    }
    (at == bytes.len()).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            for part in [k, v] {
                out.extend_from_slice(part);
                out.push(0);
            }
        }
        out
    }

    #[test]
    fn reads_a_map_and_replaces_invalid_utf8() {
        let bytes = serialize(&[
            (b":path", b"/deploy"),
            (b"x-latin1", b"caf\xe9"),
            (b"x-empty", b""),
        ]);
        let pairs = parse(&bytes).unwrap_or_default();
        assert_eq!(
            pairs,
            [
                (":path".to_string(), "/deploy".to_string()),
                ("x-latin1".to_string(), "caf\u{fffd}".to_string()),
                ("x-empty".to_string(), String::new()),
            ]
        );
        assert_eq!(parse(&[]), Some(Vec::new()));
    }

    #[test]
    fn refuses_maps_whose_sizes_do_not_add_up() {
        let good = serialize(&[(b"a", b"b"), (b"cc", b"dd")]);
        assert!(parse(&good).is_some());
        // Every truncation, a trailing byte, a missing NUL, and a count far too large.
        for end in 0..good.len() {
            if end > 0 {
                assert_eq!(parse(&good[..end]), None, "truncated to {end}");
            }
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(parse(&longer), None);
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert_eq!(parse(&no_nul), None);
        let mut huge = good;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&huge), None);
    }
}
