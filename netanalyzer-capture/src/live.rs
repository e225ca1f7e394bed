//! libpcap live capture. (Scaffold: the live-capture helper replaces it.)
use crate::CaptureError;
use netanalyzer_core::{PacketRecord, Source, SourceEvent, SourceStats};

/// Settings of a live capture.
#[derive(Debug, Clone, Default)]
pub struct LiveConfig {
    /// Interfaces to capture on.
    pub interfaces: Vec<String>,
}

/// A [`Source`] over live interfaces.
pub struct LiveSource {
    stats: SourceStats,
}

impl LiveSource {
    /// Opens the interfaces.
    ///
    /// # Errors
    /// When libpcap cannot open an interface.
    pub fn open(config: &LiveConfig) -> Result<Self, CaptureError> {
        let _ = config;
        Ok(LiveSource {
            stats: SourceStats::default(),
        })
    }
}

impl Source for LiveSource {
    type Error = CaptureError;
    fn next_into(&mut self, _record: &mut PacketRecord) -> Result<SourceEvent, CaptureError> {
        Ok(SourceEvent::End)
    }
    fn stats(&self) -> SourceStats {
        self.stats
    }
}
