//! HTTP header name and value rules for headers Gateward sets.

/// An RFC 9110 token, and not a pseudo-header.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// No control characters (CR, LF, NUL, ...) except tab: they would split or corrupt headers.
pub fn valid_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}
