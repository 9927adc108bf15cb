-- The latest snapshot of each stream. A snapshot is a cache: losing it
-- costs a longer load, never data.
CREATE TABLE {{schema}}.snapshots (
    stream_id   text        PRIMARY KEY,
    version     bigint      NOT NULL,
    fingerprint text        NOT NULL,
    data        bytea       NOT NULL,
    recorded_at timestamptz NOT NULL
);
