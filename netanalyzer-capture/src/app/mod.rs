//! Application-layer decoders on transport payloads: DNS first question,
//! HTTP/1.x request line and Host, TLS ClientHello SNI. (Scaffold.)
