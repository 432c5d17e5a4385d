//! OpenBao's standard token parameters (`token_policies`, `token_ttl`, …) with the parsing of
//! `sdk/helper/tokenutil` and the framework's field types: durations as seconds (number or
//! numeric string) or Go duration strings (`"1h30m"`, `"90s"`, `"2d"`); lists as JSON arrays or
//! comma-separated strings; booleans and integers also as strings.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Parses a `TypeDurationSecond` field (go-secure-stdlib `parseutil.ParseDurationSecond`):
/// a number of seconds, a numeric string, `"<n>d"` days, or a Go duration string. Negative
/// durations and fractions of a second below zero are refused; fractions are truncated.
pub fn parse_duration(value: &Value) -> Result<Duration, String> {
    let seconds: i128 = match value {
        Value::Null => 0,
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i128::from(i),
            // Whole seconds, as the framework keeps them (`int(dur.Seconds())`).
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => f.trunc() as i128,
            _ => return Err(format!("{n} is not a valid duration")),
        },
        Value::String(s) => parse_duration_str(s)?,
        _ => return Err(String::from("could not parse duration from input")),
    };
    if seconds < 0 {
        return Err(format!("cannot provide negative value '{seconds}'"));
    }
    u64::try_from(seconds)
        .map(Duration::from_secs)
        .map_err(|_| String::from("duration is too large"))
}

/// The string forms of [`parse_duration`], in whole seconds (may be negative).
fn parse_duration_str(s: &str) -> Result<i128, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(v) = s.parse::<i64>() {
        return Ok(i128::from(v));
    }
    if let Some(days) = s.strip_suffix('d') {
        return days
            .parse::<i64>()
            .map(|d| i128::from(d) * 86_400)
            .map_err(|_| format!("invalid duration {s:?}"));
    }
    go_duration_nanos(s)
        .map(|n| n / 1_000_000_000)
        .ok_or_else(|| format!("time: invalid duration {s:?}"))
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units ns, us, µs, ms, s, m, h;
/// `"0"` alone is allowed. Returns nanoseconds.
fn go_duration_nanos(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, s.get(1..)?),
        b'+' => (false, s.get(1..)?),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = rest.get(..int_len)?;
        rest = rest.get(int_len..)?;
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = after_dot.get(..frac_len)?;
            rest = after_dot.get(frac_len..)?;
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        let mut digit_scale = scale;
        for d in frac_part.bytes() {
            digit_scale /= 10;
            value = value.checked_add(i128::from(d - b'0') * digit_scale)?;
        }
        total = total.checked_add(value)?;
        // Go refuses durations over ~292 years.
        if total > i128::from(i64::MAX) {
            return None;
        }
    }
    Some(if neg { -total } else { total })
}

/// Parses a `TypeCommaStringSlice` field: a JSON array (scalars taken as text) or a
/// comma-separated string; entries are trimmed and empty ones dropped.
pub fn parse_list(value: &Value) -> Result<Vec<String>, String> {
    let items: Vec<String> = match value {
        Value::Null => Vec::new(),
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(String::from("expected a list of strings")),
            })
            .collect::<Result<_, _>>()?,
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Object(_) => return Err(String::from("expected a list of strings")),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Parses a `TypeBool` field: a boolean or `"true"`/`"false"`/`"1"`/`"0"` (Go's `ParseBool`).
pub fn parse_bool(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(format!("cannot parse {n} as a boolean")),
        },
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(format!("cannot parse {s:?} as a boolean")),
        },
        _ => Err(String::from("expected a boolean")),
    }
}

/// Parses a `TypeInt` field: an integer or a numeric string.
pub fn parse_int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("cannot parse {s:?} as an integer")),
        _ => Err(String::from("expected an integer")),
    }
}

/// A parsed CIDR block (or a single address, as go-sockaddr accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("invalid CIDR block or address {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("invalid prefix length in {s:?}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn mask_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (x, y) in a.iter().zip(b) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask: u8 = !(0xffu8.checked_shr(take as u32).unwrap_or(0));
        if x & mask != y & mask {
            return false;
        }
        bits -= take;
    }
    true
}

/// Parses a client address as OpenBao passes it (`1.2.3.4`, `[::1]:8200`, `1.2.3.4:5678`).
pub fn parse_remote_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(a, _)| a.parse().ok())
}

/// The token parameters of a role (`tokenutil.TokenParams`), durations in seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenParams {
    /// Policies for issued tokens.
    pub token_policies: Vec<String>,
    /// Initial TTL (0: the mount's default).
    pub token_ttl: u64,
    /// Maximum TTL through renewals (0: the mount's maximum).
    pub token_max_ttl: u64,
    /// Hard lifetime cap (0: none beyond the CI token's `exp`).
    pub token_explicit_max_ttl: u64,
    /// Periodic tokens' period (0: not periodic).
    pub token_period: u64,
    /// CIDR blocks logins must come from and tokens are bound to.
    pub token_bound_cidrs: Vec<String>,
    /// `default`, `service` or `batch`.
    pub token_type: String,
    /// Do not attach the `default` policy.
    pub token_no_default_policy: bool,
    /// Uses before the token is revoked (0: unlimited).
    pub token_num_uses: i64,
    /// Bind tokens to the login's source address.
    pub token_strictly_bind_ip: bool,
}

/// The deprecated names tokenutil still accepts (`policies` → `token_policies`, …).
const DEPRECATED: [(&str, &str); 6] = [
    ("policies", "token_policies"),
    ("bound_cidrs", "token_bound_cidrs"),
    ("num_uses", "token_num_uses"),
    ("ttl", "token_ttl"),
    ("max_ttl", "token_max_ttl"),
    ("period", "token_period"),
];

/// The parameter names [`TokenParams::update`] reads.
pub const FIELDS: [&str; 16] = [
    "token_policies",
    "token_ttl",
    "token_max_ttl",
    "token_explicit_max_ttl",
    "token_period",
    "token_bound_cidrs",
    "token_type",
    "token_no_default_policy",
    "token_num_uses",
    "token_strictly_bind_ip",
    "policies",
    "bound_cidrs",
    "num_uses",
    "ttl",
    "max_ttl",
    "period",
];

impl TokenParams {
    /// Applies the token parameters present in `data` (a write), as `ParseTokenFields` does, and
    /// checks them. Fields absent from `data` keep their current values.
    pub fn update(&mut self, data: &Map<String, Value>) -> Result<(), String> {
        let field = |new: &str| -> Option<&Value> {
            data.get(new).or_else(|| {
                DEPRECATED
                    .iter()
                    .find(|(_, n)| *n == new)
                    .and_then(|(old, _)| data.get(*old))
            })
        };
        let named = |name: &str, e: String| format!("{name}: {e}");
        if let Some(v) = field("token_bound_cidrs") {
            let list = parse_list(v).map_err(|e| named("token_bound_cidrs", e))?;
            for c in &list {
                Cidr::parse(c).map_err(|e| named("token_bound_cidrs", e))?;
            }
            self.token_bound_cidrs = list;
        }
        for (name, slot) in [
            ("token_explicit_max_ttl", &mut self.token_explicit_max_ttl),
            ("token_max_ttl", &mut self.token_max_ttl),
            ("token_period", &mut self.token_period),
            ("token_ttl", &mut self.token_ttl),
        ] {
            if let Some(v) = field(name) {
                *slot = parse_duration(v).map_err(|e| named(name, e))?.as_secs();
            }
        }
        if let Some(v) = field("token_no_default_policy") {
            self.token_no_default_policy =
                parse_bool(v).map_err(|e| named("token_no_default_policy", e))?;
        }
        if let Some(v) = field("token_policies") {
            self.token_policies = parse_list(v).map_err(|e| named("token_policies", e))?;
        }
        if let Some(v) = field("token_type") {
            let t = match v {
                Value::String(s) => s.as_str(),
                Value::Null => "",
                _ => return Err(String::from("token_type: expected a string")),
            };
            self.token_type = match t {
                "" | "default" => String::from("default"),
                "service" | "batch" => t.to_string(),
                other => return Err(format!("invalid 'token_type' value {other:?}")),
            };
        }
        if let Some(v) = field("token_num_uses") {
            self.token_num_uses = parse_int(v).map_err(|e| named("token_num_uses", e))?;
        }
        if let Some(v) = field("token_strictly_bind_ip") {
            self.token_strictly_bind_ip =
                parse_bool(v).map_err(|e| named("token_strictly_bind_ip", e))?;
        }
        if self.token_type.is_empty() {
            self.token_type = String::from("default");
        }
        if self.token_num_uses < 0 {
            return Err(String::from("'token_num_uses' cannot be negative"));
        }
        if self.token_type == "batch" {
            if self.token_period != 0 {
                return Err(String::from(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
                ));
            }
            if self.token_num_uses != 0 {
                return Err(String::from(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
                ));
            }
        }
        if self.token_ttl > 0 && self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(String::from(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        if self.token_strictly_bind_ip && !self.token_bound_cidrs.is_empty() {
            return Err(String::from(
                "'token_strictly_bind_ip' conflicts with 'token_bound_cidrs'; set only one",
            ));
        }
        if self
            .token_policies
            .iter()
            .any(|p| p.eq_ignore_ascii_case("root"))
        {
            return Err(String::from(
                "token_policies: auth methods cannot create root tokens",
            ));
        }
        Ok(())
    }

    /// The parameters as a read returns them (`PopulateTokenData`).
    pub fn populate(&self, out: &mut Map<String, Value>) {
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_string(), v);
        };
        put("token_policies", serde_json::json!(self.token_policies));
        put("token_ttl", self.token_ttl.into());
        put("token_max_ttl", self.token_max_ttl.into());
        put("token_explicit_max_ttl", self.token_explicit_max_ttl.into());
        put("token_period", self.token_period.into());
        put(
            "token_bound_cidrs",
            serde_json::json!(self.token_bound_cidrs),
        );
        put("token_type", Value::String(self.token_type.clone()));
        put(
            "token_no_default_policy",
            self.token_no_default_policy.into(),
        );
        put("token_num_uses", self.token_num_uses.into());
        put("token_strictly_bind_ip", self.token_strictly_bind_ip.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(v: Value) -> Result<u64, String> {
        parse_duration(&v).map(|d| d.as_secs())
    }

    #[test]
    fn durations_parse_like_parseutil() {
        assert_eq!(secs(json!(600)), Ok(600));
        assert_eq!(secs(json!("600")), Ok(600));
        assert_eq!(secs(json!("10m")), Ok(600));
        assert_eq!(secs(json!("1h30m")), Ok(5_400));
        assert_eq!(secs(json!("1.5h")), Ok(5_400));
        assert_eq!(secs(json!("2d")), Ok(172_800));
        assert_eq!(secs(json!("90s")), Ok(90));
        assert_eq!(secs(json!("1500ms")), Ok(1));
        assert_eq!(secs(json!("")), Ok(0));
        assert_eq!(secs(json!("0")), Ok(0));
        assert_eq!(secs(json!(null)), Ok(0));
        assert_eq!(secs(json!(2.9)), Ok(2));
        assert!(secs(json!("-5")).is_err());
        assert!(secs(json!("-1h")).is_err());
        assert!(secs(json!("1x")).is_err());
        assert!(secs(json!("h")).is_err());
        assert!(secs(json!("1.5")).is_err());
        assert!(secs(json!([1])).is_err());
        assert!(secs(json!("99999999999999h")).is_err());
    }

    #[test]
    fn lists_bools_ints() {
        assert_eq!(parse_list(&json!("a, b,,c ")).unwrap(), vec!["a", "b", "c"]);
        assert_eq!(parse_list(&json!(["a", " b"])).unwrap(), vec!["a", "b"]);
        assert!(parse_list(&json!([{}])).is_err());
        assert!(parse_bool(&json!("true")).unwrap());
        assert!(!parse_bool(&json!("0")).unwrap());
        assert!(parse_bool(&json!("yes")).is_err());
        assert_eq!(parse_int(&json!("12")).unwrap(), 12);
        assert!(parse_int(&json!(1.5)).is_err());
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert_eq!(
            parse_remote_addr("[::1]:8200"),
            Some("::1".parse().unwrap())
        );
        assert_eq!(
            parse_remote_addr("10.0.0.1:5"),
            Some("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn token_params_update_validate_and_keep_absent_fields() {
        let mut t = TokenParams::default();
        let data = json!({"token_policies": "a,b", "token_ttl": "10m", "token_max_ttl": 3600,
            "token_type": "batch", "token_no_default_policy": "true"});
        t.update(data.as_object().unwrap()).unwrap();
        assert_eq!(t.token_policies, vec!["a", "b"]);
        assert_eq!((t.token_ttl, t.token_max_ttl), (600, 3600));
        assert_eq!(t.token_type, "batch");
        assert!(t.token_no_default_policy);
        t.update(json!({"token_ttl": 60}).as_object().unwrap())
            .unwrap();
        assert_eq!((t.token_ttl, t.token_max_ttl), (60, 3600));
        let err = t
            .clone()
            .update(json!({"token_ttl": "2h"}).as_object().unwrap())
            .unwrap_err();
        assert_eq!(err, "'token_ttl' cannot be greater than 'token_max_ttl'");
        let err = t
            .clone()
            .update(json!({"token_period": 60}).as_object().unwrap())
            .unwrap_err();
        assert!(err.contains("periodic"), "{err}");
        let mut d = TokenParams::default();
        d.update(json!({"policies": ["x"], "ttl": "1m"}).as_object().unwrap())
            .unwrap();
        assert_eq!(
            (d.token_policies.clone(), d.token_ttl),
            (vec!["x".to_string()], 60)
        );
        assert!(d
            .clone()
            .update(json!({"token_type": "weird"}).as_object().unwrap())
            .is_err());
        assert!(d
            .clone()
            .update(json!({"token_policies": ["root"]}).as_object().unwrap())
            .is_err());
        assert!(d
            .clone()
            .update(
                json!({"token_bound_cidrs": "10.0.0.0/99"})
                    .as_object()
                    .unwrap()
            )
            .is_err());
    }
}
