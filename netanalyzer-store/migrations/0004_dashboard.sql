-- netanalyzer schema, version 4: per-second traffic rollups, top talkers
-- and sensor health, written by the ingest writer in the same transaction
-- as each new batch (so exactly once), for /api/stats, /api/sensors and the
-- live dashboard. See docs/schema.md ("Traffic rollups and sensors").

-- Packets and bytes (wire_len) per capture second, sensor and protocol
-- (PacketRecord.protocol's name). Each new batch adds its sums with one
-- upsert (packets = packets + excluded.packets), keys sorted so concurrent
-- writers lock rows in the same order. The primary key serves every read
-- (a range on sec). Rows older than the retention are deleted by the
-- server's maintenance.
CREATE TABLE IF NOT EXISTS traffic_seconds (
    sec       timestamptz NOT NULL,
    sensor_id text        NOT NULL,
    protocol  text        NOT NULL,
    packets   bigint      NOT NULL,
    bytes     bigint      NOT NULL,
    PRIMARY KEY (sec, sensor_id, protocol)
);

-- Top talkers per minute: for each batch, the 16 source ('s') and 16
-- destination ('d') addresses with the most bytes in that batch, with
-- their exact counts within the batch, are added here. A heavy-hitter
-- approximation that stays bounded (32 rows per batch) under a spoofed
-- flood: an address that is never in a batch's top 16 is not counted.
CREATE TABLE IF NOT EXISTS traffic_talkers (
    minute    timestamptz NOT NULL,
    sensor_id text        NOT NULL,
    role      "char"      NOT NULL CHECK (role IN ('s', 'd')),
    ip        inet        NOT NULL,
    packets   bigint      NOT NULL,
    bytes     bigint      NOT NULL,
    PRIMARY KEY (minute, role, ip, sensor_id)
);

-- One row per sensor, upserted with every new batch: totals, the newest
-- packet time and ingest lag of the batch (commit wall time minus its
-- newest packet), and the SensorStats of the batch envelope (kept when a
-- batch carries none). stats_stream / stats_seq name the batch whose stats
-- are shown, so an older batch committed late does not overwrite newer
-- stats. drops_at is when a drop counter last grew.
CREATE TABLE IF NOT EXISTS sensors (
    sensor_id       text        PRIMARY KEY,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    records         bigint      NOT NULL,
    batches         bigint      NOT NULL,
    last_packet_ts  timestamptz,
    ingest_lag_ms   bigint,
    packets_read    bigint      NOT NULL DEFAULT 0,
    kernel_dropped  bigint,
    if_dropped      bigint,
    parse_errors    bigint      NOT NULL DEFAULT 0,
    spool_records   bigint      NOT NULL DEFAULT 0,
    spool_bytes     bigint      NOT NULL DEFAULT 0,
    dropped_records bigint      NOT NULL DEFAULT 0,
    stats_stream    bigint,
    stats_seq       bigint,
    drops_at        timestamptz
);

-- Open flows of each aggregator at its last commit (NULL until an
-- aggregator of this version commits).
ALTER TABLE aggregator_state ADD COLUMN IF NOT EXISTS active_flows bigint;
