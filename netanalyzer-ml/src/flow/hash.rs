//! Deterministic hashers: FxHash for the table index (fast, not
//! DoS-resistant against an adversary who can see the table; the table cap
//! bounds the damage) and FNV-1a for flow ids (stable across platforms and
//! releases).

use netanalyzer_core::{FlowAddr, FlowKey, FlowProto};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The rustc FxHash: one rotate, xor and multiply per word.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// Fx alone leaves the low bits (hashbrown's bucket index) weakly
    /// mixed when keys differ only in early words (a spoofed source
    /// address), which made probe chains long under a SYN flood; the
    /// murmur3 finalizer spreads every bit over the whole word.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// `BuildHasher` for the flow index.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// FNV-1a, 64 bit.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn addr(&mut self, a: &FlowAddr) {
        match a {
            FlowAddr::Ip(IpAddr::V4(v)) => {
                self.bytes(&[4]);
                self.bytes(&v.octets());
            }
            FlowAddr::Ip(IpAddr::V6(v)) => {
                self.bytes(&[6]);
                self.bytes(&v.octets());
            }
            FlowAddr::Mac(m) => {
                self.bytes(&[0]);
                self.bytes(&m.0);
            }
        }
    }
}

/// The flow id: FNV-1a over an explicit byte encoding of the canonical
/// key and the conversation's first packet time.
pub(crate) fn flow_id(key: &FlowKey, first_ts_ns: u64) -> u64 {
    let mut h = Fnv::new();
    match key.proto {
        FlowProto::Ip(p) => h.bytes(&[1, p]),
        FlowProto::Arp => h.bytes(&[2, 0]),
    }
    h.addr(&key.lo_addr);
    h.bytes(&key.lo_port.to_be_bytes());
    h.addr(&key.hi_addr);
    h.bytes(&key.hi_port.to_be_bytes());
    h.bytes(&first_ts_ns.to_be_bytes());
    h.0
}
