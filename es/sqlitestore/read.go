package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"math"
	"strconv"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// pageSize is how many rows a read fetches per query. Reads release their
// connection between pages, so a slow consumer never holds a connection (nor
// an old WAL snapshot, which would stop checkpoints) while it works.
const pageSize = 512

// scanEvent reads a row of qReadForward, qReadBackward or, when withStream,
// qReadAll into e.
func scanEvent(rows *sql.Rows, e *es.Event, withStream bool) error {
	var (
		pos, nanos int64
		id, meta   []byte
		err        error
	)
	if withStream {
		err = rows.Scan(&pos, &id, &e.StreamID, &e.Version, &e.Type, &e.Data, &meta, &nanos)
	} else {
		err = rows.Scan(&pos, &id, &e.Version, &e.Type, &e.Data, &meta, &nanos)
	}
	if err != nil {
		return err
	}
	if len(id) != len(e.ID) {
		return fmt.Errorf("event at position %d has a malformed ID of %d bytes", pos, len(id))
	}
	copy(e.ID[:], id)
	e.Position = es.Position{Commit: uint64(pos), Prepare: uint64(pos)}
	e.RecordedAt = time.Unix(0, nanos).UTC()
	if e.Data == nil {
		e.Data = []byte{}
	}
	e.Metadata = es.Metadata{}
	if meta != nil {
		if err := e.Metadata.UnmarshalJSON(meta); err != nil {
			return fmt.Errorf("event at position %d: %w", pos, err)
		}
	}
	return nil
}

// ReadStream implements [es.Store.ReadStream]. Each event yielded is the
// caller's to keep.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		op := "read stream " + strconv.Quote(stream)
		if err := es.ValidateStreamID(stream); err != nil {
			yield(es.Event{}, err)
			return
		}
		next := from
		page := make([]es.Event, 0, min(pageSize, max(limit, 16)))
		for first := true; ; first = false {
			if s.isClosed() {
				yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrClosed))
				return
			}
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, fmt.Errorf("%s: %w", op, err))
				return
			}
			want := pageSize
			if limit > 0 {
				want = min(want, limit)
			}
			var (
				found bool
				err   error
			)
			page, next, found, err = s.streamPage(ctx, page[:0], stream, next, dir, want)
			if err != nil {
				yield(es.Event{}, s.fail(ctx, op, err))
				return
			}
			if !found {
				// A delete between two pages ends the read.
				if first {
					yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrStreamNotFound))
				}
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if limit > 0 {
				limit -= len(page)
				if limit == 0 {
					return
				}
			}
			if len(page) < want {
				return
			}
		}
	}
}

// streamPage reads up to want events of stream from version next on, in one
// read transaction so that the stream's row and its events agree. It returns
// the version to continue from, and found false when the stream has no row or
// was deleted.
func (s *Store) streamPage(ctx context.Context, page []es.Event, stream string, next int64, dir es.Direction, want int) (_ []es.Event, _ int64, found bool, err error) {
	ctx = detach(ctx) // callers check ctx between pages
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return page, next, false, err
	}
	defer tx.Rollback()
	st, found, err := lookupStream(ctx, tx.StmtContext(ctx, s.stmts.lookupStreamR), stream)
	if err != nil || !found || st.state != stateLive {
		return page, next, false, err
	}
	var rows *sql.Rows
	if dir == es.Backward {
		// A truncation between two pages clamps next, so the read never
		// returns removed events.
		next = min(next, st.version)
		if next < st.first {
			return page, next, true, nil
		}
		rows, err = tx.StmtContext(ctx, s.stmts.readBackward).QueryContext(ctx, st.id, st.first, next, want)
	} else {
		next = max(next, st.first)
		if next > st.version {
			return page, next, true, nil
		}
		rows, err = tx.StmtContext(ctx, s.stmts.readForward).QueryContext(ctx, st.id, next, want)
	}
	if err != nil {
		return page, next, true, err
	}
	defer rows.Close()
	for rows.Next() {
		e := es.Event{StreamID: stream}
		if err := scanEvent(rows, &e, false); err != nil {
			return page, next, true, err
		}
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return page, next, true, err
	}
	if n := len(page); n > 0 {
		if dir == es.Backward {
			next = page[n-1].Version - 1
		} else {
			next = page[n-1].Version + 1
		}
	}
	return page, next, true, nil
}

// startAfter returns the lowest position of an event after p, and false when
// no event can be after it. Event n has position (n, n), which is after
// (c, p) when n > c, or n == c and p < c.
func startAfter(p es.Position) (int64, bool) {
	start := p.Commit
	if p.Prepare >= p.Commit {
		start++
	}
	if start == 0 || start > math.MaxInt64 {
		return 0, false
	}
	return int64(start), true
}

// allPage reads up to want rows of the global log from position start on,
// appends those that match filter to page, and returns the position to
// continue from and whether it read fewer rows than want (the end of the log).
func (s *Store) allPage(ctx context.Context, page []es.Event, start int64, want int, filter *es.Filter) (_ []es.Event, next int64, end bool, err error) {
	rows, err := s.stmts.readAll.QueryContext(detach(ctx), start, want) // callers check ctx between pages
	if err != nil {
		return page, start, false, err
	}
	defer rows.Close()
	next, n := start, 0
	for rows.Next() {
		var e es.Event
		if err := scanEvent(rows, &e, true); err != nil {
			return page, next, false, err
		}
		n++
		next = int64(e.Position.Commit) + 1
		if filter == nil || filter.Match(&e) {
			page = append(page, e)
		}
	}
	if err := rows.Err(); err != nil {
		return page, next, false, err
	}
	return page, next, n < want, nil
}

// ReadAll implements [es.Store.ReadAll]. Every committed event is visible:
// positions are assigned under the write lock, in commit order. Each event
// yielded is the caller's to keep.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		op := "read all after " + after.String()
		next, ok := startAfter(after)
		if !ok {
			return
		}
		page := make([]es.Event, 0, min(pageSize, max(limit, 16)))
		for {
			if s.isClosed() {
				yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrClosed))
				return
			}
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, fmt.Errorf("%s: %w", op, err))
				return
			}
			want := pageSize
			if limit > 0 {
				want = min(want, limit)
			}
			var (
				end bool
				err error
			)
			page, next, end, err = s.allPage(ctx, page[:0], next, want, nil)
			if err != nil {
				yield(es.Event{}, s.fail(ctx, op, err))
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if limit > 0 {
				limit -= len(page)
				if limit == 0 {
					return
				}
			}
			if end {
				return
			}
		}
	}
}

// Subscribe implements [es.Store.Subscribe]. It reads the log in pages and,
// once caught up, waits for an append through this Store (which wakes it at
// once) or for the poll interval to pass (which finds appends by other Stores
// and processes on the same file). It starts no goroutine: all the work
// happens in the caller's loop. Closing the Store ends it with
// [es.ErrClosed].
func (s *Store) Subscribe(ctx context.Context, after es.Position, filter es.Filter) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		op := "subscribe after " + after.String()
		next, ok := startAfter(after)
		if !ok {
			// Nothing can come after this position; wait for the end.
			select {
			case <-ctx.Done():
				yield(es.Event{}, fmt.Errorf("%s: %w", op, ctx.Err()))
			case <-s.done:
				yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrClosed))
			}
			return
		}
		var page []es.Event
		var timer *time.Timer
		defer func() {
			if timer != nil {
				timer.Stop()
			}
		}()
		for {
			if s.isClosed() {
				yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrClosed))
				return
			}
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, fmt.Errorf("%s: %w", op, err))
				return
			}
			// Taken before the read: an append that commits after the read
			// began closes this very channel, so no wake-up is lost.
			changed := s.changes()
			var (
				end bool
				err error
			)
			page, next, end, err = s.allPage(ctx, page[:0], next, pageSize, &filter)
			if err != nil {
				yield(es.Event{}, s.fail(ctx, op, err))
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if !end {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(s.poll)
			} else {
				timer.Reset(s.poll)
			}
			select {
			case <-ctx.Done():
			case <-s.done:
			case <-changed:
			case <-timer.C:
			}
		}
	}
}

// Head implements [es.Store.Head].
func (s *Store) Head(ctx context.Context) (es.Position, error) {
	if s.isClosed() {
		return es.Position{}, fmt.Errorf("read head: %w", es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return es.Position{}, fmt.Errorf("read head: %w", err)
	}
	var n int64
	if err := s.stmts.head.QueryRowContext(detach(ctx)).Scan(&n); err != nil {
		return es.Position{}, s.fail(ctx, "read head", err)
	}
	return es.Position{Commit: uint64(n), Prepare: uint64(n)}, nil
}

var _ es.EventFinder = (*Store)(nil)

// FindEvent implements [es.EventFinder]: it finds an event by ID, also in a
// deleted stream (its events stay in the global log). Truncated events are
// not found.
func (s *Store) FindEvent(ctx context.Context, id es.ID) (es.Event, error) {
	op := "find event " + id.String()
	if s.isClosed() {
		return es.Event{}, fmt.Errorf("%s: %w", op, es.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return es.Event{}, fmt.Errorf("%s: %w", op, err)
	}
	rows, err := s.stmts.findEvent.QueryContext(detach(ctx), id[:])
	if err != nil {
		return es.Event{}, s.fail(ctx, op, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return es.Event{}, s.fail(ctx, op, err)
		}
		return es.Event{}, fmt.Errorf("%s: %w", op, es.ErrEventNotFound)
	}
	var e es.Event
	if err := scanEvent(rows, &e, true); err != nil {
		return es.Event{}, s.fail(ctx, op, err)
	}
	return e, nil
}

// detach returns ctx without its cancellation, for running one statement or
// transaction to completion. modernc.org/sqlite v1.34.0 can leave a
// statement un-reset when its context is cancelled just as a row comes back,
// and every later statement on that connection then fails with
// "interrupted": with one writer connection, every write of the store would
// fail until the process restarted. Callers check ctx before they start;
// each statement takes milliseconds (at most the busy timeout when the file
// is locked), and iterators check ctx between pages.
func detach(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
