//! Attack scenarios: SYN/UDP/ICMP floods (template frames with patched
//! fields), a TCP SYN + UDP port scan, slowloris and DNS amplification.
use super::app;
use super::build::{self, Ip, Link, Net, ACK, PROTO_ICMP, PROTO_TCP, PROTO_UDP, PSH, RST, SYN};
use super::hosts::{self, ATTACKER_MAC, GATEWAY_MAC, VICTIM_MAC};
use super::labels::FlowLabel;
use super::tcp::{End, TcpConn};
use super::{Ctx, Scenario};
use std::io::Write;

const FLOOD_WINDOWS: &[u16] = &[
    512, 1024, 2048, 4096, 5840, 8192, 14600, 29200, 64240, 65535,
];

/// A single-packet-per-flow flood built by patching a template frame.
pub(crate) struct Flood {
    scenario: Scenario,
    tmpl: Vec<u8>,
    l3: usize,
    end: usize,
}

impl Flood {
    /// Builds the template for `scenario` (one of the three floods).
    pub(crate) fn new(ctx: &mut Ctx, scenario: Scenario) -> Flood {
        let victim = ctx.plan.victim().host;
        let link = Link {
            src: GATEWAY_MAC,
            dst: VICTIM_MAC,
            vlan: None,
        };
        let net = Net {
            src: Ip::V4([10, 0, 0, 1]),
            dst: Ip::V4(victim.v4),
            ttl: 64,
            ident: 0,
            flow_label: 0,
        };
        let mut t = Vec::with_capacity(1600);
        let (l3, end) = match scenario {
            Scenario::SynFlood => {
                let l3 = build::eth_ip(&mut t, &link, &net, PROTO_TCP);
                build::tcp(&mut t, 0, 80, 0, 0, SYN, 0, &[2, 4, 0x05, 0xb4]);
                (l3, t.len())
            }
            Scenario::UdpFlood => {
                let l3 = build::eth_ip(&mut t, &link, &net, PROTO_UDP);
                build::udp(&mut t, 0, 0);
                let n = ctx.rng.range(32, 1200) as usize;
                ctx.rng.extend(&mut t, n);
                (l3, t.len())
            }
            _ => {
                let l3 = build::eth_ip(&mut t, &link, &net, PROTO_ICMP);
                build::icmp(&mut t, 8, 0, [0; 4]);
                t.extend((0u8..56).map(|i| 0x61 + i % 23));
                (l3, t.len())
            }
        };
        build::pad(&mut t);
        Flood {
            scenario,
            tmpl: t,
            l3,
            end,
        }
    }

    /// Emits one flood packet from a fresh spoofed source.
    pub(crate) fn emit(&mut self, ctx: &mut Ctx) {
        let r = ctx.rng.next_u64();
        let r2 = ctx.rng.next_u64();
        let src = hosts::spoofed_v4(r);
        let (l3, l4) = (self.l3, self.l3 + 20);
        let f = &mut ctx.frame;
        f.clear();
        f.extend_from_slice(&self.tmpl);
        let b = r2.to_be_bytes();
        f[l3 + 4..l3 + 6].copy_from_slice(&b[0..2]); // ident
        f[l3 + 8] = 32 + b[2] % 219; // ttl
        f[l3 + 12..l3 + 16].copy_from_slice(&src);
        let sport = 1024 + (u16::from_be_bytes([b[3], b[4]]) % 64512);
        let victim = ctx.plan.victim().host;
        let label = match self.scenario {
            Scenario::SynFlood => {
                f[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
                f[l4 + 4..l4 + 8].copy_from_slice(&((r >> 32) as u32).to_be_bytes());
                let win = FLOOD_WINDOWS[usize::from(b[5]) % FLOOD_WINDOWS.len()];
                f[l4 + 14..l4 + 16].copy_from_slice(&win.to_be_bytes());
                FlowLabel::ip(
                    PROTO_TCP,
                    Ip::V4(src),
                    sport,
                    Ip::V4(victim.v4),
                    80,
                    self.scenario,
                )
            }
            Scenario::UdpFlood => {
                let dport = 1 + u16::from_be_bytes([b[5], b[6]]) % 65535;
                f[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
                f[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
                FlowLabel::ip(
                    PROTO_UDP,
                    Ip::V4(src),
                    sport,
                    Ip::V4(victim.v4),
                    dport,
                    self.scenario,
                )
            }
            _ => {
                f[l4 + 4..l4 + 6].copy_from_slice(&[b[5], b[6]]);
                f[l4 + 6..l4 + 8].copy_from_slice(&[0, 1 + b[7] % 16]);
                FlowLabel::ip(
                    PROTO_ICMP,
                    Ip::V4(src),
                    0,
                    Ip::V4(victim.v4),
                    0,
                    self.scenario,
                )
            }
        };
        build::ip_finish(f, l3, self.end);
        let mut label = label;
        ctx.account(&mut label);
        ctx.finish(label);
    }
}

/// Scanner and target of the port scan.
const SCANNER: [u8; 4] = [198, 51, 100, 66];
const SCAN_TARGET: [u8; 4] = [203, 0, 113, 20];
const SCAN_TARGET_MAC: [u8; 6] = [0x00, 0x25, 0x90, 0x0a, 0x71, 0x14];
const OPEN_TCP: &[u16] = &[22, 25, 80, 443, 8080];

/// The `k`-th port (from 1) of a scan: every port once, the well-known
/// ports 1-1024 first, each range in a scrambled order (389 is coprime
/// with 1024; `step` must be coprime with 64511).
fn scan_port(k: u32, step: u64) -> u16 {
    let k = u64::from(k - 1) % 65535;
    if k < 1024 {
        (k * 389 % 1024) as u16 + 1
    } else {
        ((k - 1024) * step % 64511) as u16 + 1025
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    Open,
    Closed,
    Silent,
}

struct Probe {
    conn: TcpConn,
    label: FlowLabel,
    udp: bool,
    reply: Reply,
    step: u8,
}

/// A TCP SYN scan interleaved with a UDP scan (one UDP probe in four),
/// with up to 12 probes outstanding.
pub(crate) struct PortScan {
    probes: Vec<Probe>,
    tcp_k: u32,
    udp_k: u32,
    sport: u16,
    udp_sport: u16,
    unreach: FlowLabel,
}

impl PortScan {
    pub(crate) fn new(ctx: &mut Ctx) -> PortScan {
        PortScan {
            probes: Vec::with_capacity(12),
            tcp_k: 0,
            udp_k: 0,
            sport: ctx.rng.range(33000, 65000) as u16,
            udp_sport: ctx.rng.range(33000, 65000) as u16,
            unreach: FlowLabel::ip(
                PROTO_ICMP,
                Ip::V4(SCAN_TARGET),
                0,
                Ip::V4(SCANNER),
                0,
                Scenario::PortScan,
            ),
        }
    }

    fn new_probe(&mut self, ctx: &mut Ctx) -> Probe {
        let udp = ctx.rng.below(4) == 0;
        let (port, sport) = if udp {
            self.udp_k += 1;
            (scan_port(self.udp_k, 4099), self.udp_sport)
        } else {
            self.tcp_k += 1;
            (scan_port(self.tcp_k, 7919), self.sport)
        };
        let reply = if udp {
            if ctx.rng.chance(0.8) {
                Reply::Closed
            } else {
                Reply::Silent
            }
        } else if OPEN_TCP.contains(&port) {
            Reply::Open
        } else if port % 7 == 3 {
            Reply::Silent
        } else {
            Reply::Closed
        };
        let rng = &mut ctx.rng;
        let c = End {
            ip: Ip::V4(SCANNER),
            port: sport,
            ttl: rng.range(37, 60) as u8,
            next: rng.u32(),
            syn_win: 1024,
            win: 0,
            wscale: 0,
            ident: rng.u16(),
            ts_off: 0,
            last_tsval: 0,
        };
        let s = End {
            ip: Ip::V4(SCAN_TARGET),
            port,
            ttl: 64,
            next: if reply == Reply::Open { rng.u32() } else { 0 },
            syn_win: 64240,
            win: 0,
            wscale: 7,
            ident: rng.u16(),
            ts_off: 0,
            last_tsval: 0,
        };
        let proto = if udp { PROTO_UDP } else { PROTO_TCP };
        Probe {
            conn: TcpConn {
                link: Link {
                    src: GATEWAY_MAC,
                    dst: SCAN_TARGET_MAC,
                    vlan: None,
                },
                c,
                s,
                flow_label: 0,
                tsopt: false,
                mss: 1460,
            },
            label: FlowLabel::ip(proto, c.ip, sport, s.ip, port, Scenario::PortScan),
            udp,
            reply,
            step: 0,
        }
    }

    pub(crate) fn emit(&mut self, ctx: &mut Ctx) {
        let start_new = self.probes.len() < 12 && (self.probes.is_empty() || ctx.rng.chance(0.5));
        let i = if start_new {
            let p = self.new_probe(ctx);
            self.probes.push(p);
            self.probes.len() - 1
        } else {
            ctx.rng.index(self.probes.len())
        };
        let p = &mut self.probes[i];
        let done = if p.udp {
            Self::udp_step(p, &mut self.unreach, ctx)
        } else {
            Self::tcp_step(p, ctx)
        };
        if done {
            let p = self.probes.swap_remove(i);
            ctx.finish(p.label);
        }
    }

    fn tcp_step(p: &mut Probe, ctx: &mut Ctx) -> bool {
        let step = p.step;
        p.step += 1;
        match (step, p.reply) {
            (0, _) => {
                p.conn.segment(ctx, &mut p.label, true, SYN, |_, _| {});
                p.reply == Reply::Silent
            }
            (1, Reply::Open) => {
                p.conn.s.win = p.conn.s.syn_win;
                p.conn
                    .segment(ctx, &mut p.label, false, SYN | ACK, |_, _| {});
                false
            }
            (1, _) => {
                p.conn
                    .segment(ctx, &mut p.label, false, RST | ACK, |_, _| {});
                true
            }
            _ => {
                p.conn.segment(ctx, &mut p.label, true, RST, |_, _| {});
                true
            }
        }
    }

    fn udp_step(p: &mut Probe, unreach: &mut FlowLabel, ctx: &mut Ctx) -> bool {
        let f = &mut ctx.frame;
        f.clear();
        let c = p.conn.c;
        let s = p.conn.s;
        let probe_net = Net {
            src: c.ip,
            dst: s.ip,
            ttl: c.ttl,
            ident: c.ident,
            flow_label: 0,
        };
        let l3 = build::eth_ip(f, &p.conn.link, &probe_net, PROTO_UDP);
        build::udp(f, c.port, s.port);
        let end = f.len();
        build::ip_finish(f, l3, end);
        if p.step == 0 {
            build::pad(f);
            ctx.account(&mut p.label);
            p.step = 1;
            return p.reply == Reply::Silent;
        }
        // ICMP port unreachable quoting the probe's IP header and UDP header.
        let mut quoted = [0u8; 28];
        quoted.copy_from_slice(&f[l3..l3 + 28]);
        f.clear();
        let net = Net {
            src: s.ip,
            dst: c.ip,
            ttl: 64,
            ident: s.ident,
            flow_label: 0,
        };
        let l3 = build::eth_ip(f, &p.conn.link.reverse(), &net, PROTO_ICMP);
        build::icmp(f, 3, 3, [0; 4]);
        f.extend_from_slice(&quoted);
        let end = f.len();
        build::ip_finish(f, l3, end);
        build::pad(f);
        ctx.account(unreach);
        true
    }

    pub(crate) fn abandon(self, ctx: &mut Ctx) {
        for p in self.probes {
            ctx.finish(p.label);
        }
        ctx.finish(self.unreach);
    }
}

const SLOW_CONNS: usize = 150;
const SLOW_ATTACKER: [u8; 4] = [198, 51, 100, 77];

struct SlowConn {
    conn: TcpConn,
    label: FlowLabel,
    step: u16,
    lines_left: u16,
}

/// Slowloris: many connections that send a partial HTTP head, then one
/// more header line at a time, visited round-robin so each connection
/// speaks periodically; the server times a connection out with a RST.
pub(crate) struct Slowloris {
    conns: Vec<SlowConn>,
    next: usize,
}

impl Slowloris {
    pub(crate) fn new() -> Slowloris {
        Slowloris {
            conns: Vec::with_capacity(SLOW_CONNS),
            next: 0,
        }
    }

    fn new_conn(ctx: &mut Ctx) -> SlowConn {
        let victim = ctx.plan.victim().host;
        let rng = &mut ctx.rng;
        let c = End {
            ip: Ip::V4(SLOW_ATTACKER),
            port: rng.range(32768, 61000) as u16,
            ttl: 49,
            next: rng.u32(),
            syn_win: 64240,
            win: 502,
            wscale: 7,
            ident: rng.u16(),
            ts_off: rng.u32(),
            last_tsval: 0,
        };
        let s = End {
            ip: Ip::V4(victim.v4),
            port: 80,
            ttl: 64,
            next: rng.u32(),
            syn_win: 65160,
            win: 509,
            wscale: 7,
            ident: rng.u16(),
            ts_off: rng.u32(),
            last_tsval: 0,
        };
        SlowConn {
            conn: TcpConn {
                link: Link {
                    src: GATEWAY_MAC,
                    dst: VICTIM_MAC,
                    vlan: None,
                },
                c,
                s,
                flow_label: 0,
                tsopt: true,
                mss: 1460,
            },
            label: FlowLabel::ip(PROTO_TCP, c.ip, c.port, s.ip, 80, Scenario::Slowloris),
            step: 0,
            lines_left: rng.range(20, 60) as u16,
        }
    }

    pub(crate) fn emit(&mut self, ctx: &mut Ctx) {
        if self.conns.len() < SLOW_CONNS {
            let c = Self::new_conn(ctx);
            self.conns.push(c);
            self.next = self.conns.len() - 1;
        }
        let i = self.next;
        self.next = (self.next + 1) % SLOW_CONNS;
        let sc = &mut self.conns[i];
        let step = sc.step;
        sc.step += 1;
        let (conn, label) = (&mut sc.conn, &mut sc.label);
        let done = match step {
            0 => {
                conn.segment(ctx, label, true, SYN, |_, _| {});
                false
            }
            1 => {
                conn.segment(ctx, label, false, SYN | ACK, |_, _| {});
                false
            }
            2 => {
                conn.segment(ctx, label, true, ACK, |_, _| {});
                false
            }
            3 => {
                let r = ctx.rng.below(2000);
                conn.segment(ctx, label, true, ACK | PSH, |f, _| {
                    let _ = write!(
                        f,
                        "GET /?{r} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0\r\nAccept-language: en-US,en,q=0.5\r\n"
                    );
                });
                false
            }
            s if s % 2 == 0 => {
                conn.segment(ctx, label, false, ACK, |_, _| {});
                false
            }
            _ if sc.lines_left == 0 => {
                conn.segment(ctx, label, false, RST | ACK, |_, _| {});
                true
            }
            _ => {
                sc.lines_left -= 1;
                let r = ctx.rng.range(1, 5000);
                conn.segment(ctx, label, true, ACK | PSH, |f, _| {
                    let _ = write!(f, "X-a: {r}\r\n");
                });
                false
            }
        };
        if done {
            let fresh = Self::new_conn(ctx);
            let old = std::mem::replace(&mut self.conns[i], fresh);
            ctx.finish(old.label);
        }
    }

    pub(crate) fn abandon(self, ctx: &mut Ctx) {
        for c in self.conns {
            ctx.finish(c.label);
        }
    }
}

const AMP_NAMES: &[&str] = &["example.org", "example.net", "amp.example.com"];

struct AmpQuery {
    label: FlowLabel,
    reflector: [u8; 4],
    sport: u16,
    id: u16,
    name: &'static str,
}

/// DNS amplification: small spoofed ANY queries (source = victim) to
/// open resolvers, answered with ~1.2-1.45 kB responses to the victim.
pub(crate) struct DnsAmp {
    pending: Vec<AmpQuery>,
}

impl DnsAmp {
    pub(crate) fn new() -> DnsAmp {
        DnsAmp {
            pending: Vec::with_capacity(8),
        }
    }

    pub(crate) fn emit(&mut self, ctx: &mut Ctx) {
        let victim = ctx.plan.victim().host.v4;
        let start_new = self.pending.len() < 8 && (self.pending.is_empty() || ctx.rng.chance(0.5));
        let f = &mut ctx.frame;
        f.clear();
        if start_new {
            let rng = &mut ctx.rng;
            let reflector = if rng.chance(0.5) {
                [198, 51, 100, rng.range(150, 255) as u8]
            } else {
                [192, 0, 2, rng.range(150, 255) as u8]
            };
            let sport = rng.range(1024, 65536) as u16;
            let q = AmpQuery {
                label: FlowLabel::ip(
                    PROTO_UDP,
                    Ip::V4(victim),
                    sport,
                    Ip::V4(reflector),
                    53,
                    Scenario::DnsAmplification,
                ),
                reflector,
                sport,
                id: rng.u16(),
                name: AMP_NAMES[rng.index(AMP_NAMES.len())],
            };
            let link = Link {
                src: ATTACKER_MAC,
                dst: GATEWAY_MAC,
                vlan: None,
            };
            let net = Net {
                src: Ip::V4(victim),
                dst: Ip::V4(reflector),
                ttl: 64,
                ident: rng.u16(),
                flow_label: 0,
            };
            let l3 = build::eth_ip(f, &link, &net, PROTO_UDP);
            build::udp(f, sport, 53);
            app::dns_query(f, q.id, q.name, app::QTYPE_ANY, true);
            let end = f.len();
            build::ip_finish(f, l3, end);
            build::pad(f);
            let mut q = q;
            ctx.account(&mut q.label);
            self.pending.push(q);
        } else {
            let i = ctx.rng.index(self.pending.len());
            let mut q = self.pending.swap_remove(i);
            let link = Link {
                src: GATEWAY_MAC,
                dst: VICTIM_MAC,
                vlan: None,
            };
            let net = Net {
                src: Ip::V4(q.reflector),
                dst: Ip::V4(victim),
                ttl: 64 - (q.reflector[3] % 20),
                ident: ctx.rng.u16(),
                flow_label: 0,
            };
            let target = ctx.rng.range(1200, 1450) as usize;
            let l3 = build::eth_ip(f, &link, &net, PROTO_UDP);
            build::udp(f, 53, q.sport);
            app::dns_any_response(f, q.id, q.name, target, &mut ctx.rng);
            let end = f.len();
            build::ip_finish(f, l3, end);
            build::pad(f);
            ctx.account(&mut q.label);
            ctx.finish(q.label);
        }
    }

    pub(crate) fn abandon(self, ctx: &mut Ctx) {
        for q in self.pending {
            ctx.finish(q.label);
        }
    }
}
