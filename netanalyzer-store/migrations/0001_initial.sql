-- netanalyzer schema, version 1: batch bookkeeping and the packet table.
-- Applied by netanalyzer_store::pg::migrate() in one transaction.
-- See docs/schema.md for every column and the index measurements.

-- One row per batch ever committed: the exactly-once key. A batch is written
-- in the same transaction as this row; a retry of the same
-- (sensor_id, stream_id, seq) finds the row and writes nothing.
CREATE TABLE ingest_batches (
    sensor_id   text        NOT NULL,
    stream_id   bigint      NOT NULL,
    seq         bigint      NOT NULL,
    records     integer     NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor_id, stream_id, seq)
);

-- One row per captured packet, one column per PacketRecord field.
-- Unsigned integers are widened (u8 -> smallint, u16 -> integer,
-- u32 -> bigint). ts holds microseconds; ts_ns_rem the nanoseconds below.
-- Daily partitions raw_packets_pYYYYMMDD are created by the application.
CREATE TABLE raw_packets (
    ts              timestamptz NOT NULL,
    ts_ns_rem       smallint    NOT NULL,
    sensor_id       text        NOT NULL,
    iface           text,
    wire_len        bigint,
    cap_len         bigint,
    eth_src         macaddr,
    eth_dst         macaddr,
    vlan_id         integer,
    ether_type      integer,
    ip_version      smallint,
    src_ip          inet,
    dst_ip          inet,
    ip_proto        smallint,
    ttl             smallint,
    is_fragment     boolean,
    src_port        integer,
    dst_port        integer,
    tcp_flags       integer,
    tcp_seq         bigint,
    tcp_ack         bigint,
    tcp_window      integer,
    payload_len     bigint,
    icmp_type       smallint,
    icmp_code       smallint,
    arp_op          integer,
    dns_qname       text,
    dns_qtype       integer,
    dns_is_response boolean,
    http_method     text,
    http_host       text,
    http_path       text,
    tls_sni         text,
    protocol        text        NOT NULL
) PARTITION BY RANGE (ts);
