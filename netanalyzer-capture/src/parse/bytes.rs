//! Bounds-checked big-endian reads: `None` when the bytes are not there.

/// The big-endian `u16` at `off`, if captured.
#[inline]
pub(super) fn be16(d: &[u8], off: usize) -> Option<u16> {
    match d.get(off..off.checked_add(2)?) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

/// The big-endian `u32` at `off`, if captured.
#[inline]
pub(super) fn be32(d: &[u8], off: usize) -> Option<u32> {
    match d.get(off..off.checked_add(4)?) {
        Some(&[a, b, c, e]) => Some(u32::from_be_bytes([a, b, c, e])),
        _ => None,
    }
}

/// The `N` bytes at `off`, if captured.
#[inline]
pub(super) fn array<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    d.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// `d` without its first `n` bytes, or an empty slice when shorter.
#[inline]
pub(super) fn skip(d: &[u8], n: usize) -> &[u8] {
    d.get(n..).unwrap_or(&[])
}
