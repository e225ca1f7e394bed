//! Golden tests on hand-made packet sequences. Times are written in µs
//! from T0; the expected values are worked out by hand in the comments.

use super::*;
use netanalyzer_core::{FlowAddr, MacAddr, Protocol, FEATURES};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const T0: u64 = 1_700_000_000_000_000_000;
const S: u64 = 1_000_000; // one second in µs

fn at(t_us: u64) -> u64 {
    T0 + t_us * 1_000
}

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn base(t_us: u64, c2s: bool, proto: u8, payload: u32, l4: u32) -> PacketRecord {
    let (s, d, sp, dp) = if c2s {
        (CLIENT, SERVER, 40000, 80)
    } else {
        (SERVER, CLIENT, 80, 40000)
    };
    let wire = (14 + 20 + l4 + payload).max(60);
    PacketRecord {
        ts_ns: at(t_us),
        wire_len: wire,
        cap_len: wire,
        eth_src: Some(MacAddr([2, 0, 0, 0, 0, u8::from(c2s)])),
        eth_dst: Some(MacAddr([2, 0, 0, 0, 0, u8::from(!c2s)])),
        ether_type: Some(0x0800),
        ip_version: Some(4),
        src_ip: Some(s),
        dst_ip: Some(d),
        ip_proto: Some(proto),
        src_port: Some(sp),
        dst_port: Some(dp),
        payload_len: Some(payload),
        ..PacketRecord::default()
    }
}

/// A TCP packet client↔server with a 20-byte header.
fn tcp(
    t_us: u64,
    c2s: bool,
    flags: u16,
    payload: u32,
    win: u16,
    seq: u32,
    ack: u32,
) -> PacketRecord {
    PacketRecord {
        tcp_flags: Some(flags),
        tcp_seq: Some(seq),
        tcp_ack: Some(ack),
        tcp_window: Some(win),
        protocol: Protocol::Tcp,
        ..base(t_us, c2s, 6, payload, 20)
    }
}

fn udp(t_us: u64, c2s: bool, payload: u32) -> PacketRecord {
    PacketRecord {
        protocol: Protocol::Udp,
        ..base(t_us, c2s, 17, payload, 8)
    }
}

fn f(r: &FlowRecord, name: &str) -> f64 {
    r.features.get(name).expect("known feature")
}

#[track_caller]
fn close(r: &FlowRecord, name: &str, want: f64) {
    let got = f(r, name);
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{name}: got {got}, want {want}"
    );
}

fn run(cfg: FlowConfig, pkts: &[PacketRecord]) -> (Vec<FlowRecord>, FlowAggregator) {
    let mut agg = FlowAggregator::new(cfg);
    let mut out = Vec::new();
    for p in pkts {
        agg.ingest(p, &mut out);
    }
    (out, agg)
}

fn run_drain(cfg: FlowConfig, pkts: &[PacketRecord]) -> Vec<FlowRecord> {
    let (mut out, mut agg) = run(cfg, pkts);
    agg.drain(&mut out);
    out
}

const SA: u16 = SYN | ACK;
const PA: u16 = acc::PSH | ACK;
const FA: u16 = FIN | ACK;

/// A full TCP conversation: handshake, one request, one response, FIN
/// from the client, FIN from the server, final ACK.
fn conversation() -> Vec<PacketRecord> {
    vec![
        tcp(0, true, SYN, 0, 1000, 100, 0),        // p1 fwd
        tcp(100, false, SA, 0, 2000, 500, 101),    // p2 bwd
        tcp(200, true, ACK, 0, 1001, 101, 501),    // p3 fwd
        tcp(1200, true, PA, 100, 1001, 101, 501),  // p4 fwd, 100 B
        tcp(1700, false, PA, 300, 3000, 501, 201), // p5 bwd, 300 B
        tcp(2700, true, FA, 0, 1001, 201, 801),    // p6 fwd, first FIN
        tcp(2900, false, FA, 0, 4000, 801, 202),   // p7 bwd, second FIN
        tcp(3000, true, ACK, 0, 1001, 202, 802),   // p8 fwd, final ACK
    ]
}

/// Every feature of the conversation, by hand. Also the golden test of
/// bug 2 (first-FIN termination): CICFlowMeter ended the flow at p6 and
/// made p7+p8 a second "appendix" flow; we end after p8, with one record.
#[test]
fn golden_tcp_conversation_all_features() {
    let (out, agg) = run(FlowConfig::default(), &conversation());
    // Ended by the final ACK itself: no drain, no timeout needed.
    assert_eq!(out.len(), 1, "one flow, not split at the first FIN");
    assert!(agg.is_empty());
    let r = &out[0];
    assert_eq!(r.end_reason, EndReason::Fin);
    assert_eq!((r.fwd_packets, r.bwd_packets), (5, 3));
    // Frame bytes: 54-byte frames are padded to 60. fwd 60+60+154+60+60,
    // bwd 60+354+60.
    assert_eq!((r.fwd_bytes, r.bwd_bytes), (394, 474));
    assert_eq!(r.src, FlowAddr::Ip(CLIENT));
    assert_eq!((r.src_port, r.dst_port), (40000, 80));
    assert_eq!((r.first_ts_ns, r.last_ts_ns), (at(0), at(3000)));
    assert_eq!(r.segment, 0);
    assert_eq!(r.tcp_flags, FIN | SYN | ACK | acc::PSH);

    close(r, "protocol", 6.0);
    close(r, "flow_duration", 3000.0);
    close(r, "fwd_packets", 5.0);
    close(r, "bwd_packets", 3.0);
    close(r, "fwd_bytes", 100.0);
    close(r, "bwd_bytes", 300.0);
    // fwd payloads [0,0,100,0,0]: mean 20; squared deviations 4·400 + 6400
    // = 8000, / (5−1) = 2000.
    close(r, "fwd_pkt_len_max", 100.0);
    close(r, "fwd_pkt_len_min", 0.0);
    close(r, "fwd_pkt_len_mean", 20.0);
    close(r, "fwd_pkt_len_std", 2000f64.sqrt());
    // bwd [0,300,0]: mean 100; 10000 + 40000 + 10000 = 60000, / 2 = 30000.
    close(r, "bwd_pkt_len_max", 300.0);
    close(r, "bwd_pkt_len_min", 0.0);
    close(r, "bwd_pkt_len_mean", 100.0);
    close(r, "bwd_pkt_len_std", 30000f64.sqrt());
    // 400 B and 8 packets in 0.003 s.
    close(r, "flow_bytes_per_s", 400.0 / 0.003);
    close(r, "flow_packets_per_s", 8.0 / 0.003);
    // Flow gaps 100,100,1000,500,1000,200,100: sum 3000, n 7;
    // Σx² = 2 320 000; var = (7·2 320 000 − 3000²) / (7·6) = 7 240 000 / 42.
    close(r, "flow_iat_mean", 3000.0 / 7.0);
    close(r, "flow_iat_std", (7_240_000.0f64 / 42.0).sqrt());
    close(r, "flow_iat_max", 1000.0);
    close(r, "flow_iat_min", 100.0);
    // fwd times 0,200,1200,2700,3000: gaps 200,1000,1500,300; Σx² =
    // 3 380 000; var = (4·3 380 000 − 3000²) / 12 = 4 520 000 / 12.
    close(r, "fwd_iat_total", 3000.0);
    close(r, "fwd_iat_mean", 750.0);
    close(r, "fwd_iat_std", (4_520_000.0f64 / 12.0).sqrt());
    close(r, "fwd_iat_max", 1500.0);
    close(r, "fwd_iat_min", 200.0);
    // bwd times 100,1700,2900: gaps 1600,1200; var = (2·4 000 000 −
    // 2800²) / 2 = 80 000.
    close(r, "bwd_iat_total", 2800.0);
    close(r, "bwd_iat_mean", 1400.0);
    close(r, "bwd_iat_std", 80_000f64.sqrt());
    close(r, "bwd_iat_max", 1600.0);
    close(r, "bwd_iat_min", 1200.0);
    close(r, "fwd_psh_flags", 1.0);
    close(r, "bwd_psh_flags", 1.0);
    close(r, "fwd_urg_flags", 0.0);
    close(r, "bwd_urg_flags", 0.0);
    close(r, "fwd_rst_flags", 0.0);
    close(r, "bwd_rst_flags", 0.0);
    // 20-byte TCP headers (padded 60-byte frames count the minimum).
    close(r, "fwd_header_len", 100.0);
    close(r, "bwd_header_len", 60.0);
    close(r, "fwd_packets_per_s", 5.0 / 0.003);
    close(r, "bwd_packets_per_s", 3.0 / 0.003);
    // All 8 lengths [0,0,0,100,300,0,0,0]: mean 50; Σx² = 100 000;
    // var = (8·100 000 − 400²) / 56 = 640 000 / 56.
    close(r, "pkt_len_min", 0.0);
    close(r, "pkt_len_max", 300.0);
    close(r, "pkt_len_mean", 50.0);
    close(r, "pkt_len_std", (640_000.0f64 / 56.0).sqrt());
    close(r, "pkt_len_var", 640_000.0 / 56.0);
    close(r, "fin_flag_count", 2.0);
    close(r, "syn_flag_count", 2.0);
    close(r, "rst_flag_count", 0.0);
    close(r, "psh_flag_count", 2.0);
    close(r, "ack_flag_count", 7.0);
    close(r, "urg_flag_count", 0.0);
    close(r, "cwr_flag_count", 0.0);
    close(r, "ece_flag_count", 0.0);
    close(r, "down_up_ratio", 3.0 / 5.0);
    close(r, "avg_packet_size", 50.0);
    close(r, "fwd_seg_size_avg", 20.0);
    close(r, "bwd_seg_size_avg", 100.0);
    for b in [
        "fwd_bytes_bulk_avg",
        "fwd_packets_bulk_avg",
        "fwd_bulk_rate_avg",
        "bwd_bytes_bulk_avg",
        "bwd_packets_bulk_avg",
        "bwd_bulk_rate_avg",
    ] {
        close(r, b, 0.0);
    }
    // No gap > 1 s: one subflow.
    close(r, "subflow_fwd_packets", 5.0);
    close(r, "subflow_fwd_bytes", 100.0);
    close(r, "subflow_bwd_packets", 3.0);
    close(r, "subflow_bwd_bytes", 300.0);
    close(r, "fwd_init_win_bytes", 1000.0);
    close(r, "bwd_init_win_bytes", 2000.0);
    close(r, "fwd_act_data_pkts", 1.0);
    close(r, "fwd_seg_size_min", 20.0);
    // No pause > 5 s: one active period of 3000 µs, no idle period.
    close(r, "active_mean", 3000.0);
    close(r, "active_std", 0.0);
    close(r, "active_max", 3000.0);
    close(r, "active_min", 3000.0);
    for i in ["idle_mean", "idle_std", "idle_max", "idle_min"] {
        close(r, i, 0.0);
    }
    close(r, "icmp_code", -1.0);
    close(r, "icmp_type", -1.0);
    close(r, "total_tcp_flow_time", 3000.0);
    assert_eq!(FEATURES.len(), r.features.0.len());
}

/// A packet after the teardown starts a new flow (it is not glued onto
/// the finished one), and FIN without the final ACK ends by linger.
#[test]
fn fin_linger_and_after_teardown() {
    let mut pkts = conversation();
    pkts.pop(); // no final ACK
    let (mut out, mut agg) = run(FlowConfig::default(), &pkts);
    assert!(out.is_empty());
    assert_eq!(agg.len(), 1);
    // fin_linger 1 s after the last packet (2900 µs).
    agg.expire(Timestamp(at(2900 + S)), &mut out);
    assert!(out.is_empty(), "linger is strict: > 1 s");
    agg.expire(Timestamp(at(2901 + S)), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].end_reason, EndReason::Fin);
    assert_eq!(out[0].packets(), 7);

    let mut pkts = conversation();
    pkts.push(tcp(3100, true, ACK, 0, 1001, 202, 802));
    let out = run_drain(FlowConfig::default(), &pkts);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].packets(), out[0].end_reason), (8, EndReason::Fin));
    assert_eq!((out[1].packets(), out[1].end_reason), (1, EndReason::End));
    assert_ne!(out[0].flow_id, out[1].flow_id);
}

/// Bug 3: CICFlowMeter overwrote the backward init window with every
/// backward packet (so it reported the LAST one's). We keep the first.
#[test]
fn golden_bwd_init_window_is_the_first() {
    let out = run_drain(FlowConfig::default(), &conversation()[..7]);
    // Backward windows 2000 (SYN/ACK), 3000, 4000: CICFlowMeter gave 4000.
    close(&out[0], "bwd_init_win_bytes", 2000.0);
    close(&out[0], "fwd_init_win_bytes", 1000.0);
    // UDP: no window either way.
    let out = run_drain(
        FlowConfig::default(),
        &[udp(0, true, 10), udp(5, false, 10)],
    );
    close(&out[0], "fwd_init_win_bytes", -1.0);
    close(&out[0], "bwd_init_win_bytes", -1.0);
    // A flow never answered: bwd -1.
    let out = run_drain(FlowConfig::default(), &[tcp(0, true, SYN, 0, 777, 1, 0)]);
    close(&out[0], "fwd_init_win_bytes", 777.0);
    close(&out[0], "bwd_init_win_bytes", -1.0);
}

/// Bug 4: CICFlowMeter added the first packet's length twice to the
/// length statistics. Here payloads 100 then 50, both forward.
#[test]
fn golden_first_packet_counted_once() {
    let out = run_drain(
        FlowConfig::default(),
        &[udp(0, true, 100), udp(1000, true, 50)],
    );
    let r = &out[0];
    // Once: mean (100+50)/2 = 75; var ((25)²+(25)²)/1 = 1250.
    // (Double-counted it would be (100+100+50)/3 = 83.33.)
    close(r, "fwd_packets", 2.0);
    close(r, "fwd_bytes", 150.0);
    close(r, "fwd_pkt_len_mean", 75.0);
    close(r, "fwd_pkt_len_std", 1250f64.sqrt());
    close(r, "pkt_len_mean", 75.0);
    close(r, "pkt_len_var", 1250.0);
    close(r, "avg_packet_size", 75.0);
    close(r, "fwd_header_len", 16.0); // UDP: 8 + 8
                                      // A single-packet flow is kept, with its one length.
    let out = run_drain(FlowConfig::default(), &[udp(0, true, 100)]);
    assert_eq!(out.len(), 1);
    let r = &out[0];
    close(r, "pkt_len_mean", 100.0);
    close(r, "pkt_len_std", 0.0);
    close(r, "fwd_pkt_len_min", 100.0);
    close(r, "flow_duration", 0.0);
    close(r, "flow_bytes_per_s", 0.0); // no duration: 0, not Inf
    close(r, "down_up_ratio", 0.0);
    close(r, "bwd_seg_size_avg", 0.0);
}

/// Bug 1: CICFlowMeter's subflow features equalled the totals. Subflows
/// split at gaps > 1 s; subflow_* = totals / subflows.
#[test]
fn golden_subflows() {
    // t: 0 fwd 10 B, 0.5 s bwd 20, 2.0 s fwd 30 (gap 1.5 s: new subflow),
    // 2.2 s bwd 40, 4.0 s fwd 50 (gap 1.8 s: new subflow) → 3 subflows.
    let out = run_drain(
        FlowConfig::default(),
        &[
            udp(0, true, 10),
            udp(S / 2, false, 20),
            udp(2 * S, true, 30),
            udp(2 * S + S / 5, false, 40),
            udp(4 * S, true, 50),
        ],
    );
    let r = &out[0];
    close(r, "subflow_fwd_packets", 3.0 / 3.0);
    close(r, "subflow_fwd_bytes", 90.0 / 3.0);
    close(r, "subflow_bwd_packets", 2.0 / 3.0);
    close(r, "subflow_bwd_bytes", 60.0 / 3.0);
    // A gap of exactly 1 s does not split.
    let out = run_drain(FlowConfig::default(), &[udp(0, true, 10), udp(S, true, 10)]);
    close(&out[0], "subflow_fwd_packets", 2.0);
}

/// CICFlowMeter's bulk algorithm: ≥ 4 consecutive forward data packets
/// with gaps ≤ 1 s; a backward data packet breaks the run.
#[test]
fn golden_bulk() {
    let ms = 1000;
    let out = run_drain(
        FlowConfig::default(),
        &[
            udp(0, true, 100),
            udp(100 * ms, true, 200),
            udp(200 * ms, true, 300),
            udp(300 * ms, true, 400), // 4th: bulk of 1000 B over 0.3 s
            udp(400 * ms, true, 500), // continues: 1500 B, 5 pkts, 0.4 s
            udp(500 * ms, false, 60), // backward data: breaks the run
            udp(600 * ms, true, 100), // starts a new candidate
            udp(700 * ms, true, 100),
        ],
    );
    let r = &out[0];
    close(r, "fwd_bytes_bulk_avg", 1500.0);
    close(r, "fwd_packets_bulk_avg", 5.0);
    close(r, "fwd_bulk_rate_avg", 1500.0 / 0.4);
    close(r, "bwd_bytes_bulk_avg", 0.0);
    close(r, "bwd_bulk_rate_avg", 0.0);
}

/// Active/idle with the 5 s activity timeout: packets at 0, 1, 7, 8, 20 s.
#[test]
fn golden_active_idle() {
    let out = run_drain(
        FlowConfig::default(),
        &[
            udp(0, true, 1),
            udp(S, true, 1),
            udp(7 * S, true, 1),
            udp(8 * S, true, 1),
            udp(20 * S, true, 1),
        ],
    );
    let r = &out[0];
    // 7 − 1 = 6 s > 5: active [0,1] (1 s), idle 6 s. 20 − 8 = 12 s > 5:
    // active [7,8] (1 s), idle 12 s. The last period [20,20] is empty.
    close(r, "active_mean", 1e6);
    close(r, "active_std", 0.0);
    close(r, "active_max", 1e6);
    close(r, "active_min", 1e6);
    // idle [6e6, 12e6] µs: mean 9e6; var = (36 + 144 − 2·81)·1e12 / 1 =
    // 18e12.
    close(r, "idle_mean", 9e6);
    close(r, "idle_std", 18e12f64.sqrt());
    close(r, "idle_max", 12e6);
    close(r, "idle_min", 6e6);
    // Gaps 1, 6, 1, 12 s: two > 1 s, so 3 subflows.
    close(r, "subflow_fwd_packets", 5.0 / 3.0);
}

#[test]
fn idle_timeouts_per_protocol() {
    let cfg = FlowConfig::default();
    let (mut out, mut agg) = run(cfg, &[udp(0, true, 1)]);
    agg.expire(Timestamp(at(60 * S)), &mut out);
    assert!(out.is_empty(), "exactly the timeout: still open");
    agg.expire(Timestamp(at(60 * S + 1)), &mut out);
    assert_eq!(out[0].end_reason, EndReason::Idle);

    // TCP (established) 120 s; expired lazily by another flow's packet.
    let mut icmp = base(121 * S, true, 1, 56, 8);
    icmp.src_port = None;
    icmp.dst_port = None;
    icmp.icmp_type = Some(8);
    icmp.icmp_code = Some(0);
    let (out, agg) = run(
        cfg,
        &[
            tcp(0, true, SYN, 0, 1, 1, 0),
            tcp(10, false, SA, 0, 1, 1, 2),
            icmp,
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].end_reason, out[0].packets()), (EndReason::Idle, 2));
    assert_eq!(agg.len(), 1);
    let mut out = Vec::new();
    let mut agg = agg;
    agg.expire(Timestamp(at(151 * S + 1)), &mut out);
    assert_eq!(out[0].proto, FlowProto::Ip(1));
    close(&out[0], "icmp_type", 8.0);
    close(&out[0], "icmp_code", 0.0);
    close(&out[0], "fwd_header_len", 8.0);
}

#[test]
fn embryonic_timeout_and_promotion() {
    let cfg = FlowConfig::default();
    // Two SYNs (a retransmission) stay embryonic; expire after 5 s.
    let (mut out, mut agg) = run(
        cfg,
        &[tcp(0, true, SYN, 0, 1, 1, 0), tcp(S, true, SYN, 0, 1, 1, 0)],
    );
    assert_eq!(agg.stats().embryonic, 1);
    agg.expire(Timestamp(at(6 * S + 1)), &mut out);
    assert_eq!((out.len(), out[0].packets()), (1, 2));
    assert_eq!(out[0].end_reason, EndReason::Idle);
    assert_eq!(agg.stats().embryonic, 0);
    // Answered: promoted, so 5 s do not end it.
    let (mut out, mut agg) = run(
        cfg,
        &[tcp(0, true, SYN, 0, 1, 1, 0), tcp(5, false, SA, 0, 1, 1, 2)],
    );
    assert_eq!(agg.stats().embryonic, 0);
    agg.expire(Timestamp(at(10 * S)), &mut out);
    assert!(out.is_empty());
}

#[test]
fn rst_ends_at_once() {
    let (out, agg) = run(
        FlowConfig::default(),
        &[
            tcp(0, true, SYN, 0, 1, 1, 0),
            tcp(40, false, RST | ACK, 0, 0, 0, 2),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].end_reason, out[0].packets()), (EndReason::Rst, 2));
    close(&out[0], "bwd_rst_flags", 1.0);
    close(&out[0], "rst_flag_count", 1.0);
    close(&out[0], "total_tcp_flow_time", 40.0);
    assert!(agg.is_empty());
    assert_eq!(agg.stats().emitted[EndReason::Rst as usize], 1);
}

/// Packets every 50 s, active timeout 120 s: segments of the same
/// conversation, each packet in exactly one.
#[test]
fn active_timeout_segments() {
    let pkts: Vec<_> = (0..7).map(|i| udp(i * 50 * S, i % 2 == 0, 10)).collect();
    let out = run_drain(FlowConfig::default(), &pkts);
    // 150 − 0 > 120 closes [0,50,100]; 300 − 150 > 120 closes [150,200,250].
    let got: Vec<_> = out
        .iter()
        .map(|r| (r.segment, r.packets(), r.end_reason))
        .collect();
    assert_eq!(
        got,
        [
            (0, 3, EndReason::Active),
            (1, 3, EndReason::Active),
            (2, 1, EndReason::End)
        ]
    );
    assert!(out.iter().all(|r| r.flow_id == out[0].flow_id));
    // The conversation keeps its forward direction: segment 1 starts with
    // a backward packet (t = 150 s, i = 3).
    assert!(out.iter().all(|r| r.src == FlowAddr::Ip(CLIENT)));
    assert_eq!((out[1].fwd_packets, out[1].bwd_packets), (1, 2));
    close(&out[1], "flow_duration", 100.0 * 1e6);
}

/// Spoofed SYN flood into a table of 100: every packet lands in exactly
/// one record; embryonic entries are evicted first, and counted.
#[test]
fn eviction_under_cap_accounts_every_packet() {
    let cfg = FlowConfig {
        max_flows: 100,
        ..FlowConfig::default()
    };
    let mut agg = FlowAggregator::new(cfg);
    let mut out = Vec::new();
    // 10 established UDP flows first.
    for i in 0..10u32 {
        let mut p = udp(u64::from(i), true, 10);
        p.src_port = Some(1000 + i as u16);
        agg.ingest(&p, &mut out);
    }
    let mut sent = 10u64;
    for i in 0..5000u32 {
        let mut p = tcp(100 + u64::from(i), true, SYN, 0, 1024, i, 0);
        p.src_ip = Some(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)));
        agg.ingest(&p, &mut out);
        sent += 1;
        assert!(agg.len() <= 100);
    }
    agg.ingest(&PacketRecord::default(), &mut out); // unkeyed
    sent += 1;
    let st = agg.stats();
    assert_eq!(st.evicted_embryonic, 4910);
    assert_eq!(st.evicted_oldest, 0);
    assert_eq!(st.peak_active, 100);
    agg.drain(&mut out);
    let in_records: u64 = out.iter().map(FlowRecord::packets).sum();
    assert_eq!(in_records + agg.stats().unkeyed, sent);
    assert_eq!(agg.stats().packets, sent);
    assert_eq!(agg.stats().emitted[EndReason::Evicted as usize], 4910);
    assert_eq!(agg.stats().active, 0);
    assert_eq!(agg.stats().embryonic, 0);

    // Without embryonic entries the least recently active goes.
    let cfg = FlowConfig {
        max_flows: 2,
        ..FlowConfig::default()
    };
    let mut a = udp(0, true, 1);
    a.src_port = Some(1);
    let mut b = udp(10, true, 1);
    b.src_port = Some(2);
    let mut a2 = a.clone();
    a2.ts_ns = at(20);
    let mut c = udp(30, true, 1);
    c.src_port = Some(3);
    let (out, agg) = run(cfg, &[a, b, a2, c]);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].src_port, out[0].end_reason),
        (2, EndReason::Evicted)
    );
    assert_eq!(agg.stats().evicted_oldest, 1);
}

#[test]
fn ipv6_and_icmpv6() {
    let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let b = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    let mk = |t: u64, fwd: bool, proto: u8, payload: u32| {
        let (s, d) = if fwd { (a, b) } else { (b, a) };
        let wire = 14 + 40 + 8 + payload;
        PacketRecord {
            ts_ns: at(t),
            wire_len: wire,
            cap_len: wire,
            eth_src: Some(MacAddr([2, 0, 0, 0, 0, 9])),
            ip_version: Some(6),
            src_ip: Some(s),
            dst_ip: Some(d),
            ip_proto: Some(proto),
            src_port: (proto == 17).then_some(if fwd { 5353 } else { 53 }),
            dst_port: (proto == 17).then_some(if fwd { 53 } else { 5353 }),
            payload_len: Some(payload),
            icmp_type: (proto == 58).then_some(128),
            icmp_code: (proto == 58).then_some(0),
            ..PacketRecord::default()
        }
    };
    let out = run_drain(
        FlowConfig::default(),
        &[
            mk(0, true, 17, 40),
            mk(500, false, 17, 120),
            mk(0, true, 58, 56),
        ],
    );
    assert_eq!(out.len(), 2);
    let u = out.iter().find(|r| r.proto == FlowProto::Ip(17)).unwrap();
    assert_eq!((u.fwd_packets, u.bwd_packets), (1, 1));
    assert_eq!((u.fwd_bytes, u.bwd_bytes), (102, 182));
    close(u, "bwd_bytes", 120.0);
    close(u, "fwd_header_len", 8.0);
    close(u, "icmp_type", -1.0);
    let i = out.iter().find(|r| r.proto == FlowProto::Ip(58)).unwrap();
    close(i, "protocol", 58.0);
    close(i, "icmp_type", 128.0);
    close(i, "icmp_code", 0.0);
}

#[test]
fn arp_per_host_pair_and_unkeyed() {
    let h1 = MacAddr([2, 0, 0, 0, 0, 1]);
    let h2 = MacAddr([2, 0, 0, 0, 0, 2]);
    let arp = |t: u64, s: MacAddr, d: MacAddr, op: u16| PacketRecord {
        ts_ns: at(t),
        wire_len: 60,
        cap_len: 60,
        eth_src: Some(s),
        eth_dst: Some(d),
        ether_type: Some(0x0806),
        arp_op: Some(op),
        protocol: Protocol::Arp,
        ..PacketRecord::default()
    };
    let (mut out, mut agg) = run(
        FlowConfig::default(),
        &[
            arp(0, h1, h2, 1),
            arp(10, h2, h1, 2),
            PacketRecord::default(),
        ],
    );
    agg.drain(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].proto, FlowProto::Arp);
    assert_eq!((out[0].fwd_packets, out[0].bwd_packets), (1, 1));
    assert_eq!(out[0].src, FlowAddr::Mac(h1));
    close(&out[0], "protocol", 0.0);
    close(&out[0], "fwd_header_len", 0.0);
    assert_eq!(agg.stats().unkeyed, 1);
    assert_eq!(agg.stats().packets, 3);
}

/// A clock step back (multi-interface capture) is tolerated: "now" never
/// decreases, durations and gaps never go negative.
#[test]
fn time_going_backwards() {
    let (mut out, mut agg) = run(
        FlowConfig::default(),
        &[
            udp(10 * S, true, 5),
            udp(9 * S, false, 5),
            udp(11 * S, true, 5),
        ],
    );
    assert_eq!(agg.now(), Timestamp(at(11 * S)));
    agg.drain(&mut out);
    let r = &out[0];
    assert_eq!(r.packets(), 3);
    close(r, "flow_duration", 1e6);
    close(r, "flow_iat_min", 0.0);
    assert!(r.features.0.iter().all(|v| v.is_finite()));
}

/// A deterministic mix: TCP conversations, UDP, ICMP, scans, resets.
fn mixed(n: usize) -> Vec<PacketRecord> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut t = 0u64;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let r = next();
        t += r % 300_000; // up to 0.3 s between packets
        let c2s = r & 1 == 0;
        let port = 1000 + (r >> 8) as u16 % 40;
        let mut p = match (r >> 20) % 10 {
            0..=5 => {
                let flags = [SYN, SA, ACK, PA, FA, RST | ACK, ACK, PA][((r >> 24) % 8) as usize];
                tcp(
                    t,
                    c2s,
                    flags,
                    ((r >> 32) % 1400) as u32,
                    (r >> 40) as u16,
                    (r >> 3) as u32,
                    (r >> 5) as u32,
                )
            }
            6..=8 => udp(t, c2s, ((r >> 32) % 512) as u32),
            _ => {
                let mut p = base(t, c2s, 1, 56, 8);
                p.src_port = None;
                p.dst_port = None;
                p.icmp_type = Some(if c2s { 8 } else { 0 });
                p
            }
        };
        if p.src_port.is_some() {
            if c2s {
                p.src_port = Some(port);
            } else {
                p.dst_port = Some(port);
            }
        }
        if (r >> 50) % 50 == 0 {
            p.ts_ns -= 1_000_000; // a small step back now and then
        }
        v.push(p);
    }
    v
}

fn small_cfg() -> FlowConfig {
    FlowConfig {
        max_flows: 30,
        tcp_idle_ns: 20_000_000_000,
        udp_idle_ns: 10_000_000_000,
        icmp_idle_ns: 5_000_000_000,
        active_timeout_ns: 30_000_000_000,
        ..FlowConfig::default()
    }
}

#[test]
fn deterministic_and_all_finite() {
    let pkts = mixed(20_000);
    let a = run_drain(small_cfg(), &pkts);
    let b = run_drain(small_cfg(), &pkts);
    assert_eq!(a, b);
    let total: u64 = a.iter().map(FlowRecord::packets).sum();
    assert_eq!(total, pkts.len() as u64);
    assert!(a.iter().all(|r| r.features.0.iter().all(|v| v.is_finite())));
    let reasons: std::collections::BTreeSet<_> = a.iter().map(|r| r.end_reason).collect();
    assert!(
        reasons.len() >= 5,
        "mix exercises most end reasons: {reasons:?}"
    );
}

/// Checkpoint through rmp-serde in the middle, restore, go on: the same
/// records as an uninterrupted run.
#[test]
fn snapshot_restore_is_seamless() {
    let pkts = mixed(20_000);
    let want = run_drain(small_cfg(), &pkts);
    for cut in [0, 1, 777, 10_000, 19_999] {
        let (mut out, agg) = run(small_cfg(), &pkts[..cut]);
        let bytes = rmp_serde::to_vec(&agg.snapshot()).unwrap();
        let state: FlowTableState = rmp_serde::from_slice(&bytes).unwrap();
        let mut agg2 = FlowAggregator::restore(small_cfg(), state);
        assert_eq!(agg2.stats(), agg.stats());
        assert_eq!(agg2.len(), agg.len());
        for p in &pkts[cut..] {
            agg2.ingest(p, &mut out);
        }
        agg2.drain(&mut out);
        assert_eq!(out, want, "cut at {cut}");
    }
}

#[test]
fn entry_sizes_stay_small() {
    let (entry, acc) = FlowAggregator::entry_sizes();
    println!("entry {entry} B, boxed accumulators {acc} B");
    assert!(entry <= 160, "entry {entry} B");
    assert!(acc <= 1024, "acc {acc} B");
}
