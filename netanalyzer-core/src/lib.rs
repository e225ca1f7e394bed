//! Types and traits shared by every netanalyzer crate.
//!
//! This crate is netanalyzer's `tracing-core`: it holds data types and the
//! four component traits, and does no I/O and reads no clock. Time comes
//! only from packet timestamps, so replaying a capture is deterministic.
//!
//! - [`PacketRecord`]: one captured packet, owned, the unit every sink and
//!   the wire format carry. Absent fields are `None` (JSON `null`), never 0.
//! - [`FlowKey`] + [`Direction`]: a canonical, direction-free flow key.
//! - [`Timestamp`]: nanoseconds since the Unix epoch.
//! - [`PacketBatch`]: the unit of transport between sensor and server.
//! - [`FlowRecord`] + [`FlowFeatures`] ([`FEATURES`]): one bidirectional
//!   flow with its CICFlowMeter features; [`Alert`]: classified flows folded
//!   per (class, target, window).
//! - [`Source`], [`Sink`], [`Aggregator`], [`Classifier`]: the component traits.
//! - [`MalformedKind`] / [`ParseStats`]: per-packet parse problems, counted.
//!
//! ```
//! use netanalyzer_core::{FlowKey, PacketRecord, Protocol, Timestamp};
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! let mut rec = PacketRecord::default();
//! rec.ts_ns = Timestamp::from_secs_nanos(1_700_000_000, 5).as_nanos();
//! rec.ip_version = Some(4);
//! rec.src_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
//! rec.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
//! rec.ip_proto = Some(6);
//! rec.src_port = Some(40000);
//! rec.dst_port = Some(80);
//! rec.protocol = Protocol::Tcp;
//!
//! let (key, dir) = FlowKey::from_record(&rec).expect("an IP packet has a flow key");
//! let mut reply = rec.clone();
//! std::mem::swap(&mut reply.src_ip, &mut reply.dst_ip);
//! std::mem::swap(&mut reply.src_port, &mut reply.dst_port);
//! let (rkey, rdir) = FlowKey::from_record(&reply).unwrap();
//! assert_eq!(key, rkey);
//! assert_ne!(dir, rdir);
//! ```
#![forbid(unsafe_code)]

mod alert;
mod batch;
mod error;
mod flow;
mod flowrec;
mod mac;
mod malformed;
mod pump;
mod record;
mod time;
mod traits;

pub use alert::{Alert, Severity, BENIGN_CLASS, COARSE_CLASSES};
pub use batch::PacketBatch;
pub use error::CoreError;
pub use flow::{Direction, FlowAddr, FlowKey, FlowProto};
pub use flowrec::{
    feature_index, feature_names, EndReason, FeatureSpec, FlowFeatures, FlowRecord, FEATURES,
    FEATURE_COUNT,
};
pub use mac::MacAddr;
pub use malformed::{MalformedKind, ParseStats};
pub use pump::{pump, PumpError, PumpOptions, PumpReport, StopReason};
pub use record::{PacketRecord, Protocol};
pub use time::Timestamp;
pub use traits::{
    Aggregator, Classifier, Control, Prediction, Sink, Source, SourceEvent, SourceStats,
};
