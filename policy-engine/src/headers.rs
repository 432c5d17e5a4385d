//! HTTP header name and value rules for headers Gateward sets, and claims as header values.

use alloc::string::{String, ToString};
use serde_json::Value;

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

/// The largest magnitude of an RFC 8941 Integer (fifteen digits).
const SF_INTEGER_MAX: i64 = 999_999_999_999_999;

/// A claim as a `claims_to_headers` header value, or `None` when the header is not set.
///
/// - A string as it is, a number as JSON writes it, a boolean as `true`/`false`, when
///   [`valid_value`] accepts the result.
/// - An array as an RFC 8941 List, items separated by `, `: a string as an sf-string (in double
///   quotes, `"` and `\` escaped with `\`), an integer of at most fifteen digits as an sf-integer,
///   a boolean as `?1`/`?0`. So `["a,b"]` is `"a,b"` and `["a","b"]` is `"a", "b"`.
/// - Not set: `null` and objects; an array that is empty (RFC 8941 serialises an empty List as
///   no field) or has an item with no exact sf form (a string with a character outside
///   printable ASCII, a fraction, a longer integer, `null`, an array or an object). Dropping
///   only that item would change what the list says, so the whole header goes.
pub fn claim_value(claim: &Value) -> Option<String> {
    let value = match claim {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) if !items.is_empty() => {
            let mut list = String::new();
            for item in items {
                if !list.is_empty() {
                    list.push_str(", ");
                }
                sf_item(item, &mut list)?;
            }
            list
        }
        _ => return None,
    };
    // A claim that would break the header is dropped rather than mangled.
    valid_value(&value).then_some(value)
}

/// Appends `item` as an RFC 8941 bare item, or `None` when it has no exact one.
fn sf_item(item: &Value, out: &mut String) -> Option<()> {
    match item {
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                if !(' '..='~').contains(&c) {
                    return None;
                }
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Value::Number(n) => {
            let i = n
                .as_i64()
                .filter(|i| (-SF_INTEGER_MAX..=SF_INTEGER_MAX).contains(i))?;
            out.push_str(&i.to_string());
        }
        Value::Bool(b) => out.push_str(if *b { "?1" } else { "?0" }),
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header(claim: Value) -> Option<String> {
        claim_value(&claim)
    }

    #[test]
    fn array_claims_are_rfc_8941_lists_that_keep_items_apart() {
        // The comma inside an item no longer reads as a separator.
        assert_eq!(header(json!(["a,b"])).as_deref(), Some(r#""a,b""#));
        assert_eq!(header(json!(["a", "b"])).as_deref(), Some(r#""a", "b""#));
        assert_eq!(
            header(json!(["refs/heads/x,y", "main"])).as_deref(),
            Some(r#""refs/heads/x,y", "main""#)
        );
        // Quotes and backslashes are escaped, so an item cannot close its string early.
        assert_eq!(
            header(json!([r#"a", "b"#])).as_deref(),
            Some(r#""a\", \"b""#)
        );
        assert_eq!(
            header(json!([r"a\b", r"\"])).as_deref(),
            Some(r#""a\\b", "\\""#)
        );
        assert_eq!(header(json!([" "])).as_deref(), Some(r#"" ""#));
        assert_eq!(header(json!([""])).as_deref(), Some(r#""""#));
        // Integers, booleans, mixed.
        assert_eq!(
            header(json!([
                1,
                -2,
                999_999_999_999_999_i64,
                -999_999_999_999_999_i64
            ]))
            .as_deref(),
            Some("1, -2, 999999999999999, -999999999999999")
        );
        assert_eq!(header(json!([true, false])).as_deref(), Some("?1, ?0"));
        assert_eq!(
            header(json!(["x", 7, true])).as_deref(),
            Some(r#""x", 7, ?1"#)
        );
    }

    #[test]
    fn an_array_with_an_item_that_has_no_exact_sf_form_sets_no_header() {
        for claim in [
            json!([]),
            json!(["caf\u{e9}"]),
            json!(["ok", "\u{1F600}"]),
            json!(["tab\there"]),
            json!(["a\nb"]),
            json!(["nul\u{0}"]),
            json!(["del\u{7f}"]),
            json!([1.5]),
            json!([1_000_000_000_000_000_i64]),
            json!([u64::MAX]),
            json!([i64::MIN]),
            json!([null]),
            json!([["nested"]]),
            json!([{"k": "v"}]),
            json!(null),
            json!({"k": "v"}),
        ] {
            assert_eq!(header(claim.clone()), None, "{claim}");
        }
    }

    #[test]
    fn scalar_claims_are_sent_as_they_are_unless_they_would_break_the_header() {
        assert_eq!(header(json!("a,b")).as_deref(), Some("a,b"));
        assert_eq!(header(json!("caf\u{e9}")).as_deref(), Some("caf\u{e9}"));
        assert_eq!(header(json!("tab\there")).as_deref(), Some("tab\there"));
        assert_eq!(header(json!(42)).as_deref(), Some("42"));
        assert_eq!(header(json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(header(json!(true)).as_deref(), Some("true"));
        assert_eq!(header(json!("a\r\nx-admin: 1")), None);
        assert_eq!(header(json!("nul\u{0}")), None);
    }
}
