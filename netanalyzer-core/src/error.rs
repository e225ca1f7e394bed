use thiserror::Error;

/// Errors of the core types (parsing of textual forms).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// A MAC address string was not six `:`-separated hex octets.
    #[error("invalid mac address {0:?}: expected six ':'-separated hex octets")]
    InvalidMac(String),
    /// A protocol name was not one of the known names.
    #[error("unknown protocol name {0:?}")]
    UnknownProtocol(String),
}
