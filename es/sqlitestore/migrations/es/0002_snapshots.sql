-- es_snapshots keeps each stream's latest snapshot (es.SnapshotStore), one
-- row per stream. recorded_at is in Unix nanoseconds, as in es_events.
CREATE TABLE es_snapshots (
    stream      INTEGER PRIMARY KEY REFERENCES es_streams (id),
    version     INTEGER NOT NULL CHECK (version > 0),
    fingerprint TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

-- A snapshot never outlives a delete: deleting a stream (state leaves 0)
-- drops its snapshot in the deleting transaction, so that the stream's next
-- life cannot start from its old state. A save racing with the delete is
-- refused by the save itself (see qSaveSnapshot in snapshot.go).
--
-- The trigger watches first, not state: a delete sets both, truncation sets
-- first (with state 0, so the WHEN is false), and appends set version and
-- state but never first. SQLite leaves a trigger out of any UPDATE that does
-- not set one of its columns, so appends pay nothing for it; watching state
-- made every single-event append about twice as slow.
CREATE TRIGGER es_snapshots_drop_on_delete
AFTER UPDATE OF first ON es_streams
WHEN NEW.state <> 0
BEGIN
    DELETE FROM es_snapshots WHERE stream = NEW.id;
END;
