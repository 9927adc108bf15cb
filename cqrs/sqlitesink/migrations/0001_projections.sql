-- Projection checkpoints and parked events, beside the event log in the
-- store's file, recorded in esgen_migrations as the component "sqlitesink".
--
-- A checkpoint is an es.Position: commit_pos and prepare_pos are its Commit
-- and Prepare numbers, compared as a row. sqlitestore's positions are below
-- 2^63, so they fit SQLite's signed integers; the sink refuses larger ones.
-- updated_at is in Unix nanoseconds.
CREATE TABLE projection_checkpoints (
    projection  TEXT    PRIMARY KEY,
    commit_pos  INTEGER NOT NULL,
    prepare_pos INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- Events whose handler kept failing. One row per projection and event; a
-- projection that stops at an event and is restarted updates the same row.
CREATE TABLE projection_parked (
    projection  TEXT    NOT NULL,
    event_id    BLOB    NOT NULL CHECK (length(event_id) = 16),
    stream_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    commit_pos  INTEGER NOT NULL,
    prepare_pos INTEGER NOT NULL,
    error       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    skipped     INTEGER NOT NULL CHECK (skipped IN (0, 1)),
    parked_at   INTEGER NOT NULL,
    PRIMARY KEY (projection, event_id)
) STRICT;
