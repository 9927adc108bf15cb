package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/esgen-dev/esgen/es"
)

// maxAnyRetries bounds how often an append expecting es.Any is retried after
// losing a version race to a concurrent writer. Every lost race means another
// writer made progress, so this is reached only under extreme contention.
const maxAnyRetries = 100

// batch is an append's arguments in the column-array form the append
// statement takes.
type batch struct {
	ids       [][16]byte
	types     []string
	data      [][]byte
	metadata  []string // "" for no metadata
	callerIDs bool     // some IDs came from the caller, so a retry is possible
}

func newBatch(events []es.EventData) batch {
	n := len(events)
	b := batch{
		ids:      make([][16]byte, n),
		types:    make([]string, n),
		data:     make([][]byte, n),
		metadata: make([]string, n),
	}
	var buf []byte
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			b.ids[i] = es.NewID()
		} else {
			b.ids[i] = e.ID
			b.callerIDs = true
		}
		b.types[i] = e.Type
		b.data[i] = e.Data
		if !e.Metadata.IsZero() {
			buf = e.Metadata.AppendJSON(buf[:0])
			b.metadata[i] = string(buf)
		}
	}
	return b
}

type appendRow struct {
	visible    int64
	tombstoned bool
	inserted   int64
	version    int64
	tx         uint64
	position   int64
}

// Append implements [es.Store.Append] in one round trip per attempt.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	if err := es.ValidateAppend(stream, expected, events, s.cfg.limits); err != nil {
		return es.AppendResult{}, err
	}
	what := fmt.Sprintf("append to %q", stream)
	if err := ctx.Err(); err != nil {
		return es.AppendResult{}, fmt.Errorf("pgstore: %s: %w", what, err)
	}
	b := newBatch(events)
	for attempt := 0; ; attempt++ {
		row, err := s.appendOnce(ctx, stream, expected, &b)
		if err == nil {
			return s.afterAppend(ctx, stream, expected, &b, row)
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			return es.AppendResult{}, s.mapErr(ctx, what, err)
		}
		switch pgErr.ConstraintName {
		case "events_stream_version_key":
			// A concurrent writer took the version between our read and our
			// insert.
			if expected == es.Any && attempt < maxAnyRetries {
				if err := sleepJitter(ctx, attempt); err != nil {
					return es.AppendResult{}, fmt.Errorf("pgstore: %s: %w", what, err)
				}
				continue
			}
			if res, done, err := s.resent(ctx, stream, &b); done || err != nil {
				return res, err
			}
			state, err := s.streamState(ctx, stream)
			if err != nil {
				return es.AppendResult{}, s.mapErr(ctx, what, err)
			}
			return es.AppendResult{}, &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: state.visible}
		case "events_id_key":
			res, done, err := s.resent(ctx, stream, &b)
			if done || err != nil {
				return res, err
			}
			// The conflicting row is gone again (truncated); try once more.
			if attempt < maxAnyRetries {
				continue
			}
		}
		return es.AppendResult{}, s.mapErr(ctx, what, err)
	}
}

func (s *Store) appendOnce(ctx context.Context, stream string, expected es.ExpectedVersion, b *batch) (appendRow, error) {
	var r appendRow
	err := s.pool.QueryRow(ctx, s.sql.append, stream, int64(expected), b.ids, b.types, b.data, b.metadata).
		Scan(&r.visible, &r.tombstoned, &r.inserted, &r.version, &r.tx, &r.position)
	return r, err
}

// streamState reads the stream's visible version (0 when it has no events
// or reads as deleted) and whether it is tombstoned, with the append
// statement and an empty batch, so that the rules live in one statement.
func (s *Store) streamState(ctx context.Context, stream string) (appendRow, error) {
	return s.appendOnce(ctx, stream, es.Any, &batch{})
}

// afterAppend interprets a completed append statement.
func (s *Store) afterAppend(ctx context.Context, stream string, expected es.ExpectedVersion, b *batch, r appendRow) (es.AppendResult, error) {
	n := int64(len(b.ids))
	if n > 0 && r.inserted == n {
		s.appended()
		return es.AppendResult{Version: r.version, Position: es.Position{Commit: r.tx, Prepare: uint64(r.position)}}, nil
	}
	// Nothing was inserted: either the batch was empty or the expectation
	// failed. A failed expectation may be a retry of an append that
	// succeeded, which must succeed again.
	if n > 0 {
		if res, done, err := s.resent(ctx, stream, b); done || err != nil {
			return res, err
		}
	}
	if r.tombstoned {
		return es.AppendResult{}, fmt.Errorf("append to %q: %w", stream, es.ErrStreamDeleted)
	}
	if n == 0 && expected.Matches(r.visible) {
		return es.AppendResult{Version: r.visible}, nil
	}
	return es.AppendResult{}, &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: r.visible}
}

// resent reports whether b is a re-send of an append that is already
// stored. done is true when the append is settled: either as a success
// (the original result) or with ErrDuplicateEventID.
func (s *Store) resent(ctx context.Context, stream string, b *batch) (res es.AppendResult, done bool, err error) {
	if !b.callerIDs {
		return es.AppendResult{}, false, nil
	}
	rows, err := s.pool.Query(ctx, s.sql.idLookup, b.ids)
	if err != nil {
		return es.AppendResult{}, true, s.mapErr(ctx, fmt.Sprintf("append to %q: look up event IDs", stream), err)
	}
	type stored struct {
		stream, typ string
		version     int64
		data        []byte
		tx          uint64
		position    int64
	}
	found := make(map[[16]byte]stored, len(b.ids))
	for rows.Next() {
		var id [16]byte
		var st stored
		if err := rows.Scan(&id, &st.stream, &st.version, &st.typ, &st.data, &st.tx, &st.position); err != nil {
			rows.Close()
			return es.AppendResult{}, true, s.mapErr(ctx, fmt.Sprintf("append to %q: look up event IDs", stream), err)
		}
		found[id] = st
	}
	if err := rows.Err(); err != nil {
		return es.AppendResult{}, true, s.mapErr(ctx, fmt.Sprintf("append to %q: look up event IDs", stream), err)
	}
	if len(found) == 0 {
		return es.AppendResult{}, false, nil
	}
	var first, last stored
	for i, id := range b.ids {
		st, ok := found[id]
		if !ok {
			return es.AppendResult{}, true, fmt.Errorf("append to %q: events of this batch are already stored, but event %d (ID %s) is not: %w",
				stream, i, es.ID(id), es.ErrDuplicateEventID)
		}
		if i == 0 {
			first = st
		}
		if st.stream != stream || st.typ != b.types[i] || !bytes.Equal(st.data, b.data[i]) || st.version != first.version+int64(i) {
			return es.AppendResult{}, true, fmt.Errorf("append to %q: event %d (ID %s) is already stored as %s version %d of stream %q with other content: %w",
				stream, i, es.ID(id), st.typ, st.version, st.stream, es.ErrDuplicateEventID)
		}
		last = st
	}
	return es.AppendResult{Version: last.version, Position: es.Position{Commit: last.tx, Prepare: uint64(last.position)}}, true, nil
}

// appended wakes local subscribers and, when enabled, asks the notifier to
// tell other processes.
func (s *Store) appended() {
	s.wake.signal()
	if s.notifier != nil {
		s.notifier.poke()
	}
}

func sleepJitter(ctx context.Context, attempt int) error {
	max := time.Duration(min(attempt+1, 10)) * time.Millisecond
	t := time.NewTimer(rand.N(max) + 50*time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
