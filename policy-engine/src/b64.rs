//! Strict base64url (RFC 7515 §2): the URL-safe alphabet, no padding, and a canonical final
//! character (unused trailing bits must be zero), so one byte string has exactly one encoding.

use alloc::vec::Vec;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Why a base64url segment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum B64Error {
    /// A byte outside `A-Z a-z 0-9 - _` (whitespace, `=`, `+`, `/`, ...).
    #[error("byte {byte:#04x} at offset {offset} is not in the base64url alphabet")]
    InvalidByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the segment.
        offset: usize,
    },
    /// The length or the final character is not canonical.
    #[error("not canonical base64url ({0})")]
    NotCanonical(&'static str),
}

/// Decodes strict base64url.
pub fn decode(segment: &str) -> Result<Vec<u8>, B64Error> {
    if let Some((offset, &byte)) = segment
        .as_bytes()
        .iter()
        .enumerate()
        .find(|(_, b)| !is_b64url(**b))
    {
        return Err(B64Error::InvalidByte { byte, offset });
    }
    if segment.len() % 4 == 1 {
        return Err(B64Error::NotCanonical("impossible length"));
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| B64Error::NotCanonical("non-zero unused bits in the final character"))
}

/// Encodes base64url without padding.
pub fn encode(bytes: &[u8]) -> alloc::string::String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// True for the 64 characters of the base64url alphabet.
pub const fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_and_rejects_everything_else() {
        assert_eq!(decode("Zm9v").unwrap(), b"foo");
        assert_eq!(decode("Zm8").unwrap(), b"fo");
        assert_eq!(decode("").unwrap(), b"");
        // `Zm9=`-style padding, the standard alphabet and whitespace are all refused.
        assert!(matches!(
            decode("Zm8="),
            Err(B64Error::InvalidByte { offset: 3, .. })
        ));
        assert!(decode("ab+/").is_err());
        assert!(decode(" Zm9v").is_err());
        // `Zm9` decodes as "fo" only with zero trailing bits: `Zm9` has them set.
        assert!(matches!(decode("Zm9"), Err(B64Error::NotCanonical(_))));
        assert!(matches!(decode("Z"), Err(B64Error::NotCanonical(_))));
    }
}
