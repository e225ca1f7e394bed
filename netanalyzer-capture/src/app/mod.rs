//! Application-layer decoders on transport payloads: the first DNS question,
//! the HTTP/1.x request line and `Host`, the TLS ClientHello server name.
//!
//! They run on every packet, on untrusted bytes, so every decoder here:
//! - allocates nothing: it returns a borrowed `*View<'a>` into the payload;
//! - never panics: every read goes through [`Cursor`] or `slice::get`;
//! - runs in bounded time: each loop either moves forward through the input
//!   or is capped by a fixed count (DNS compression pointers);
//! - rejects non-matching payloads on the first bytes (the HTTP and TLS
//!   detectors run on every TCP payload, on any port).
//!
//! What each decoder prints matches tshark 4.0 (`dns.qry.name`, `http.host`,
//! `tls.handshake.extensions_server_name`), which the conformance test
//! checks against the captures in `../shared/pcaps`.

pub mod dns;
pub mod http;
pub mod tls;
mod unicode;

/// A bounds-checked big-endian reader over a byte slice.
///
/// Every read returns `None` when the bytes run out and then leaves the
/// position where it was, so a decoder can tell "the data ends here" from
/// "a field holds an impossible value" by what it does with the `None`.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// The current offset from the start of the buffer.
    pub const fn pos(&self) -> usize {
        self.pos
    }

    /// How many bytes are left after the current offset.
    pub const fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes after the current offset (the cursor does not move).
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        let b = self.array::<2>()?;
        Some(u16::from_be_bytes(b))
    }

    /// Reads a big-endian 24-bit integer (TLS handshake lengths).
    pub fn u24(&mut self) -> Option<u32> {
        let [a, b, c] = self.array::<3>()?;
        Some(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        let b = self.array::<4>()?;
        Some(u32::from_be_bytes(b))
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Skips the next `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Some(out)
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    /// A seeded xorshift64* generator: random test inputs without a
    /// dependency.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// A value in `0..n` (`n > 0`).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Asserts that `s` points into `input` (a borrowed view, not a copy).
    pub(crate) fn assert_within(input: &[u8], s: &str) {
        let base = input.as_ptr() as usize;
        let p = s.as_ptr() as usize;
        assert!(
            p >= base && p + s.len() <= base + input.len(),
            "string {s:?} does not borrow from the input"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursor_reads_and_stops_at_the_end() {
        let mut c = Cursor::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(c.u8(), Some(1));
        assert_eq!(c.u16(), Some(0x0203));
        assert_eq!(c.u24(), Some(0x04_0506));
        assert_eq!(c.pos(), 6);
        assert_eq!(c.u32(), Some(0x0708_090A));
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.u8(), None);
        assert_eq!(c.rest(), &[] as &[u8]);
    }

    #[test]
    fn failed_reads_do_not_move() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.u32(), None);
        assert_eq!(c.take(4), None);
        assert_eq!(c.take(usize::MAX), None);
        assert_eq!(c.pos(), 0);
        assert_eq!(c.take(3), Some(&[1u8, 2, 3][..]));
        assert_eq!(c.skip(1), None);
    }
}
