package estest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/es"
)

func (c *suite) testSubscribe(t *testing.T) {
	c.run(t, "Catch_up_then_live_under_concurrent_writes", c.testSubscribeHandOver)
	c.run(t, "After_a_middle_position", c.testSubscribeFromMiddle)
	c.run(t, "Filter_by_stream_prefix", func(t *testing.T, s es.Store) {
		c.testSubscribeFilter(t, s, es.Filter{StreamPrefixes: []string{"order-", "cart-"}})
	})
	c.run(t, "Filter_by_event_type", func(t *testing.T, s es.Store) {
		c.testSubscribeFilter(t, s, es.Filter{EventTypes: []string{"Placed", "Paid"}})
	})
	c.run(t, "Filter_by_stream_prefix_and_event_type", func(t *testing.T, s es.Store) {
		c.testSubscribeFilter(t, s, es.Filter{StreamPrefixes: []string{"order-"}, EventTypes: []string{"Paid"}})
	})
	c.run(t, "Cancel_while_live_yields_context_error", c.testSubscribeCancelLive)
	c.run(t, "Cancelled_context_yields_context_error", c.testSubscribeCancelled)
	// Not parallel: it counts goroutines.
	t.Run("Stop_early_leaves_no_goroutine", func(t *testing.T) { c.testSubscribeBreak(t, &tracked{Store: c.store(t)}) })
	c.run(t, "No_visibility_gap", c.testVisibilityGap)
}

// sub runs a subscription in a goroutine and hands its events over a channel,
// for tests that must wait for events with a timeout. Cancel ctx to stop it;
// stop waits for it to end.
type sub struct {
	events chan es.Event
	done   chan struct{}
	err    error // the error that ended the subscription, once done is closed
}

func subscribe(t *testing.T, s es.Store, after es.Position, f es.Filter) *sub {
	ctx, cancel := context.WithCancel(testContext(t))
	r := &sub{events: make(chan es.Event), done: make(chan struct{})}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("subscription did not end within 10s of cancelling its context")
		}
	})
	go func() {
		defer close(r.done)
		for e, err := range s.Subscribe(ctx, after, f) {
			if err != nil {
				r.err = err
				return
			}
			select {
			case r.events <- e:
			case <-ctx.Done():
				r.err = ctx.Err()
				return
			}
		}
		r.err = errors.New("Subscribe ended without an error")
	}()
	return r
}

// next returns the next event, failing t after d.
func (r *sub) next(t *testing.T, d time.Duration, what string) es.Event {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-r.done:
		t.Fatalf("waiting for %s: subscription ended: %v", what, r.err)
	case <-time.After(d):
		t.Fatalf("subscription did not yield %s within %s", what, d)
	}
	panic("unreachable")
}

// none checks that nothing arrives for d.
func (r *sub) none(t *testing.T, d time.Duration, why string) {
	t.Helper()
	select {
	case e := <-r.events:
		t.Fatalf("subscription yielded version %d of %q at %s (%s)", e.Version, e.StreamID, e.Position, why)
	case <-r.done:
		t.Fatalf("subscription ended: %v", r.err)
	case <-time.After(d):
	}
}

func (c *suite) testSubscribeHandOver(t *testing.T, s es.Store) {
	ctx := testContext(t)
	pre := c.scale(2000, 400)
	const liveWriters = 4
	perWriter := c.scale(500, 100)
	total := pre + liveWriters*perWriter
	batch := min(100, c.h.Limits.MaxEvents)
	for i := 0; i < pre; i += batch {
		mustAppend(t, s, fmt.Sprintf("pre-%d", i/batch%7), es.Any, Events("Preloaded", min(batch, pre-i))...)
	}

	var wg sync.WaitGroup
	for w := range liveWriters {
		wg.Go(func() {
			stream := fmt.Sprintf("live-%d", w)
			for i := 0; i < perWriter; {
				// Mostly single events, some small batches.
				n := min(1+i%3, perWriter-i)
				if _, err := s.Append(ctx, stream, es.Any, Events("Live", n)...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				i += n
			}
		})
	}
	seen := make(map[es.ID]bool, total)
	var got []es.Event
	var last es.Position
	for e, err := range s.Subscribe(ctx, es.Position{}, es.Filter{}) {
		if err != nil {
			t.Errorf("subscription ended after %d of %d events: %v", len(got), total, err)
			break
		}
		if !last.Before(e.Position) {
			t.Errorf("event %d at %s is not after the previous at %s", len(got), e.Position, last)
			break
		}
		if seen[e.ID] {
			t.Errorf("event %s yielded twice", e.ID)
			break
		}
		last = e.Position
		seen[e.ID] = true
		got = append(got, e)
		if len(got) == total {
			break
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	wantSame(t, "subscription compared with ReadAll", got, readAll(t, s))
}

func (c *suite) testSubscribeFromMiddle(t *testing.T, s es.Store) {
	mustAppend(t, s, "mid-1", es.NoStream, Events("Early", 5)...)
	mustAppend(t, s, "mid-2", es.NoStream, Events("Early", 5)...)
	all := readAll(t, s)
	r := subscribe(t, s, all[4].Position, es.Filter{})
	for i, want := range all[5:] {
		if e := r.next(t, 5*time.Second, fmt.Sprintf("stored event %d", 5+i)); e.ID != want.ID {
			t.Fatalf("subscription after the 5th position yielded %s (version %d of %q); want %s", e.ID, e.Version, e.StreamID, want.ID)
		}
	}
	live := Events("Late", 1)
	mustAppend(t, s, "mid-1", es.Exact(5), live...)
	if e := r.next(t, 5*time.Second, "the live event"); e.ID != live[0].ID {
		t.Fatalf("subscription yielded %s; want the live event %s", e.ID, live[0].ID)
	}
}

func (c *suite) testSubscribeFilter(t *testing.T, s es.Store, f es.Filter) {
	streams := []string{"order-1", "cart-1", "user-1", "orders", "order-2", "xorder-1"}
	types := []string{"Placed", "Paid", "Shipped"}
	var want []es.ID
	write := func(round int) {
		for i, stream := range streams {
			evs := Events(types[(i+round)%len(types)], 1)
			evs = append(evs, Events(types[(i+round+1)%len(types)], 1)...)
			mustAppend(t, s, stream, es.Any, evs...)
			for _, e := range evs {
				if f.Match(&es.Event{StreamID: stream, Type: e.Type}) {
					want = append(want, e.ID)
				}
			}
		}
	}
	write(0)
	write(1)
	r := subscribe(t, s, es.Position{}, f)
	for round := 2; round < 4; round++ {
		write(round)
	}
	// A matching event last, so that every event before it has been
	// filtered once it arrives.
	sentinel := Events(types[1], 1)
	mustAppend(t, s, "order-9", es.Any, sentinel...)
	want = append(want, sentinel[0].ID)
	for i, id := range want {
		e := r.next(t, 5*time.Second, fmt.Sprintf("matching event %d of %d", i+1, len(want)))
		if !f.Match(&e) {
			t.Fatalf("filter %+v let through version %d of %q, type %q", f, e.Version, e.StreamID, e.Type)
		}
		if e.ID != id {
			t.Fatalf("matching event %d is %s (%q, %q); want %s", i, e.ID, e.StreamID, e.Type, id)
		}
	}
}

func (c *suite) testSubscribeCancelLive(t *testing.T, s es.Store) {
	mustAppend(t, s, "cancel-1", es.NoStream, Events("Stored", 3)...)
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var (
		n    int
		last error
		more bool
	)
	within(t, 10*time.Second, "a subscription after its context was cancelled", func() error {
		for _, err := range s.Subscribe(ctx, es.Position{}, es.Filter{}) {
			if last != nil {
				more = true
				break
			}
			if err != nil {
				last = err
				continue
			}
			if n++; n == 3 {
				// Caught up: the subscription now waits for new events.
				time.AfterFunc(50*time.Millisecond, cancel)
			}
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("subscription yielded %d events; want the 3 stored", n)
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("subscription ended with %v; want an error matching context.Canceled", last)
	}
	if more {
		t.Fatal("subscription went on yielding after its context error")
	}
}

func (c *suite) testSubscribeCancelled(t *testing.T, s es.Store) {
	mustAppend(t, s, "cancel-1", es.NoStream, Events("Stored", 3)...)
	var last error
	within(t, 10*time.Second, "a subscription with a cancelled context", func() error {
		for _, err := range s.Subscribe(cancelled(), es.Position{}, es.Filter{}) {
			if err != nil {
				last = err
			}
		}
		return nil
	})
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("subscription with a cancelled context ended with %v; want an error matching context.Canceled", last)
	}
}

func (c *suite) testSubscribeBreak(t *testing.T, s es.Store) {
	ctx := testContext(t)
	mustAppend(t, s, "break-1", es.NoStream, Events("Stored", 3)...)
	// cycle subscribes and breaks out of the loop at the first event: a
	// stored one, or with live set, one appended while the subscription
	// waits for new events.
	cycle := func(live bool) {
		t.Helper()
		var after es.Position
		var wg sync.WaitGroup
		defer wg.Wait()
		if live {
			head, err := s.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			after = head
			wg.Go(func() {
				time.Sleep(10 * time.Millisecond)
				if _, err := s.Append(ctx, "break-2", es.Any, Events("Live", 1)...); err != nil {
					t.Errorf("append: %v", err)
				}
			})
		}
		within(t, 10*time.Second, "a subscription loop ended by break", func() error {
			for _, err := range s.Subscribe(ctx, after, es.Filter{}) {
				return err
			}
			return errors.New("the subscription ended without yielding")
		})
	}
	// Warm up, so that anything the store starts once per store (a
	// listener, a pool) is in the baseline.
	cycle(false)
	cycle(true)
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	const cycles = 20
	for i := range cycles {
		cycle(i%2 == 1)
	}
	// Goroutines may take a moment to exit; a leak of one per subscription
	// would leave about cycles behind.
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n < base+cycles/4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after %d subscriptions ended by break, %d before: the subscription leaks goroutines", n, cycles, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *suite) testVisibilityGap(t *testing.T, s es.Store) {
	if c.h.DelayCommit == nil {
		t.Skip("Harness.DelayCommit is nil: the store assigns positions at commit, so a later position cannot commit first")
	}
	ctx := testContext(t)
	// A marker event lets the test know that the subscriber has caught up
	// and is tailing the log.
	marker := Events("Marker", 1)
	markRes := mustAppend(t, s, "gap-marker", es.NoStream, marker...)
	r := subscribe(t, s, es.Position{}, es.Filter{})
	if e := r.next(t, 10*time.Second, "the marker event"); e.ID != marker[0].ID {
		t.Fatalf("subscription yielded %s; want the marker %s", e.ID, marker[0].ID)
	}

	waitBlocked, release := c.h.DelayCommit(t, unwrap(s), "gap-a")
	var once sync.Once
	releaseOnce := func() { once.Do(release) }
	t.Cleanup(releaseOnce)
	evA, evB := Events("A", 1), Events("B", 1)
	type result struct {
		res es.AppendResult
		err error
	}
	aDone := make(chan result, 1)
	go func() {
		res, err := s.Append(ctx, "gap-a", es.NoStream, evA...)
		aDone <- result{res, err}
	}()
	waitBlocked()
	resB := mustAppend(t, s, "gap-b", es.NoStream, evB...)

	// B has committed, but A holds a lower position and may still commit:
	// no global reader may see B yet.
	r.none(t, 300*time.Millisecond, "an append with a lower position has not committed yet")
	during, err := Collect(s.ReadAll(ctx, es.Position{}, 0))
	if err != nil {
		t.Fatalf("ReadAll while A is uncommitted: %v", err)
	}
	for _, e := range during {
		if e.ID == evB[0].ID {
			t.Fatalf("ReadAll returned B at %s while A, positioned before it, is uncommitted", e.Position)
		}
	}
	if head, err := s.Head(ctx); err != nil || !head.Before(resB.Position) {
		t.Fatalf("Head = %s, %v while A is uncommitted; want a position before B's %s", head, err, resB.Position)
	}

	releaseOnce()
	var resA result
	select {
	case resA = <-aDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed append did not return within 10s of release")
	}
	if resA.err != nil {
		t.Fatalf("delayed Append to gap-a: %v", resA.err)
	}
	if !resA.res.Position.Before(resB.Position) {
		t.Fatalf("A is at %s, not before B at %s: DelayCommit did not hold A after it took its position", resA.res.Position, resB.Position)
	}
	a := r.next(t, 10*time.Second, "A after its commit")
	b := r.next(t, 10*time.Second, "B after A")
	if a.ID != evA[0].ID || b.ID != evB[0].ID {
		t.Fatalf("after release the subscription yielded %q then %q; want gap-a then gap-b", a.StreamID, b.StreamID)
	}
	if !markRes.Position.Before(a.Position) || !a.Position.Before(b.Position) {
		t.Fatalf("positions marker %s, A %s, B %s are not increasing", markRes.Position, a.Position, b.Position)
	}
	r.none(t, 200*time.Millisecond, "every event was already yielded once")
	all := readAll(t, s)
	if len(all) != 3 || all[1].ID != evA[0].ID || all[2].ID != evB[0].ID {
		t.Fatalf("ReadAll after release = %d events; want marker, A, B", len(all))
	}
}
