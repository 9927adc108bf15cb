-- The event log. {{schema}} is replaced by the quoted schema name.
--
-- position is a global sequence number: unique, but NOT in commit order,
-- because concurrent transactions commit in any order. tx is the writing
-- transaction's ID (xid8). Global readers order by (tx, position) and only
-- read rows whose tx is below the oldest transaction still running
-- (pg_snapshot_xmin), so no row can later appear before one already read.
CREATE TABLE {{schema}}.events (
    position    bigint      GENERATED ALWAYS AS IDENTITY,
    tx          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL,
    id          uuid        NOT NULL,
    type        text        NOT NULL,
    data        bytea       NOT NULL,
    metadata    jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (tx, position),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_id_key UNIQUE (id)
);

-- Per-stream facts that are not events. Written only by DeleteStream and
-- TruncateBefore, never by appends, so appends take no row lock here.
--   deleted_version:   version of the latest deletion marker; stream reads
--                      return only events after it.
--   truncated_version: the stream's version when its events were last
--                      truncated, so the version survives the removal of
--                      every event.
CREATE TABLE {{schema}}.streams (
    stream_id         text   PRIMARY KEY,
    deleted_version   bigint NOT NULL DEFAULT 0,
    truncated_version bigint NOT NULL DEFAULT 0
);
