//! Decoder of `raw_packets` rows in PostgreSQL's binary COPY format: the
//! mirror of `pg::writer`'s encoder.

use crate::pg::writer::{COPY_HEADER, PG_EPOCH_OFFSET_US};
use crate::StoreError;
use netanalyzer_core::{MacAddr, PacketRecord, Protocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The columns the feed selects: `raw_packets`' record columns, in
/// [`RAW_PACKETS_COLUMNS`](crate::pg::RAW_PACKETS_COLUMNS) order without
/// `batch_id`.
pub(crate) const READ_COLUMNS: usize = PacketRecord::FIELD_COUNT + 2;

/// What a malformed stream was read from.
const SOURCE: &str = "raw_packets";

fn bad(detail: impl Into<String>) -> StoreError {
    StoreError::CopyDecode {
        source_table: SOURCE,
        detail: detail.into(),
    }
}

/// Decodes a binary COPY stream of [`READ_COLUMNS`] columns into one
/// reused record, fed in arbitrary chunks.
#[derive(Debug, Default)]
pub(crate) struct RowDecoder {
    header_done: bool,
    /// The trailer (-1 field count) was seen.
    pub(crate) finished: bool,
    /// The current row's sensor.
    sensor: String,
    /// The last `iface` seen, shared by the records that carry the same.
    iface: Option<Arc<str>>,
    rec: PacketRecord,
    /// Rows decoded since the last [`reset`](Self::reset).
    pub(crate) rows: u64,
}

impl RowDecoder {
    /// Prepares for a new stream (keeps the buffers).
    pub(crate) fn reset(&mut self) {
        self.header_done = false;
        self.finished = false;
        self.rows = 0;
    }

    /// Decodes every complete row at the start of `buf`, calling `f` for
    /// each, and returns how many bytes it consumed; the rest (an
    /// incomplete row) must be passed again with more bytes after it.
    pub(crate) fn feed(
        &mut self,
        buf: &[u8],
        f: &mut dyn FnMut(&str, &PacketRecord),
    ) -> Result<usize, StoreError> {
        let mut pos = 0;
        if !self.header_done {
            // Signature (11), flags (4), extension length (4), extension.
            if buf.len() < COPY_HEADER.len() {
                return Ok(0);
            }
            if buf[..11] != COPY_HEADER[..11] {
                return Err(bad("not a binary copy stream (bad signature)"));
            }
            let flags = u32::from_be_bytes([buf[11], buf[12], buf[13], buf[14]]);
            if flags & (1 << 16) != 0 {
                return Err(bad("rows carry OIDs"));
            }
            let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
            if buf.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        let mut fields: [Option<(usize, usize)>; READ_COLUMNS] = [None; READ_COLUMNS];
        while !self.finished {
            let rest = &buf[pos..];
            if rest.len() < 2 {
                break;
            }
            let n = i16::from_be_bytes([rest[0], rest[1]]);
            if n == -1 {
                self.finished = true;
                pos += 2;
                break;
            }
            if n as usize != READ_COLUMNS {
                return Err(bad(format!("row has {n} columns, expected {READ_COLUMNS}")));
            }
            // Find the fields; stop if the row is not complete yet.
            let mut p = 2;
            let mut complete = true;
            for slot in fields.iter_mut() {
                let Some(len) = rest.get(p..p + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                p += 4;
                if len < 0 {
                    *slot = None;
                    continue;
                }
                let len = len as usize;
                if rest.len() < p + len {
                    complete = false;
                    break;
                }
                *slot = Some((p, len));
                p += len;
            }
            if !complete {
                break;
            }
            self.decode_row(rest, &fields)?;
            self.rows += 1;
            f(&self.sensor, &self.rec);
            pos += p;
        }
        Ok(pos)
    }

    /// Fills the record from one complete row.
    fn decode_row(
        &mut self,
        row: &[u8],
        fields: &[Option<(usize, usize)>; READ_COLUMNS],
    ) -> Result<(), StoreError> {
        let col = |i: usize| fields[i].map(|(p, n)| &row[p..p + n]);
        let r = &mut self.rec;
        // ts (µs since 2000-01-01) and the ns remainder.
        let ts = int8(col(0), "ts")?.ok_or_else(|| bad("ts is null"))?;
        let rem = int2(col(1), "ts_ns_rem")?.ok_or_else(|| bad("ts_ns_rem is null"))?;
        let unix_us = ts
            .checked_add(PG_EPOCH_OFFSET_US)
            .and_then(|us| u64::try_from(us).ok())
            .ok_or_else(|| bad(format!("ts {ts} before 1970")))?;
        let rem = u64::try_from(rem)
            .ok()
            .filter(|&r| r < 1000)
            .ok_or_else(|| bad(format!("ts_ns_rem {rem} out of range")))?;
        r.ts_ns = unix_us
            .checked_mul(1000)
            .and_then(|ns| ns.checked_add(rem))
            .ok_or_else(|| bad("ts out of range"))?;
        let sensor = text(col(2), "sensor_id")?.ok_or_else(|| bad("sensor_id is null"))?;
        if self.sensor != sensor {
            self.sensor.clear();
            self.sensor.push_str(sensor);
        }
        r.iface = match text(col(3), "iface")? {
            None => None,
            Some(s) => match &self.iface {
                Some(a) if &**a == s => Some(a.clone()),
                _ => {
                    let a: Arc<str> = Arc::from(s);
                    self.iface = Some(a.clone());
                    Some(a)
                }
            },
        };
        r.wire_len = narrow(int8(col(4), "wire_len")?, "wire_len")?.unwrap_or(0);
        r.cap_len = narrow(int8(col(5), "cap_len")?, "cap_len")?.unwrap_or(0);
        r.eth_src = mac(col(6), "eth_src")?;
        r.eth_dst = mac(col(7), "eth_dst")?;
        r.vlan_id = narrow(int4(col(8), "vlan_id")?, "vlan_id")?;
        r.ether_type = narrow(int4(col(9), "ether_type")?, "ether_type")?;
        r.ip_version = narrow(int2(col(10), "ip_version")?, "ip_version")?;
        r.src_ip = inet(col(11), "src_ip")?;
        r.dst_ip = inet(col(12), "dst_ip")?;
        r.ip_proto = narrow(int2(col(13), "ip_proto")?, "ip_proto")?;
        r.ttl = narrow(int2(col(14), "ttl")?, "ttl")?;
        r.is_fragment = boolean(col(15), "is_fragment")?;
        r.src_port = narrow(int4(col(16), "src_port")?, "src_port")?;
        r.dst_port = narrow(int4(col(17), "dst_port")?, "dst_port")?;
        r.tcp_flags = narrow(int4(col(18), "tcp_flags")?, "tcp_flags")?;
        r.tcp_seq = narrow(int8(col(19), "tcp_seq")?, "tcp_seq")?;
        r.tcp_ack = narrow(int8(col(20), "tcp_ack")?, "tcp_ack")?;
        r.tcp_window = narrow(int4(col(21), "tcp_window")?, "tcp_window")?;
        r.payload_len = narrow(int8(col(22), "payload_len")?, "payload_len")?;
        r.icmp_type = narrow(int2(col(23), "icmp_type")?, "icmp_type")?;
        r.icmp_code = narrow(int2(col(24), "icmp_code")?, "icmp_code")?;
        r.arp_op = narrow(int4(col(25), "arp_op")?, "arp_op")?;
        set_text(&mut r.dns_qname, text(col(26), "dns_qname")?);
        r.dns_qtype = narrow(int4(col(27), "dns_qtype")?, "dns_qtype")?;
        r.dns_is_response = boolean(col(28), "dns_is_response")?;
        set_text(&mut r.http_method, text(col(29), "http_method")?);
        set_text(&mut r.http_host, text(col(30), "http_host")?);
        set_text(&mut r.http_path, text(col(31), "http_path")?);
        set_text(&mut r.tls_sni, text(col(32), "tls_sni")?);
        let p = text(col(33), "protocol")?.ok_or_else(|| bad("protocol is null"))?;
        r.protocol = protocol(p)?;
        Ok(())
    }
}

/// Sets an optional string, reusing its allocation.
fn set_text(dst: &mut Option<String>, v: Option<&str>) {
    match (dst.as_mut(), v) {
        (_, None) => *dst = None,
        (Some(d), Some(s)) => {
            d.clear();
            d.push_str(s);
        }
        (None, Some(s)) => *dst = Some(s.to_owned()),
    }
}

fn fixed<const N: usize>(v: Option<&[u8]>, column: &str) -> Result<Option<[u8; N]>, StoreError> {
    match v {
        None => Ok(None),
        Some(b) => b
            .try_into()
            .map(Some)
            .map_err(|_| bad(format!("{column}: {} bytes, expected {N}", b.len()))),
    }
}

fn int2(v: Option<&[u8]>, column: &str) -> Result<Option<i16>, StoreError> {
    Ok(fixed::<2>(v, column)?.map(i16::from_be_bytes))
}

fn int4(v: Option<&[u8]>, column: &str) -> Result<Option<i32>, StoreError> {
    Ok(fixed::<4>(v, column)?.map(i32::from_be_bytes))
}

fn int8(v: Option<&[u8]>, column: &str) -> Result<Option<i64>, StoreError> {
    Ok(fixed::<8>(v, column)?.map(i64::from_be_bytes))
}

fn boolean(v: Option<&[u8]>, column: &str) -> Result<Option<bool>, StoreError> {
    Ok(fixed::<1>(v, column)?.map(|b| b[0] != 0))
}

fn mac(v: Option<&[u8]>, column: &str) -> Result<Option<MacAddr>, StoreError> {
    Ok(fixed::<6>(v, column)?.map(MacAddr))
}

/// A widened integer back into the record's unsigned type.
fn narrow<W, T>(v: Option<W>, column: &str) -> Result<Option<T>, StoreError>
where
    W: Copy + std::fmt::Display,
    T: TryFrom<W>,
{
    match v {
        None => Ok(None),
        Some(w) => T::try_from(w)
            .map(Some)
            .map_err(|_| bad(format!("{column}: value {w} out of range"))),
    }
}

fn text<'a>(v: Option<&'a [u8]>, column: &str) -> Result<Option<&'a str>, StoreError> {
    match v {
        None => Ok(None),
        Some(b) => std::str::from_utf8(b)
            .map(Some)
            .map_err(|e| bad(format!("{column}: not UTF-8: {e}"))),
    }
}

/// `inet`: family (2 = IPv4, 3 = IPv6), prefix bits, is_cidr, address
/// length, address. The prefix is ignored (the writer stores host
/// addresses).
fn inet(v: Option<&[u8]>, column: &str) -> Result<Option<IpAddr>, StoreError> {
    let Some(b) = v else { return Ok(None) };
    match b {
        [2, _, _, 4, a @ ..] if a.len() == 4 => {
            Ok(Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))))
        }
        [3, _, _, 16, a @ ..] if a.len() == 16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            Ok(Some(IpAddr::V6(Ipv6Addr::from(o))))
        }
        _ => Err(bad(format!(
            "{column}: malformed inet of {} bytes",
            b.len()
        ))),
    }
}

fn protocol(s: &str) -> Result<Protocol, StoreError> {
    Protocol::ALL
        .into_iter()
        .find(|p| p.as_str() == s)
        .map_or_else(
            || {
                s.parse()
                    .map_err(|_| bad(format!("protocol: unknown {s:?}")))
            },
            Ok,
        )
}

/// Decodes a whole binary COPY stream of the feed's columns (the
/// `raw_packets` record columns with `sensor_id`, without `batch_id`),
/// delivered in chunks of `chunk` bytes exactly as [`PacketFeed`]
/// buffers them, and returns the rows decoded. For tests and the
/// `copy_decode` fuzz target; the feed itself streams from the server.
///
/// # Errors
/// [`StoreError::CopyDecode`] for a malformed stream or one that ends in
/// the middle of a row.
///
/// [`PacketFeed`]: super::PacketFeed
pub fn decode_copy_stream(
    bytes: &[u8],
    chunk: usize,
    f: &mut dyn FnMut(&str, &PacketRecord),
) -> Result<u64, StoreError> {
    let mut dec = RowDecoder::default();
    let mut pending: Vec<u8> = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        if pending.is_empty() {
            let used = dec.feed(piece, f)?;
            pending.extend_from_slice(&piece[used..]);
        } else {
            pending.extend_from_slice(piece);
            let used = dec.feed(&pending, f)?;
            pending.drain(..used);
        }
    }
    if !dec.finished || !pending.is_empty() {
        return Err(bad("the copy stream ended in the middle of a row"));
    }
    Ok(dec.rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows encoded by the writer's encoder decode to the same records.
    #[test]
    fn decodes_the_writers_rows_in_any_chunking() {
        let full = crate::pg::writer::full_record_for_test();
        let records = vec![full.clone(), PacketRecord::default(), full];
        let mut stream = COPY_HEADER.to_vec();
        for r in &records {
            let start = stream.len();
            crate::pg::writer::encode_row_for_test(&mut stream, "s-1", r);
            // The reader selects no batch_id: drop the last column (8-byte
            // length + value) and fix the column count.
            stream.truncate(stream.len() - 12);
            stream[start..start + 2].copy_from_slice(&(READ_COLUMNS as i16).to_be_bytes());
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        for chunk in [1, 7, 100, stream.len()] {
            let mut d = RowDecoder::default();
            let mut got = Vec::new();
            let mut pending = Vec::new();
            for c in stream.chunks(chunk) {
                pending.extend_from_slice(c);
                let used = d
                    .feed(&pending, &mut |s, r| {
                        assert_eq!(s, "s-1");
                        got.push(r.clone());
                    })
                    .unwrap();
                pending.drain(..used);
            }
            assert!(d.finished && pending.is_empty(), "chunk {chunk}");
            assert_eq!(got, records, "chunk {chunk}");
        }
    }

    #[test]
    fn rejects_garbage() {
        let mut d = RowDecoder::default();
        let err = d.feed(b"PGCOPY\n\xff\r\n\x01\0\0\0\0\0\0\0\0", &mut |_, _| {});
        assert!(err.is_err());
        let mut d = RowDecoder::default();
        let mut s = COPY_HEADER.to_vec();
        s.extend_from_slice(&3i16.to_be_bytes());
        assert!(d.feed(&s, &mut |_, _| {}).is_err());
    }
}
