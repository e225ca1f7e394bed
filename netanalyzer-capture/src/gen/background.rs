//! Normal background traffic: HTTP and TLS sessions over TCP, DNS over
//! UDP, ICMP echo, ARP and IPv6 neighbour discovery.
use super::app::{self, QTYPE_A, QTYPE_AAAA};
use super::build::{
    self, Ip, Link, Net, ACK, FIN, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, PSH, RST, SYN,
};
use super::hosts::Host;
use super::labels::FlowLabel;
use super::rng::Rng;
use super::tcp::{End, TcpConn};
use super::{Ctx, Scenario};

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/items?page=2",
    "/static/app.js",
    "/static/style.css",
    "/images/logo.png",
    "/login",
    "/search?q=network+analyzer",
    "/news/2024/01/security-update.html",
    "/favicon.ico",
];

const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.31.0",
];

/// Extra DNS names beyond the server names; the last ones do not exist.
const DNS_EXTRA: &[&str] = &[
    "ntp.example.org",
    "time.example.com",
    "printer.corp.example",
    "fileserver.corp.example",
    "wpad.corp.example",
    "isatap.corp.example",
];
const DNS_NX_FROM: usize = 4;

const VLANS: &[u16] = &[10, 20, 30, 100];

/// Picks an ephemeral port the way the client's OS would.
fn ephemeral(rng: &mut Rng, host: &Host) -> u16 {
    if host.ttl == 128 {
        rng.range(49152, 65536) as u16
    } else {
        rng.range(32768, 61000) as u16
    }
}

/// Picks the link of a new flow: optional VLAN tag.
fn link_for(ctx: &mut Ctx, src: [u8; 6], dst: [u8; 6]) -> Link {
    let vlan = if ctx.rng.chance(ctx.vlan_share) {
        Some(*ctx.rng.pick(VLANS))
    } else {
        None
    };
    Link { src, dst, vlan }
}

/// A normal flow in the background pool.
#[allow(clippy::large_enum_variant)] // a fixed pool of these, never moved in bulk
pub(crate) enum NormalFlow {
    Tcp(TcpApp),
    Dns(DnsFlow),
    Ping(PingFlow),
    Neigh(NeighFlow),
}

impl NormalFlow {
    /// Starts a new flow of a random kind.
    pub(crate) fn new(ctx: &mut Ctx) -> NormalFlow {
        match ctx.rng.below(100) {
            0..=24 => NormalFlow::Tcp(TcpApp::new(ctx, false)),
            25..=59 => NormalFlow::Tcp(TcpApp::new(ctx, true)),
            60..=84 => NormalFlow::Dns(DnsFlow::new(ctx)),
            85..=92 => NormalFlow::Ping(PingFlow::new(ctx)),
            _ => NormalFlow::Neigh(NeighFlow::new(ctx)),
        }
    }

    /// Emits the next packet into `ctx.frame`; true when the flow is over
    /// (its label has then been handed to `ctx`).
    pub(crate) fn step(&mut self, ctx: &mut Ctx) -> bool {
        match self {
            NormalFlow::Tcp(f) => f.step(ctx),
            NormalFlow::Dns(f) => f.step(ctx),
            NormalFlow::Ping(f) => f.step(ctx),
            NormalFlow::Neigh(f) => f.step(ctx),
        }
    }

    /// Hands the label of an unfinished flow to `ctx` (end of generation).
    pub(crate) fn abandon(self, ctx: &mut Ctx) {
        match self {
            NormalFlow::Tcp(f) => ctx.finish(f.label),
            NormalFlow::Dns(f) => ctx.finish(f.label),
            NormalFlow::Ping(f) => ctx.finish(f.label),
            NormalFlow::Neigh(_) => {}
        }
    }
}

/// What one application message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MsgKind {
    HttpReq,
    HttpResp,
    TlsHello,
    TlsFlight,
    TlsFinish,
    TlsAppReq,
    TlsAppResp,
}

/// One application message being segmented. Everything needed to render
/// any part of it again is in here (it is `Copy`).
#[derive(Debug, Clone, Copy)]
struct Msg {
    kind: MsgKind,
    from_client: bool,
    /// Bytes already sent.
    off: u32,
    /// Length of the rendered head, then body bytes up to `total`.
    head: u32,
    total: u32,
    /// Body bytes after the head (`total - head` once rendered).
    body: u32,
    status: u16,
    post: u16,
    server: u8,
    path: u8,
    ua: u8,
    /// Seed for the head's random fields (TLS randoms, keys).
    seed: u64,
}

impl Msg {
    fn body_len(&self) -> usize {
        self.body as usize
    }

    /// Renders the head into `out` (cleared).
    fn render_head(&self, ctx: &Ctx, out: &mut Vec<u8>) {
        out.clear();
        let server = ctx.plan.servers[usize::from(self.server)].name;
        let mut r = Rng::new(self.seed);
        match self.kind {
            MsgKind::HttpReq => {
                let method = if self.post > 0 { "POST" } else { "GET" };
                app::http_request(
                    out,
                    method,
                    server,
                    PATHS[usize::from(self.path)],
                    UAS[usize::from(self.ua)],
                    usize::from(self.post),
                );
            }
            MsgKind::HttpResp => {
                let ctype = if self.path == 3 {
                    "application/javascript"
                } else {
                    "text/html; charset=utf-8"
                };
                app::http_response_head(out, self.status, ctype, self.body_len());
            }
            MsgKind::TlsHello => app::tls_client_hello(out, server, &mut r),
            MsgKind::TlsFlight => app::tls_server_hello(out, &mut r),
            MsgKind::TlsFinish => out.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]),
            MsgKind::TlsAppReq | MsgKind::TlsAppResp => {}
        }
    }
}

fn response_size(rng: &mut Rng) -> u32 {
    match rng.below(100) {
        0..=59 => rng.range(200, 4000) as u32,
        60..=89 => rng.range(4000, 40_000) as u32,
        _ => rng.range(40_000, 160_000) as u32,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Syn,
    SynAck,
    HsAck,
    Data,
    PureAck(bool),
    Close(u8),
    Refused,
    Done,
}

/// An HTTP or TLS session.
pub(crate) struct TcpApp {
    conn: TcpConn,
    label: FlowLabel,
    tls: bool,
    rounds: u8,
    index: u8,
    msg: Msg,
    st: St,
    since_ack: u8,
    close_by_client: bool,
    close_rst: bool,
}

impl TcpApp {
    fn new(ctx: &mut Ctx, tls: bool) -> TcpApp {
        let ci = ctx.rng.index(ctx.plan.clients.len());
        let si = ctx.rng.index(ctx.plan.servers.len());
        let client = ctx.plan.clients[ci];
        let server = ctx.plan.servers[si].host;
        let v6 = ctx.rng.chance(ctx.ipv6_share);
        let link = link_for(ctx, client.mac, server.mac);
        let sport = if tls {
            443
        } else if ctx.rng.chance(0.1) {
            8080
        } else {
            80
        };
        let rng = &mut ctx.rng;
        let c = End {
            ip: client.ip(v6),
            port: ephemeral(rng, &client),
            ttl: client.ttl,
            next: rng.u32(),
            syn_win: client.syn_win,
            win: rng.range(500, 2100) as u16,
            wscale: client.wscale,
            ident: rng.u16(),
            ts_off: rng.u32(),
            last_tsval: 0,
        };
        let s = End {
            ip: server.ip(v6),
            port: sport,
            ttl: server.ttl,
            next: rng.u32(),
            syn_win: server.syn_win,
            win: rng.range(240, 1000) as u16,
            wscale: server.wscale,
            ident: rng.u16(),
            ts_off: rng.u32(),
            last_tsval: 0,
        };
        let conn = TcpConn {
            link,
            c,
            s,
            flow_label: rng.u32() & 0x000f_ffff,
            tsopt: client.ttl == 64,
            mss: if v6 { 1440 } else { 1460 },
        };
        let label = FlowLabel::ip(PROTO_TCP, c.ip, c.port, s.ip, s.port, Scenario::Normal);
        let rounds = if tls {
            rng.range(1, 5)
        } else {
            rng.range(1, 4)
        } as u8;
        let close = rng.below(100);
        let refused = rng.chance(0.03);
        let mut app = TcpApp {
            conn,
            label,
            tls,
            rounds,
            index: 0,
            msg: Msg {
                kind: MsgKind::HttpReq,
                from_client: true,
                off: 0,
                head: 0,
                total: 0,
                body: 0,
                status: 200,
                post: 0,
                server: si as u8,
                path: 0,
                ua: 0,
                seed: 0,
            },
            st: St::Syn,
            since_ack: 0,
            close_by_client: close < 85,
            close_rst: close < 15,
        };
        if refused {
            app.rounds = 0;
        }
        app.msg = app.start_msg(ctx, 0).unwrap_or(app.msg);
        app
    }

    fn kind_of(&self, index: u8) -> Option<MsgKind> {
        let r2 = 2 * self.rounds;
        if self.tls {
            match index {
                0 => Some(MsgKind::TlsHello),
                1 => Some(MsgKind::TlsFlight),
                2 => Some(MsgKind::TlsFinish),
                i if i - 3 < r2 && (i - 3) % 2 == 0 => Some(MsgKind::TlsAppReq),
                i if i - 3 < r2 => Some(MsgKind::TlsAppResp),
                _ => None,
            }
        } else if index < r2 {
            Some(if index % 2 == 0 {
                MsgKind::HttpReq
            } else {
                MsgKind::HttpResp
            })
        } else {
            None
        }
    }

    /// Prepares message `index`, or `None` after the last one.
    fn start_msg(&self, ctx: &mut Ctx, index: u8) -> Option<Msg> {
        if self.rounds == 0 {
            return None;
        }
        let kind = self.kind_of(index)?;
        let rng = &mut ctx.rng;
        let mut m = Msg {
            kind,
            from_client: matches!(
                kind,
                MsgKind::HttpReq | MsgKind::TlsHello | MsgKind::TlsFinish | MsgKind::TlsAppReq
            ),
            off: 0,
            head: 0,
            total: 0,
            body: 0,
            status: 200,
            post: 0,
            server: self.msg.server,
            path: if kind == MsgKind::HttpReq {
                rng.index(PATHS.len()) as u8
            } else {
                self.msg.path
            },
            ua: if index == 0 {
                rng.index(UAS.len()) as u8
            } else {
                self.msg.ua
            },
            seed: rng.next_u64(),
        };
        let body = match kind {
            MsgKind::HttpReq => {
                if rng.chance(0.1) {
                    m.post = rng.range(20, 300) as u16;
                }
                0
            }
            MsgKind::HttpResp => {
                m.status = match rng.below(100) {
                    0..=84 => 200,
                    85..=89 => 304,
                    90..=94 => 404,
                    _ => 301,
                };
                match m.status {
                    200 => response_size(rng),
                    304 => 0,
                    _ => rng.range(150, 400) as u32,
                }
            }
            MsgKind::TlsHello => 0,
            MsgKind::TlsFlight => rng.range(2000, 6000) as u32,
            MsgKind::TlsFinish => 58,
            MsgKind::TlsAppReq => rng.range(60, 900) as u32,
            MsgKind::TlsAppResp => app::tls_stream_len(response_size(rng) as usize) as u32,
        };
        m.body = body;
        let mut scratch = std::mem::take(&mut ctx.scratch);
        m.render_head(ctx, &mut scratch);
        m.head = scratch.len() as u32;
        ctx.scratch = scratch;
        m.total = m.head + body;
        Some(m)
    }

    fn step(&mut self, ctx: &mut Ctx) -> bool {
        let label = &mut self.label;
        match self.st {
            St::Syn => {
                self.conn.segment(ctx, label, true, SYN, |_, _| {});
                self.st = if self.rounds == 0 {
                    St::Refused
                } else {
                    St::SynAck
                };
            }
            St::SynAck => {
                self.conn.segment(ctx, label, false, SYN | ACK, |_, _| {});
                self.st = St::HsAck;
            }
            St::HsAck => {
                self.conn.segment(ctx, label, true, ACK, |_, _| {});
                self.st = St::Data;
            }
            St::Refused => {
                self.conn.s.next = 0;
                self.conn.s.win = 0;
                self.conn.segment(ctx, label, false, RST | ACK, |_, _| {});
                self.st = St::Done;
            }
            St::PureAck(by_client) => {
                self.conn.segment(ctx, label, by_client, ACK, |_, _| {});
                self.st = St::Data;
            }
            St::Data => {
                let m = self.msg;
                let n = (self.conn.seg_payload() as u32).min(m.total - m.off);
                let last = m.off + n == m.total;
                let flags = if last { ACK | PSH } else { ACK };
                self.conn
                    .segment(ctx, label, m.from_client, flags, |f, ctx| {
                        let (off, end) = (m.off as usize, (m.off + n) as usize);
                        let head = m.head as usize;
                        if off < head {
                            let mut scratch = std::mem::take(&mut ctx.scratch);
                            m.render_head(ctx, &mut scratch);
                            f.extend_from_slice(&scratch[off..end.min(head)]);
                            ctx.scratch = scratch;
                        }
                        if end > head {
                            let from = off.max(head) - head;
                            let len = end - off.max(head);
                            match m.kind {
                                MsgKind::HttpResp => app::body_slice(f, from, len),
                                MsgKind::HttpReq | MsgKind::TlsHello => {}
                                _ => app::tls_app_stream(f, from, len, m.body_len(), &mut ctx.rng),
                            }
                        }
                    });
                self.msg.off += n;
                self.since_ack += 1;
                if last {
                    self.since_ack = 0;
                    self.index += 1;
                    match self.start_msg(ctx, self.index) {
                        Some(next) => {
                            self.msg = next;
                            if next.from_client == m.from_client {
                                self.st = St::PureAck(!m.from_client);
                            }
                        }
                        None => self.st = St::Close(0),
                    }
                } else if self.since_ack >= 2 {
                    self.since_ack = 0;
                    self.st = St::PureAck(!m.from_client);
                }
            }
            St::Close(step) => {
                let first = self.close_by_client;
                if self.close_rst {
                    self.conn.segment(ctx, label, true, RST | ACK, |_, _| {});
                    self.st = St::Done;
                } else {
                    let (by, flags) = match step {
                        0 => (first, FIN | ACK),
                        1 => (!first, FIN | ACK),
                        _ => (first, ACK),
                    };
                    self.conn.segment(ctx, label, by, flags, |_, _| {});
                    self.st = if step >= 2 {
                        St::Done
                    } else {
                        St::Close(step + 1)
                    };
                }
            }
            St::Done => {}
        }
        ctx.finish_if(self.st == St::Done, self.label)
    }
}

/// A DNS query and its response (client to the LAN resolver).
pub(crate) struct DnsFlow {
    label: FlowLabel,
    link: Link,
    client: Host,
    v6: bool,
    sport: u16,
    id: u16,
    name: &'static str,
    qtype: u16,
    nx: bool,
    edns: bool,
    answer: [u8; 16],
    step: u8,
}

impl DnsFlow {
    fn new(ctx: &mut Ctx) -> DnsFlow {
        let client = ctx.plan.clients[ctx.rng.index(ctx.plan.clients.len())];
        let v6 = ctx.rng.chance(ctx.ipv6_share);
        let link = link_for(ctx, client.mac, ctx.plan.gateway.mac);
        let n = ctx.plan.servers.len() + DNS_EXTRA.len();
        let k = ctx.rng.index(n);
        let (name, answer_host) = if k < ctx.plan.servers.len() {
            (ctx.plan.servers[k].name, Some(ctx.plan.servers[k].host))
        } else {
            (DNS_EXTRA[k - ctx.plan.servers.len()], None)
        };
        let nx = k >= ctx.plan.servers.len() + DNS_NX_FROM;
        let qtype = if ctx.rng.chance(0.3) {
            QTYPE_AAAA
        } else {
            QTYPE_A
        };
        let mut answer = [0u8; 16];
        match answer_host {
            Some(h) if qtype == QTYPE_AAAA => answer = h.v6,
            Some(h) => answer[..4].copy_from_slice(&h.v4),
            None if qtype == QTYPE_AAAA => {
                answer[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                answer[15] = k as u8;
            }
            None => answer[..4].copy_from_slice(&[192, 0, 2, 200 + k as u8 % 50]),
        }
        let sport = ephemeral(&mut ctx.rng, &client);
        let gw = ctx.plan.gateway.ip(v6);
        DnsFlow {
            label: FlowLabel::ip(PROTO_UDP, client.ip(v6), sport, gw, 53, Scenario::Normal),
            link,
            client,
            v6,
            sport,
            id: ctx.rng.u16(),
            name,
            qtype,
            nx,
            edns: ctx.rng.chance(0.3),
            answer,
            step: 0,
        }
    }

    fn step(&mut self, ctx: &mut Ctx) -> bool {
        let gw = ctx.plan.gateway;
        let query = self.step == 0;
        let (link, net) = if query {
            (
                self.link,
                Net {
                    src: self.client.ip(self.v6),
                    dst: gw.ip(self.v6),
                    ttl: self.client.ttl,
                    ident: ctx.rng.u16(),
                    flow_label: u32::from(self.id),
                },
            )
        } else {
            (
                self.link.reverse(),
                Net {
                    src: gw.ip(self.v6),
                    dst: self.client.ip(self.v6),
                    ttl: gw.ttl,
                    ident: ctx.rng.u16(),
                    flow_label: u32::from(self.id) << 1,
                },
            )
        };
        let frame = &mut ctx.frame;
        frame.clear();
        let l3 = build::eth_ip(frame, &link, &net, PROTO_UDP);
        if query {
            build::udp(frame, self.sport, 53);
            app::dns_query(frame, self.id, self.name, self.qtype, self.edns);
        } else {
            build::udp(frame, 53, self.sport);
            app::dns_address_response(
                frame,
                self.id,
                self.name,
                self.qtype,
                &[self.answer],
                self.nx,
                300,
            );
        }
        let end = frame.len();
        build::ip_finish(frame, l3, end);
        build::pad(frame);
        ctx.account(&mut self.label);
        self.step += 1;
        ctx.finish_if(self.step == 2, self.label)
    }
}

/// A few ICMP (or ICMPv6) echo request/reply pairs.
pub(crate) struct PingFlow {
    label: FlowLabel,
    link: Link,
    client: Host,
    target: Host,
    v6: bool,
    id: u16,
    count: u16,
    step: u16,
}

impl PingFlow {
    fn new(ctx: &mut Ctx) -> PingFlow {
        let client = ctx.plan.clients[ctx.rng.index(ctx.plan.clients.len())];
        let target = if ctx.rng.chance(0.2) {
            ctx.plan.gateway
        } else {
            ctx.plan.servers[ctx.rng.index(ctx.plan.servers.len())].host
        };
        let v6 = ctx.rng.chance(ctx.ipv6_share);
        let link = link_for(ctx, client.mac, target.mac);
        let proto = if v6 { PROTO_ICMPV6 } else { PROTO_ICMP };
        PingFlow {
            label: FlowLabel::ip(proto, client.ip(v6), 0, target.ip(v6), 0, Scenario::Normal),
            link,
            client,
            target,
            v6,
            id: ctx.rng.u16(),
            count: ctx.rng.range(1, 6) as u16,
            step: 0,
        }
    }

    fn step(&mut self, ctx: &mut Ctx) -> bool {
        let request = self.step % 2 == 0;
        let seq = self.step / 2 + 1;
        let (link, src, dst) = if request {
            (self.link, self.client, self.target)
        } else {
            (self.link.reverse(), self.target, self.client)
        };
        let net = Net {
            src: src.ip(self.v6),
            dst: dst.ip(self.v6),
            ttl: src.ttl,
            ident: ctx.rng.u16(),
            flow_label: 0,
        };
        let (proto, typ) = match (self.v6, request) {
            (false, true) => (PROTO_ICMP, 8),
            (false, false) => (PROTO_ICMP, 0),
            (true, true) => (PROTO_ICMPV6, 128),
            (true, false) => (PROTO_ICMPV6, 129),
        };
        let frame = &mut ctx.frame;
        frame.clear();
        let l3 = build::eth_ip(frame, &link, &net, proto);
        let id = self.id.to_be_bytes();
        let sq = seq.to_be_bytes();
        build::icmp(frame, typ, 0, [id[0], id[1], sq[0], sq[1]]);
        // Linux ping: 8-byte timeval, then 0x10.. pattern; 56 bytes total.
        let secs = (ctx.ts / 1_000_000_000) as u32;
        let usecs = (ctx.ts % 1_000_000_000 / 1000) as u32;
        frame.extend_from_slice(&secs.to_le_bytes());
        frame.extend_from_slice(&usecs.to_le_bytes());
        frame.extend((0x10u8..0x40).take(48));
        let end = frame.len();
        build::ip_finish(frame, l3, end);
        build::pad(frame);
        ctx.account(&mut self.label);
        self.step += 1;
        ctx.finish_if(self.step == 2 * self.count, self.label)
    }
}

/// An ARP request and reply (IPv4) or an NDP solicitation and
/// advertisement (IPv6). Each packet is its own labelled flow.
pub(crate) struct NeighFlow {
    asker: Host,
    target: Host,
    vlan: Option<u16>,
    v6: bool,
    step: u8,
}

impl NeighFlow {
    fn new(ctx: &mut Ctx) -> NeighFlow {
        let asker = ctx.plan.clients[ctx.rng.index(ctx.plan.clients.len())];
        let target = if ctx.rng.chance(0.6) {
            ctx.plan.gateway
        } else {
            ctx.plan.clients[ctx.rng.index(ctx.plan.clients.len())]
        };
        let v6 = ctx.rng.chance(ctx.ipv6_share);
        let vlan = link_for(ctx, asker.mac, target.mac).vlan;
        NeighFlow {
            asker,
            target,
            vlan,
            v6,
            step: 0,
        }
    }

    fn step(&mut self, ctx: &mut Ctx) -> bool {
        let request = self.step == 0;
        let (src, dst) = if request {
            (self.asker, self.target)
        } else {
            (self.target, self.asker)
        };
        let frame = &mut ctx.frame;
        frame.clear();
        let mut label = if self.v6 {
            let (dst_mac, dst_ip) = if request {
                let t = self.target.v6;
                let mut ip = [0u8; 16];
                ip[..2].copy_from_slice(&[0xff, 0x02]);
                ip[11] = 1;
                ip[12] = 0xff;
                ip[13..].copy_from_slice(&t[13..]);
                ([0x33, 0x33, 0xff, t[13], t[14], t[15]], ip)
            } else {
                (dst.mac, dst.v6)
            };
            let link = Link {
                src: src.mac,
                dst: dst_mac,
                vlan: self.vlan,
            };
            let net = Net {
                src: Ip::V6(src.v6),
                dst: Ip::V6(dst_ip),
                ttl: 255,
                ident: 0,
                flow_label: 0,
            };
            let l3 = build::eth_ip(frame, &link, &net, PROTO_ICMPV6);
            if request {
                build::icmp(frame, 135, 0, [0; 4]);
                frame.extend_from_slice(&self.target.v6);
                frame.extend_from_slice(&[1, 1]);
            } else {
                let router = if src.v4 == ctx.plan.gateway.v4 {
                    0x80
                } else {
                    0
                };
                build::icmp(frame, 136, 0, [router | 0x60, 0, 0, 0]);
                frame.extend_from_slice(&self.target.v6);
                frame.extend_from_slice(&[2, 1]);
            }
            frame.extend_from_slice(&src.mac);
            let end = frame.len();
            build::ip_finish(frame, l3, end);
            build::pad(frame);
            FlowLabel::ip(
                PROTO_ICMPV6,
                Ip::V6(src.v6),
                0,
                Ip::V6(dst_ip),
                0,
                Scenario::Normal,
            )
        } else {
            let (dst_mac, tha) = if request {
                ([0xff; 6], [0; 6])
            } else {
                (dst.mac, dst.mac)
            };
            let link = Link {
                src: src.mac,
                dst: dst_mac,
                vlan: self.vlan,
            };
            let op = if request { 1 } else { 2 };
            build::arp(frame, &link, op, src.mac, src.v4, tha, dst.v4);
            FlowLabel::arp(src.mac, dst_mac, Scenario::Normal)
        };
        ctx.account(&mut label);
        ctx.finish(label);
        self.step += 1;
        self.step == 2
    }
}
