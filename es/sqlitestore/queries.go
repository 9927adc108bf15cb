package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
)

// The statements of the event log. Their text never changes, so each is
// prepared once per connection.
const (
	// Writer statements; they run inside the appending transaction.
	qLookupEvent = `SELECT e.position, e.version, e.type, e.data, s.name
FROM es_events e JOIN es_streams s ON s.id = e.stream
WHERE e.id = ?`
	qLookupStream = `SELECT id, version, first, state FROM es_streams WHERE name = ?`
	qInsertStream = `INSERT INTO es_streams (name, version) VALUES (?, 0)`
	qUpdateStream = `UPDATE es_streams SET version = ?, state = 0 WHERE id = ?`
	qInsertEvent  = `INSERT INTO es_events (id, stream, version, type, data, metadata, recorded_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`
	qDeleteStream = `UPDATE es_streams SET state = ?, first = ? WHERE id = ?`
	qTruncate     = `DELETE FROM es_events WHERE stream = ? AND version < ?`
	qSetFirst     = `UPDATE es_streams SET first = ? WHERE id = ?`

	// Reader statements.
	qReadForward = `SELECT position, id, version, type, data, metadata, recorded_at
FROM es_events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`
	qReadBackward = `SELECT position, id, version, type, data, metadata, recorded_at
FROM es_events WHERE stream = ? AND version >= ? AND version <= ? ORDER BY version DESC LIMIT ?`
	// The log has no gaps to wait for: positions are assigned under the
	// write lock, in commit order, so every committed row below the newest
	// is already visible.
	qReadAll = `SELECT e.position, e.id, s.name, e.version, e.type, e.data, e.metadata, e.recorded_at
FROM es_events e JOIN es_streams s ON s.id = e.stream
WHERE e.position >= ? ORDER BY e.position LIMIT ?`
	qHead      = `SELECT COALESCE(MAX(position), 0) FROM es_events`
	qFindEvent = `SELECT e.position, e.id, s.name, e.version, e.type, e.data, e.metadata, e.recorded_at
FROM es_events e JOIN es_streams s ON s.id = e.stream
WHERE e.id = ?`
)

type stmts struct {
	lookupEvent, lookupStream, insertStream, updateStream, insertEvent *sql.Stmt
	deleteStream, truncate, setFirst                                   *sql.Stmt

	lookupStreamR, readForward, readBackward, readAll, head, findEvent *sql.Stmt
}

func (st *stmts) prepare(ctx context.Context, w, r *sql.DB) error {
	var err error
	prep := func(db *sql.DB, q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = db.PrepareContext(ctx, q)
		return s
	}
	st.lookupEvent = prep(w, qLookupEvent)
	st.lookupStream = prep(w, qLookupStream)
	st.insertStream = prep(w, qInsertStream)
	st.updateStream = prep(w, qUpdateStream)
	st.insertEvent = prep(w, qInsertEvent)
	st.deleteStream = prep(w, qDeleteStream)
	st.truncate = prep(w, qTruncate)
	st.setFirst = prep(w, qSetFirst)
	st.lookupStreamR = prep(r, qLookupStream)
	st.readForward = prep(r, qReadForward)
	st.readBackward = prep(r, qReadBackward)
	st.readAll = prep(r, qReadAll)
	st.head = prep(r, qHead)
	st.findEvent = prep(r, qFindEvent)
	return err
}

func (st *stmts) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{
		st.lookupEvent, st.lookupStream, st.insertStream, st.updateStream, st.insertEvent,
		st.deleteStream, st.truncate, st.setFirst,
		st.lookupStreamR, st.readForward, st.readBackward, st.readAll, st.head, st.findEvent,
	} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
