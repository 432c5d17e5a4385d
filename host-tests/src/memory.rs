//! Moving bytes across the module boundary: the pair serialization of header maps, and reads and
//! writes of guest memory (`docs/proxy-wasm-abi.md` §3).

use crate::state::VmState;
use wasmtime::{format_err, Caller, Result};

/// cpp-host refuses (reads as empty) serialized maps above these (`limits.h`).
const PAIRS_MAX_BYTES: usize = 1 << 20;
const PAIRS_MAX_COUNT: usize = 1024;

/// Serializes pairs as the ABI does: `u32 n`, `n × (u32 key_len, u32 value_len)`, then each key
/// and value followed by a NUL. All integers little-endian.
pub(crate) fn serialize_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(k, v)| 10 + k.as_ref().len() + v.as_ref().len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len_u32(k.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len_u32(v.as_ref().len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Parses a serialized map the way cpp-host's `PairsUtil::toPairs` does: exact length, NUL
/// terminators, at most 1 MiB and 1024 pairs. Anything else is `None`, which Envoy treats as an
/// empty map (it never reports the error to the module).
pub(crate) fn parse_pairs(buf: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if buf.len() > PAIRS_MAX_BYTES {
        return None;
    }
    let n = usize::try_from(read_u32(buf, 0)?).ok()?;
    if n > PAIRS_MAX_COUNT {
        return None;
    }
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        let at = 4 + i * 8;
        let k = usize::try_from(read_u32(buf, at)?).ok()?;
        let v = usize::try_from(read_u32(buf, at + 4)?).ok()?;
        sizes.push((k, v));
    }
    let mut pos = 4 + n * 8;
    let mut pairs = Vec::with_capacity(n);
    for (k, v) in sizes {
        let key = buf.get(pos..pos.checked_add(k)?)?.to_vec();
        pos += k;
        if *buf.get(pos)? != 0 {
            return None;
        }
        pos += 1;
        let value = buf.get(pos..pos.checked_add(v)?)?.to_vec();
        pos += v;
        if *buf.get(pos)? != 0 {
            return None;
        }
        pos += 1;
        pairs.push((key, value));
    }
    (pos == buf.len()).then_some(pairs)
}

/// [`parse_pairs`] as strings (lossy: header names and values are text in every map we model),
/// malformed input read as an empty map like Envoy does.
pub(crate) fn parse_string_pairs(buf: &[u8]) -> Vec<(String, String)> {
    parse_pairs(buf)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (lossy(&k), lossy(&v)))
        .collect()
}

/// Text from module bytes; invalid UTF-8 becomes U+FFFD rather than an error.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Sizes on wasm32 are u32; nothing the host hands over comes near 4 GiB.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Module addresses and sizes arrive as `i32`; they are `u32` (`usize` on wasm32).
pub(crate) fn addr(value: i32) -> usize {
    value as u32 as usize
}

/// Copies `len` bytes at `ptr` out of guest memory. An out-of-bounds range traps: Envoy would
/// return `InvalidMemoryAccess`, a status the Rust SDK cannot represent, so a trap is the more
/// useful report in a test.
pub(crate) fn read(caller: &Caller<'_, VmState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| format_err!("the module has no memory"))?;
    let start = addr(ptr);
    let end = start
        .checked_add(addr(len))
        .ok_or_else(|| format_err!("invalid memory access at {start:#x}+{}", addr(len)))?;
    memory
        .data(caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format_err!("invalid memory access at {start:#x}+{}", addr(len)))
}

/// Reads text (header names, keys, paths) from guest memory.
pub(crate) fn read_string(caller: &Caller<'_, VmState>, ptr: i32, len: i32) -> Result<String> {
    Ok(lossy(&read(caller, ptr, len)?))
}

/// Writes `bytes` at `ptr`; out of bounds traps (see [`read`]).
pub(crate) fn write(caller: &mut Caller<'_, VmState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| format_err!("the module has no memory"))?;
    let start = addr(ptr);
    let end = start
        .checked_add(bytes.len())
        .ok_or_else(|| format_err!("invalid memory write at {start:#x}"))?;
    memory
        .data_mut(caller)
        .get_mut(start..end)
        .ok_or_else(|| format_err!("invalid memory write at {start:#x}+{}", bytes.len()))?
        .copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian `u32` (pointers, sizes, ids, cas).
pub(crate) fn write_u32(caller: &mut Caller<'_, VmState>, ptr: i32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian `u64` (time, metric values).
pub(crate) fn write_u64(caller: &mut Caller<'_, VmState>, ptr: i32, value: u64) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Hands `bytes` to the module the way cpp-host's `copyToPointerSize` does: empty → 0/0 without
/// allocating; otherwise one `proxy_on_memory_allocate(len)` of exactly `len` bytes (the SDK
/// frees it with `Vec::from_raw_parts(ptr, len, len)`), then address and size at the out
/// pointers. The allocator may grow memory, so nothing borrowed from memory crosses the call.
pub(crate) fn copy_out(
    caller: &mut Caller<'_, VmState>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<()> {
    let mut address = 0;
    if !bytes.is_empty() {
        let alloc = caller
            .data()
            .alloc
            .clone()
            .ok_or_else(|| format_err!("the module exports no allocator"))?;
        let len = i32::try_from(bytes.len())?;
        let ptr = alloc.call(&mut *caller, len)?;
        if ptr == 0 {
            return Err(format_err!("proxy_on_memory_allocate({len}) returned 0"));
        }
        write(caller, ptr, bytes)?;
        address = ptr as u32;
    }
    write_u32(caller, ptr_ptr, address)?;
    write_u32(caller, size_ptr, len_u32(bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_like_the_spec_example() {
        let bytes = serialize_pairs(&[(":method", "GET")]);
        let expected: Vec<u8> =
            [&[1, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0][..], b":method\0GET\0"].concat();
        assert_eq!(bytes, expected);
        assert_eq!(serialize_pairs::<&str, &str>(&[]), vec![0, 0, 0, 0]);
    }

    #[test]
    fn parses_what_it_serializes_and_refuses_malformed_maps() {
        let pairs = [("a", ""), ("", "b"), ("x-key", "value")];
        let bytes = serialize_pairs(&pairs);
        let parsed = parse_pairs(&bytes).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2], (b"x-key".to_vec(), b"value".to_vec()));
        // Trailing garbage, a missing NUL, a truncated buffer: all read as "no map".
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse_pairs(&longer).is_none());
        let mut no_nul = bytes.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'!';
        assert!(parse_pairs(&no_nul).is_none());
        assert!(parse_pairs(&bytes[..bytes.len() - 3]).is_none());
        assert!(parse_pairs(&[]).is_none());
        assert_eq!(parse_string_pairs(&[1, 2]), Vec::<(String, String)>::new());
        // Too many pairs.
        let many: Vec<(String, String)> =
            (0..1025).map(|i| (i.to_string(), String::new())).collect();
        assert!(parse_pairs(&serialize_pairs(&many)).is_none());
    }
}
