//! When a front end fetches an issuer's remote key set (`jwks_uri`, discovery): the time rules
//! every front end shares, as pure functions over millisecond timestamps and [`FetchConfig`].
//! The host keeps one [`Freshness`] per key source, records attempts and outcomes in it, and asks
//! it what to do; the fetching itself (and whether one is already under way) is the host's.
//!
//! - A key set is used for `cache_seconds`; a refresh starts at 90 % of that, so keys are replaced
//!   before they expire, while the current ones keep serving.
//! - When refreshes fail the last good set keeps serving until it is `max_stale_seconds` old;
//!   then the source is unusable (requests fail closed with `keys_unavailable`).
//! - A failed attempt holds the next one back for `retry_seconds`.
//! - A token naming a `kid` the set lacks triggers a refetch at most once per
//!   `min_refetch_seconds` (counted from the last attempt, whatever started it), so a stream of
//!   tokens with made-up `kid`s cannot make the host hammer the issuer.

use crate::config::FetchConfig;

/// Percentage of `cache_seconds` after which a key set is refreshed.
pub const REFRESH_PERCENT: u64 = 90;

/// One key source's fetch history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// When the current (last good) key set was fetched; None before the first success.
    pub fetched_at_ms: Option<u64>,
    /// When the last attempt started.
    pub attempt_ms: Option<u64>,
    /// When the last attempt ended (success or failure).
    pub done_ms: Option<u64>,
    /// Whether the last finished attempt failed.
    pub failed: bool,
}

/// What to do for a request that needs a source's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Use the current keys.
    Use,
    /// Use the current keys, and refresh them meanwhile (they are past 90 % of their lifetime).
    UseAndRefresh,
    /// No usable keys: fetch now and wait for the outcome.
    Fetch,
    /// No usable keys, and the last attempt failed less than `retry_seconds` ago: fail closed.
    Unavailable,
}

fn secs(s: u64) -> u64 {
    s.saturating_mul(1_000)
}

impl Freshness {
    /// How old the current key set is at `now` (None: no key set).
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        self.fetched_at_ms.map(|t| now_ms.saturating_sub(t))
    }

    /// Whether the current key set may be used at `now`: there is one, at most
    /// `max_stale_seconds` old.
    pub fn usable(&self, fetch: &FetchConfig, now_ms: u64) -> bool {
        self.age_ms(now_ms)
            .is_some_and(|age| age <= secs(fetch.max_stale_seconds))
    }

    /// Whether a refresh is due: no key set, or one at least 90 % of `cache_seconds` old.
    pub fn refresh_due(&self, fetch: &FetchConfig, now_ms: u64) -> bool {
        self.age_ms(now_ms)
            .is_none_or(|age| age >= fetch.cache_seconds.saturating_mul(10 * REFRESH_PERCENT))
    }

    /// Whether an attempt may start: the last one did not fail, or failed at least
    /// `retry_seconds` ago.
    pub fn retry_allowed(&self, fetch: &FetchConfig, now_ms: u64) -> bool {
        !self.failed
            || self
                .done_ms
                .is_none_or(|done| now_ms >= done.saturating_add(secs(fetch.retry_seconds)))
    }

    /// Whether a token with an unknown `kid` may trigger a refetch: the last attempt started at
    /// least `min_refetch_seconds` ago (or there was none).
    pub fn refetch_allowed(&self, fetch: &FetchConfig, now_ms: u64) -> bool {
        self.attempt_ms
            .is_none_or(|attempt| now_ms >= attempt.saturating_add(secs(fetch.min_refetch_seconds)))
    }

    /// What a request needing the keys at `now` should do (ignoring fetches under way, which
    /// the host tracks: it waits for one rather than starting another).
    pub fn plan(&self, fetch: &FetchConfig, now_ms: u64) -> Plan {
        if self.usable(fetch, now_ms) {
            if self.refresh_due(fetch, now_ms) && self.retry_allowed(fetch, now_ms) {
                Plan::UseAndRefresh
            } else {
                Plan::Use
            }
        } else if self.retry_allowed(fetch, now_ms) {
            Plan::Fetch
        } else {
            Plan::Unavailable
        }
    }

    /// An attempt starts at `now`.
    pub fn started(&mut self, now_ms: u64) {
        self.attempt_ms = Some(now_ms);
    }

    /// The attempt brought a good key set at `now`.
    pub fn succeeded(&mut self, now_ms: u64) {
        self.fetched_at_ms = Some(now_ms);
        self.done_ms = Some(now_ms);
        self.failed = false;
    }

    /// The attempt failed at `now`; the current key set (if any) stays.
    pub fn failed(&mut self, now_ms: u64) {
        self.done_ms = Some(now_ms);
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FetchConfig {
        FetchConfig {
            cache_seconds: 600,
            min_refetch_seconds: 30,
            retry_seconds: 5,
            max_stale_seconds: 3_600,
            ..FetchConfig::default()
        }
    }

    #[test]
    fn first_use_fetches() {
        let f = Freshness::default();
        assert_eq!(f.plan(&cfg(), 1_000), Plan::Fetch);
        assert!(!f.usable(&cfg(), 1_000));
        assert!(f.refresh_due(&cfg(), 1_000));
        assert!(f.refetch_allowed(&cfg(), 0));
    }

    #[test]
    fn fresh_keys_serve_until_ninety_percent_then_refresh_in_the_background() {
        let mut f = Freshness::default();
        f.started(0);
        f.succeeded(100);
        assert_eq!(f.plan(&cfg(), 100), Plan::Use);
        // 90 % of 600 s = 540 s after the fetch.
        assert_eq!(f.plan(&cfg(), 100 + 539_999), Plan::Use);
        assert_eq!(f.plan(&cfg(), 100 + 540_000), Plan::UseAndRefresh);
        // Past cache_seconds the keys still serve (stale) until max_stale_seconds.
        assert_eq!(f.plan(&cfg(), 100 + 3_600_000), Plan::UseAndRefresh);
        assert_eq!(f.plan(&cfg(), 100 + 3_600_001), Plan::Fetch);
    }

    #[test]
    fn failures_keep_the_last_good_set_and_hold_back_retries() {
        let mut f = Freshness::default();
        f.started(0);
        f.succeeded(0);
        f.started(600_000);
        f.failed(601_000);
        // Still usable (stale), but no refresh until retry_seconds after the failure.
        assert_eq!(f.plan(&cfg(), 602_000), Plan::Use);
        assert!(!f.retry_allowed(&cfg(), 605_999));
        assert_eq!(f.plan(&cfg(), 606_000), Plan::UseAndRefresh);
        // Beyond max_stale the set is gone; while retries are held back: unavailable.
        f.started(3_600_001);
        f.failed(3_600_002);
        assert_eq!(f.plan(&cfg(), 3_600_003), Plan::Unavailable);
        assert_eq!(f.plan(&cfg(), 3_605_002), Plan::Fetch);
        // A success clears the failure.
        f.started(3_605_002);
        f.succeeded(3_605_100);
        assert!(!f.failed);
        assert_eq!(f.plan(&cfg(), 3_605_200), Plan::Use);
    }

    #[test]
    fn no_keys_and_a_recent_failure_is_unavailable() {
        let mut f = Freshness::default();
        f.started(0);
        f.failed(10);
        assert_eq!(f.plan(&cfg(), 4_000), Plan::Unavailable);
        assert_eq!(f.plan(&cfg(), 5_010), Plan::Fetch);
    }

    #[test]
    fn unknown_kid_refetches_are_rate_limited_from_the_last_attempt() {
        let mut f = Freshness::default();
        f.started(1_000);
        f.succeeded(1_200);
        assert!(!f.refetch_allowed(&cfg(), 30_999));
        assert!(f.refetch_allowed(&cfg(), 31_000));
        // Any attempt (a refresh too) restarts the interval.
        f.started(40_000);
        assert!(!f.refetch_allowed(&cfg(), 69_999));
        assert!(f.refetch_allowed(&cfg(), 70_000));
    }

    #[test]
    fn huge_settings_saturate_instead_of_overflowing() {
        let big = FetchConfig {
            cache_seconds: u64::MAX,
            min_refetch_seconds: u64::MAX,
            retry_seconds: u64::MAX,
            max_stale_seconds: u64::MAX,
            ..FetchConfig::default()
        };
        let mut f = Freshness::default();
        f.started(u64::MAX - 20);
        f.failed(u64::MAX - 10);
        assert_eq!(f.plan(&big, u64::MAX - 5), Plan::Unavailable);
        f.succeeded(5);
        assert_eq!(f.plan(&big, u64::MAX), Plan::Use);
        assert!(!f.refetch_allowed(&big, u64::MAX - 1));
    }
}
