package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/esgen-dev/esgen/es"
)

// ReadStream implements [es.Store.ReadStream], reading from the server in
// pages. A tombstoned stream, like a deleted one, yields
// [es.ErrStreamNotFound].
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		op := "read stream " + strconv.Quote(stream)
		if err := es.ValidateStreamID(stream); err != nil {
			yield(es.Event{}, err)
			return
		}
		if err := s.begin(ctx, op); err != nil {
			yield(es.Event{}, err)
			return
		}
		fail := func(err error) {
			if kind, _ := classify(err); kind == failStreamDeleted {
				err = fmt.Errorf("%s: %w", op, es.ErrStreamNotFound)
			} else {
				err = s.fail(ctx, op, err)
			}
			yield(es.Event{}, err)
		}
		if dir == es.Backward && from != es.StreamEnd {
			// The server reads backward from the revision asked for, even
			// past the end, where it finds nothing; start at the end then.
			last, state, err := s.latest(ctx, stream)
			switch {
			case err != nil:
				fail(err)
				return
			case state != stateLive:
				yield(es.Event{}, fmt.Errorf("%s: %w", op, es.ErrStreamNotFound))
				return
			case from < es.StreamStart:
				return
			}
			from = min(from, last)
			if from < es.StreamStart {
				return
			}
		}
		next := from
		for first := true; ; first = false {
			want := s.pageSize
			if limit > 0 {
				want = min(want, limit)
			}
			var rs *esdb.ReadStream
			done, err := s.start(ctx, func(ctx context.Context) (err error) {
				rs, err = s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{
					Direction: direction(dir),
					From:      streamFrom(next, dir),
				}, uint64(want))
				return err
			})
			if err != nil {
				fail(err)
				return
			}
			n, yielded, stop, err := s.yieldPage(rs, yield, func(v int64) { next = v })
			rs.Close()
			done()
			if err != nil {
				if first || ctx.Err() != nil {
					fail(err)
				} else if kind, _ := classify(err); kind != failNotFound && kind != failStreamDeleted {
					fail(err)
				}
				// A delete between two pages ends the read.
				return
			}
			if stop || n < want {
				return
			}
			if limit > 0 {
				if limit -= yielded; limit == 0 {
					return
				}
			}
			if dir == es.Backward {
				if next--; next < es.StreamStart {
					return
				}
			} else {
				next++
			}
		}
	}
}

func direction(d es.Direction) esdb.Direction {
	if d == es.Backward {
		return esdb.Backwards
	}
	return esdb.Forwards
}

// yieldPage yields the events of one stream read, calling seen with the
// version of every event the server sent, system events included. It
// returns how many events the server sent and how many it yielded, and stop
// when the caller stopped iterating.
func (s *Store) yieldPage(rs *esdb.ReadStream, yield func(es.Event, error) bool, seen func(version int64)) (n, yielded int, stop bool, err error) {
	for {
		r, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, yielded, false, nil
		}
		if err != nil {
			return n, yielded, false, err
		}
		n++
		rec := r.OriginalEvent()
		seen(versionOf(rec.EventNumber))
		if isSystemEvent(rec.EventType) {
			// A tombstone or a link in the stream.
			continue
		}
		e, err := event(rec)
		if err != nil {
			return n, yielded, false, err
		}
		yielded++
		if !yield(e, nil) {
			return n, yielded, true, nil
		}
	}
}

// ReadAll implements [es.Store.ReadAll]: it reads $all from the server in
// pages, leaving out KurrentDB's system events (types starting with "$").
// The server reads $all in commit order and only committed events, so no
// event can later appear before one it returned.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		op := "read all after " + after.String()
		if err := s.begin(ctx, op); err != nil {
			yield(es.Event{}, err)
			return
		}
		// from is where the next page starts. The server includes an
		// event at from itself, so everything up to last is skipped.
		from, last := after, after
		for {
			want := s.pageSize
			rs, done, err := s.readAll(ctx, esdb.Forwards, allPosition(from), want)
			if err != nil {
				yield(es.Event{}, s.fail(ctx, op, err))
				return
			}
			n, yielded := 0, 0
			for {
				r, err := rs.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					done()
					yield(es.Event{}, s.fail(ctx, op, err))
					return
				}
				n++
				rec := r.OriginalEvent()
				p := position(rec.Position)
				from = p
				if !last.Before(p) || isSystemEvent(rec.EventType) {
					continue
				}
				e, err := event(rec)
				if err != nil {
					done()
					yield(es.Event{}, fmt.Errorf("%s: %w", op, err))
					return
				}
				last = p
				yielded++
				if !yield(e, nil) {
					done()
					return
				}
				if limit > 0 && yielded == limit {
					done()
					return
				}
			}
			done()
			if limit > 0 {
				limit -= yielded
			}
			if n < want {
				return
			}
		}
	}
}

// Head implements [es.Store.Head]: the position of the newest event of $all
// that is not a system event.
func (s *Store) Head(ctx context.Context) (es.Position, error) {
	const op = "read head"
	if err := s.begin(ctx, op); err != nil {
		return es.Position{}, err
	}
	var from esdb.AllPosition = esdb.End{}
	var last *es.Position
	for {
		rs, done, err := s.readAll(ctx, esdb.Backwards, from, s.pageSize)
		if err != nil {
			return es.Position{}, s.fail(ctx, op, err)
		}
		n := 0
		for {
			r, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				done()
				return es.Position{}, s.fail(ctx, op, err)
			}
			n++
			rec := r.OriginalEvent()
			p := position(rec.Position)
			if last != nil && !p.Before(*last) {
				continue
			}
			last = &p
			if !isSystemEvent(rec.EventType) {
				done()
				return p, nil
			}
		}
		done()
		if n < s.pageSize || last == nil {
			return es.Position{}, nil
		}
		from = allPosition(*last)
	}
}

// readAll starts a read of n events of $all. done closes the read.
func (s *Store) readAll(ctx context.Context, dir esdb.Direction, from esdb.AllPosition, n int) (rs *esdb.ReadStream, done func(), err error) {
	finish, err := s.start(ctx, func(ctx context.Context) (err error) {
		rs, err = s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: dir, From: from}, uint64(n))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return rs, func() {
		rs.Close()
		finish()
	}, nil
}
