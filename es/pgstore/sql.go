package pgstore

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// Types of the marker events DeleteStream appends. They take the stream's
// next version, so a deletion and a concurrent append race on the same
// (stream_id, version) key and exactly one wins. Readers never return them.
const (
	markerDeleted   = "$esgen.StreamDeleted"   // deleted, name may be reused
	markerTombstone = "$esgen.StreamTombstone" // deleted, name retired
	snapshotRow     = "$esgen.Snapshot"        // the snapshot row of loadStream
)

// statements holds the SQL text with the schema baked in, so that the text
// is stable and pgx's statement cache prepares each statement once per
// connection.
type statements struct {
	append, idLookup, readAll, head string
	readForward, readBackward       string
	upsertDeleted, truncate, notify string
	loadSnapshot, saveSnapshot      string
	loadStream                      string
	findEvent, channel              string
	lag                             string
}

func newStatements(schema string) statements {
	q := pgx.Identifier{schema}.Sanitize()
	r := strings.NewReplacer("{{s}}", q, "{{deleted}}", markerDeleted, "{{tombstone}}", markerTombstone, "{{snapshot}}", snapshotRow)
	return statements{
		// One statement, one round trip, whatever the batch size. It reads
		// the stream's last event (one backward probe of the unique index),
		// checks the expectation, and inserts the batch from arrays.
		// Concurrent writers that pass the check with the same current
		// version collide on (stream_id, version): the loser gets a unique
		// violation, which the caller maps to a ConcurrencyError. No lock row
		// is read or written.
		//
		// $2: expected version (-1 any, -2 stream exists, else exact).
		// Returns the visible version before the append (0 when the stream
		// does not exist or reads as deleted), whether it is tombstoned, and
		// the inserted count, last version, last tx and last position.
		append: r.Replace(`WITH last AS (
    SELECT version, type FROM {{s}}.events
    WHERE stream_id = $1 ORDER BY version DESC LIMIT 1
), state AS (
    SELECT GREATEST(coalesce((SELECT version FROM last), 0),
                    coalesce((SELECT truncated_version FROM {{s}}.streams WHERE stream_id = $1), 0)) AS last_version,
           coalesce((SELECT type FROM last), '') AS last_type
), checked AS (
    SELECT last_version,
           CASE WHEN last_type IN ('{{deleted}}', '{{tombstone}}') THEN 0 ELSE last_version END AS visible,
           last_type = '{{tombstone}}' AS tombstoned
    FROM state
), ins AS (
    INSERT INTO {{s}}.events (stream_id, version, id, type, data, metadata)
    SELECT $1, c.last_version + u.ord, u.id, u.type, u.data, NULLIF(u.metadata, '')::jsonb
    FROM checked c,
         unnest($3::uuid[], $4::text[], $5::bytea[], $6::text[]) WITH ORDINALITY AS u(id, type, data, metadata, ord)
    WHERE NOT c.tombstoned
      AND ($2 = -1 OR ($2 = -2 AND c.visible > 0) OR $2 = c.visible)
    ORDER BY u.ord
    RETURNING version, tx, position
)
SELECT c.visible, c.tombstoned, count(i.version), coalesce(max(i.version), 0),
       coalesce(pg_current_xact_id_if_assigned(), '0'::xid8), coalesce(max(i.position), 0)
FROM checked c LEFT JOIN ins i ON true
GROUP BY c.visible, c.tombstoned`),

		idLookup: r.Replace(`SELECT id, stream_id, version, type, data, tx, position
FROM {{s}}.events WHERE id = ANY($1::uuid[])`),

		// Global reads see only rows written by transactions older than the
		// oldest one still running: such rows can no longer be preceded by
		// a commit, so a reader that resumes after (tx, position) never
		// skips one. Rows are ordered by the same pair.
		readAll: r.Replace(`SELECT tx, position, stream_id, version, id, type, data, metadata, recorded_at
FROM {{s}}.events
WHERE (tx, position) > ($1::xid8, $2::bigint)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
  AND type NOT IN ('{{deleted}}', '{{tombstone}}')
ORDER BY tx, position
LIMIT $3`),

		head: r.Replace(`SELECT tx, position FROM {{s}}.events
WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
  AND type NOT IN ('{{deleted}}', '{{tombstone}}')
ORDER BY tx DESC, position DESC LIMIT 1`),

		// Stream reads return the events after the latest deletion marker.
		readForward: r.Replace(`SELECT tx, position, stream_id, version, id, type, data, metadata, recorded_at
FROM {{s}}.events
WHERE stream_id = $1 AND version >= $2
  AND version > coalesce((SELECT deleted_version FROM {{s}}.streams WHERE stream_id = $1), 0)
ORDER BY version LIMIT $3`),
		readBackward: r.Replace(`SELECT tx, position, stream_id, version, id, type, data, metadata, recorded_at
FROM {{s}}.events
WHERE stream_id = $1 AND version <= $2
  AND version > coalesce((SELECT deleted_version FROM {{s}}.streams WHERE stream_id = $1), 0)
ORDER BY version DESC LIMIT $3`),

		upsertDeleted: r.Replace(`INSERT INTO {{s}}.streams (stream_id, deleted_version) VALUES ($1, $2)
ON CONFLICT (stream_id) DO UPDATE SET deleted_version = GREATEST({{s}}.streams.deleted_version, EXCLUDED.deleted_version)`),

		// Markers are kept: they carry no data and the append statement
		// needs the newest one to know the stream is deleted.
		truncate: r.Replace(`WITH del AS (
    DELETE FROM {{s}}.events
    WHERE stream_id = $1 AND version < $2 AND type NOT IN ('{{deleted}}', '{{tombstone}}')
)
INSERT INTO {{s}}.streams (stream_id, truncated_version)
VALUES ($1, LEAST($2::bigint - 1, coalesce((SELECT version FROM {{s}}.events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1), 0)))
ON CONFLICT (stream_id) DO UPDATE SET truncated_version = GREATEST({{s}}.streams.truncated_version, EXCLUDED.truncated_version)`),

		// A snapshot from a life of the stream before its latest deletion
		// is never returned.
		loadSnapshot: r.Replace(`SELECT version, fingerprint, data, recorded_at FROM {{s}}.snapshots
WHERE stream_id = $1 AND version > coalesce((SELECT deleted_version FROM {{s}}.streams WHERE stream_id = $1), 0)`),

		// The aggregate load: the snapshot (as a row of the event shape,
		// typed {{snapshot}}, fingerprint in stream_id) and the events after
		// it, in one statement so both come from one MVCC snapshot: a
		// snapshot saved meanwhile cannot make events go missing.
		loadStream: r.Replace(`WITH d AS (
    SELECT coalesce((SELECT deleted_version FROM {{s}}.streams WHERE stream_id = $1), 0) AS v
), snap AS (
    SELECT s.version, s.fingerprint, s.data, s.recorded_at
    FROM {{s}}.snapshots s, d
    WHERE $2::boolean AND s.stream_id = $1 AND s.version > d.v
)
SELECT '0'::xid8, 0::bigint, fingerprint, version, '00000000-0000-0000-0000-000000000000'::uuid,
       '{{snapshot}}', data, NULL::jsonb, recorded_at
FROM snap
UNION ALL
(SELECT e.tx, e.position, e.stream_id, e.version, e.id, e.type, e.data, e.metadata, e.recorded_at
 FROM {{s}}.events e, d
 WHERE e.stream_id = $1 AND e.version > GREATEST(d.v, coalesce((SELECT version FROM snap), 0))
 ORDER BY e.version)`),
		saveSnapshot: r.Replace(`INSERT INTO {{s}}.snapshots (stream_id, version, fingerprint, data, recorded_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version, fingerprint = EXCLUDED.fingerprint, data = EXCLUDED.data, recorded_at = EXCLUDED.recorded_at
WHERE {{s}}.snapshots.version <= EXCLUDED.version`),
		findEvent: r.Replace(`SELECT tx, position, stream_id, version, id, type, data, metadata, recorded_at
FROM {{s}}.events WHERE id = $1 AND type NOT IN ('{{deleted}}', '{{tombstone}}')`),

		// The events a global reader after $1/$2 has yet to see (same
		// visibility rule and markers as readAll), optionally of some types.
		lag: r.Replace(`SELECT count(*), min(recorded_at) FROM {{s}}.events
WHERE (tx, position) > ($1::xid8, $2::bigint)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
  AND type NOT IN ('{{deleted}}', '{{tombstone}}')
  AND (cardinality($3::text[]) = 0 OR type = ANY($3))`),

		notify:  `SELECT pg_notify($1, '')`,
		channel: channelName(schema),
	}
}
