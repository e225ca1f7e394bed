//! The sensor side of the transport: HTTP sink, retries, on-disk spool.
