//! Glob matching with the semantics of `github.com/ryanuber/go-glob` v1.0.0
//! (<https://github.com/ryanuber/go-glob/blob/v1.0.0/glob.go>), which OpenBao's `jwt` method uses
//! for `bound_claims_type = "glob"` (`internal/builtin/credential/jwt/claims.go`):
//! only `*` is special (any run of characters, including none and `/`); `?` and `[` are literal;
//! there is no escaping; matching is anchored and case-sensitive. The parts between stars are
//! found left to right, each at its first occurrence after the previous one, and the last one
//! must end the subject (so parts never overlap: `*/octo-*-svc` does not match `a/octo-svc`).

/// Whether `subject` matches `pattern`.
pub fn glob(pattern: &str, subject: &str) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        // One part: no star at all.
        return subject == pattern;
    };
    let leading = pattern.starts_with('*');
    let trailing = pattern.ends_with('*');
    let mut rest = subject;
    // The first part must start the subject unless the pattern starts with a star (then it is
    // empty and found at 0 anyway).
    match rest.find(first) {
        Some(0) => rest = rest.get(first.len()..).unwrap_or(""),
        Some(i) if leading => rest = rest.get(i + first.len()..).unwrap_or(""),
        _ => return false,
    }
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or(""),
            None => return false,
        }
    }
    trailing || rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn go_glob_semantics() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("octo-org/*", "octo-org/octo-repo", true),
            ("octo-org/*", "octo-org/a/b/c", true),
            ("octo-org/*", "octo-org", false),
            ("octo-org/*", "octo-org/", true),
            ("refs/tags/v*", "refs/tags/v1.2.3", true),
            ("*/octo-*-svc", "a/octo-x-svc", true),
            ("*/octo-*-svc", "/octo--svc", true),
            ("*/octo-*-svc", "a/octo-svc", false),
            ("*/octo-*-svc", "A/OCTO-X-SVC", false),
            ("de?loy", "de?loy", true),
            ("de?loy", "deploy", false),
            ("[ab]", "a", false),
            ("[ab]", "[ab]", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a**b", "ab", true),
            ("*a", "ba", true),
            ("*a", "ab", false),
            ("a*", "ba", false),
            ("*ab*", "xaby", true),
            ("*é*", "café", true),
        ];
        for (pattern, subject, want) in cases {
            assert_eq!(glob(pattern, subject), *want, "{pattern:?} vs {subject:?}");
        }
    }
}
