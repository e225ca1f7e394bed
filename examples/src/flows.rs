//! The flow pipeline the binaries share: packet records in, labelled flow
//! records and alert updates out.
//!
//! [`FlowPipeline`] owns a [`FlowAggregator`] (the flow table), a
//! [`Model`] with its [`FeatureBinding`] (checked once, at construction)
//! and an [`AlertEngine`]. Every flow the table emits is classified
//! (`label` = the model's class name, `confidence`), counted per class,
//! folded into the alerts and appended to the caller's `Vec`.
//! `netanalyzer-sniffer --aggregate` runs it on captured packets;
//! `netanalyzer-aggregator` on packets read from PostgreSQL.
//!
//! [`FlowJson`] is the flow line of `--output flows-jsonl:PATH`
//! (`docs/alerts.md` shows it); an alert line is the [`Alert`] itself,
//! serialized with serde.

use netanalyzer_core::{
    Aggregator, Alert, EndReason, FlowProto, FlowRecord, PacketRecord, Timestamp, FEATURES,
};
use netanalyzer_ml::alert::{AlertConfig, AlertEngine, AlertState, AlertStats};
use netanalyzer_ml::flow::{FlowAggregator, FlowConfig, FlowStats, FlowTableState};
use netanalyzer_ml::model::{FeatureBinding, Model};
use netanalyzer_ml::MlError;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// Flow table + classifier + alert engine. See the [module docs](self).
pub struct FlowPipeline {
    agg: FlowAggregator,
    model: Model,
    binding: FeatureBinding,
    alerts: AlertEngine,
    /// Flows of the current call, before classification.
    scratch: Vec<FlowRecord>,
    /// Predictions per model class (index = class index).
    predictions: Vec<u64>,
}

/// The whole state of a [`FlowPipeline`], for checkpoints (serde; e.g.
/// rmp-serde bytes in `aggregator_state`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineState {
    /// The flow table.
    pub flows: FlowTableState,
    /// The alert engine.
    pub alerts: AlertState,
    /// Predictions per class of the model that made them.
    pub predictions: Vec<u64>,
    /// That model's version.
    pub model_version: String,
}

impl FlowPipeline {
    /// A pipeline classifying with `model`.
    ///
    /// # Errors
    /// [`MlError::FeatureMismatch`] (from [`Model::bind`]) when the model
    /// was trained on features this flow table does not compute.
    pub fn new(cfg: FlowConfig, model: Model, alert_cfg: AlertConfig) -> Result<Self, MlError> {
        let binding = model.bind()?;
        let classes = model.meta.class_names.len();
        let alerts = AlertEngine::new(alert_cfg, model.version().to_owned());
        Ok(FlowPipeline {
            agg: FlowAggregator::new(cfg),
            model,
            binding,
            alerts,
            scratch: Vec::with_capacity(64),
            predictions: vec![0; classes],
        })
    }

    /// A pipeline continuing from a checkpoint. With a different model
    /// than the checkpoint's, the per-class counters start again at 0 and
    /// new alerts carry the new model's version.
    ///
    /// # Errors
    /// As [`FlowPipeline::new`].
    pub fn restore(
        cfg: FlowConfig,
        model: Model,
        alert_cfg: AlertConfig,
        state: PipelineState,
    ) -> Result<Self, MlError> {
        let binding = model.bind()?;
        let classes = model.meta.class_names.len();
        let mut alerts = AlertEngine::restore(alert_cfg, state.alerts);
        let predictions =
            if state.model_version == model.version() && state.predictions.len() == classes {
                state.predictions
            } else {
                alerts.set_model_version(model.version().to_owned());
                vec![0; classes]
            };
        Ok(FlowPipeline {
            agg: FlowAggregator::restore(cfg, state.flows),
            model,
            binding,
            alerts,
            scratch: Vec::with_capacity(64),
            predictions,
        })
    }

    /// The whole state, for a checkpoint.
    pub fn snapshot(&self) -> PipelineState {
        PipelineState {
            flows: self.agg.snapshot(),
            alerts: self.alerts.snapshot(),
            predictions: self.predictions.clone(),
            model_version: self.model.version().to_owned(),
        }
    }

    /// Takes one packet; appends the flows it completed, labelled.
    pub fn ingest(&mut self, record: &PacketRecord, out: &mut Vec<FlowRecord>) {
        self.agg.ingest(record, &mut self.scratch);
        if !self.scratch.is_empty() {
            self.finish(out);
            self.alerts.expire(self.agg.now().as_nanos());
        }
    }

    /// Ends the flows timed out as of `now` (packet time) and forgets old
    /// alert windows; appends the flows, labelled.
    pub fn expire(&mut self, now: Timestamp, out: &mut Vec<FlowRecord>) {
        self.agg.expire(now, &mut self.scratch);
        self.finish(out);
        self.alerts.expire(now.as_nanos());
    }

    /// Ends every open flow ([`EndReason::End`]); appends them, labelled.
    pub fn drain(&mut self, out: &mut Vec<FlowRecord>) {
        self.agg.drain(&mut self.scratch);
        self.finish(out);
    }

    fn finish(&mut self, out: &mut Vec<FlowRecord>) {
        for mut flow in self.scratch.drain(..) {
            let p = self.model.predict_flow(&self.binding, &flow.features);
            if let Some(n) = self.predictions.get_mut(p.class) {
                *n += 1;
            }
            flow.label = Some(self.model.class_name(p.class).to_owned());
            flow.confidence = Some(p.confidence);
            self.alerts.observe(&flow);
            out.push(flow);
        }
    }

    /// Appends every alert new or changed since the previous call, once
    /// (see [`AlertEngine::take_updates`]).
    pub fn take_alerts(&mut self, out: &mut Vec<Alert>) {
        self.alerts.take_updates(out);
    }

    /// Whether [`FlowPipeline::take_alerts`] has something to hand out.
    pub fn has_alerts(&self) -> bool {
        self.alerts.has_updates()
    }

    /// The latest packet time seen.
    pub fn now(&self) -> Timestamp {
        self.agg.now()
    }

    /// Flows open in the table.
    pub fn open_flows(&self) -> usize {
        self.agg.len()
    }

    /// The flow table's counters.
    pub fn flow_stats(&self) -> FlowStats {
        self.agg.stats()
    }

    /// The alert engine's counters.
    pub fn alert_stats(&self) -> AlertStats {
        self.alerts.stats()
    }

    /// Predictions so far per class name, in the model's class order.
    pub fn predictions(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.predictions
            .iter()
            .enumerate()
            .map(|(i, &n)| (self.model.class_name(i), n))
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's version (what flows and alerts carry).
    pub fn model_version(&self) -> &str {
        self.model.version()
    }
}

/// The stable lowercase name of a flow protocol: `tcp`, `udp`, `icmp`,
/// `icmpv6`, `arp`, or `ip` and the number (`ip47`).
pub fn proto_name(p: FlowProto) -> std::borrow::Cow<'static, str> {
    match p {
        FlowProto::Ip(6) => "tcp".into(),
        FlowProto::Ip(17) => "udp".into(),
        FlowProto::Ip(1) => "icmp".into(),
        FlowProto::Ip(58) => "icmpv6".into(),
        FlowProto::Ip(n) => format!("ip{n}").into(),
        FlowProto::Arp => "arp".into(),
    }
}

/// One flow record as a JSON object (the `flows-jsonl` line): the key,
/// endpoints, protocol, counts, times, end reason, the features as an
/// object name → value in [`FEATURES`] order, `label`, `confidence` and
/// `model_version`. Serializes without allocating (beyond an unusual
/// protocol's name).
pub struct FlowJson<'a> {
    /// The flow.
    pub flow: &'a FlowRecord,
    /// The model that labelled it (`null` when empty).
    pub model_version: &'a str,
}

impl Serialize for FlowJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Features<'a>(&'a [f64]);
        impl Serialize for Features<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (spec, v) in FEATURES.iter().zip(self.0) {
                    m.serialize_entry(spec.name, v)?;
                }
                m.end()
            }
        }
        struct Display<'a, T>(&'a T);
        impl<T: std::fmt::Display> Serialize for Display<'_, T> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self.0)
            }
        }
        let f = self.flow;
        let ip_proto = match f.proto {
            FlowProto::Ip(n) => Some(n),
            FlowProto::Arp => None,
        };
        let mut m = s.serialize_map(Some(22))?;
        m.serialize_entry("flow_id", &f.flow_id)?;
        m.serialize_entry("segment", &f.segment)?;
        m.serialize_entry("key", &Display(&f.key))?;
        m.serialize_entry("proto", &proto_name(f.proto))?;
        m.serialize_entry("ip_proto", &ip_proto)?;
        m.serialize_entry("src", &Display(&f.src))?;
        m.serialize_entry("src_port", &f.src_port)?;
        m.serialize_entry("dst", &Display(&f.dst))?;
        m.serialize_entry("dst_port", &f.dst_port)?;
        m.serialize_entry("vlan_id", &f.vlan_id)?;
        m.serialize_entry("first_ts_ns", &f.first_ts_ns)?;
        m.serialize_entry("last_ts_ns", &f.last_ts_ns)?;
        m.serialize_entry("fwd_packets", &f.fwd_packets)?;
        m.serialize_entry("bwd_packets", &f.bwd_packets)?;
        m.serialize_entry("fwd_bytes", &f.fwd_bytes)?;
        m.serialize_entry("bwd_bytes", &f.bwd_bytes)?;
        m.serialize_entry("tcp_flags", &f.tcp_flags)?;
        m.serialize_entry("end_reason", f.end_reason.as_str())?;
        m.serialize_entry("features", &Features(f.features.as_slice()))?;
        m.serialize_entry("label", &f.label)?;
        m.serialize_entry("confidence", &f.confidence)?;
        let version = (!self.model_version.is_empty()).then_some(self.model_version);
        m.serialize_entry("model_version", &version)?;
        m.end()
    }
}

/// Flows emitted by end reason, in [`EndReason::ALL`] order, as
/// `(name, count)`.
pub fn emitted_by_reason(s: &FlowStats) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    EndReason::ALL
        .iter()
        .zip(s.emitted.iter())
        .map(|(r, &n)| (r.as_str(), n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netanalyzer_core::{FlowAddr, FlowFeatures, FlowKey};
    use std::net::{IpAddr, Ipv6Addr};

    #[test]
    fn flow_json_shape() {
        let a = FlowAddr::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let b = FlowAddr::Ip("2001:db8::1".parse().unwrap());
        let (key, _) = FlowKey::new(FlowProto::Ip(17), a, 5353, b, 53);
        let mut features = FlowFeatures::default();
        features.0[1] = 12.5;
        let flow = FlowRecord {
            flow_id: 7,
            segment: 1,
            key,
            proto: FlowProto::Ip(17),
            src: a,
            src_port: 5353,
            dst: b,
            dst_port: 53,
            vlan_id: Some(10),
            first_ts_ns: 1,
            last_ts_ns: 2,
            fwd_packets: 3,
            bwd_packets: 4,
            fwd_bytes: 5,
            bwd_bytes: 6,
            tcp_flags: 0,
            end_reason: EndReason::Active,
            features,
            label: Some("Normal".into()),
            confidence: Some(0.75),
        };
        let line = serde_json::to_string(&FlowJson {
            flow: &flow,
            model_version: "rf-x",
        })
        .unwrap();
        assert!(line.starts_with(
            "{\"flow_id\":7,\"segment\":1,\"key\":\"17 ::1:5353 <-> 2001:db8::1:53\",\
             \"proto\":\"udp\",\"ip_proto\":17,\"src\":\"::1\",\"src_port\":5353,\
             \"dst\":\"2001:db8::1\",\"dst_port\":53,\"vlan_id\":10,"
        ));
        assert!(line.contains(
            "\"end_reason\":\"active\",\"features\":{\"protocol\":0.0,\"flow_duration\":12.5,"
        ));
        assert!(
            line.ends_with("\"label\":\"Normal\",\"confidence\":0.75,\"model_version\":\"rf-x\"}")
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["features"].as_object().unwrap().len(), FEATURES.len());
        assert_eq!(proto_name(FlowProto::Ip(47)), "ip47");
        assert_eq!(proto_name(FlowProto::Arp), "arp");
    }
}
