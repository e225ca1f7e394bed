//! The batch wire format: a versioned msgpack (or JSON) envelope.
