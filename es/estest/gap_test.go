package estest

import (
	"context"
	"errors"
	"iter"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
)

// gapStore takes global positions when an append starts and makes its
// events visible when it commits, as Postgres sequences do, so that a later
// position can commit first. Unless naive, global readers see only events
// below the lowest position still uncommitted, as the contract requires. It
// implements just enough of es.Store for the visibility-gap test.
type gapStore struct {
	naive bool

	mu        sync.Mutex
	next      uint64
	committed []es.Event
	pending   map[uint64]bool
	versions  map[string]int64
	hold      map[string]*gate
}

type gate struct{ blocked, release chan struct{} }

func newGapStore(naive bool) *gapStore {
	return &gapStore{naive: naive, pending: map[uint64]bool{}, versions: map[string]int64{}, hold: map[string]*gate{}}
}

func (g *gapStore) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.EventData) (es.AppendResult, error) {
	if err := es.ValidateAppend(stream, expected, events, es.DefaultLimits); err != nil {
		return es.AppendResult{}, err
	}
	g.mu.Lock()
	actual := g.versions[stream]
	if !expected.Matches(actual) {
		g.mu.Unlock()
		return es.AppendResult{}, &es.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
	}
	recs := make([]es.Event, len(events))
	for i, e := range events {
		g.next++
		g.pending[g.next] = true
		recs[i] = es.Event{ID: e.ID, StreamID: stream, Type: e.Type, Data: e.Data, Metadata: e.Metadata,
			Version: actual + int64(i) + 1, Position: es.Position{Commit: g.next, Prepare: g.next}, RecordedAt: time.Now().UTC()}
	}
	g.versions[stream] += int64(len(events))
	gt := g.hold[stream]
	delete(g.hold, stream)
	g.mu.Unlock()
	if gt != nil {
		close(gt.blocked)
		<-gt.release
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range recs {
		delete(g.pending, r.Position.Commit)
		g.committed = append(g.committed, r)
	}
	if len(recs) == 0 {
		return es.AppendResult{Version: actual}, nil
	}
	last := recs[len(recs)-1]
	return es.AppendResult{Version: last.Version, Position: last.Position}, nil
}

// visible returns the events global readers may see, in position order.
func (g *gapStore) visible(after es.Position) []es.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := ^uint64(0)
	if !g.naive {
		for p := range g.pending {
			limit = min(limit, p)
		}
	}
	var out []es.Event
	for _, e := range g.committed {
		if e.Position.Commit < limit && after.Before(e.Position) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b es.Event) int { return a.Position.Compare(b.Position) })
	return out
}

func (g *gapStore) ReadAll(ctx context.Context, after es.Position, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		for i, e := range g.visible(after) {
			if limit > 0 && i == limit || !yield(e, nil) {
				return
			}
		}
	}
}

func (g *gapStore) Subscribe(ctx context.Context, after es.Position, f es.Filter) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		for {
			for _, e := range g.visible(after) {
				after = e.Position
				if f.Match(&e) && !yield(e, nil) {
					return
				}
			}
			select {
			case <-ctx.Done():
				yield(es.Event{}, ctx.Err())
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func (g *gapStore) Head(ctx context.Context) (es.Position, error) {
	vis := g.visible(es.Position{})
	if len(vis) == 0 {
		return es.Position{}, nil
	}
	return vis[len(vis)-1].Position, nil
}

func (g *gapStore) ReadStream(ctx context.Context, stream string, from int64, dir es.Direction, limit int) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) { yield(es.Event{}, errors.ErrUnsupported) }
}

func (g *gapStore) DeleteStream(ctx context.Context, stream string, expected es.ExpectedVersion, opts ...es.DeleteOption) error {
	return errors.ErrUnsupported
}

func (g *gapStore) TruncateBefore(ctx context.Context, stream string, before int64) error {
	return errors.ErrUnsupported
}

func delayGapCommit(t *testing.T, s es.Store, stream string) (waitBlocked, release func()) {
	g := s.(*gapStore)
	gt := &gate{blocked: make(chan struct{}), release: make(chan struct{})}
	g.mu.Lock()
	g.hold[stream] = gt
	g.mu.Unlock()
	return func() {
			t.Helper()
			select {
			case <-gt.blocked:
			case <-time.After(5 * time.Second):
				t.Fatalf("no append to %q blocked within 5s", stream)
			}
		}, func() {
			close(gt.release)
		}
}

func TestVisibilityGap_PassesForAGapSafeStore(t *testing.T) {
	c := &suite{h: Harness{DelayCommit: delayGapCommit}}
	c.testVisibilityGap(t, newGapStore(false))
}

// The naive store shows events as soon as they commit, so the subscriber
// sees B while A, positioned before it, is still uncommitted: the test
// must fail. It runs in a child process, since its failure is the point.
func TestVisibilityGap_FailsForANaiveStore(t *testing.T) {
	if os.Getenv("ESTEST_NAIVE_GAP_STORE") == "1" {
		c := &suite{h: Harness{DelayCommit: delayGapCommit}}
		c.testVisibilityGap(t, newGapStore(true))
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestVisibilityGap_FailsForANaiveStore$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ESTEST_NAIVE_GAP_STORE=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the visibility-gap test passed for a store that shows B before A commits (err %v):\n%s", err, out)
	}
	if want := "has not committed yet"; !strings.Contains(string(out), want) {
		t.Fatalf("the visibility-gap test failed for another reason than the gap (want %q):\n%s", want, out)
	}
}
