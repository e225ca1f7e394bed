//! The PostgreSQL store: migrations, partitions, binary COPY, embedded cluster.
