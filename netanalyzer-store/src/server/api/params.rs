//! Query-string parameters of the list endpoints: parsing, checking, and
//! the SQL `WHERE` they become.

use super::ApiError;
use crate::pg::partition;
use axum::http::StatusCode;
use postgres::types::ToSql;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Items per page when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` (and `n` of `/api/raw_packets/last/{n}`).
pub(crate) const MAX_LIMIT: usize = 1000;
/// The window when `from` is absent: the last 24 hours before `to`.
pub(crate) const DEFAULT_SPAN_US: i64 = 24 * 3600 * 1_000_000;
/// Longest `to - from` of `/api/raw_packets` (and the legacy paths): 7
/// days, so a query whose filter matches nothing scans at most a week.
pub(crate) const MAX_PACKET_SPAN_US: i64 = 7 * 24 * 3600 * 1_000_000;
/// Longest `to - from` of `/api/flows` and `/api/alerts`: 31 days.
pub(crate) const MAX_SPAN_US: i64 = 31 * 24 * 3600 * 1_000_000;

/// The raw `key=value` pairs of a query string, before checking (the
/// token is needed before any parameter is judged).
#[derive(Debug, Default)]
pub(crate) struct RawParams {
    pairs: Vec<(String, String)>,
}

impl RawParams {
    /// Splits and percent-decodes a query string.
    ///
    /// # Errors
    /// 400 `bad_parameter` when the string cannot be decoded.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let Some(q) = query else {
            return Ok(RawParams::default());
        };
        let uri: axum::http::Uri = format!("/?{q}")
            .parse()
            .map_err(|_| bad("query", "the query string is not a valid URI query"))?;
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
                .map_err(|e| bad("query", format!("cannot decode the query string: {e}")))?;
        Ok(RawParams { pairs })
    }

    /// The `token` parameter, if given.
    pub(crate) fn token(&self) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.as_str())
    }

    /// Checks every parameter against the endpoint's `allowed` names and
    /// parses them; `now_us` is the default `to`, `max_span_us` the
    /// longest window.
    ///
    /// # Errors
    /// 400 `bad_parameter` naming the first bad parameter: unknown to the
    /// endpoint, given twice, or with a bad value.
    pub(crate) fn check(
        &self,
        allowed: &[&str],
        now_us: i64,
        max_span_us: i64,
    ) -> Result<Params, ApiError> {
        let mut p = Params {
            from_us: 0,
            to_us: now_us,
            ip: None,
            src_ip: None,
            dst_ip: None,
            port: None,
            proto: None,
            label: None,
            severity: Vec::new(),
            class: None,
            limit: DEFAULT_LIMIT,
            cursor: None,
        };
        let mut seen: Vec<&str> = Vec::new();
        let mut from = None;
        for (k, v) in &self.pairs {
            let k = k.as_str();
            if k == "token" {
                continue;
            }
            if !allowed.contains(&k) {
                return Err(bad(
                    k,
                    format!(
                        "unknown parameter {k:?} for this endpoint (allowed: {})",
                        allowed.join(", ")
                    ),
                ));
            }
            if seen.contains(&k) {
                return Err(bad(k, format!("parameter {k:?} is given twice")));
            }
            seen.push(k);
            match k {
                "from" => from = Some(time(k, v)?),
                "to" => p.to_us = time(k, v)?,
                "ip" => p.ip = Some(ip(k, v)?),
                "src_ip" => p.src_ip = Some(ip(k, v)?),
                "dst_ip" => p.dst_ip = Some(ip(k, v)?),
                "port" => {
                    p.port = Some(v.parse::<u16>().map_err(|_| {
                        bad(k, format!("port {v:?} is not a number from 0 to 65535"))
                    })?)
                }
                "proto" => p.proto = Some(proto(v)?),
                "label" => p.label = Some(text(k, v)?),
                "class" => p.class = Some(text(k, v)?),
                "severity" => p.severity = severities(v)?,
                "limit" => p.limit = limit(k, v)?,
                "cursor" => p.cursor = Some(v.clone()),
                _ => return Err(bad(k, format!("unknown parameter {k:?}"))),
            }
        }
        p.from_us = from.unwrap_or(p.to_us.saturating_sub(DEFAULT_SPAN_US));
        if p.from_us > p.to_us {
            return Err(bad("from", "from is after to"));
        }
        if p.to_us - p.from_us > max_span_us {
            return Err(bad(
                "from",
                format!(
                    "the window from..to spans more than {} days, the most one query may cover; \
                     narrow it",
                    max_span_us / 86_400_000_000
                ),
            ));
        }
        Ok(p)
    }
}

/// What a list was asked, checked.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Window start, µs since the Unix epoch, inclusive.
    pub(crate) from_us: i64,
    /// Window end, µs since the Unix epoch, exclusive.
    pub(crate) to_us: i64,
    /// Source or destination address.
    pub(crate) ip: Option<IpAddr>,
    /// Source address.
    pub(crate) src_ip: Option<IpAddr>,
    /// Destination address.
    pub(crate) dst_ip: Option<IpAddr>,
    /// Source or destination port.
    pub(crate) port: Option<u16>,
    /// Protocol.
    pub(crate) proto: Option<Proto>,
    /// Flow label.
    pub(crate) label: Option<String>,
    /// Alert severities (any of).
    pub(crate) severity: Vec<String>,
    /// Alert class.
    pub(crate) class: Option<String>,
    /// Items per page.
    pub(crate) limit: usize,
    /// The opaque cursor, undecoded.
    pub(crate) cursor: Option<String>,
}

/// A `proto` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    /// ARP (no IP protocol).
    Arp,
    /// An IP protocol number.
    Ip(u8),
}

/// A 400 `bad_parameter` naming `name`.
pub(crate) fn bad(name: &str, reason: impl Into<String>) -> ApiError {
    let reason = reason.into();
    let reason = if reason.contains(name) {
        reason
    } else {
        format!("{name}: {reason}")
    };
    ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", reason)
}

fn text(name: &str, v: &str) -> Result<String, ApiError> {
    if v.is_empty() || v.len() > 256 || v.contains('\0') {
        return Err(bad(
            name,
            format!("{name} must be 1 to 256 bytes without NUL"),
        ));
    }
    Ok(v.to_owned())
}

fn ip(name: &str, v: &str) -> Result<IpAddr, ApiError> {
    v.parse()
        .map_err(|_| bad(name, format!("{name} {v:?} is not an IPv4 or IPv6 address")))
}

fn limit(name: &str, v: &str) -> Result<usize, ApiError> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(bad(
            name,
            format!("limit {v:?} must be a number from 1 to {MAX_LIMIT}"),
        )),
    }
}

/// `tcp|udp|icmp|icmpv6|arp` (any case) or an IP protocol number.
fn proto(v: &str) -> Result<Proto, ApiError> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Ip(6),
        "udp" => Proto::Ip(17),
        "icmp" => Proto::Ip(1),
        "icmpv6" => Proto::Ip(58),
        "arp" => Proto::Arp,
        other => Proto::Ip(other.parse::<u8>().map_err(|_| {
            bad(
                "proto",
                format!("proto {v:?} must be tcp, udp, icmp, icmpv6, arp or a number 0-255"),
            )
        })?),
    })
}

/// The severity names of `netanalyzer_core::Severity`.
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn severities(v: &str) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    for s in v.split(',') {
        let s = s.trim().to_ascii_lowercase();
        if !SEVERITIES.contains(&s.as_str()) {
            return Err(bad(
                "severity",
                format!(
                    "severity {s:?} is not one of {} (a comma-separated list)",
                    SEVERITIES.join(", ")
                ),
            ));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// A time: integer milliseconds since the Unix epoch, or RFC 3339
/// (`2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.250+02:00`); returns µs.
pub(crate) fn time(name: &str, v: &str) -> Result<i64, ApiError> {
    let err = || {
        bad(
            name,
            format!(
                "{name} {v:?} is neither integer milliseconds since the Unix epoch nor RFC 3339 \
                 (2024-05-01T12:00:00Z)"
            ),
        )
    };
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let ms: i64 = v.parse().map_err(|_| err())?;
        return ms
            .checked_mul(1000)
            .filter(|us| *us < MAX_TIME_US)
            .ok_or_else(err);
    }
    rfc3339(v)
        .filter(|us| (0..MAX_TIME_US).contains(us))
        .ok_or_else(err)
}

/// Times at or after 10000-01-01 are refused (and so are those before 1970).
const MAX_TIME_US: i64 = 253_402_300_800_000_000;

/// µs since the Unix epoch of an RFC 3339 date-time.
fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_us = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                frac_us = frac_us * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            frac_us *= 10;
        }
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if rest.as_bytes()[3] != b':' || oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if rest.as_bytes()[0] == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Round trip through the day count to refuse dates such as 02-30.
    let days = partition::days_from_civil(y, mo as u32, d as u32);
    if partition::civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_secs;
    Some(secs * 1_000_000 + frac_us)
}

/// Wall clock, µs since the Unix epoch.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// A `timestamptz` parameter from µs since the Unix epoch.
pub(crate) fn ts_param(us: i64) -> SystemTime {
    if us >= 0 {
        UNIX_EPOCH + Duration::from_micros(us as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(us.unsigned_abs())
    }
}

/// A `WHERE` clause being built, with its bind parameters.
#[derive(Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    args: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Where {
    /// Adds a bind parameter and returns its placeholder (`$n`).
    pub(crate) fn arg(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.args.push(Box::new(v));
        format!("${}", self.args.len())
    }

    /// Adds a condition (ANDed with the others).
    pub(crate) fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// ` WHERE a AND b ...` (empty when there is no condition).
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The bind parameters, for `Client::query`.
    pub(crate) fn args(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args
            .iter()
            .map(|a| &**a as &(dyn ToSql + Sync))
            .collect()
    }

    /// The address, port and protocol filters shared by packets and flows
    /// (`ip_proto` NULL for ARP flows; packets use `protocol = 'ARP'`).
    pub(crate) fn net_filters(&mut self, p: &Params, arp_clause: &str) {
        if let Some(ip) = p.ip {
            let a = self.arg(ip);
            self.and(format!("(src_ip = {a} OR dst_ip = {a})"));
        }
        if let Some(ip) = p.src_ip {
            let a = self.arg(ip);
            self.and(format!("src_ip = {a}"));
        }
        if let Some(ip) = p.dst_ip {
            let a = self.arg(ip);
            self.and(format!("dst_ip = {a}"));
        }
        if let Some(port) = p.port {
            let a = self.arg(i32::from(port));
            self.and(format!("(src_port = {a} OR dst_port = {a})"));
        }
        match p.proto {
            Some(Proto::Arp) => self.and(arp_clause.to_owned()),
            Some(Proto::Ip(n)) => {
                let a = self.arg(i16::from(n));
                self.and(format!("ip_proto = {a}"));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            time("from", "1700000000123").unwrap(),
            1_700_000_000_123_000
        );
        assert_eq!(time("from", "1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            time("from", "2024-01-01T00:00:00.5Z").unwrap(),
            1_704_067_200_500_000
        );
        assert_eq!(
            time("from", "2024-01-01T02:00:00+02:00").unwrap(),
            1_704_067_200_000_000
        );
        assert_eq!(
            time("from", "2023-12-31T23:00:00-01:00").unwrap(),
            1_704_067_200_000_000
        );
        for b in [
            "",
            "x",
            "-5",
            "2024-02-30T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "99999999999999999999",
        ] {
            let e = time("from", b).unwrap_err();
            assert_eq!(e.error, "bad_parameter", "{b}");
            assert!(e.reason.contains("from"), "{}", e.reason);
        }
    }

    #[test]
    fn checks_parameters() {
        let now = 1_700_000_000_000_000;
        let all = [
            "from", "to", "ip", "port", "proto", "limit", "cursor", "severity",
        ];
        let p = RawParams::parse(Some("ip=10.0.0.1&port=53&proto=UDP&limit=5&token=t"))
            .unwrap()
            .check(&all, now, MAX_SPAN_US)
            .unwrap();
        assert_eq!(p.ip, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            (p.port, p.proto, p.limit),
            (Some(53), Some(Proto::Ip(17)), 5)
        );
        assert_eq!((p.from_us, p.to_us), (now - DEFAULT_SPAN_US, now));
        let sev = RawParams::parse(Some("severity=high,%20Critical"))
            .unwrap()
            .check(&all, now, MAX_SPAN_US)
            .unwrap();
        assert_eq!(sev.severity, ["high", "critical"]);
        for (q, name) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("port=70000", "port"),
            ("proto=foo", "proto"),
            ("ip=1.2.3", "ip"),
            ("nope=1", "nope"),
            ("port=1&port=2", "port"),
            ("severity=huge", "severity"),
            ("from=2000&to=1000", "from"),
            ("from=0", "from"),
        ] {
            let e = RawParams::parse(Some(q))
                .unwrap()
                .check(&all, now, MAX_SPAN_US)
                .unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{q}");
            assert!(e.reason.contains(name), "{q}: {}", e.reason);
        }
    }
}
