//! Alerts: what the alert engine raises from classified flows, the store
//! writes and the dashboard shows.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The coarse classes models are trained to (CIC labels map onto these).
/// `Normal` is the benign class and never raises an alert.
pub const COARSE_CLASSES: [&str; 8] = [
    "Normal",
    "DoS",
    "DDoS",
    "PortScan",
    "BruteForce",
    "WebAttack",
    "Botnet",
    "Other",
];

/// The benign class name.
pub const BENIGN_CLASS: &str = "Normal";

/// How bad an alert is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look (a scan).
    Low,
    /// Likely hostile (brute force, unknown attack).
    Medium,
    /// Hostile and harmful (DoS, web attack, botnet).
    High,
    /// Harm at scale (a DDoS, or a DoS that keeps growing).
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The stable lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown severity {s:?}"))
    }
}

/// One alert: every flow of one attack class against one target within
/// one time window, folded together. A flood raises one alert whose
/// counts grow, not one row per flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable id, derived from (class, target, window_start_ns): an update
    /// of the same alert keeps its id.
    pub alert_id: u64,
    /// Start of the window this alert covers, ns since the Unix epoch.
    pub window_start_ns: u64,
    /// First flow start seen, ns.
    pub first_ts_ns: u64,
    /// Last flow end seen, ns.
    pub last_ts_ns: u64,
    /// The attack class (one of [`COARSE_CLASSES`] for the default model).
    pub class: String,
    /// How bad it is.
    pub severity: Severity,
    /// Highest classifier confidence among its flows, in `[0, 1]`.
    pub confidence: f64,
    /// Distinct source addresses seen (first few; see `source_count`).
    pub sources: Vec<String>,
    /// How many distinct sources there were.
    pub source_count: u64,
    /// The target: the destination address of the flows.
    pub target: String,
    /// Flows folded into this alert.
    pub flow_count: u64,
    /// Packets of those flows.
    pub packet_count: u64,
    /// Version of the model that classified them.
    pub model_version: String,
    /// Ids of the flows that triggered it (first few).
    pub flow_ids: Vec<u64>,
    /// 1 when first raised, +1 per update.
    pub revision: u64,
}
