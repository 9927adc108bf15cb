package pgstore

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// maxPageBytes bounds the event data one page holds in memory; a page ends
// early when it is reached, and the next page resumes after its last event.
const maxPageBytes = 32 << 20

// page runs one event query and returns its rows, decoded, with the
// connection released before the caller sees them. full reports whether the
// query may have more rows (the page was cut by size or by limit).
func (s *Store) page(ctx context.Context, d *decoder, limit int, query string, args ...any) (events []es.Event, full bool, err error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	fast := binaryColumns(rows.FieldDescriptions())
	events = make([]es.Event, 0, limit)
	size := 0
	for rows.Next() {
		events = append(events, es.Event{})
		e := &events[len(events)-1]
		if err := d.decode(rows, fast, e); err != nil {
			return nil, false, err
		}
		if size += len(e.Data); size >= maxPageBytes {
			return events, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return events, len(events) == limit, nil
}

// fetched is one page of the global log, read ahead of its consumer.
type fetched struct {
	events []es.Event
	full   bool
	err    error
}

// readAhead starts reading the page of at most n events after pos and
// returns a function that waits for it. One page is read while the caller
// consumes the previous one, so the database and the consumer work at the
// same time. The caller must call the returned function exactly once, also
// when it stops early, so that the reading goroutine is always waited for.
func (s *Store) readAhead(ctx context.Context, d *decoder, pos es.Position, n int) func() fetched {
	ch := make(chan fetched, 1)
	go func() {
		events, full, err := s.page(ctx, d, n, s.sql.readAll, pos.Commit, int64(pos.Prepare), n)
		if err != nil {
			err = s.mapErr(ctx, fmt.Sprintf("read all after %s", pos), err)
		}
		ch <- fetched{events, full, err}
	}()
	return func() fetched { return <-ch }
}

// ReadAll implements [es.Store.ReadAll]. Each page is one query; the
// connection is not held while the caller handles events, and the next page
// is read while the caller handles this one.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		d := newDecoder()
		pageSize := func(left int) int {
			if limit > 0 {
				return d.pageSize(min(s.cfg.pageSize, left))
			}
			return d.pageSize(s.cfg.pageSize)
		}
		left := limit
		next := s.readAhead(ctx, d, after, pageSize(left))
		for next != nil {
			f := next()
			next = nil
			if f.err != nil {
				yield(es.Event{}, f.err)
				return
			}
			left -= len(f.events)
			if f.full && (limit <= 0 || left > 0) {
				next = s.readAhead(ctx, d, f.events[len(f.events)-1].Position, pageSize(left))
			}
			for _, e := range f.events {
				if !yield(e, nil) {
					if next != nil {
						next()
					}
					return
				}
			}
		}
	}
}

// ReadStream implements [es.Store.ReadStream].
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		what := fmt.Sprintf("read stream %q", stream)
		if err := es.ValidateStreamID(stream); err != nil {
			yield(es.Event{}, fmt.Errorf("%s: %w", what, err))
			return
		}
		query := s.sql.readForward
		if dir == es.Backward {
			query = s.sql.readBackward
		}
		d := newDecoder()
		left := limit
		seen := 0
		for {
			n := s.cfg.pageSize
			if limit > 0 {
				n = min(n, left)
			}
			n = d.pageSize(n)
			events, full, err := s.page(ctx, d, n, query, stream, from, n)
			if err != nil {
				yield(es.Event{}, s.mapErr(ctx, what, err))
				return
			}
			if seen == 0 && len(events) == 0 {
				// Nothing in range: tell a missing stream from an empty range.
				state, err := s.streamState(ctx, stream)
				if err != nil {
					yield(es.Event{}, s.mapErr(ctx, what, err))
					return
				}
				if state.visible == 0 {
					yield(es.Event{}, fmt.Errorf("%s: %w", what, es.ErrStreamNotFound))
				}
				return
			}
			for _, e := range events {
				if !yield(e, nil) {
					return
				}
			}
			seen += len(events)
			left -= len(events)
			if !full || (limit > 0 && left <= 0) {
				return
			}
			last := events[len(events)-1].Version
			if dir == es.Backward {
				from = last - 1
			} else {
				from = last + 1
			}
		}
	}
}

// Head implements [es.Store.Head].
func (s *Store) Head(ctx context.Context) (es.Position, error) {
	var tx uint64
	var position int64
	rows, err := s.pool.Query(ctx, s.sql.head)
	if err != nil {
		return es.Position{}, s.mapErr(ctx, "read head", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&tx, &position); err != nil {
			return es.Position{}, s.mapErr(ctx, "read head", err)
		}
	}
	if err := rows.Err(); err != nil {
		return es.Position{}, s.mapErr(ctx, "read head", err)
	}
	return es.Position{Commit: tx, Prepare: uint64(position)}, nil
}

// Lag counts the events a global reader that is after position after has
// yet to read (only those of the given types, when types is not empty), and
// returns when the oldest of them was recorded (zero when there are none).
// It sees what ReadAll and Subscribe see, so it is the lag of a consumer
// checkpointed at after.
func (s *Store) Lag(ctx context.Context, after es.Position, types []string) (events int64, oldest time.Time, err error) {
	if types == nil {
		types = []string{}
	}
	var first *time.Time
	if err := s.pool.QueryRow(ctx, s.sql.lag, after.Commit, int64(after.Prepare), types).Scan(&events, &first); err != nil {
		return 0, time.Time{}, s.mapErr(ctx, fmt.Sprintf("count the events after %s", after), err)
	}
	if first != nil {
		oldest = first.UTC()
	}
	return events, oldest, nil
}

// WaitVisible waits until every event committed before the call is visible
// to ReadAll, Head and Subscribe: that is, until every transaction running at
// the call, in any database of the cluster, has ended. It polls every few
// milliseconds; bound ctx, because a long transaction makes it wait as long.
//
// Global reads never need it for correctness. It is for tests and tools
// that append and then read the global log and want to see their own writes.
func (s *Store) WaitVisible(ctx context.Context) error {
	var xmax uint64
	if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())`).Scan(&xmax); err != nil {
		return s.mapErr(ctx, "wait for visibility", err)
	}
	wait := time.Millisecond
	for {
		var xmin uint64
		if err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())`).Scan(&xmin); err != nil {
			return s.mapErr(ctx, "wait for visibility", err)
		}
		if xmin >= xmax {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pgstore: wait for visibility: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
