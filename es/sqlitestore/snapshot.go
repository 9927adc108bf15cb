package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/esgen-dev/esgen/es"
)

var (
	_ es.SnapshotStore = (*Store)(nil)
	_ es.StreamLoader  = (*Store)(nil)
)

// The statements of the snapshot store. Snapshots live in es_snapshots (the
// event log's migration 2), one row per stream, keyed by the stream's row.
const (
	// qSaveSnapshot stores a snapshot in one statement, which SQLite runs
	// under the file's write lock: the checks and the write see the same
	// stream row, so a delete cannot slip between them. It keeps a stored
	// snapshot at a later version, and stores nothing unless the stream is
	// live and the version lies in its current life: at or after first and
	// at most its last version. Every version of a life before a delete is
	// below first (a delete with reuse sets first past the deleted
	// version), so a save that raced with a delete is refused here, and the
	// trigger of migration 2 has dropped the snapshot stored before it.
	// The WHERE of the SELECT also tells SQLite's parser that ON CONFLICT
	// belongs to the INSERT.
	qSaveSnapshot = `INSERT INTO es_snapshots (stream, version, fingerprint, data, recorded_at)
SELECT id, ?2, ?3, ?4, ?5 FROM es_streams
WHERE name = ?1 AND state = 0 AND ?2 >= first AND ?2 <= version
ON CONFLICT (stream) DO UPDATE
SET version = excluded.version, fingerprint = excluded.fingerprint, data = excluded.data, recorded_at = excluded.recorded_at
WHERE excluded.version >= es_snapshots.version`

	qLoadSnapshot = `SELECT n.version, n.fingerprint, n.data, n.recorded_at
FROM es_snapshots n JOIN es_streams s ON s.id = n.stream
WHERE s.name = ? AND s.state = 0`

	qLoadSnapshotByID = `SELECT version, fingerprint, data, recorded_at FROM es_snapshots WHERE stream = ?`
)

// scanSnapshot reads a row of qLoadSnapshot or qLoadSnapshotByID.
func scanSnapshot(row *sql.Row, stream string) (es.Snapshot, error) {
	snap := es.Snapshot{Stream: stream}
	var nanos int64
	if err := row.Scan(&snap.Version, &snap.Fingerprint, &snap.Data, &nanos); err != nil {
		return es.Snapshot{}, err
	}
	if snap.Data == nil {
		snap.Data = []byte{}
	}
	snap.RecordedAt = time.Unix(0, nanos).UTC()
	return snap, nil
}

// SaveSnapshot implements [es.SnapshotStore]. It stores snap unless a
// snapshot at a later version is stored; one at the same version is
// replaced, so that a snapshot taken under a new state schema replaces the
// old one. It stores nothing, and returns nil, when the stream is deleted,
// when snap is from a life of the stream before its latest deletion, or when
// snap.Version is past the stream's last event or before its first
// readable one (after [Store.TruncateBefore]): such a snapshot could only
// make a later load wrong. Deleting a stream drops its snapshot.
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	op := fmt.Sprintf("save snapshot of %q at version %d", snap.Stream, snap.Version)
	if err := es.ValidateStreamID(snap.Stream); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if snap.Version < 1 {
		return fmt.Errorf("%s: the version must be positive: %w", op, es.ErrInvalidArgument)
	}
	if s.isClosed() {
		return fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	data := snap.Data
	if data == nil {
		data = []byte{}
	}
	recorded := snap.RecordedAt
	if recorded.IsZero() {
		recorded = time.Now()
	}
	_, err := s.w.ExecContext(detach(ctx), qSaveSnapshot, snap.Stream, snap.Version, snap.Fingerprint, data, recorded.UnixNano())
	return s.fail(ctx, op, err)
}

// LoadSnapshot implements [es.SnapshotStore]. It returns an error matching
// [es.ErrSnapshotNotFound] when the stream has no snapshot, does not exist,
// or is deleted; a snapshot from before the stream's latest deletion is
// never returned.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, error) {
	op := "load snapshot of " + strconv.Quote(stream)
	if err := es.ValidateStreamID(stream); err != nil {
		return es.Snapshot{}, fmt.Errorf("%s: %w", op, err)
	}
	if s.isClosed() {
		return es.Snapshot{}, fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, fmt.Errorf("%s: %w", op, err)
	}
	snap, err := scanSnapshot(s.r.QueryRowContext(detach(ctx), qLoadSnapshot, stream), stream)
	if errors.Is(err, sql.ErrNoRows) {
		return es.Snapshot{}, fmt.Errorf("%s: %w", op, es.ErrSnapshotNotFound)
	}
	if err != nil {
		return es.Snapshot{}, s.fail(ctx, op, err)
	}
	return snap, nil
}

// LoadStream implements [es.StreamLoader]: the stream's snapshot (when
// withSnapshot) and the events after it, or all its readable events, read
// in one read transaction, so that they agree with each other whatever
// appends, saves and deletes run meanwhile. A missing or deleted stream
// yields an empty LoadedStream and no error. Each event is the caller's to
// keep. ctx is checked before the read, which then runs to its end (see
// detach).
func (s *Store) LoadStream(ctx context.Context, stream string, withSnapshot bool) (es.LoadedStream, error) {
	op := "load stream " + strconv.Quote(stream)
	if err := es.ValidateStreamID(stream); err != nil {
		return es.LoadedStream{}, fmt.Errorf("%s: %w", op, err)
	}
	if s.isClosed() {
		return es.LoadedStream{}, fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return es.LoadedStream{}, fmt.Errorf("%s: %w", op, err)
	}
	out, err := s.loadStream(detach(ctx), stream, withSnapshot)
	if err != nil {
		return es.LoadedStream{}, s.fail(ctx, op, err)
	}
	return out, nil
}

func (s *Store) loadStream(ctx context.Context, stream string, withSnapshot bool) (es.LoadedStream, error) {
	var out es.LoadedStream
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, err
	}
	defer tx.Rollback()
	st, found, err := lookupStream(ctx, tx.StmtContext(ctx, s.stmts.lookupStreamR), stream)
	if err != nil || !found || st.state != stateLive {
		return out, err
	}
	from := st.first
	if withSnapshot {
		snap, err := scanSnapshot(tx.QueryRowContext(ctx, qLoadSnapshotByID, st.id), stream)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return out, err
		default:
			out.Snapshot, out.HasSnapshot = snap, true
			from = max(from, snap.Version+1)
		}
	}
	if from > st.version {
		return out, nil
	}
	// LIMIT -1 is no limit: an aggregate is loaded whole.
	rows, err := tx.StmtContext(ctx, s.stmts.readForward).QueryContext(ctx, st.id, from, -1)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	out.Events = make([]es.Event, 0, st.version-from+1)
	for rows.Next() {
		e := es.Event{StreamID: stream}
		if err := scanEvent(rows, &e, false); err != nil {
			return es.LoadedStream{}, err
		}
		out.Events = append(out.Events, e)
	}
	if err := rows.Err(); err != nil {
		return es.LoadedStream{}, err
	}
	return out, nil
}
