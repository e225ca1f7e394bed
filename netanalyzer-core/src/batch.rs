use crate::PacketRecord;
use serde::{Deserialize, Serialize};

/// A batch of records from one sensor: the unit of transport.
///
/// `(sensor_id, stream_id, seq)` identifies a batch exactly: `stream_id`
/// is new on every sensor start, and `seq` counts batches within a stream
/// from 0 without gaps. A receiver that has seen a triple before must treat
/// the batch as a duplicate (acknowledge it, write nothing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PacketBatch {
    /// The sensor's configured identity.
    pub sensor_id: String,
    /// Random identity of one run of the sensor.
    pub stream_id: u64,
    /// Batch number within the stream, starting at 0.
    pub seq: u64,
    /// The records, in capture order.
    pub records: Vec<PacketRecord>,
}

impl PacketBatch {
    /// An empty batch.
    pub fn new(sensor_id: impl Into<String>, stream_id: u64, seq: u64) -> Self {
        PacketBatch {
            sensor_id: sensor_id.into(),
            stream_id,
            seq,
            records: Vec::new(),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
