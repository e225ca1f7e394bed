//! Labelled captures: a pcap plus the generator's labels file (or one
//! class for every flow) → labelled flow records, the training input of
//! `netanalyzer-ml train --pcap`.
//!
//! The capture is read with [`FileSource`], its flows built by a
//! [`FlowAggregator`] (the same table the sniffer and the aggregator run,
//! so training and detection see identical features) and drained at the
//! end. With a labels file (`netanalyzer-gen`'s CSV, one row per generated
//! flow) every flow is joined to a row on the canonical flow key, and the
//! flow's first packet must fall in the row's `[first_ts_ns, last_ts_ns]`
//! (keys repeat: two pings between the same hosts). Flows no row matches
//! are counted in [`LabelReport::unmatched`] and left out of training, never
//! silently.
//!
//! Generator scenarios map onto the coarse classes ([`scenario_class`]):
//!
//! | scenario | class | why |
//! |---|---|---|
//! | normal | Normal | |
//! | syn-flood, udp-flood, icmp-flood | DDoS | spoofed random sources: many sources against one target, as CIC's DDoS (LOIC from several hosts); CIC's DoS is one source |
//! | dns-amplification | DDoS | reflected by many resolvers |
//! | slowloris | DoS | one source, as CIC's DoS Slowloris |
//! | port-scan | PortScan | |
//!
//! ```no_run
//! use netanalyzer_examples::labelled::{label_with_rows, read_flows, read_labels};
//! use netanalyzer_ml::flow::FlowConfig;
//! let flows = read_flows("gen.pcap".as_ref(), FlowConfig::default(), None)?;
//! let rows = read_labels("gen.labels.csv".as_ref())?;
//! let labelled = label_with_rows(flows.flows, &rows);
//! println!("{} flows, {} unmatched", labelled.flows.len(), labelled.unmatched);
//! # Ok::<(), anyhow::Error>(())
//! ```

use crate::flows::FlowPipeline;
use anyhow::{bail, Context, Result};
use netanalyzer_capture::FileSource;
use netanalyzer_core::{
    Aggregator, Alert, FlowAddr, FlowKey, FlowProto, FlowRecord, MacAddr, PacketRecord, Severity,
    Source, SourceEvent, COARSE_CLASSES,
};
use netanalyzer_ml::alert::AlertConfig;
use netanalyzer_ml::dataset::coarse_class;
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig, FlowStats};
use netanalyzer_ml::model::Model;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

/// The coarse class of a generator scenario (see the [module docs](self)),
/// `None` for an unknown name.
pub fn scenario_class(scenario: &str) -> Option<&'static str> {
    Some(match scenario.trim() {
        "normal" => "Normal",
        "syn-flood" | "udp-flood" | "icmp-flood" | "dns-amplification" => "DDoS",
        "slowloris" => "DoS",
        "port-scan" => "PortScan",
        _ => return None,
    })
}

/// The class for `--label CLASS`: a coarse class name (any case), a
/// generator scenario name, or a CIC label (mapped with
/// [`coarse_class`]).
pub fn class_for_label(label: &str) -> &'static str {
    if let Some(c) = COARSE_CLASSES
        .iter()
        .find(|c| c.eq_ignore_ascii_case(label.trim()))
    {
        return c;
    }
    scenario_class(label).unwrap_or_else(|| coarse_class(label))
}

/// One row of a generator labels file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    /// The canonical flow key.
    pub key: FlowKey,
    /// First packet time, ns since the Unix epoch.
    pub first_ts_ns: u64,
    /// Last packet time.
    pub last_ts_ns: u64,
    /// The scenario name as written.
    pub scenario: String,
}

fn parse_addr(s: &str) -> Option<FlowAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(FlowAddr::Ip(ip));
    }
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts
        .next()
        .is_none()
        .then_some(FlowAddr::Mac(MacAddr(mac)))
}

fn parse_proto(s: &str) -> Option<FlowProto> {
    Some(match s {
        "tcp" => FlowProto::Ip(6),
        "udp" => FlowProto::Ip(17),
        "icmp" => FlowProto::Ip(1),
        "icmpv6" => FlowProto::Ip(58),
        "arp" => FlowProto::Arp,
        n => FlowProto::Ip(n.parse().ok()?),
    })
}

/// Reads a generator labels file
/// (`proto,src,sport,dst,dport,first_ts_ns,last_ts_ns,packets,bytes,label`).
///
/// # Errors
/// The file cannot be read, has another header, or a malformed row (the
/// message names the line).
pub fn read_labels(path: &Path) -> Result<Vec<LabelRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == netanalyzer_capture::gen::LABELS_HEADER => {}
        _ => bail!(
            "{}: not a netanalyzer-gen labels file (expected the header {:?})",
            path.display(),
            netanalyzer_capture::gen::LABELS_HEADER
        ),
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_row(line)
            .with_context(|| format!("{} line {}: bad row {line:?}", path.display(), i + 1))?;
        rows.push(row);
    }
    Ok(rows)
}

fn parse_row(line: &str) -> Option<LabelRow> {
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != 10 {
        return None;
    }
    let (key, _) = FlowKey::new(
        parse_proto(f[0])?,
        parse_addr(f[1])?,
        f[2].parse().ok()?,
        parse_addr(f[3])?,
        f[4].parse().ok()?,
    );
    Some(LabelRow {
        key,
        first_ts_ns: f[5].parse().ok()?,
        last_ts_ns: f[6].parse().ok()?,
        scenario: f[9].to_owned(),
    })
}

/// The flows of one capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureFlows {
    /// Every flow record, in emission order (drained at the end).
    pub flows: Vec<FlowRecord>,
    /// Packets read.
    pub packets: u64,
    /// The flow table's counters after the drain.
    pub stats: FlowStats,
}

/// Reads a pcap/pcapng and builds its flows with a [`FlowAggregator`]
/// (`cfg`), draining every open flow at the end. With `filter` (a BPF
/// expression, tcpdump syntax) only the matching frames are read: a view
/// of the capture as another sensor would see it (e.g. `dst net
/// 203.0.113.0/24`: the one-way traffic reaching the victims).
///
/// # Errors
/// The file cannot be opened, the filter does not compile, or the file is
/// corrupt (refused rather than training on part of a capture).
pub fn read_flows(pcap: &Path, cfg: FlowConfig, filter: Option<&str>) -> Result<CaptureFlows> {
    let mut src = FileSource::open(pcap).with_context(|| format!("opening {}", pcap.display()))?;
    if let Some(f) = filter {
        src.set_filter(f)
            .with_context(|| format!("filter {f:?} on {}", pcap.display()))?;
    }
    let mut agg = FlowAggregator::new(cfg);
    let mut rec = PacketRecord::default();
    let mut out = CaptureFlows::default();
    loop {
        match src
            .next_into(&mut rec)
            .with_context(|| format!("reading {}", pcap.display()))?
        {
            SourceEvent::Packet => {
                out.packets += 1;
                agg.ingest(&rec, &mut out.flows);
            }
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    agg.drain(&mut out.flows);
    out.stats = agg.stats();
    Ok(out)
}

/// Labelled flows and what the labelling did.
#[derive(Debug, Clone, Default)]
pub struct LabelReport {
    /// The labelled flows (unmatched ones left out).
    pub flows: Vec<FlowRecord>,
    /// One coarse class name per flow in `flows`.
    pub labels: Vec<String>,
    /// Flows no label row matched (left out).
    pub unmatched: u64,
    /// Packets in those flows.
    pub unmatched_packets: u64,
    /// Flows whose row has a scenario [`scenario_class`] does not know
    /// (left out).
    pub unknown_scenario: u64,
    /// Labelled flows per scenario (or per `--label` class).
    pub per_scenario: BTreeMap<String, u64>,
}

impl LabelReport {
    /// Appends another capture's result.
    pub fn extend(&mut self, o: LabelReport) {
        self.flows.extend(o.flows);
        self.labels.extend(o.labels);
        self.unmatched += o.unmatched;
        self.unmatched_packets += o.unmatched_packets;
        self.unknown_scenario += o.unknown_scenario;
        for (k, v) in o.per_scenario {
            *self.per_scenario.entry(k).or_default() += v;
        }
    }
}

/// Labels flows with the generator's rows: same canonical key and the
/// flow's first packet inside the row's time span; when several rows fit,
/// the one that started last.
pub fn label_with_rows(flows: Vec<FlowRecord>, rows: &[LabelRow]) -> LabelReport {
    let mut by_key: HashMap<FlowKey, Vec<usize>> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        by_key.entry(r.key).or_default().push(i);
    }
    let mut rep = LabelReport::default();
    for f in flows {
        let best = by_key.get(&f.key).and_then(|idx| {
            idx.iter()
                .map(|&i| &rows[i])
                .filter(|r| r.first_ts_ns <= f.first_ts_ns && f.first_ts_ns <= r.last_ts_ns)
                .max_by_key(|r| r.first_ts_ns)
        });
        let Some(row) = best else {
            rep.unmatched += 1;
            rep.unmatched_packets += f.fwd_packets + f.bwd_packets;
            continue;
        };
        let Some(class) = scenario_class(&row.scenario) else {
            rep.unknown_scenario += 1;
            continue;
        };
        *rep.per_scenario.entry(row.scenario.clone()).or_default() += 1;
        rep.labels.push(class.to_owned());
        rep.flows.push(f);
    }
    rep
}

/// Labels every flow with one class (see [`class_for_label`]).
pub fn label_all(flows: Vec<FlowRecord>, label: &str) -> LabelReport {
    let class = class_for_label(label);
    let n = flows.len();
    LabelReport {
        labels: vec![class.to_owned(); n],
        flows,
        per_scenario: BTreeMap::from([(label.to_owned(), n as u64)]),
        ..LabelReport::default()
    }
}

/// What a model made of one capture: see [`detect_capture`].
#[derive(Debug, Clone, Default)]
pub struct Detection {
    /// Packets read.
    pub packets: u64,
    /// Flow records emitted.
    pub flows: u64,
    /// Flows per predicted class, in the model's class order.
    pub predictions: Vec<(String, u64)>,
    /// Every alert in its final state (one per alert id), by first time.
    pub alerts: Vec<Alert>,
}

impl Detection {
    /// The highest severity among the alerts (`None` without alerts).
    pub fn max_severity(&self) -> Option<Severity> {
        self.alerts.iter().map(|a| a.severity).max()
    }
}

/// Runs a capture through a [`FlowPipeline`] (default flow table, `model`,
/// `alert_cfg`) exactly as `netanalyzer-sniffer --aggregate` does, and
/// keeps the last state of every alert.
///
/// # Errors
/// The capture cannot be read, or the model's features do not bind.
pub fn detect_capture(pcap: &Path, model: Model, alert_cfg: AlertConfig) -> Result<Detection> {
    let mut src = FileSource::open(pcap).with_context(|| format!("opening {}", pcap.display()))?;
    let mut p = FlowPipeline::new(FlowConfig::default(), model, alert_cfg)?;
    let mut rec = PacketRecord::default();
    let mut flows = Vec::new();
    let mut updates = Vec::new();
    let mut alerts: BTreeMap<u64, Alert> = BTreeMap::new();
    let mut det = Detection::default();
    let mut take = |p: &mut FlowPipeline, flows: &mut Vec<FlowRecord>, det: &mut Detection| {
        det.flows += flows.len() as u64;
        flows.clear();
        p.take_alerts(&mut updates);
        for a in updates.drain(..) {
            alerts.insert(a.alert_id, a);
        }
    };
    loop {
        match src
            .next_into(&mut rec)
            .with_context(|| format!("reading {}", pcap.display()))?
        {
            SourceEvent::Packet => {
                det.packets += 1;
                p.ingest(&rec, &mut flows);
                if !flows.is_empty() {
                    take(&mut p, &mut flows, &mut det);
                }
            }
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    p.drain(&mut flows);
    take(&mut p, &mut flows, &mut det);
    det.predictions = p.predictions().map(|(c, n)| (c.to_owned(), n)).collect();
    det.alerts = alerts.into_values().collect();
    det.alerts.sort_by_key(|a| (a.first_ts_ns, a.alert_id));
    Ok(det)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netanalyzer_capture::gen::{generate, GenConfig, Scenario};

    #[test]
    fn mapping() {
        assert_eq!(scenario_class("syn-flood"), Some("DDoS"));
        assert_eq!(scenario_class("slowloris"), Some("DoS"));
        assert_eq!(scenario_class("port-scan"), Some("PortScan"));
        assert_eq!(scenario_class("nope"), None);
        assert_eq!(class_for_label("portscan"), "PortScan");
        assert_eq!(class_for_label("dns-amplification"), "DDoS");
        assert_eq!(class_for_label("DoS Hulk"), "DoS");
        // Every class the mapping yields is a coarse class, as
        // dataset::from_flows expects.
        for s in Scenario::ALL {
            let c = scenario_class(s.name()).unwrap();
            assert!(COARSE_CLASSES.contains(&c));
            assert_eq!(coarse_class(c), c);
        }
    }

    #[test]
    fn row_parsing() {
        let r = parse_row("tcp,192.168.1.20,40000,203.0.113.10,443,5,10,3,180,normal").unwrap();
        assert_eq!(r.first_ts_ns, 5);
        assert_eq!(r.scenario, "normal");
        assert!(parse_row("arp,aa:aa:aa:aa:aa:aa,0,ff:ff:ff:ff:ff:ff,0,1,2,1,60,normal").is_some());
        assert!(parse_row("icmpv6,2001:db8::1,0,2001:db8::2,0,1,2,1,60,normal").is_some());
        assert!(parse_row("tcp,1.2.3.4,x,1.2.3.5,1,1,2,1,60,normal").is_none());
    }

    #[test]
    fn generated_capture_is_fully_labelled() {
        let cfg = GenConfig {
            packets: 20_000,
            scenarios: vec![Scenario::Normal, Scenario::SynFlood, Scenario::PortScan],
            seed: 7,
            ..GenConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let (pcap, labels) = (dir.path().join("g.pcap"), dir.path().join("g.labels.csv"));
        netanalyzer_capture::gen::generate_files(&cfg, &pcap, &labels).unwrap();
        let flows = read_flows(&pcap, FlowConfig::default(), None).unwrap();
        assert_eq!(flows.packets, 20_000);
        let rows = read_labels(&labels).unwrap();
        let n = flows.flows.len() as u64;
        let rep = label_with_rows(flows.flows, &rows);
        assert_eq!(
            rep.flows.len() as u64 + rep.unmatched + rep.unknown_scenario,
            n
        );
        // Nearly every flow joins a row.
        assert!(
            rep.unmatched * 100 <= n,
            "{} of {n} unmatched",
            rep.unmatched
        );
        for c in ["Normal", "DDoS", "PortScan"] {
            assert!(rep.labels.iter().any(|l| l == c), "no {c} flow");
        }
        // In-memory generation agrees with the files.
        let (mut p, mut l) = (Vec::new(), Vec::new());
        generate(&cfg, &mut p, &mut l).unwrap();
        assert_eq!(std::fs::read(&labels).unwrap(), l);
    }
}
