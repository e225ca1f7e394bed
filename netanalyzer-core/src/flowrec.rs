//! Flow records and the flow feature set: what the flow aggregator emits,
//! the classifier reads and the store writes.

use crate::{FlowAddr, FlowKey, FlowProto};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a flow record was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for the protocol's idle timeout.
    Idle,
    /// The flow ran longer than the active timeout. The record covers the
    /// segment so far; the conversation goes on as the next segment of the
    /// same `flow_id` (as NetFlow and CICFlowMeter do), so every packet is
    /// in exactly one record.
    Active,
    /// FIN seen in both directions (and the teardown finished or lingered
    /// out).
    Fin,
    /// A TCP RST.
    Rst,
    /// Pushed out of a full table (see the aggregator's eviction counters).
    Evicted,
    /// End of input (`drain`), or a shutdown.
    End,
}

impl EndReason {
    /// Every reason, in declaration order.
    pub const ALL: [EndReason; 6] = [
        EndReason::Idle,
        EndReason::Active,
        EndReason::Fin,
        EndReason::Rst,
        EndReason::Evicted,
        EndReason::End,
    ];

    /// The stable lowercase name (JSON, SQL, metrics labels).
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Evicted => "evicted",
            EndReason::End => "end",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EndReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EndReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown end reason {s:?}"))
    }
}

/// One flow feature: its name here, its unit, its column names in the
/// three CIC CSV layouts (`None` where that layout lacks it) and its
/// definition. `docs/features.md` is the long form of this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpec {
    /// The snake_case name used in models, JSON and SQL.
    pub name: &'static str,
    /// Unit of the value.
    pub unit: &'static str,
    /// Column name in the original CIC-IDS2017 CSVs (leading space kept).
    pub cic2017: Option<&'static str>,
    /// Column name in the CNS2022 "improved" CIC-IDS2017 re-extraction.
    pub cns2022: Option<&'static str>,
    /// Column name in CSE-CIC-IDS2018 (the short names).
    pub cic2018: Option<&'static str>,
    /// One-line definition.
    pub definition: &'static str,
}

/// Number of flow features.
pub const FEATURE_COUNT: usize = 82;

/// Every flow feature, in the order of [`FlowFeatures`]' values.
pub const FEATURES: [FeatureSpec; FEATURE_COUNT] = [
    FeatureSpec { name: "protocol", unit: "number", cic2017: Some(" Protocol"), cns2022: Some("Protocol"), cic2018: Some("Protocol"), definition: "IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, other IP protocols; 0 for ARP)" },
    FeatureSpec { name: "flow_duration", unit: "µs", cic2017: Some(" Flow Duration"), cns2022: Some("Flow Duration"), cic2018: Some("Flow Duration"), definition: "last packet time − first packet time" },
    FeatureSpec { name: "fwd_packets", unit: "count", cic2017: Some(" Total Fwd Packets"), cns2022: Some("Total Fwd Packet"), cic2018: Some("Tot Fwd Pkts"), definition: "packets in the forward direction (the first packet's)" },
    FeatureSpec { name: "bwd_packets", unit: "count", cic2017: Some(" Total Backward Packets"), cns2022: Some("Total Bwd packets"), cic2018: Some("Tot Bwd Pkts"), definition: "packets in the backward direction" },
    FeatureSpec { name: "fwd_bytes", unit: "bytes", cic2017: Some("Total Length of Fwd Packets"), cns2022: Some("Total Length of Fwd Packet"), cic2018: Some("TotLen Fwd Pkts"), definition: "sum of forward packet lengths (transport payload bytes)" },
    FeatureSpec { name: "bwd_bytes", unit: "bytes", cic2017: Some(" Total Length of Bwd Packets"), cns2022: Some("Total Length of Bwd Packet"), cic2018: Some("TotLen Bwd Pkts"), definition: "sum of backward packet lengths" },
    FeatureSpec { name: "fwd_pkt_len_max", unit: "bytes", cic2017: Some(" Fwd Packet Length Max"), cns2022: Some("Fwd Packet Length Max"), cic2018: Some("Fwd Pkt Len Max"), definition: "max forward packet length" },
    FeatureSpec { name: "fwd_pkt_len_min", unit: "bytes", cic2017: Some(" Fwd Packet Length Min"), cns2022: Some("Fwd Packet Length Min"), cic2018: Some("Fwd Pkt Len Min"), definition: "min forward packet length" },
    FeatureSpec { name: "fwd_pkt_len_mean", unit: "bytes", cic2017: Some(" Fwd Packet Length Mean"), cns2022: Some("Fwd Packet Length Mean"), cic2018: Some("Fwd Pkt Len Mean"), definition: "mean forward packet length" },
    FeatureSpec { name: "fwd_pkt_len_std", unit: "bytes", cic2017: Some(" Fwd Packet Length Std"), cns2022: Some("Fwd Packet Length Std"), cic2018: Some("Fwd Pkt Len Std"), definition: "sample standard deviation of forward packet lengths" },
    FeatureSpec { name: "bwd_pkt_len_max", unit: "bytes", cic2017: Some("Bwd Packet Length Max"), cns2022: Some("Bwd Packet Length Max"), cic2018: Some("Bwd Pkt Len Max"), definition: "max backward packet length" },
    FeatureSpec { name: "bwd_pkt_len_min", unit: "bytes", cic2017: Some(" Bwd Packet Length Min"), cns2022: Some("Bwd Packet Length Min"), cic2018: Some("Bwd Pkt Len Min"), definition: "min backward packet length" },
    FeatureSpec { name: "bwd_pkt_len_mean", unit: "bytes", cic2017: Some(" Bwd Packet Length Mean"), cns2022: Some("Bwd Packet Length Mean"), cic2018: Some("Bwd Pkt Len Mean"), definition: "mean backward packet length" },
    FeatureSpec { name: "bwd_pkt_len_std", unit: "bytes", cic2017: Some(" Bwd Packet Length Std"), cns2022: Some("Bwd Packet Length Std"), cic2018: Some("Bwd Pkt Len Std"), definition: "sample standard deviation of backward packet lengths" },
    FeatureSpec { name: "flow_bytes_per_s", unit: "bytes/s", cic2017: Some("Flow Bytes/s"), cns2022: Some("Flow Bytes/s"), cic2018: Some("Flow Byts/s"), definition: "(fwd_bytes + bwd_bytes) / duration in s; 0 when the duration is 0" },
    FeatureSpec { name: "flow_packets_per_s", unit: "packets/s", cic2017: Some(" Flow Packets/s"), cns2022: Some("Flow Packets/s"), cic2018: Some("Flow Pkts/s"), definition: "packets / duration in s; 0 when the duration is 0" },
    FeatureSpec { name: "flow_iat_mean", unit: "µs", cic2017: Some(" Flow IAT Mean"), cns2022: Some("Flow IAT Mean"), cic2018: Some("Flow IAT Mean"), definition: "mean gap between consecutive packets (either direction)" },
    FeatureSpec { name: "flow_iat_std", unit: "µs", cic2017: Some(" Flow IAT Std"), cns2022: Some("Flow IAT Std"), cic2018: Some("Flow IAT Std"), definition: "sample standard deviation of those gaps" },
    FeatureSpec { name: "flow_iat_max", unit: "µs", cic2017: Some(" Flow IAT Max"), cns2022: Some("Flow IAT Max"), cic2018: Some("Flow IAT Max"), definition: "largest gap" },
    FeatureSpec { name: "flow_iat_min", unit: "µs", cic2017: Some(" Flow IAT Min"), cns2022: Some("Flow IAT Min"), cic2018: Some("Flow IAT Min"), definition: "smallest gap" },
    FeatureSpec { name: "fwd_iat_total", unit: "µs", cic2017: Some("Fwd IAT Total"), cns2022: Some("Fwd IAT Total"), cic2018: Some("Fwd IAT Tot"), definition: "sum of gaps between consecutive forward packets" },
    FeatureSpec { name: "fwd_iat_mean", unit: "µs", cic2017: Some(" Fwd IAT Mean"), cns2022: Some("Fwd IAT Mean"), cic2018: Some("Fwd IAT Mean"), definition: "mean forward gap" },
    FeatureSpec { name: "fwd_iat_std", unit: "µs", cic2017: Some(" Fwd IAT Std"), cns2022: Some("Fwd IAT Std"), cic2018: Some("Fwd IAT Std"), definition: "sample standard deviation of forward gaps" },
    FeatureSpec { name: "fwd_iat_max", unit: "µs", cic2017: Some(" Fwd IAT Max"), cns2022: Some("Fwd IAT Max"), cic2018: Some("Fwd IAT Max"), definition: "largest forward gap" },
    FeatureSpec { name: "fwd_iat_min", unit: "µs", cic2017: Some(" Fwd IAT Min"), cns2022: Some("Fwd IAT Min"), cic2018: Some("Fwd IAT Min"), definition: "smallest forward gap" },
    FeatureSpec { name: "bwd_iat_total", unit: "µs", cic2017: Some("Bwd IAT Total"), cns2022: Some("Bwd IAT Total"), cic2018: Some("Bwd IAT Tot"), definition: "sum of gaps between consecutive backward packets" },
    FeatureSpec { name: "bwd_iat_mean", unit: "µs", cic2017: Some(" Bwd IAT Mean"), cns2022: Some("Bwd IAT Mean"), cic2018: Some("Bwd IAT Mean"), definition: "mean backward gap" },
    FeatureSpec { name: "bwd_iat_std", unit: "µs", cic2017: Some(" Bwd IAT Std"), cns2022: Some("Bwd IAT Std"), cic2018: Some("Bwd IAT Std"), definition: "sample standard deviation of backward gaps" },
    FeatureSpec { name: "bwd_iat_max", unit: "µs", cic2017: Some(" Bwd IAT Max"), cns2022: Some("Bwd IAT Max"), cic2018: Some("Bwd IAT Max"), definition: "largest backward gap" },
    FeatureSpec { name: "bwd_iat_min", unit: "µs", cic2017: Some(" Bwd IAT Min"), cns2022: Some("Bwd IAT Min"), cic2018: Some("Bwd IAT Min"), definition: "smallest backward gap" },
    FeatureSpec { name: "fwd_psh_flags", unit: "count", cic2017: Some("Fwd PSH Flags"), cns2022: Some("Fwd PSH Flags"), cic2018: Some("Fwd PSH Flags"), definition: "forward packets with PSH set" },
    FeatureSpec { name: "bwd_psh_flags", unit: "count", cic2017: Some(" Bwd PSH Flags"), cns2022: Some("Bwd PSH Flags"), cic2018: Some("Bwd PSH Flags"), definition: "backward packets with PSH set" },
    FeatureSpec { name: "fwd_urg_flags", unit: "count", cic2017: Some(" Fwd URG Flags"), cns2022: Some("Fwd URG Flags"), cic2018: Some("Fwd URG Flags"), definition: "forward packets with URG set" },
    FeatureSpec { name: "bwd_urg_flags", unit: "count", cic2017: Some(" Bwd URG Flags"), cns2022: Some("Bwd URG Flags"), cic2018: Some("Bwd URG Flags"), definition: "backward packets with URG set" },
    FeatureSpec { name: "fwd_rst_flags", unit: "count", cic2017: None, cns2022: Some("Fwd RST Flags"), cic2018: None, definition: "forward packets with RST set" },
    FeatureSpec { name: "bwd_rst_flags", unit: "count", cic2017: None, cns2022: Some("Bwd RST Flags"), cic2018: None, definition: "backward packets with RST set" },
    FeatureSpec { name: "fwd_header_len", unit: "bytes", cic2017: Some(" Fwd Header Length"), cns2022: Some("Fwd Header Length"), cic2018: Some("Fwd Header Len"), definition: "sum of forward transport header lengths" },
    FeatureSpec { name: "bwd_header_len", unit: "bytes", cic2017: Some(" Bwd Header Length"), cns2022: Some("Bwd Header Length"), cic2018: Some("Bwd Header Len"), definition: "sum of backward transport header lengths" },
    FeatureSpec { name: "fwd_packets_per_s", unit: "packets/s", cic2017: Some("Fwd Packets/s"), cns2022: Some("Fwd Packets/s"), cic2018: Some("Fwd Pkts/s"), definition: "forward packets / duration in s; 0 when the duration is 0" },
    FeatureSpec { name: "bwd_packets_per_s", unit: "packets/s", cic2017: Some(" Bwd Packets/s"), cns2022: Some("Bwd Packets/s"), cic2018: Some("Bwd Pkts/s"), definition: "backward packets / duration in s; 0 when the duration is 0" },
    FeatureSpec { name: "pkt_len_min", unit: "bytes", cic2017: Some(" Min Packet Length"), cns2022: Some("Packet Length Min"), cic2018: Some("Pkt Len Min"), definition: "min packet length, both directions" },
    FeatureSpec { name: "pkt_len_max", unit: "bytes", cic2017: Some(" Max Packet Length"), cns2022: Some("Packet Length Max"), cic2018: Some("Pkt Len Max"), definition: "max packet length, both directions" },
    FeatureSpec { name: "pkt_len_mean", unit: "bytes", cic2017: Some(" Packet Length Mean"), cns2022: Some("Packet Length Mean"), cic2018: Some("Pkt Len Mean"), definition: "mean packet length, both directions" },
    FeatureSpec { name: "pkt_len_std", unit: "bytes", cic2017: Some(" Packet Length Std"), cns2022: Some("Packet Length Std"), cic2018: Some("Pkt Len Std"), definition: "sample standard deviation of packet lengths" },
    FeatureSpec { name: "pkt_len_var", unit: "bytes²", cic2017: Some(" Packet Length Variance"), cns2022: Some("Packet Length Variance"), cic2018: Some("Pkt Len Var"), definition: "sample variance of packet lengths" },
    FeatureSpec { name: "fin_flag_count", unit: "count", cic2017: Some("FIN Flag Count"), cns2022: Some("FIN Flag Count"), cic2018: Some("FIN Flag Cnt"), definition: "packets with FIN set" },
    FeatureSpec { name: "syn_flag_count", unit: "count", cic2017: Some(" SYN Flag Count"), cns2022: Some("SYN Flag Count"), cic2018: Some("SYN Flag Cnt"), definition: "packets with SYN set" },
    FeatureSpec { name: "rst_flag_count", unit: "count", cic2017: Some(" RST Flag Count"), cns2022: Some("RST Flag Count"), cic2018: Some("RST Flag Cnt"), definition: "packets with RST set" },
    FeatureSpec { name: "psh_flag_count", unit: "count", cic2017: Some(" PSH Flag Count"), cns2022: Some("PSH Flag Count"), cic2018: Some("PSH Flag Cnt"), definition: "packets with PSH set" },
    FeatureSpec { name: "ack_flag_count", unit: "count", cic2017: Some(" ACK Flag Count"), cns2022: Some("ACK Flag Count"), cic2018: Some("ACK Flag Cnt"), definition: "packets with ACK set" },
    FeatureSpec { name: "urg_flag_count", unit: "count", cic2017: Some(" URG Flag Count"), cns2022: Some("URG Flag Count"), cic2018: Some("URG Flag Cnt"), definition: "packets with URG set" },
    FeatureSpec { name: "cwr_flag_count", unit: "count", cic2017: Some(" CWE Flag Count"), cns2022: Some("CWR Flag Count"), cic2018: Some("CWE Flag Count"), definition: "packets with CWR set" },
    FeatureSpec { name: "ece_flag_count", unit: "count", cic2017: Some(" ECE Flag Count"), cns2022: Some("ECE Flag Count"), cic2018: Some("ECE Flag Cnt"), definition: "packets with ECE set" },
    FeatureSpec { name: "down_up_ratio", unit: "ratio", cic2017: Some(" Down/Up Ratio"), cns2022: Some("Down/Up Ratio"), cic2018: Some("Down/Up Ratio"), definition: "bwd_packets / fwd_packets" },
    FeatureSpec { name: "avg_packet_size", unit: "bytes", cic2017: Some(" Average Packet Size"), cns2022: Some("Average Packet Size"), cic2018: Some("Pkt Size Avg"), definition: "(fwd_bytes + bwd_bytes) / packets" },
    FeatureSpec { name: "fwd_seg_size_avg", unit: "bytes", cic2017: Some(" Avg Fwd Segment Size"), cns2022: Some("Fwd Segment Size Avg"), cic2018: Some("Fwd Seg Size Avg"), definition: "fwd_bytes / fwd_packets" },
    FeatureSpec { name: "bwd_seg_size_avg", unit: "bytes", cic2017: Some(" Avg Bwd Segment Size"), cns2022: Some("Bwd Segment Size Avg"), cic2018: Some("Bwd Seg Size Avg"), definition: "bwd_bytes / bwd_packets; 0 without backward packets" },
    FeatureSpec { name: "fwd_bytes_bulk_avg", unit: "bytes", cic2017: Some("Fwd Avg Bytes/Bulk"), cns2022: Some("Fwd Bytes/Bulk Avg"), cic2018: Some("Fwd Byts/b Avg"), definition: "forward bytes per bulk" },
    FeatureSpec { name: "fwd_packets_bulk_avg", unit: "count", cic2017: Some(" Fwd Avg Packets/Bulk"), cns2022: Some("Fwd Packet/Bulk Avg"), cic2018: Some("Fwd Pkts/b Avg"), definition: "forward packets per bulk" },
    FeatureSpec { name: "fwd_bulk_rate_avg", unit: "bytes/s", cic2017: Some(" Fwd Avg Bulk Rate"), cns2022: Some("Fwd Bulk Rate Avg"), cic2018: Some("Fwd Blk Rate Avg"), definition: "forward bulk bytes / bulk duration in s" },
    FeatureSpec { name: "bwd_bytes_bulk_avg", unit: "bytes", cic2017: Some(" Bwd Avg Bytes/Bulk"), cns2022: Some("Bwd Bytes/Bulk Avg"), cic2018: Some("Bwd Byts/b Avg"), definition: "backward bytes per bulk" },
    FeatureSpec { name: "bwd_packets_bulk_avg", unit: "count", cic2017: Some(" Bwd Avg Packets/Bulk"), cns2022: Some("Bwd Packet/Bulk Avg"), cic2018: Some("Bwd Pkts/b Avg"), definition: "backward packets per bulk" },
    FeatureSpec { name: "bwd_bulk_rate_avg", unit: "bytes/s", cic2017: Some("Bwd Avg Bulk Rate"), cns2022: Some("Bwd Bulk Rate Avg"), cic2018: Some("Bwd Blk Rate Avg"), definition: "backward bulk bytes / bulk duration in s" },
    FeatureSpec { name: "subflow_fwd_packets", unit: "count", cic2017: Some("Subflow Fwd Packets"), cns2022: Some("Subflow Fwd Packets"), cic2018: Some("Subflow Fwd Pkts"), definition: "forward packets per subflow" },
    FeatureSpec { name: "subflow_fwd_bytes", unit: "bytes", cic2017: Some(" Subflow Fwd Bytes"), cns2022: Some("Subflow Fwd Bytes"), cic2018: Some("Subflow Fwd Byts"), definition: "forward bytes per subflow" },
    FeatureSpec { name: "subflow_bwd_packets", unit: "count", cic2017: Some(" Subflow Bwd Packets"), cns2022: Some("Subflow Bwd Packets"), cic2018: Some("Subflow Bwd Pkts"), definition: "backward packets per subflow" },
    FeatureSpec { name: "subflow_bwd_bytes", unit: "bytes", cic2017: Some(" Subflow Bwd Bytes"), cns2022: Some("Subflow Bwd Bytes"), cic2018: Some("Subflow Bwd Byts"), definition: "backward bytes per subflow" },
    FeatureSpec { name: "fwd_init_win_bytes", unit: "bytes", cic2017: Some("Init_Win_bytes_forward"), cns2022: Some("FWD Init Win Bytes"), cic2018: Some("Init Fwd Win Byts"), definition: "TCP window of the first forward packet; -1 when none" },
    FeatureSpec { name: "bwd_init_win_bytes", unit: "bytes", cic2017: Some(" Init_Win_bytes_backward"), cns2022: Some("Bwd Init Win Bytes"), cic2018: Some("Init Bwd Win Byts"), definition: "TCP window of the first backward packet; -1 when none" },
    FeatureSpec { name: "fwd_act_data_pkts", unit: "count", cic2017: Some(" act_data_pkt_fwd"), cns2022: Some("Fwd Act Data Pkts"), cic2018: Some("Fwd Act Data Pkts"), definition: "forward packets with at least one byte of transport payload" },
    FeatureSpec { name: "fwd_seg_size_min", unit: "bytes", cic2017: Some(" min_seg_size_forward"), cns2022: Some("Fwd Seg Size Min"), cic2018: Some("Fwd Seg Size Min"), definition: "smallest forward transport header length" },
    FeatureSpec { name: "active_mean", unit: "µs", cic2017: Some("Active Mean"), cns2022: Some("Active Mean"), cic2018: Some("Active Mean"), definition: "mean length of active periods" },
    FeatureSpec { name: "active_std", unit: "µs", cic2017: Some(" Active Std"), cns2022: Some("Active Std"), cic2018: Some("Active Std"), definition: "sample standard deviation of active periods" },
    FeatureSpec { name: "active_max", unit: "µs", cic2017: Some(" Active Max"), cns2022: Some("Active Max"), cic2018: Some("Active Max"), definition: "longest active period" },
    FeatureSpec { name: "active_min", unit: "µs", cic2017: Some(" Active Min"), cns2022: Some("Active Min"), cic2018: Some("Active Min"), definition: "shortest active period" },
    FeatureSpec { name: "idle_mean", unit: "µs", cic2017: Some("Idle Mean"), cns2022: Some("Idle Mean"), cic2018: Some("Idle Mean"), definition: "mean length of idle periods" },
    FeatureSpec { name: "idle_std", unit: "µs", cic2017: Some(" Idle Std"), cns2022: Some("Idle Std"), cic2018: Some("Idle Std"), definition: "sample standard deviation of idle periods" },
    FeatureSpec { name: "idle_max", unit: "µs", cic2017: Some(" Idle Max"), cns2022: Some("Idle Max"), cic2018: Some("Idle Max"), definition: "longest idle period" },
    FeatureSpec { name: "idle_min", unit: "µs", cic2017: Some(" Idle Min"), cns2022: Some("Idle Min"), cic2018: Some("Idle Min"), definition: "shortest idle period" },
    FeatureSpec { name: "icmp_code", unit: "code", cic2017: None, cns2022: Some("ICMP Code"), cic2018: None, definition: "ICMP code of the first ICMP packet; -1 for other protocols" },
    FeatureSpec { name: "icmp_type", unit: "type", cic2017: None, cns2022: Some("ICMP Type"), cic2018: None, definition: "ICMP type of the first ICMP packet; -1 for other protocols" },
    FeatureSpec { name: "total_tcp_flow_time", unit: "µs", cic2017: None, cns2022: Some("Total TCP Flow Time"), cic2018: None, definition: "time from the first SYN to the end of the TCP teardown (CNS2022); 0 for other protocols" },
];

/// The feature names, in order (for [`crate::Classifier::feature_names`]
/// checks).
pub fn feature_names() -> impl ExactSizeIterator<Item = &'static str> {
    FEATURES.iter().map(|f| f.name)
}

/// Position of a feature by its name.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.name == name)
}

/// One flow's feature values, in [`FEATURES`] order. Always finite: the
/// aggregator writes 0 where a ratio has no denominator, never Inf/NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FlowFeatures(#[serde(with = "serde_feature_array")] pub [f64; FEATURE_COUNT]);

impl Default for FlowFeatures {
    fn default() -> Self {
        FlowFeatures([0.0; FEATURE_COUNT])
    }
}

impl FlowFeatures {
    /// The value of the named feature.
    pub fn get(&self, name: &str) -> Option<f64> {
        feature_index(name).map(|i| self.0[i])
    }

    /// The values as a slice.
    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }
}

mod serde_feature_array {
    use super::FEATURE_COUNT;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64; FEATURE_COUNT], s: S) -> Result<S::Ok, S::Error> {
        v.as_slice().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; FEATURE_COUNT], D::Error> {
        let v = Vec::<f64>::deserialize(d)?;
        let n = v.len();
        v.try_into()
            .map_err(|_| D::Error::custom(format!("expected {FEATURE_COUNT} features, got {n}")))
    }
}

/// A completed (or, for [`EndReason::Active`], segmented) bidirectional
/// flow: owned, what the aggregator emits.
///
/// The forward direction is the first packet's: `src` sent it to `dst`.
/// Packet and byte counts are per direction; bytes are frame (wire)
/// lengths as tshark's conversation table counts them, while the
/// CICFlowMeter byte features in [`FlowFeatures`] count transport payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Stable id of the conversation: the same for every segment, derived
    /// from the key and the first packet's time (deterministic, so a replay
    /// gives the same ids).
    pub flow_id: u64,
    /// 0 for the first record of a conversation, +1 per active-timeout
    /// segment.
    pub segment: u32,
    /// The canonical key.
    pub key: FlowKey,
    /// Transport protocol, or ARP.
    pub proto: FlowProto,
    /// Who sent the first packet.
    pub src: FlowAddr,
    /// Its port (0 without ports).
    pub src_port: u16,
    /// The other endpoint.
    pub dst: FlowAddr,
    /// Its port (0 without ports).
    pub dst_port: u16,
    /// VLAN of the first packet, if tagged.
    pub vlan_id: Option<u16>,
    /// Time of the first packet of this segment, ns since the Unix epoch.
    pub first_ts_ns: u64,
    /// Time of the last packet of this segment.
    pub last_ts_ns: u64,
    /// Packets from `src` to `dst`.
    pub fwd_packets: u64,
    /// Packets from `dst` to `src`.
    pub bwd_packets: u64,
    /// Frame bytes (`wire_len`) from `src` to `dst`.
    pub fwd_bytes: u64,
    /// Frame bytes from `dst` to `src`.
    pub bwd_bytes: u64,
    /// Union of TCP flags seen (0 for other protocols).
    pub tcp_flags: u16,
    /// Why this record was emitted.
    pub end_reason: EndReason,
    /// The CICFlowMeter feature values.
    pub features: FlowFeatures,
    /// Predicted class name, when a classifier ran.
    pub label: Option<String>,
    /// The classifier's confidence in `label`, in `[0, 1]`.
    pub confidence: Option<f64>,
}

impl FlowRecord {
    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.fwd_packets + self.bwd_packets
    }

    /// Frame bytes in both directions.
    pub fn bytes(&self) -> u64 {
        self.fwd_bytes + self.bwd_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for f in FEATURES {
            assert!(seen.insert(f.name), "duplicate {}", f.name);
            assert!(f
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert!(f.cic2017.is_some() || f.cns2022.is_some());
        }
        assert_eq!(feature_index("flow_duration"), Some(1));
    }

    #[test]
    fn features_round_trip_json() {
        let mut f = FlowFeatures::default();
        f.0[3] = 2.5;
        let j = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<FlowFeatures>(&j).unwrap(), f);
        assert!(serde_json::from_str::<FlowFeatures>("[1.0]").is_err());
        assert_eq!("fin".parse::<EndReason>().unwrap(), EndReason::Fin);
    }
}
