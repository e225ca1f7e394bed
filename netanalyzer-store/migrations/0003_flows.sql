-- netanalyzer schema, version 3: exactly-once reading of raw_packets by the
-- aggregator, and the tables it writes (flows, alerts, aggregator_state).
-- See docs/schema.md ("Reading packets exactly once").

-- The ledger becomes the aggregator's read queue. Every batch's row records
-- the id of the transaction that wrote it (xid) and a sequence number (id).
-- A reader takes the oldest transaction still running anywhere
-- (pg_snapshot_xmin(pg_current_snapshot())) as its horizon: every ledger row
-- whose xid is below it is final (committed and visible, or rolled back and
-- gone), and no row can ever appear below it again. Reading the final rows in
-- (xid, id) order from a saved position therefore skips nothing, even when
-- concurrent writers commit out of order. Rows of existing batches get the
-- migration's xid and new ids; their raw_packets rows have no batch_id.
ALTER TABLE ingest_batches
    ADD COLUMN id     bigserial   UNIQUE,
    ADD COLUMN xid    xid8        NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN min_ts timestamptz,
    ADD COLUMN max_ts timestamptz;

CREATE INDEX ingest_batches_xid_id ON ingest_batches (xid, id);

-- The ledger id of the batch a row came from (NULL for rows written before
-- this migration or with PacketWriter::copy_bare). The reader finds a
-- batch's rows by (ts BETWEEN min_ts AND max_ts, batch_id): partition pruning
-- and the BRIN index on ts narrow the scan, batch_id picks the rows.
ALTER TABLE raw_packets ADD COLUMN batch_id bigint;

-- One row per flow record (a conversation, or one active-timeout segment of
-- it). u64 ids are stored as bigint holding the same 64 bits (ids >= 2^63
-- read as negative numbers). Daily partitions flows_pYYYYMMDD on first_ts
-- are created by the application, like raw_packets'.
CREATE TABLE IF NOT EXISTS flows (
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    sensor_id     text        NOT NULL,
    flow_id       bigint      NOT NULL,
    segment       bigint      NOT NULL,
    ip_proto      smallint,             -- NULL for ARP flows
    src_ip        inet,                 -- forward source (first packet's sender); NULL for ARP
    src_port      integer     NOT NULL,
    dst_ip        inet,
    dst_port      integer     NOT NULL,
    src_mac       macaddr,              -- ARP flows only
    dst_mac       macaddr,
    vlan_id       integer,
    fwd_packets   bigint      NOT NULL,
    bwd_packets   bigint      NOT NULL,
    fwd_bytes     bigint      NOT NULL,
    bwd_bytes     bigint      NOT NULL,
    tcp_flags     integer     NOT NULL,
    end_reason    text        NOT NULL,
    features      float8[]    NOT NULL, -- core FEATURES order (docs/features.md)
    label         text,
    confidence    float8,
    model_version text        NOT NULL,
    inserted_at   timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (first_ts);

CREATE INDEX IF NOT EXISTS flows_first_ts_brin ON flows USING brin (first_ts);
CREATE INDEX IF NOT EXISTS flows_flow_id ON flows (flow_id);

-- One row per alert: (class, target, window) folded together and updated in
-- place (upsert on alert_id) as its counts grow.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id      bigint      PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    first_ts      timestamptz NOT NULL,
    last_ts       timestamptz NOT NULL,
    class         text        NOT NULL,
    severity      text        NOT NULL,
    confidence    float8      NOT NULL,
    sources       text[]      NOT NULL,
    source_count  bigint      NOT NULL,
    target        text        NOT NULL,
    flow_count    bigint      NOT NULL,
    packet_count  bigint      NOT NULL,
    model_version text        NOT NULL,
    flow_ids      bigint[]    NOT NULL,
    revision      bigint      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS alerts_last_ts ON alerts (last_ts);

-- One row per aggregator (consumer name): how far it has read and its
-- serialized state (open flows, alert windows), saved in the same
-- transaction as the flows and alerts it wrote.
CREATE TABLE IF NOT EXISTS aggregator_state (
    consumer          text        PRIMARY KEY,
    position_xid      xid8        NOT NULL,
    position_batch_id bigint      NOT NULL,
    state             bytea       NOT NULL,
    rows_processed    bigint      NOT NULL,
    batches_processed bigint      NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
