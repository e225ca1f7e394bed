use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A point in time: nanoseconds since the Unix epoch.
///
/// Timestamps come from packets (capture time), never from a clock in this
/// crate. Arithmetic saturates instead of wrapping, because a capture can
/// hold garbage timestamps.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The Unix epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// Builds a timestamp from whole seconds and a nanosecond part.
    /// Out-of-range values saturate at `u64::MAX` nanoseconds.
    pub const fn from_secs_nanos(secs: u64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    }

    /// Builds a timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Builds a timestamp from microseconds since the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros.saturating_mul(1_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Microseconds since the epoch (truncated).
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// Whole seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    /// The nanosecond part within the second.
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(add))
    }
}

impl fmt::Display for Timestamp {
    /// Formats as `SECONDS.NNNNNNNNN`, as tshark's `frame.time_epoch`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_display_like_tshark() {
        let t = Timestamp::from_secs_nanos(1_234_567_890, 123_456_789);
        assert_eq!(t.secs(), 1_234_567_890);
        assert_eq!(t.subsec_nanos(), 123_456_789);
        assert_eq!(t.to_string(), "1234567890.123456789");
        assert_eq!(Timestamp::from_micros(1_500_000).to_string(), "1.500000000");
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp::from_secs_nanos(u64::MAX, 0).as_nanos(), u64::MAX);
        let a = Timestamp(10);
        assert_eq!(a.saturating_since(Timestamp(20)), Duration::ZERO);
        assert_eq!(
            Timestamp(u64::MAX).saturating_add(Duration::from_secs(1)).0,
            u64::MAX
        );
    }
}
