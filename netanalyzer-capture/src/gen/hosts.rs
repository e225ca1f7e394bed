//! The fixed address plan of generated traffic. Only private and
//! documentation ranges are used:
//!
//! - LAN clients: `192.168.1.20..` and `2001:db8:1::/64` (RFC 3849), with
//!   MACs from a few real vendor OUIs.
//! - Gateway and DNS resolver: `192.168.1.1`, `2001:db8:1::1`.
//! - Remote servers: `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`
//!   (RFC 5737) and `2001:db8:ffff::/48`, seen through the gateway MAC.
//! - The attack victim is server 0, `www.example.com` at `203.0.113.10`.
//! - Spoofed flood sources: `10.0.0.0/8` and `198.18.0.0/15` (RFC 2544).
//!
//! The plan does not depend on the seed, so addresses are stable across runs.
use super::build::Ip;
use super::rng::splitmix64;

/// A host as seen on the capture link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Host {
    pub v4: [u8; 4],
    pub v6: [u8; 16],
    /// The MAC its frames carry on the capture link (the gateway's for
    /// remote hosts).
    pub mac: [u8; 6],
    /// TTL / hop limit its packets have when they reach the capture point.
    pub ttl: u8,
    /// SYN window and window-scale shift of its TCP stack.
    pub syn_win: u16,
    pub wscale: u8,
}

impl Host {
    /// The address of the requested family.
    pub(crate) fn ip(&self, v6: bool) -> Ip {
        if v6 {
            Ip::V6(self.v6)
        } else {
            Ip::V4(self.v4)
        }
    }
}

/// A remote server and the name clients use for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Server {
    pub host: Host,
    pub name: &'static str,
}

/// Server names with their IPv4 address; index 0 is the victim.
const SERVERS: &[(&str, [u8; 4])] = &[
    ("www.example.com", [203, 0, 113, 10]),
    ("api.example.com", [203, 0, 113, 11]),
    ("cdn.example.net", [198, 51, 100, 20]),
    ("static.example.org", [198, 51, 100, 21]),
    ("mail.example.com", [203, 0, 113, 25]),
    ("login.example.org", [192, 0, 2, 30]),
    ("shop.example.net", [198, 51, 100, 40]),
    ("news.example.org", [203, 0, 113, 50]),
    ("video.example.com", [198, 51, 100, 60]),
    ("git.example.net", [192, 0, 2, 70]),
    ("docs.example.org", [203, 0, 113, 80]),
    ("updates.example.com", [192, 0, 2, 90]),
    ("img.example.net", [198, 51, 100, 100]),
    ("chat.example.org", [203, 0, 113, 110]),
    ("telemetry.example.com", [192, 0, 2, 120]),
    ("fonts.example.net", [198, 51, 100, 130]),
];

/// Vendor OUIs for client MACs (Intel, Apple, Dell, Raspberry Pi, VMware, HP).
const OUIS: &[[u8; 3]] = &[
    [0x3c, 0xa9, 0xf4],
    [0xa4, 0x83, 0xe7],
    [0xf8, 0xbc, 0x12],
    [0xb8, 0x27, 0xeb],
    [0x00, 0x50, 0x56],
    [0x94, 0x57, 0xa5],
];

/// Number of LAN clients.
pub(crate) const CLIENTS: usize = 120;

/// MAC of the gateway / router.
pub(crate) const GATEWAY_MAC: [u8; 6] = [0x00, 0x1a, 0x8c, 0x10, 0x00, 0x01];
/// MAC of the victim server on its DMZ segment.
pub(crate) const VICTIM_MAC: [u8; 6] = [0x00, 0x25, 0x90, 0x0a, 0x71, 0x0a];
/// MAC of the host that injects attack traffic from the inside.
pub(crate) const ATTACKER_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x66, 0x06, 0x06];

/// The whole plan.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub gateway: Host,
    pub clients: Vec<Host>,
    pub servers: Vec<Server>,
}

fn doc_v6(prefix: [u8; 6], suffix: u64) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..6].copy_from_slice(&prefix);
    a[8..].copy_from_slice(&suffix.to_be_bytes());
    a
}

impl Plan {
    /// Builds the fixed plan.
    pub(crate) fn new() -> Plan {
        let mut h = 0x6e65_7461_6e61_6c79u64;
        let gateway = Host {
            v4: [192, 168, 1, 1],
            v6: doc_v6([0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01], 1),
            mac: GATEWAY_MAC,
            ttl: 64,
            syn_win: 65535,
            wscale: 7,
        };
        let clients = (0..CLIENTS)
            .map(|i| {
                let r = splitmix64(&mut h);
                let oui = OUIS[(r % OUIS.len() as u64) as usize];
                let b = r.to_be_bytes();
                // Windows hosts: TTL 128, scale 8; others Linux/macOS.
                let (ttl, syn_win, wscale) = match b[7] % 10 {
                    0..=3 => (128, 64240, 8),
                    4..=5 => (64, 65535, 6),
                    _ => (64, 64240, 7),
                };
                Host {
                    v4: [192, 168, 1, 20 + i as u8],
                    v6: doc_v6(
                        [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01],
                        r >> 8 | 0x0200_0000_0000_0000,
                    ),
                    mac: [oui[0], oui[1], oui[2], b[0], b[1], b[2]],
                    ttl,
                    syn_win,
                    wscale,
                }
            })
            .collect();
        let servers = SERVERS
            .iter()
            .enumerate()
            .map(|(i, &(name, v4))| {
                let r = splitmix64(&mut h);
                let hops = 6 + (r % 14) as u8;
                let (init, syn_win, wscale) = match (r >> 8) % 4 {
                    0 => (128u8, 65535, 8),
                    1 => (255, 65535, 9),
                    _ => (64, 65160, 7),
                };
                let host = Host {
                    v4,
                    v6: doc_v6([0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff], 0x10 + i as u64),
                    mac: GATEWAY_MAC,
                    ttl: init - hops,
                    syn_win,
                    wscale,
                };
                Server { host, name }
            })
            .collect();
        Plan {
            gateway,
            clients,
            servers,
        }
    }

    /// The victim of the attack scenarios (server 0).
    pub(crate) fn victim(&self) -> &Server {
        &self.servers[0]
    }
}

/// A random spoofed source address from `10.0.0.0/8` or `198.18.0.0/15`.
pub(crate) fn spoofed_v4(r: u64) -> [u8; 4] {
    let b = r.to_be_bytes();
    if b[0] & 1 == 0 {
        [10, b[1], b[2], b[3].max(1)]
    } else {
        [198, 18 | (b[1] & 1), b[2], b[3].max(1)]
    }
}
