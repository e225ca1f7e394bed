//! The reader's one reusable byte buffer, filled in large chunks.

use std::io::{self, Read};

/// Bytes asked of the OS per `read` call, and the buffer's initial size.
pub(super) const CHUNK: usize = 1 << 20;

/// Byte order of a pcap file or of one pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

impl Endian {
    /// The `u16` at `b[at..at + 2]`. The caller has checked the length.
    #[inline]
    pub(super) fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    /// The `u32` at `b[at..at + 4]`. The caller has checked the length.
    #[inline]
    pub(super) fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    /// The `u64` at `b[at..at + 8]`. The caller has checked the length.
    #[inline]
    pub(super) fn u64(self, b: &[u8], at: usize) -> u64 {
        let hi_first = (u64::from(self.u32(b, at)) << 32) | u64::from(self.u32(b, at + 4));
        match self {
            Endian::Big => hi_first,
            Endian::Little => hi_first.rotate_left(32),
        }
    }
}

/// A window `buf[start..end]` over the stream, refilled by large reads.
///
/// Invariant: `buf.len()` only grows when a caller asks for more
/// contiguous bytes than it holds, and callers only ask for lengths they
/// have already checked against a fixed maximum, so the buffer never grows
/// beyond `max(CHUNK, largest accepted block)`.
pub(super) struct ChunkBuf<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl<R: Read> ChunkBuf<R> {
    pub(super) fn new(inner: R) -> Self {
        ChunkBuf {
            inner,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }
}

impl<R> ChunkBuf<R> {
    /// Stream offset of the first unconsumed byte.
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The unconsumed bytes held now.
    #[inline]
    pub(super) fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Buffer index of the first unconsumed byte (for [`Self::slice`]).
    #[inline]
    pub(super) fn pos(&self) -> usize {
        self.start
    }

    /// `len` bytes at buffer index `at`, valid until the next `fill`.
    #[inline]
    pub(super) fn slice(&self, at: usize, len: usize) -> &[u8] {
        &self.buf[at..at + len]
    }

    /// Marks `n` held bytes as consumed (`n <= avail().len()`).
    #[inline]
    pub(super) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
    }
}

impl<R: Read> ChunkBuf<R> {
    /// Makes at least `n` contiguous bytes available. `Ok(false)` when the
    /// stream ends first (then `avail()` holds what was left).
    ///
    /// `n` must already be bounded by the caller (it sizes the buffer).
    #[inline]
    pub(super) fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<bool> {
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n && !self.eof {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start >= n)
    }

    /// Consumes `n` bytes without keeping them (for skipped blocks of any
    /// length). `Ok(false)` when the stream ends first.
    pub(super) fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        loop {
            let held = (self.end - self.start) as u64;
            if held >= n {
                self.start += n as usize;
                return Ok(true);
            }
            n -= held;
            self.start = self.end;
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }
}
