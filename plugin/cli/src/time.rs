//! Human-readable times without a date library.

/// `2026-11-22T03:48:00Z` for a Unix time.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = policy_engine::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `in 4 min`, `3 h ago`.
pub fn relative(secs: i64, now: i64) -> String {
    let delta = secs - now;
    let abs = delta.unsigned_abs();
    let span = match abs {
        0..=119 => format!("{abs} s"),
        120..=7_199 => format!("{} min", abs / 60),
        7_200..=172_799 => format!("{} h", abs / 3600),
        _ => format!("{} days", abs / 86_400),
    };
    if delta >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_763_783_280), "2025-11-22T03:48:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(relative(100, 0), "in 100 s");
        assert_eq!(relative(0, 10_800), "3 h ago");
    }
}
