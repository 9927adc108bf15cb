package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
	"github.com/esgen-dev/esgen/es/estest"
)

// deviations are the conformance cases whose outcome KurrentDB itself
// decides differently from the es contract, by subtest name under
// TestConformance, with the reason. The package documentation and
// docs/stores.md describe them for users.
var deviations = map[string]string{
	"Append/ExpectedVersion/Exact_current_version_on_stream_deleted_with_reuse": "KurrentDB accepts the last version of a stream deleted with reuse as its expected version and undeletes it; es calls that a conflict with version 0",
	"Append/Idempotent/Same_ID_different_data":                                  "KurrentDB recognises a retry by event ID alone and never compares data: the append succeeds as a retry instead of failing with ErrDuplicateEventID",
	"Append/Idempotent/Same_ID_different_type":                                  "KurrentDB recognises a retry by event ID alone and never compares types: the append succeeds as a retry instead of failing with ErrDuplicateEventID",
	"Append/Idempotent/Same_ID_other_stream":                                    "KurrentDB event IDs are unique within a stream only: another stream stores the event again",
	"Append/Idempotent/Batch_partly_stored":                                     "KurrentDB writes a batch whose first event ID is new in full, even when later IDs are stored (a batch whose first ID is stored and later ones are not does fail with ErrDuplicateEventID)",
	"TruncateBefore/Removes_older_events":                                       "KurrentDB hides truncated events from stream reads at once but keeps them in $all until the next scavenge",
	"TruncateBefore/Twice":                                                      "KurrentDB hides truncated events from stream reads at once but keeps them in $all until the next scavenge",
}

const howToRun = `KURRENTDB_URL not set: the conformance suite needs a KurrentDB or EventStoreDB (>= 22.6) server, for example
	docker run --rm -p 2113:2113 docker.kurrent.io/kurrent-latest/kurrentdb:latest --insecure --run-projections=None
	KURRENTDB_URL='kurrentdb://localhost:2113?tls=false' go test ./es/esdbstore/`

func TestConformance(t *testing.T) {
	url := os.Getenv("KURRENTDB_URL")
	if url == "" {
		t.Skip(howToRun)
	}
	store, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := store.Head(ctx); err != nil {
		t.Fatalf("KURRENTDB_URL=%s: %v", url, err)
	}
	run := fmt.Sprintf("es%d", time.Now().UnixNano())
	var n atomic.Int64
	estest.Run(t, estest.Harness{
		New: func(t *testing.T) es.Store {
			name := strings.TrimPrefix(t.Name(), "TestConformance/")
			if why, ok := deviations[name]; ok {
				t.Skip("KurrentDB semantics: " + why)
			}
			return newScoped(t, store, fmt.Sprintf("%s-%d-", run, n.Add(1)))
		},
		Limits: store.Limits(),
	})
}

// scoped gives each conformance test what looks like an empty store on a
// shared server: it prefixes the stream names it is given, shows global
// readers only the events of its prefix written after it was created, and
// takes the prefix out of what it returns, errors included.
type scoped struct {
	s      *Store
	prefix string
	start  es.Position
}

func newScoped(t *testing.T, s *Store, prefix string) *scoped {
	head, err := s.Head(t.Context())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return &scoped{s: s, prefix: prefix, start: head}
}

var _ es.Store = (*scoped)(nil)

func (c *scoped) in(stream string) string { return c.prefix + stream }

func (c *scoped) out(e es.Event) es.Event {
	e.StreamID = strings.TrimPrefix(e.StreamID, c.prefix)
	return e
}

// unscopedError shows err without the prefix, keeping what it matches.
type unscopedError struct {
	msg string
	err error
}

func (e *unscopedError) Error() string { return e.msg }
func (e *unscopedError) Unwrap() error { return e.err }

func (c *scoped) err(err error) error {
	if err == nil {
		return nil
	}
	var ce *es.ConcurrencyError
	if errors.As(err, &ce) {
		out := *ce
		out.Stream = strings.TrimPrefix(ce.Stream, c.prefix)
		return &out
	}
	return &unscopedError{msg: strings.ReplaceAll(err.Error(), c.prefix, ""), err: err}
}

func (c *scoped) after(p es.Position) es.Position {
	if p.Before(c.start) {
		return c.start
	}
	return p
}

func (c *scoped) mine(e *es.Event) bool { return strings.HasPrefix(e.StreamID, c.prefix) }

func (c *scoped) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	if stream == "" {
		// Keep the empty stream ID empty, for the validation tests.
		res, err := c.s.Append(ctx, stream, expected, events...)
		return res, c.err(err)
	}
	res, err := c.s.Append(ctx, c.in(stream), expected, events...)
	return res, c.err(err)
}

func (c *scoped) ReadStream(ctx context.Context, stream string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		for e, err := range c.s.ReadStream(ctx, c.in(stream), from, dir, limit) {
			if !yield(c.out(e), c.err(err)) {
				return
			}
		}
	}
}

func (c *scoped) ReadAll(ctx context.Context, after es.Position, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		n := 0
		for e, err := range c.s.ReadAll(ctx, c.after(after), 0) {
			if err != nil {
				yield(es.Event{}, c.err(err))
				return
			}
			if !c.mine(&e) {
				continue
			}
			if !yield(c.out(e), nil) {
				return
			}
			if n++; limit > 0 && n == limit {
				return
			}
		}
	}
}

func (c *scoped) Subscribe(ctx context.Context, after es.Position, f es.Filter) iter.Seq2[es.Event, error] {
	prefixes := []string{c.prefix}
	if len(f.StreamPrefixes) > 0 {
		prefixes = prefixes[:0]
		for _, p := range f.StreamPrefixes {
			prefixes = append(prefixes, c.in(p))
		}
	}
	inner := es.Filter{StreamPrefixes: prefixes, EventTypes: f.EventTypes}
	return func(yield func(es.Event, error) bool) {
		for e, err := range c.s.Subscribe(ctx, c.after(after), inner) {
			if !yield(c.out(e), c.err(err)) {
				return
			}
		}
	}
}

func (c *scoped) Head(ctx context.Context) (es.Position, error) {
	var head es.Position
	for e, err := range c.ReadAll(ctx, es.Position{}, 0) {
		if err != nil {
			return es.Position{}, err
		}
		head = e.Position
	}
	return head, nil
}

func (c *scoped) DeleteStream(ctx context.Context, stream string, expected es.ExpectedVersion, opts ...es.DeleteOption) error {
	return c.err(c.s.DeleteStream(ctx, c.in(stream), expected, opts...))
}

func (c *scoped) TruncateBefore(ctx context.Context, stream string, before int64) error {
	return c.err(c.s.TruncateBefore(ctx, c.in(stream), before))
}
