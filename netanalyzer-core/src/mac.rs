use crate::CoreError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address. Displays and serializes as lowercase
/// `aa:bb:cc:dd:ee:ff`, as tshark prints `eth.src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The six octets.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Reads a MAC from the first six bytes of `b`, or `None` if `b` is shorter.
    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        b.get(..6)?.try_into().ok().map(MacAddr)
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in out.iter_mut() {
            let p = parts
                .next()
                .ok_or_else(|| CoreError::InvalidMac(s.to_owned()))?;
            if p.len() != 2 {
                return Err(CoreError::InvalidMac(s.to_owned()));
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| CoreError::InvalidMac(s.to_owned()))?;
        }
        if parts.next().is_some() {
            return Err(CoreError::InvalidMac(s.to_owned()));
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut buf = [0u8; 17];
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for (i, b) in self.0.iter().enumerate() {
                buf[i * 3] = HEX[usize::from(b >> 4)];
                buf[i * 3 + 1] = HEX[usize::from(b & 0xf)];
                if i < 5 {
                    buf[i * 3 + 2] = b':';
                }
            }
            // The buffer holds only ASCII hex digits and ':'.
            s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MacAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mac address as \"aa:bb:cc:dd:ee:ff\" or 6 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MacAddr, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<MacAddr, E> {
                <[u8; 6]>::try_from(v)
                    .map(MacAddr)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        let m = MacAddr([0x00, 0x1b, 0x21, 0xAB, 0xcd, 0xef]);
        assert_eq!(m.to_string(), "00:1b:21:ab:cd:ef");
        assert_eq!("00:1B:21:ab:cd:ef".parse::<MacAddr>().unwrap(), m);
        assert!("00:1b:21:ab:cd".parse::<MacAddr>().is_err());
        assert!("00:1b:21:ab:cd:ef:00".parse::<MacAddr>().is_err());
        assert!("zz:1b:21:ab:cd:ef".parse::<MacAddr>().is_err());
    }

    #[test]
    fn json_is_lowercase_string() {
        let m = MacAddr([0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]);
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, "\"aa:bb:cc:dd:ee:ff\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&j).unwrap(), m);
    }
}
