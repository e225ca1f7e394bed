//! The ingest server: HTTP in, writer threads out.
