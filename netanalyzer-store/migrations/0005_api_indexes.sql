-- netanalyzer schema, version 5: the indexes of the query API (/api/*).
-- See docs/schema.md ("Query indexes") and docs/api.md (plans, latency).
--
-- raw_packets gets NO new index: "newest first" is answered by walking back
-- from the upper bound in growing time windows, each a scan of the BRIN
-- index on ts (migration 2); closed days also have the btree indexes on
-- src_ip, dst_ip, (protocol, ts) built by maintenance. A live btree on ts
-- would cost the ingest COPY (measured in docs/schema.md).
--
-- But a BRIN index only narrows a scan to the block ranges it has
-- summarized, and COPY leaves new ranges unsummarized until a VACUUM: the
-- live partition's newest rows, the ones "newest first" wants, would be
-- read in full on every query. autosummarize = on asks autovacuum to
-- summarize each block range as soon as it is full. The index is rebuilt
-- (one sequential read of raw_packets) so every partition has the option.
DROP INDEX IF EXISTS raw_packets_ts_brin;
CREATE INDEX raw_packets_ts_brin ON raw_packets USING brin (ts) WITH (autosummarize = on);
--
-- flows: newest first_ts first, and lookups by address. Flows are a small
-- fraction of packets, so live btrees are affordable here.
CREATE INDEX IF NOT EXISTS flows_first_ts ON flows (first_ts);
CREATE INDEX IF NOT EXISTS flows_src_ip ON flows (src_ip);
CREATE INDEX IF NOT EXISTS flows_dst_ip ON flows (dst_ip);

-- alerts: newest last_ts first with alert_id as the tie-break of the
-- keyset cursor, read in index order with no sort. Replaces alerts_last_ts.
CREATE INDEX IF NOT EXISTS alerts_last_ts_id ON alerts (last_ts, alert_id);
DROP INDEX IF EXISTS alerts_last_ts;
