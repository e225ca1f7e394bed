//! Packet capture for netanalyzer: where [`PacketRecord`]s come from.
//!
//! - [`FileSource`] reads pcap and pcapng files (µs and ns, either byte
//!   order, every pcapng interface) and stops at the last good packet of a
//!   broken file with an error that names the byte offset.
//! - [`LiveSource`] captures from one or more interfaces through libpcap.
//! - [`parse::parse_frame`] turns one frame of a given [`LinkType`] into a
//!   record, counting malformed input by kind instead of failing.
//! - [`gen`] writes deterministic, seeded pcaps of realistic and attack
//!   traffic: fixtures for tests, benches and the demo.
//!
//! [`PacketRecord`]: netanalyzer_core::PacketRecord
#![forbid(unsafe_code)]

pub mod app;
mod error;
mod file;
pub mod gen;
mod linktype;
pub mod live;
pub mod parse;
pub mod testing;
mod writer;

pub use error::CaptureError;
pub use file::{FileFormat, FileSource, FrameReader, InterfaceInfo, RawFrame};
pub use linktype::LinkType;
pub use live::{LiveConfig, LiveSource};
pub use writer::{PcapWriter, TsResolution};
