//! [`InterfaceInfo`] and timestamp-unit conversion.

use crate::LinkType;

/// What a file says about one capture interface.
///
/// Classic pcap has exactly one, built from the file header. pcapng has one
/// per Interface Description Block of the current section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Link-layer header type of its frames.
    pub link: LinkType,
    /// Snapshot length (0 = unlimited in pcapng).
    pub snaplen: u32,
    /// pcapng `if_name`, if the block has one.
    pub name: Option<String>,
    /// Timestamp resolution byte as in pcapng `if_tsresol`: high bit clear
    /// means 10^-n seconds, set means 2^-n seconds. Default 6 (µs); classic
    /// pcap reports 6 or 9 by its magic.
    pub tsresol: u8,
    /// pcapng `if_tsoffset`: seconds added to every timestamp (default 0).
    pub tsoffset: i64,
    conv: TsConv,
}

impl InterfaceInfo {
    pub(crate) fn new(link: LinkType, snaplen: u32, tsresol: u8) -> Self {
        InterfaceInfo {
            link,
            snaplen,
            name: None,
            tsresol,
            tsoffset: 0,
            conv: TsConv::from_resol(tsresol),
        }
    }

    /// Converts a timestamp in this interface's units (`if_tsresol`,
    /// `if_tsoffset`) to nanoseconds since the epoch, truncating finer
    /// units and saturating at 0 and `u64::MAX`.
    #[inline]
    pub fn ts_to_ns(&self, ticks: u64) -> u64 {
        let ns = self.conv.ns(ticks);
        if self.tsoffset == 0 {
            return u64::try_from(ns).unwrap_or(u64::MAX);
        }
        let ns = ns as i128 + i128::from(self.tsoffset) * 1_000_000_000;
        u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
    }
}

/// Precomputed ticks → nanoseconds conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TsConv {
    /// Multiply by 10^(9-n).
    Mul(u64),
    /// Divide by 10^(n-9).
    Div(u64),
    /// Multiply by 10^9, divide by 2^n.
    Pow2(u32),
    /// Units so fine that every 64-bit count is below one nanosecond.
    Zero,
}

impl TsConv {
    fn from_resol(resol: u8) -> Self {
        let n = u32::from(resol & 0x7f);
        if resol & 0x80 != 0 {
            TsConv::Pow2(n)
        } else if n <= 9 {
            TsConv::Mul(10u64.pow(9 - n))
        } else if n - 9 <= 19 {
            TsConv::Div(10u64.pow(n - 9))
        } else {
            TsConv::Zero
        }
    }

    #[inline]
    fn ns(self, ticks: u64) -> u128 {
        match self {
            TsConv::Mul(m) => u128::from(ticks) * u128::from(m),
            TsConv::Div(d) => u128::from(ticks / d),
            TsConv::Pow2(n) => (u128::from(ticks) * 1_000_000_000) >> n,
            TsConv::Zero => 0,
        }
    }
}
