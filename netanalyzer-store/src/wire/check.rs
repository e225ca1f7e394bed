//! The semantic checks of a decoded batch, and the sender-side repair of
//! strings that the server would refuse.

use super::{bad, RejectReason};
use crate::StoreError;
use netanalyzer_core::{PacketBatch, PacketRecord};

/// Longest string field accepted, in bytes (UTF-8): the largest IP payload,
/// so no string parsed from a packet (short of an IPv6 jumbogram) is ever
/// cut; the limit only bounds what a foreign client can send.
pub const MAX_STRING_BYTES: usize = 65_535;

/// Longest `sensor_id`, in characters (all ASCII).
pub const MAX_SENSOR_ID_CHARS: usize = 64;

/// The string fields of a record, by name.
fn string_fields(r: &PacketRecord) -> [(&'static str, Option<&str>); 6] {
    [
        ("iface", r.iface.as_deref()),
        ("dns_qname", r.dns_qname.as_deref()),
        ("http_method", r.http_method.as_deref()),
        ("http_host", r.http_host.as_deref()),
        ("http_path", r.http_path.as_deref()),
        ("tls_sni", r.tls_sni.as_deref()),
    ]
}

fn string_ok(s: &str) -> bool {
    s.len() <= MAX_STRING_BYTES && !s.as_bytes().contains(&0)
}

/// Whether [`sanitize_record`] would change `r`.
pub(crate) fn needs_sanitizing(r: &PacketRecord) -> bool {
    string_fields(r)
        .iter()
        .any(|(_, s)| s.is_some_and(|s| !string_ok(s)))
}

fn sanitize_str(s: &str) -> String {
    let mut end = s.len().min(MAX_STRING_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].replace('\0', "\u{fffd}")
}

/// Repairs the strings a server would refuse with
/// [`RejectReason::BadString`]: each NUL byte becomes U+FFFD and a string
/// longer than [`MAX_STRING_BYTES`] is cut at the last character boundary
/// before the limit (a U+FFFD replacement may make it longer again by two
/// bytes per NUL; the cut is done first, then the replacement, and the
/// result is cut again). Returns whether anything changed.
///
/// [`BatchEncoder::push`](super::BatchEncoder::push) applies it, so a
/// batch of our own sensor is never refused for its strings: one odd
/// packet must not make a whole batch undeliverable.
pub fn sanitize_record(r: &mut PacketRecord) -> bool {
    if !needs_sanitizing(r) {
        return false;
    }
    let fix = |s: &str| {
        let once = sanitize_str(s);
        if once.len() > MAX_STRING_BYTES {
            sanitize_str(&once)
        } else {
            once
        }
    };
    if let Some(s) = r.iface.as_deref().filter(|s| !string_ok(s)) {
        r.iface = Some(fix(s).into());
    }
    for f in [
        &mut r.dns_qname,
        &mut r.http_method,
        &mut r.http_host,
        &mut r.http_path,
        &mut r.tls_sni,
    ] {
        if let Some(s) = f.as_deref().filter(|s| !string_ok(s)) {
            *f = Some(fix(s));
        }
    }
    true
}

/// Checks a sensor id: 1..=64 chars of `[A-Za-z0-9._:-]`.
pub(crate) fn check_sensor_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(bad(
            RejectReason::BadSensorId,
            "sensor_id is empty; give the sensor a name of 1 to 64 characters [A-Za-z0-9._:-]",
        ));
    }
    if id.len() > MAX_SENSOR_ID_CHARS {
        return Err(bad(
            RejectReason::BadSensorId,
            format!(
                "sensor_id is {} bytes long; at most {MAX_SENSOR_ID_CHARS} characters [A-Za-z0-9._:-] are allowed",
                id.len()
            ),
        ));
    }
    if let Some((i, c)) = id
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(bad(
            RejectReason::BadSensorId,
            format!(
                "sensor_id {:?} holds {c:?} at byte {i}; only [A-Za-z0-9._:-] are allowed",
                id.escape_debug().to_string()
            ),
        ));
    }
    Ok(())
}

/// Checks one record: range of `ts_ns` and `ip_version`, strings.
pub(crate) fn check_record(i: usize, r: &PacketRecord) -> Result<(), StoreError> {
    if r.ts_ns > i64::MAX as u64 {
        return Err(bad(
            RejectReason::OutOfRange,
            format!(
                "record {i}: ts_ns {} is over i64::MAX ({}); the timestamp must be nanoseconds since 1970 before 2262",
                r.ts_ns,
                i64::MAX
            ),
        ));
    }
    if let Some(v) = r.ip_version {
        if v != 4 && v != 6 {
            return Err(bad(
                RejectReason::OutOfRange,
                format!("record {i}: ip_version is {v}; it must be 4, 6 or absent"),
            ));
        }
    }
    for (name, s) in string_fields(r) {
        let Some(s) = s else { continue };
        if let Some(pos) = s.bytes().position(|b| b == 0) {
            return Err(bad(
                RejectReason::BadString,
                format!(
                    "record {i}: field {name} holds a NUL byte at byte {pos}; PostgreSQL text cannot store it"
                ),
            ));
        }
        if s.len() > MAX_STRING_BYTES {
            return Err(bad(
                RejectReason::BadString,
                format!(
                    "record {i}: field {name} is {} bytes long; at most {MAX_STRING_BYTES} bytes are allowed",
                    s.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the envelope fields and every record of a decoded batch.
pub(crate) fn check_batch(
    batch: &PacketBatch,
    count: Option<u64>,
    legacy: bool,
) -> Result<(), StoreError> {
    if !legacy {
        check_sensor_id(&batch.sensor_id)?;
    }
    for (name, v) in [("stream_id", batch.stream_id), ("seq", batch.seq)] {
        if v > i64::MAX as u64 {
            return Err(bad(
                RejectReason::OutOfRange,
                format!(
                    "{name} {v} is over i64::MAX ({}); PostgreSQL bigint cannot store it",
                    i64::MAX
                ),
            ));
        }
    }
    if let Some(count) = count {
        if count != batch.records.len() as u64 {
            return Err(bad(
                RejectReason::CountMismatch,
                format!(
                    "count says {count} but {} records follow",
                    batch.records.len()
                ),
            ));
        }
    }
    for (i, r) in batch.records.iter().enumerate() {
        check_record(i, r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_repairs_nul_and_length() {
        let mut r = PacketRecord {
            dns_qname: Some("a\0b".into()),
            http_path: Some("é".repeat(MAX_STRING_BYTES)),
            iface: Some("eth\0x".into()),
            ..Default::default()
        };
        assert!(sanitize_record(&mut r));
        assert_eq!(r.dns_qname.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(r.iface.as_deref(), Some("eth\u{fffd}x"));
        let p = r.http_path.as_deref().unwrap();
        // Cut at the last character boundary at or before the limit.
        assert!(p.len() <= MAX_STRING_BYTES && p.len() + 2 > MAX_STRING_BYTES);
        assert!(check_record(0, &r).is_ok());
        assert!(!sanitize_record(&mut r));
    }

    #[test]
    fn sanitize_of_many_nuls_stays_under_the_limit() {
        let mut r = PacketRecord {
            tls_sni: Some("\0".repeat(MAX_STRING_BYTES)),
            ..Default::default()
        };
        sanitize_record(&mut r);
        assert!(check_record(0, &r).is_ok());
    }

    #[test]
    fn sensor_ids() {
        for ok in ["a", "sensor-1", "dc1.rack2:eth0_x", &"x".repeat(64)] {
            assert!(check_sensor_id(ok).is_ok(), "{ok}");
        }
        for no in ["", "a b", "é", "a/b", &"x".repeat(65), "a\0"] {
            assert!(check_sensor_id(no).is_err(), "{no}");
        }
    }
}
