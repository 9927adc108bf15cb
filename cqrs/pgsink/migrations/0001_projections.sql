-- Projection checkpoints and parked events. {{schema}} is replaced by the
-- quoted schema name.
--
-- A checkpoint is an es.Position: commit_pos and prepare_pos are its Commit
-- and Prepare numbers (for pgstore, the transaction ID and the sequence
-- number), stored as bigint and compared as a row.
CREATE TABLE {{schema}}.projection_checkpoints (
    projection  text        PRIMARY KEY,
    commit_pos  bigint      NOT NULL,
    prepare_pos bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Events whose handler kept failing. One row per projection and event; a
-- projection that stops at an event and is restarted updates the same row.
CREATE TABLE {{schema}}.projection_parked (
    projection  text        NOT NULL,
    event_id    uuid        NOT NULL,
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL,
    type        text        NOT NULL,
    commit_pos  bigint      NOT NULL,
    prepare_pos bigint      NOT NULL,
    error       text        NOT NULL,
    attempts    integer     NOT NULL,
    skipped     boolean     NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_id)
);
