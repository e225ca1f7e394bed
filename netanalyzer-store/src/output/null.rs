use super::SinkCounters;
use crate::StoreError;
use netanalyzer_core::{Control, PacketRecord, Sink};

/// Writes nothing; counts records. For measuring the capture and parse
/// path alone (`--output null`).
#[derive(Debug, Clone, Default)]
pub struct NullSink {
    records: u64,
}

impl NullSink {
    /// A sink with a zero count.
    pub fn new() -> Self {
        NullSink::default()
    }

    /// Records seen so far (bytes and files are always 0).
    pub fn counters(&self) -> SinkCounters {
        SinkCounters {
            records: self.records,
            ..SinkCounters::default()
        }
    }
}

impl Sink<PacketRecord> for NullSink {
    type Error = StoreError;

    fn write(&mut self, _record: &PacketRecord) -> Result<Control, StoreError> {
        self.records += 1;
        Ok(Control::Continue)
    }
}
