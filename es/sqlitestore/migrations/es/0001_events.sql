-- The event log: one row per stream, one row per event.

-- es_streams holds each stream's bookkeeping. version is the number of the
-- stream's last event, deleted or truncated or not, so that versions continue
-- after a delete with reuse. first is the lowest version reads may return.
-- state is 0 (live), 1 (deleted with reuse allowed: reads as not found, and
-- the next append starts it again) or 2 (retired by a delete without reuse).
CREATE TABLE es_streams (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    first   INTEGER NOT NULL DEFAULT 1,
    state   INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2))
) STRICT;

-- es_events is the global log. position is the event's place in it: the
-- single writer assigns it inside the appending transaction, so the log's
-- order is commit order and a reader never sees a gap fill in behind it.
-- AUTOINCREMENT stops SQLite from reusing the position of a deleted newest
-- row, which would put a new event behind a reader's checkpoint.
CREATE TABLE es_events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    stream      INTEGER NOT NULL REFERENCES es_streams (id),
    version     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    metadata    TEXT,
    recorded_at INTEGER NOT NULL,
    UNIQUE (stream, version)
) STRICT;
