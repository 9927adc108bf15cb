package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// Stream states, in es_streams.state.
const (
	stateLive    = 0
	stateDeleted = 1 // deleted with reuse allowed
	stateRetired = 2 // deleted without reuse
)

// streamRow is a row of es_streams.
type streamRow struct {
	id      int64
	version int64
	first   int64
	state   int
}

// current returns the version expected versions are checked against: 0 when
// the stream was deleted.
func (st *streamRow) current() int64 {
	if st.state != stateLive {
		return 0
	}
	return st.version
}

// lookupStream reads stream's row with stmt; found is false when it has none.
func lookupStream(ctx context.Context, stmt *sql.Stmt, stream string) (st streamRow, found bool, err error) {
	err = stmt.QueryRowContext(ctx, stream).Scan(&st.id, &st.version, &st.first, &st.state)
	if errors.Is(err, sql.ErrNoRows) {
		return streamRow{first: es.StreamStart}, false, nil
	}
	return st, err == nil, err
}

// Append implements [es.Store.Append]. The events are written in one
// transaction on the store's single writer connection, which holds SQLite's
// write lock from the checks to the commit; positions are assigned inside it,
// so the global order is commit order.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	if err := es.ValidateAppend(stream, expected, events, s.limits); err != nil {
		return es.AppendResult{}, err
	}
	op := "append to " + strconv.Quote(stream)
	// Encode before taking the write lock, to hold it for less time.
	metas := make([]any, len(events))
	for i := range events {
		if m := &events[i].Metadata; !m.IsZero() {
			metas[i] = string(m.AppendJSON(nil))
		}
	}
	ctx, tx, err := s.begin(ctx, op)
	if err != nil {
		return es.AppendResult{}, err
	}
	defer tx.Rollback()

	if res, done, err := s.replayed(ctx, tx, stream, events); done {
		return res, err
	}
	st, found, err := lookupStream(ctx, tx.StmtContext(ctx, s.stmts.lookupStream), stream)
	if err != nil {
		return es.AppendResult{}, s.fail(ctx, op, err)
	}
	if st.state == stateRetired {
		return es.AppendResult{}, fmt.Errorf("%s: %w", op, es.ErrStreamDeleted)
	}
	actual := st.current()
	if !expected.Matches(actual) {
		return es.AppendResult{}, &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
	}
	if len(events) == 0 {
		return es.AppendResult{Version: actual}, nil
	}
	if !found {
		r, err := tx.StmtContext(ctx, s.stmts.insertStream).ExecContext(ctx, stream)
		if err != nil {
			return es.AppendResult{}, s.fail(ctx, op, err)
		}
		if st.id, err = r.LastInsertId(); err != nil {
			return es.AppendResult{}, s.fail(ctx, op, err)
		}
	}
	now := time.Now().UnixNano()
	ins := tx.StmtContext(ctx, s.stmts.insertEvent)
	var last int64
	for i := range events {
		e := &events[i]
		id := e.ID
		if id.IsZero() {
			id = es.NewID()
		}
		r, err := ins.ExecContext(ctx, id[:], st.id, st.version+int64(i)+1, e.Type, e.Data, metas[i], now)
		if err != nil {
			return es.AppendResult{}, s.fail(ctx, op, err)
		}
		if last, err = r.LastInsertId(); err != nil {
			return es.AppendResult{}, s.fail(ctx, op, err)
		}
	}
	version := st.version + int64(len(events))
	if _, err := tx.StmtContext(ctx, s.stmts.updateStream).ExecContext(ctx, version, st.id); err != nil {
		return es.AppendResult{}, s.fail(ctx, op, err)
	}
	// Once Commit returns nil the events are stored, whatever ctx does now;
	// when it returns an error, SQLite has rolled the transaction back.
	if err := tx.Commit(); err != nil {
		return es.AppendResult{}, s.fail(ctx, op, err)
	}
	s.notify()
	return es.AppendResult{Version: version, Position: es.Position{Commit: uint64(last), Prepare: uint64(last)}}, nil
}

// replayed reports whether events were appended before (done is true), and
// then the original result, or ErrDuplicateEventID when their IDs are stored
// for other content or only some of them are stored.
func (s *Store) replayed(ctx context.Context, tx *sql.Tx, stream string, events []es.EventData) (res es.AppendResult, done bool, err error) {
	var lookup *sql.Stmt
	stored := 0
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			continue
		}
		if lookup == nil {
			lookup = tx.StmtContext(ctx, s.stmts.lookupEvent)
		}
		var (
			pos, version int64
			typ, name    string
			data         []byte
		)
		err := lookup.QueryRowContext(ctx, e.ID[:]).Scan(&pos, &version, &typ, &data, &name)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return res, true, s.fail(ctx, "append to "+strconv.Quote(stream), err)
		}
		if name != stream || typ != e.Type || !bytes.Equal(data, e.Data) {
			return res, true, fmt.Errorf("append to %q: event %d (%s) has ID %s, stored as version %d of stream %q with type %s and other data: %w",
				stream, i, e.Type, e.ID, version, name, typ, es.ErrDuplicateEventID)
		}
		stored++
		if version > res.Version {
			res = es.AppendResult{Version: version, Position: es.Position{Commit: uint64(pos), Prepare: uint64(pos)}}
		}
	}
	switch {
	case stored == 0:
		return es.AppendResult{}, false, nil
	case stored < len(events):
		return es.AppendResult{}, true, fmt.Errorf("append to %q: %d of the %d events are already stored: %w",
			stream, stored, len(events), es.ErrDuplicateEventID)
	}
	// The whole batch is stored: report the original append's result, which
	// is its last event's.
	return res, true, nil
}

// DeleteStream implements [es.Store.DeleteStream]. Deleting a stream that
// never had events returns [es.ErrStreamNotFound]; deleting a retired stream
// returns [es.ErrStreamDeleted]. A stream deleted with reuse may be deleted
// again without reuse, which retires it. The stream's events stay in the
// global log; use [Store.TruncateBefore] first to erase them.
func (s *Store) DeleteStream(ctx context.Context, stream string, expected es.ExpectedVersion, opts ...es.DeleteOption) error {
	o := es.ApplyDeleteOptions(opts)
	if err := es.ValidateStreamID(stream); err != nil {
		return err
	}
	op := "delete stream " + strconv.Quote(stream)
	if !expected.Valid() {
		return fmt.Errorf("%s: %s: %w", op, expected, es.ErrInvalidArgument)
	}
	ctx, tx, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, found, err := lookupStream(ctx, tx.StmtContext(ctx, s.stmts.lookupStream), stream)
	switch {
	case err != nil:
		return s.fail(ctx, op, err)
	case !found:
		return fmt.Errorf("%s: %w", op, es.ErrStreamNotFound)
	case st.state == stateRetired:
		return fmt.Errorf("%s: %w", op, es.ErrStreamDeleted)
	}
	if actual := st.current(); !expected.Matches(actual) {
		return &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
	}
	state, first := stateRetired, st.first
	if o.AllowReuse {
		state, first = stateDeleted, st.version+1
	}
	if _, err := tx.StmtContext(ctx, s.stmts.deleteStream).ExecContext(ctx, state, first, st.id); err != nil {
		return s.fail(ctx, op, err)
	}
	return s.fail(ctx, op, tx.Commit())
}

// TruncateBefore implements [es.Store.TruncateBefore]. The rows are deleted
// from the file, and SQLite overwrites their content (PRAGMA secure_delete);
// their event IDs are forgotten. Truncating a stream that has no events, or
// was deleted, returns [es.ErrStreamNotFound].
func (s *Store) TruncateBefore(ctx context.Context, stream string, before int64) error {
	if err := es.ValidateStreamID(stream); err != nil {
		return err
	}
	op := "truncate stream " + strconv.Quote(stream)
	ctx, tx, err := s.begin(ctx, op)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, found, err := lookupStream(ctx, tx.StmtContext(ctx, s.stmts.lookupStream), stream)
	switch {
	case err != nil:
		return s.fail(ctx, op, err)
	case !found || st.state != stateLive:
		return fmt.Errorf("%s: %w", op, es.ErrStreamNotFound)
	}
	before = min(before, st.version+1)
	if before <= es.StreamStart {
		return nil
	}
	// Erasure must not leave the removed events readable in free pages, so
	// SQLite overwrites their content. It costs appends too much to leave
	// on (every page split zeroes memory), so only this statement has it;
	// the writer has one connection, which this transaction holds.
	if _, err := tx.ExecContext(ctx, "PRAGMA secure_delete = 1"); err != nil {
		return s.fail(ctx, op, err)
	}
	// This also erases what is left in the global log of the stream's life
	// before a delete with reuse, whose versions are all below first.
	_, err = tx.StmtContext(ctx, s.stmts.truncate).ExecContext(ctx, st.id, before)
	// Should this fail, the connection keeps zeroing: slower, not wrong.
	_, _ = tx.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = 0")
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if _, err := tx.StmtContext(ctx, s.stmts.setFirst).ExecContext(ctx, max(st.first, before), st.id); err != nil {
		return s.fail(ctx, op, err)
	}
	return s.fail(ctx, op, tx.Commit())
}

// begin starts a write transaction for op on the store's one writer
// connection. It refuses a closed store and a done context; the transaction
// then runs under detach(ctx), since a statement the driver interrupts can
// break the connection for every later write.
func (s *Store) begin(ctx context.Context, op string) (context.Context, *sql.Tx, error) {
	if s.isClosed() {
		return nil, nil, fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	ctx = detach(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, s.fail(ctx, op, err)
	}
	return ctx, tx, nil
}
