//! One TCP connection's endpoint state: sequence numbers, windows,
//! timestamps option, and a segment builder that keeps seq/ack consistent.
use super::build::{self, Ip, Link, Net, ACK, FIN, PROTO_TCP, SYN};
use super::labels::FlowLabel;
use super::Ctx;

/// Per-direction state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct End {
    pub ip: Ip,
    pub port: u16,
    pub ttl: u8,
    /// Next sequence number this side sends.
    pub next: u32,
    /// Window in the SYN, and the (scaled) raw window afterwards.
    pub syn_win: u16,
    pub win: u16,
    pub wscale: u8,
    pub ident: u16,
    /// Offset of this side's TCP timestamp clock.
    pub ts_off: u32,
    /// Last TSval this side sent (echoed by the peer).
    pub last_tsval: u32,
}

/// A TCP connection between a client (initiator) and a server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpConn {
    /// Link of client → server frames.
    pub link: Link,
    pub c: End,
    pub s: End,
    pub flow_label: u32,
    /// Both sides use the timestamps option (12 bytes per segment).
    pub tsopt: bool,
    /// Segments carry at most this much payload.
    pub mss: u16,
}

impl TcpConn {
    /// Payload per full segment.
    pub(crate) fn seg_payload(&self) -> usize {
        usize::from(self.mss) - if self.tsopt { 12 } else { 0 }
    }

    /// Builds one segment into `ctx.frame` (cleared first) and accounts it
    /// in `label`. `fill` appends the payload. SYN and FIN consume one
    /// sequence number; ACK carries the peer's next sequence number.
    pub(crate) fn segment<F: FnOnce(&mut Vec<u8>, &mut Ctx)>(
        &mut self,
        ctx: &mut Ctx,
        label: &mut FlowLabel,
        from_client: bool,
        flags: u8,
        fill: F,
    ) {
        let (me, peer, link) = if from_client {
            (&mut self.c, &mut self.s, self.link)
        } else {
            (&mut self.s, &mut self.c, self.link.reverse())
        };
        me.ident = me.ident.wrapping_add(1);
        let net = Net {
            src: me.ip,
            dst: peer.ip,
            ttl: me.ttl,
            ident: me.ident,
            flow_label: self.flow_label,
        };
        let mut opts = [0u8; 20];
        let tsval = ((ctx.ts / 1_000_000) as u32).wrapping_add(me.ts_off);
        let olen = if flags & SYN != 0 {
            // MSS, SACK permitted, timestamps, NOP, window scale (Linux order).
            let mss = self.mss.to_be_bytes();
            opts[..4].copy_from_slice(&[2, 4, mss[0], mss[1]]);
            if self.tsopt {
                opts[4..6].copy_from_slice(&[4, 2]);
                opts[6..8].copy_from_slice(&[8, 10]);
                opts[8..12].copy_from_slice(&tsval.to_be_bytes());
                let ecr = if flags & ACK != 0 { peer.last_tsval } else { 0 };
                opts[12..16].copy_from_slice(&ecr.to_be_bytes());
                opts[16..20].copy_from_slice(&[1, 3, 3, me.wscale]);
                20
            } else {
                opts[4..8].copy_from_slice(&[1, 3, 3, me.wscale]);
                opts[8..12].copy_from_slice(&[1, 1, 4, 2]);
                12
            }
        } else if self.tsopt {
            opts[..4].copy_from_slice(&[1, 1, 8, 10]);
            opts[4..8].copy_from_slice(&tsval.to_be_bytes());
            opts[8..12].copy_from_slice(&peer.last_tsval.to_be_bytes());
            12
        } else {
            0
        };
        me.last_tsval = tsval;
        let ack = if flags & ACK != 0 { peer.next } else { 0 };
        let win = if flags & SYN != 0 { me.syn_win } else { me.win };
        let seq = me.next;
        let mut frame = std::mem::take(&mut ctx.frame);
        frame.clear();
        let l3 = build::eth_ip(&mut frame, &link, &net, PROTO_TCP);
        build::tcp(
            &mut frame,
            if from_client {
                self.c.port
            } else {
                self.s.port
            },
            if from_client {
                self.s.port
            } else {
                self.c.port
            },
            seq,
            ack,
            flags,
            win,
            &opts[..olen],
        );
        let pstart = frame.len();
        fill(&mut frame, ctx);
        let plen = frame.len() - pstart;
        let end = frame.len();
        build::ip_finish(&mut frame, l3, end);
        build::pad(&mut frame);
        ctx.frame = frame;
        let consumed = plen as u32 + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        let me = if from_client {
            &mut self.c
        } else {
            &mut self.s
        };
        me.next = me.next.wrapping_add(consumed);
        ctx.account(label);
    }
}
