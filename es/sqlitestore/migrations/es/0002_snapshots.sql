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
-- refused by the save itself (see saveSnapshot in snapshot.go).
CREATE TRIGGER es_snapshots_drop_on_delete
AFTER UPDATE OF state ON es_streams
WHEN NEW.state <> 0
BEGIN
    DELETE FROM es_snapshots WHERE stream = NEW.id;
END;
