//! Opaque keyset cursors: the sort key of the last item of a page, so the
//! next page starts right after it (never `OFFSET`).
//!
//! A cursor is the hex encoding of `<kind>.<fields...>`; clients must treat
//! it as opaque. Each endpoint refuses another endpoint's cursor.

use super::params::bad;
use super::ApiError;

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// `raw_packets`: (ts µs, ts_ns_rem, ctid). Rows are never updated, so
    /// the ctid is stable and breaks ties between packets of the same ns.
    Packet {
        /// `ts`, µs since the Unix epoch.
        ts_us: i64,
        /// `ts_ns_rem`.
        rem: i16,
        /// `ctid` as PostgreSQL writes it, `(block,offset)`.
        ctid: String,
    },
    /// `flows`: (first_ts µs, ctid); flow rows are never updated either.
    Flow {
        /// `first_ts`, µs.
        ts_us: i64,
        /// `ctid`.
        ctid: String,
    },
    /// `alerts`: (last_ts µs, alert_id).
    Alert {
        /// `last_ts`, µs.
        ts_us: i64,
        /// `alert_id`.
        id: i64,
    },
}

impl Cursor {
    /// The opaque form.
    pub(crate) fn encode(&self) -> String {
        let plain = match self {
            Cursor::Packet { ts_us, rem, ctid } => format!("p.{ts_us}.{rem}.{}", bare(ctid)),
            Cursor::Flow { ts_us, ctid } => format!("f.{ts_us}.{}", bare(ctid)),
            Cursor::Alert { ts_us, id } => format!("a.{ts_us}.{id}"),
        };
        let mut out = String::with_capacity(plain.len() * 2);
        for b in plain.bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Decodes a cursor made by [`encode`](Self::encode) for an endpoint
    /// whose cursors have `kind` (`'p'`, `'f'`, `'a'`).
    ///
    /// # Errors
    /// 400 `bad_parameter` (`cursor`) when it is not one.
    pub(crate) fn decode(s: &str, kind: char) -> Result<Cursor, ApiError> {
        let err = || {
            bad(
                "cursor",
                "cursor is not a next_cursor of this endpoint (pass it back unchanged)",
            )
        };
        if s.len() % 2 != 0 || s.len() > 200 {
            return Err(err());
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect();
        let plain = String::from_utf8(bytes.ok_or_else(err)?).map_err(|_| err())?;
        let parts: Vec<&str> = plain.split('.').collect();
        let int = |i: usize| parts.get(i).and_then(|v| v.parse::<i64>().ok());
        let ctid = |i: usize| -> Option<String> {
            let (b, o) = parts.get(i)?.split_once(':')?;
            let (b, o) = (b.parse::<u32>().ok()?, o.parse::<u16>().ok()?);
            Some(format!("({b},{o})"))
        };
        let c = match (parts.first().copied(), kind, parts.len()) {
            (Some("p"), 'p', 4) => Cursor::Packet {
                ts_us: int(1).ok_or_else(err)?,
                rem: parts[2].parse().map_err(|_| err())?,
                ctid: ctid(3).ok_or_else(err)?,
            },
            (Some("f"), 'f', 3) => Cursor::Flow {
                ts_us: int(1).ok_or_else(err)?,
                ctid: ctid(2).ok_or_else(err)?,
            },
            (Some("a"), 'a', 3) => Cursor::Alert {
                ts_us: int(1).ok_or_else(err)?,
                id: int(2).ok_or_else(err)?,
            },
            _ => return Err(err()),
        };
        Ok(c)
    }
}

/// `(12,3)` -> `12:3`.
fn bare(ctid: &str) -> String {
    ctid.trim_matches(|c| c == '(' || c == ')')
        .replace(',', ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_others() {
        let cs = [
            (
                Cursor::Packet {
                    ts_us: 1_700_000_000_000_001,
                    rem: 999,
                    ctid: "(12,3)".into(),
                },
                'p',
            ),
            (
                Cursor::Flow {
                    ts_us: 5,
                    ctid: "(0,1)".into(),
                },
                'f',
            ),
            (Cursor::Alert { ts_us: 7, id: -42 }, 'a'),
        ];
        for (c, k) in &cs {
            let s = c.encode();
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(&Cursor::decode(&s, *k).unwrap(), c);
            let other = if *k == 'a' { 'p' } else { 'a' };
            assert!(Cursor::decode(&s, other).is_err());
        }
        for bad in ["", "zz", "7", "702e31", &"00".repeat(200)] {
            let e = Cursor::decode(bad, 'p').unwrap_err();
            assert!(e.reason.contains("cursor"));
        }
    }
}
