//! The parameter checks of the list endpoints without a database: the
//! entry points of the `api_query` fuzz target (`fuzz/fuzz_targets/api_query.rs`)
//! and of its corpus replay (`netanalyzer-store/tests/api_query_corpus.rs`).
//!
//! [`check_query_at`] runs the very functions the handlers run
//! (`List::check` in `api/mod.rs`: [`RawParams::parse`],
//! [`RawParams::check`], [`Cursor::decode`]; `stats::pairs` and
//! `stats::stats_query` for `/api/stats`); only the read token is not
//! checked.

use super::cursor::Cursor;
use super::params::{self, RawParams};
use super::{stats, ApiError, ALERTS, FLOWS, PACKETS};

/// A list endpoint of the query API whose query string
/// [`check_query`] can judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiEndpoint {
    /// `/api/flows`.
    Flows,
    /// `/api/alerts`.
    Alerts,
    /// `/api/raw_packets`.
    RawPackets,
    /// `/api/alltraffic` (the parameters of `/api/raw_packets`).
    AllTraffic,
    /// `/api/stats`.
    Stats,
}

impl ApiEndpoint {
    /// Every endpoint, in declaration order.
    pub const ALL: [ApiEndpoint; 5] = [
        ApiEndpoint::Flows,
        ApiEndpoint::Alerts,
        ApiEndpoint::RawPackets,
        ApiEndpoint::AllTraffic,
        ApiEndpoint::Stats,
    ];

    /// The route, e.g. `/api/flows`.
    pub fn path(self) -> &'static str {
        match self {
            ApiEndpoint::Flows => "/api/flows",
            ApiEndpoint::Alerts => "/api/alerts",
            ApiEndpoint::RawPackets => "/api/raw_packets",
            ApiEndpoint::AllTraffic => "/api/alltraffic",
            ApiEndpoint::Stats => "/api/stats",
        }
    }

    /// The endpoint whose route is `path`.
    pub fn from_path(path: &str) -> Option<ApiEndpoint> {
        ApiEndpoint::ALL.into_iter().find(|e| e.path() == path)
    }
}

/// Whether `GET {endpoint}?{query}` passes the handler's parameter checks
/// (query string decoding, parameter names, values, time window, cursor),
/// with the clock read for the default `to`; see [`check_query_at`].
///
/// # Errors
/// The reason of the 400 `bad_parameter` the handler would answer.
pub fn check_query(endpoint: ApiEndpoint, query: &str) -> Result<(), String> {
    check_query_at(endpoint, query, params::now_us())
}

/// [`check_query`] with `now_us` (µs since the Unix epoch) as the clock,
/// so a result can be reproduced. Touches no database and does not check
/// the read token (a `token` parameter is accepted and ignored, as the
/// handlers do once the token was admitted).
///
/// # Errors
/// The reason of the 400 `bad_parameter` the handler would answer.
pub fn check_query_at(endpoint: ApiEndpoint, query: &str, now_us: i64) -> Result<(), String> {
    check(endpoint, query, now_us).map_err(|e| e.reason)
}

fn check(endpoint: ApiEndpoint, query: &str, now_us: i64) -> Result<(), ApiError> {
    let list = match endpoint {
        ApiEndpoint::Flows => FLOWS,
        ApiEndpoint::Alerts => ALERTS,
        ApiEndpoint::RawPackets | ApiEndpoint::AllTraffic => PACKETS,
        ApiEndpoint::Stats => {
            // The stats handler reads its pairs from the request's URI.
            let uri: axum::http::Uri = format!("{}?{query}", endpoint.path())
                .parse()
                .map_err(|_| params::bad("query", "the query string is not a valid URI query"))?;
            let pairs = stats::pairs(&uri, stats::STATS_PARAMS)?;
            stats::stats_query(&pairs)?;
            return Ok(());
        }
    };
    list.check(&RawParams::parse(Some(query))?, now_us)?;
    Ok(())
}

/// The values of a keyset cursor, for [`cursor_round_trip`]; `block` and
/// `offset` make the row's `ctid`, `(block,offset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorValues {
    /// A cursor of `/api/raw_packets` and `/api/alltraffic`.
    Packet {
        /// `ts`, µs since the Unix epoch.
        ts_us: i64,
        /// `ts_ns_rem`.
        rem: i16,
        /// `ctid` block.
        block: u32,
        /// `ctid` offset.
        offset: u16,
    },
    /// A cursor of `/api/flows`.
    Flow {
        /// `first_ts`, µs.
        ts_us: i64,
        /// `ctid` block.
        block: u32,
        /// `ctid` offset.
        offset: u16,
    },
    /// A cursor of `/api/alerts`.
    Alert {
        /// `last_ts`, µs.
        ts_us: i64,
        /// `alert_id`.
        id: i64,
    },
}

/// Encodes the cursor of `v` as a handler does for `next_cursor` and
/// checks that it comes back: it is lowercase hex, decodes to the same
/// cursor for its endpoint, is refused as another endpoint's cursor, and
/// `cursor=<it>` passes [`check_query_at`] for its endpoint. Returns the
/// opaque form.
///
/// # Errors
/// Which of those failed, with the cursor.
pub fn cursor_round_trip(v: CursorValues) -> Result<String, String> {
    let (cursor, kind, endpoint) = match v {
        CursorValues::Packet {
            ts_us,
            rem,
            block,
            offset,
        } => (
            Cursor::Packet {
                ts_us,
                rem,
                ctid: format!("({block},{offset})"),
            },
            'p',
            ApiEndpoint::RawPackets,
        ),
        CursorValues::Flow {
            ts_us,
            block,
            offset,
        } => (
            Cursor::Flow {
                ts_us,
                ctid: format!("({block},{offset})"),
            },
            'f',
            ApiEndpoint::Flows,
        ),
        CursorValues::Alert { ts_us, id } => {
            (Cursor::Alert { ts_us, id }, 'a', ApiEndpoint::Alerts)
        }
    };
    let s = cursor.encode();
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("{cursor:?} encodes to {s:?}, not lowercase hex"));
    }
    match Cursor::decode(&s, kind) {
        Ok(back) if back == cursor => {}
        Ok(back) => return Err(format!("{cursor:?} -> {s} decodes to {back:?}")),
        Err(e) => return Err(format!("{cursor:?} -> {s} is refused: {}", e.reason)),
    }
    for other in ['p', 'f', 'a'] {
        if other != kind && Cursor::decode(&s, other).is_ok() {
            return Err(format!(
                "{cursor:?} -> {s} is accepted as a {other:?} cursor"
            ));
        }
    }
    check_query_at(endpoint, &format!("cursor={s}"), params::now_us())
        .map_err(|e| format!("{cursor:?} -> {s} refused by {}: {e}", endpoint.path()))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000;

    #[test]
    fn checks_like_the_handlers() {
        use ApiEndpoint::*;
        for (e, q) in [
            (Flows, ""),
            (Flows, "ip=10.0.0.1&port=443&proto=tcp&label=DDoS&limit=50"),
            (Alerts, "severity=high,critical&class=PortScan"),
            (RawPackets, "from=2023-11-14T00:00:00Z&to=1699950000000"),
            (AllTraffic, "src_ip=fe80::1&token=abc"),
            (Stats, "window=3600&to=2023-11-14T22:13:20Z&token=t"),
        ] {
            assert_eq!(check_query_at(e, q, NOW), Ok(()), "{e:?} {q}");
        }
        for (e, q, name) in [
            (Flows, "severity=high", "severity"),
            (Alerts, "ip=10.0.0.1", "ip"),
            (RawPackets, "label=x", "label"),
            (RawPackets, "from=1699000000000", "from"),
            (Flows, "cursor=612e312e32", "cursor"),
            (Stats, "window=0", "window"),
            (Stats, "limit=5", "limit"),
            (Flows, "ip=%ZZ", "ip"),
        ] {
            let r = check_query_at(e, q, NOW).unwrap_err();
            assert!(r.contains(name), "{e:?} {q}: {r}");
        }
        assert_eq!(ApiEndpoint::from_path("/api/stats"), Some(Stats));
    }

    #[test]
    fn extreme_cursors_round_trip() {
        for v in [
            CursorValues::Packet {
                ts_us: i64::MIN,
                rem: i16::MIN,
                block: u32::MAX,
                offset: u16::MAX,
            },
            CursorValues::Flow {
                ts_us: i64::MAX,
                block: 0,
                offset: 0,
            },
            CursorValues::Alert {
                ts_us: -1,
                id: i64::MIN,
            },
        ] {
            cursor_round_trip(v).unwrap();
        }
    }
}
