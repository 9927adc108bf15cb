// Package memstore is an [es.Store] that keeps the event log in memory.
//
// It is meant for tests and quick starts: it implements the whole contract of
// [es.Store] (expected versions, idempotent appends, deletes, truncation,
// catch-up and live subscriptions) and passes the conformance suite in
// es/estest, but it holds nothing across restarts and its memory grows with
// the log.
//
// Positions are assigned at commit time from one sequence, so an event is
// visible to every reader as soon as its append returns and the global log
// has no visibility gaps: Position{Commit: n, Prepare: n} for the n-th event.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"maps"
	"sync"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// Store is an in-memory event log. It is safe for concurrent use. The zero
// Store is not usable; create one with [New].
type Store struct {
	limits es.Limits

	mu sync.RWMutex
	// log is the global log: log[i] is the event at position i+1, or nil
	// once it has been truncated.
	log     []*es.Event
	streams map[string]*stream
	ids     map[es.ID]*es.Event
	snaps   map[string]es.Snapshot // latest snapshot per stream
	// changed is closed, and replaced, by every append that writes events,
	// waking the subscribers that are waiting for new events.
	changed chan struct{}
}

// stream indexes one stream's events by version.
type stream struct {
	// events[v-1] is the event with version v, or nil once truncated.
	events []*es.Event
	// first is the lowest version reads may return: versions below it were
	// truncated, or belong to the stream's life before a delete with reuse.
	first int64
	// deleted is set by a delete with reuse until the next append.
	deleted bool
	// retired is set by a delete without reuse, for good.
	retired bool
}

// version returns the number of the stream's last event, deleted or not.
func (st *stream) version() int64 { return int64(len(st.events)) }

// current returns the version that expected versions are checked against:
// 0 when the stream has no events or was deleted.
func (st *stream) current() int64 {
	if st == nil || st.deleted || st.retired {
		return 0
	}
	return st.version()
}

var _ es.Store = (*Store)(nil)

// Option configures a [Store].
type Option func(*Store)

// WithLimits sets the limits on one append. Zero fields mean the field of
// [es.DefaultLimits].
func WithLimits(l es.Limits) Option {
	return func(s *Store) {
		if l.MaxEvents > 0 {
			s.limits.MaxEvents = l.MaxEvents
		}
		if l.MaxBytes > 0 {
			s.limits.MaxBytes = l.MaxBytes
		}
	}
}

// New returns an empty store. Options are applied in order.
func New(opts ...Option) *Store {
	s := &Store{
		limits:  es.DefaultLimits,
		streams: make(map[string]*stream),
		ids:     make(map[es.ID]*es.Event),
		changed: make(chan struct{}),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Limits returns the limits the store applies to one append.
func (s *Store) Limits() es.Limits { return s.limits }

// Append implements [es.Store.Append]. Data and metadata are copied, so the
// caller may reuse events once Append returns.
func (s *Store) Append(ctx context.Context, streamID string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	if err := es.ValidateAppend(streamID, expected, events, s.limits); err != nil {
		return es.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return es.AppendResult{}, fmt.Errorf("append to %q: %w", streamID, err)
	}
	// Copy the input before taking the lock, so the lock is held only for
	// the checks and the bookkeeping.
	recs := make([]es.Event, len(events))
	for i := range events {
		e := &events[i]
		recs[i] = es.Event{
			ID:       e.ID,
			StreamID: streamID,
			Type:     e.Type,
			Data:     bytes.Clone(e.Data),
			Metadata: cloneMetadata(e.Metadata),
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if res, done, err := s.replayed(streamID, events); done {
		return res, err
	}
	st := s.streams[streamID]
	if st != nil && st.retired {
		return es.AppendResult{}, fmt.Errorf("append to %q: %w", streamID, es.ErrStreamDeleted)
	}
	actual := st.current()
	if !expected.Matches(actual) {
		return es.AppendResult{}, &es.ConcurrencyError{Stream: streamID, Expected: expected, Actual: actual}
	}
	if len(recs) == 0 {
		return es.AppendResult{Version: actual}, nil
	}
	if st == nil {
		st = &stream{first: es.StreamStart}
		s.streams[streamID] = st
	}
	st.deleted = false
	now := time.Now().UTC()
	for i := range recs {
		r := &recs[i]
		if r.ID.IsZero() {
			r.ID = s.freshID()
		}
		r.Version = st.version() + 1
		n := uint64(len(s.log)) + 1
		r.Position = es.Position{Commit: n, Prepare: n}
		r.RecordedAt = now
		s.log = append(s.log, r)
		st.events = append(st.events, r)
		s.ids[r.ID] = r
	}
	close(s.changed)
	s.changed = make(chan struct{})
	last := &recs[len(recs)-1]
	return es.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// replayed reports whether events were appended before (done is true), and
// then the original result, or ErrDuplicateEventID when their IDs are stored
// for other content or only some of them are stored. s.mu must be held.
func (s *Store) replayed(streamID string, events []es.EventData) (res es.AppendResult, done bool, err error) {
	stored := 0
	var last *es.Event
	for i := range events {
		e := &events[i]
		if e.ID.IsZero() {
			continue
		}
		r, ok := s.ids[e.ID]
		if !ok {
			continue
		}
		if r.StreamID != streamID || r.Type != e.Type || !bytes.Equal(r.Data, e.Data) {
			return res, true, fmt.Errorf("append to %q: event %d (%s) has ID %s, stored as version %d of stream %q with type %s and other data: %w",
				streamID, i, e.Type, e.ID, r.Version, r.StreamID, r.Type, es.ErrDuplicateEventID)
		}
		stored++
		last = r
	}
	switch {
	case stored == 0:
		return res, false, nil
	case stored < len(events):
		return res, true, fmt.Errorf("append to %q: %d of the %d events are already stored: %w",
			streamID, stored, len(events), es.ErrDuplicateEventID)
	}
	// The whole batch is stored: report the original append's result,
	// which is its last event's.
	return es.AppendResult{Version: last.Version, Position: last.Position}, true, nil
}

// freshID returns a new ID that no stored event has. s.mu must be held.
func (s *Store) freshID() es.ID {
	for {
		id := es.NewID()
		if _, taken := s.ids[id]; !taken {
			return id
		}
	}
}

// pageSize is how many events a read copies per hold of the lock: large
// enough to amortise the locking, small enough not to stall writers.
const pageSize = 512

// ReadStream implements [es.Store.ReadStream]. Each event yielded is a copy
// the caller may keep and modify.
func (s *Store) ReadStream(ctx context.Context, streamID string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		fail := func(err error) { yield(es.Event{}, fmt.Errorf("read stream %q: %w", streamID, err)) }
		if err := es.ValidateStreamID(streamID); err != nil {
			fail(err)
			return
		}
		next := from
		page := make([]es.Event, 0, min(pageSize, max(limit, 16)))
		for first := true; ; first = false {
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			page = page[:0]
			want := pageSize
			if limit > 0 {
				want = min(want, limit)
			}
			s.mu.RLock()
			st := s.streams[streamID]
			if st == nil || st.deleted || st.retired {
				// A delete between two pages ends the read.
				s.mu.RUnlock()
				if first {
					fail(es.ErrStreamNotFound)
				}
				return
			}
			// A truncation between two pages clamps next, so the read never
			// returns removed events.
			if dir == es.Backward {
				next = min(next, st.version())
				for ; next >= st.first && len(page) < want; next-- {
					page = append(page, copyEvent(st.events[next-1]))
				}
			} else {
				next = max(next, st.first)
				for ; next <= st.version() && len(page) < want; next++ {
					page = append(page, copyEvent(st.events[next-1]))
				}
			}
			s.mu.RUnlock()
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

// startIndex returns the index in s.log of the first event after position
// after. Event i has position (i+1, i+1).
func startIndex(after es.Position) int {
	i := after.Commit
	if after.Prepare < after.Commit {
		// (c, c) is after (c, p) when p < c.
		i--
	}
	return int(min(i, uint64(^uint(0)>>1)))
}

// scan copies into page the events of s.log from index next on that match
// filter, stopping when page holds want events or after scanning a bounded
// number of entries. It returns the index to continue from. s.mu must be held.
func (s *Store) scan(page []es.Event, next, want int, filter es.Filter) ([]es.Event, int) {
	for scanned := 0; next < len(s.log) && len(page) < want && scanned < 8*pageSize; next, scanned = next+1, scanned+1 {
		e := s.log[next]
		if e == nil || !filter.Match(e) {
			continue
		}
		page = append(page, copyEvent(e))
	}
	return page, next
}

// ReadAll implements [es.Store.ReadAll]. Each event yielded is a copy the
// caller may keep and modify.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		next := startIndex(after)
		page := make([]es.Event, 0, min(pageSize, max(limit, 16)))
		for {
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, fmt.Errorf("read all after %s: %w", after, err))
				return
			}
			want := pageSize
			if limit > 0 {
				want = min(want, limit)
			}
			s.mu.RLock()
			page, next = s.scan(page[:0], next, want, es.Filter{})
			end := next >= len(s.log)
			s.mu.RUnlock()
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
// once it has caught up, waits for the next append without polling. It starts
// no goroutine: all the work happens in the caller's loop.
func (s *Store) Subscribe(ctx context.Context, after es.Position, filter es.Filter) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		next := startIndex(after)
		var page []es.Event
		for {
			if err := ctx.Err(); err != nil {
				yield(es.Event{}, fmt.Errorf("subscribe after %s: %w", after, err))
				return
			}
			s.mu.RLock()
			page, next = s.scan(page[:0], next, pageSize, filter)
			// Taken under the same lock as the scan: an append after the
			// scan closes this very channel, so no wake-up is lost.
			changed := s.changed
			caughtUp := next >= len(s.log)
			s.mu.RUnlock()
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
				after = e.Position
			}
			if !caughtUp {
				continue
			}
			select {
			case <-ctx.Done():
			case <-changed:
			}
		}
	}
}

// Head implements [es.Store.Head].
func (s *Store) Head(ctx context.Context) (es.Position, error) {
	if err := ctx.Err(); err != nil {
		return es.Position{}, fmt.Errorf("read head: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i := len(s.log) - 1; i >= 0; i-- {
		if e := s.log[i]; e != nil {
			return e.Position, nil
		}
	}
	return es.Position{}, nil
}

// DeleteStream implements [es.Store.DeleteStream]. Deleting a stream that
// never had events returns [es.ErrStreamNotFound]; deleting a retired stream
// returns [es.ErrStreamDeleted]. A stream deleted with reuse may be deleted
// again without reuse, which retires it.
func (s *Store) DeleteStream(ctx context.Context, streamID string, expected es.ExpectedVersion, opts ...es.DeleteOption) error {
	o := es.ApplyDeleteOptions(opts)
	if err := es.ValidateStreamID(streamID); err != nil {
		return err
	}
	if !expected.Valid() {
		return fmt.Errorf("delete stream %q: %s: %w", streamID, expected, es.ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete stream %q: %w", streamID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[streamID]
	switch {
	case st == nil:
		return fmt.Errorf("delete stream %q: %w", streamID, es.ErrStreamNotFound)
	case st.retired:
		return fmt.Errorf("delete stream %q: %w", streamID, es.ErrStreamDeleted)
	}
	if actual := st.current(); !expected.Matches(actual) {
		return &es.ConcurrencyError{Stream: streamID, Expected: expected, Actual: actual}
	}
	if o.AllowReuse {
		st.deleted = true
		st.first = st.version() + 1
	} else {
		st.retired = true
	}
	delete(s.snaps, streamID) // a snapshot of the old life must not seed a new one
	return nil
}

// TruncateBefore implements [es.Store.TruncateBefore]. The removed events
// are dropped from memory, and their IDs forgotten. Truncating a stream that
// has no events, or was deleted, returns [es.ErrStreamNotFound].
func (s *Store) TruncateBefore(ctx context.Context, streamID string, before int64) error {
	if err := es.ValidateStreamID(streamID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("truncate stream %q: %w", streamID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[streamID]
	if st == nil || st.deleted || st.retired {
		return fmt.Errorf("truncate stream %q: %w", streamID, es.ErrStreamNotFound)
	}
	before = min(before, st.version()+1)
	for v := st.first; v < before; v++ {
		e := st.events[v-1]
		if e == nil {
			continue
		}
		s.log[e.Position.Commit-1] = nil
		delete(s.ids, e.ID)
		st.events[v-1] = nil
		// Events of one append share an allocation that outlives this one:
		// drop its payload now, as erasure requires.
		e.Data, e.Metadata = nil, es.Metadata{}
	}
	st.first = max(st.first, before)
	return nil
}

func copyEvent(e *es.Event) es.Event {
	c := *e
	c.Data = bytes.Clone(e.Data)
	c.Metadata = cloneMetadata(e.Metadata)
	return c
}

func cloneMetadata(m es.Metadata) es.Metadata {
	if m.Extra != nil {
		m.Extra = maps.Clone(m.Extra)
	}
	return m
}
