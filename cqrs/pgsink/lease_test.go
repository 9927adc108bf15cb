package pgsink_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esgen-dev/esgen/cqrs"
	"github.com/esgen-dev/esgen/cqrs/pgsink"
	"github.com/esgen-dev/esgen/es"
)

// concurrencySink fails the test if two Applies of one projection overlap.
type concurrencySink struct {
	*pgsink.Sink
	inFlight, maxInFlight atomic.Int32
}

func (s *concurrencySink) Apply(ctx context.Context, projection string, batch []es.Event, handle func(context.Context, es.Event) error) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond) // widen the window for an overlap
	return s.Sink.Apply(ctx, projection, batch, handle)
}

func TestLease_TwoRunnersNeverRunAtOnceAndTheOtherTakesOver(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	m := newModel(t, e, "leased")
	cs := &concurrencySink{Sink: e.sink}
	newLocker := func() *pgsink.Locker {
		l := e.sink.Locker()
		l.RetryInterval, l.CheckInterval = 20*time.Millisecond, 20*time.Millisecond
		return l
	}
	r1 := runner(t, e, cs, m, cqrs.WithLocker(newLocker()), cqrs.WithBatch(5, time.Millisecond))
	r2 := runner(t, e, cs, m, cqrs.WithLocker(newLocker()), cqrs.WithBatch(5, time.Millisecond))
	ctx1, cancel1 := context.WithCancel(ctx)
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel1()
	defer cancel2()
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { done1 <- r1.Run(ctx1) }()
	go func() { done2 <- r2.Run(ctx2) }()

	head := appendEvents(t, e, 4, 50)
	waitFor(t, "one runner at the head", func() bool {
		return r1.Status().Checkpoint == head || r2.Status().Checkpoint == head
	})
	other, cancelHolder, doneHolder := r2, cancel1, done1
	if r2.Status().State == cqrs.StateRunning {
		other, cancelHolder, doneHolder = r1, cancel2, done2
	}
	if s := other.Status(); s.State != cqrs.StateWaiting || !s.Checkpoint.IsZero() {
		t.Fatalf("the other runner is %+v, want waiting without having applied anything", s)
	}

	// The holder stops: the other takes over within a few retry intervals.
	cancelHolder()
	if err := <-doneHolder; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	head = appendEvents(t, e, 4, 50)
	waitFor(t, "takeover", func() bool { return other.Status().Checkpoint == head })
	t.Logf("takeover and catch-up after the holder stopped: %s", time.Since(start))

	// The new holder's lease connection dies (as when its process is
	// killed): it notices, steps back, and takes the lease again.
	if _, err := e.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name = 'esgen projection lease' AND datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	head = appendEvents(t, e, 4, 50)
	waitFor(t, "re-take after the lease connection died", func() bool { return other.Status().Checkpoint == head })

	if got := cs.maxInFlight.Load(); got != 1 {
		t.Fatalf("%d Applies of one projection ran at once", got)
	}
	rows := m.rows(t, e)
	for i := range 4 {
		if want := fmt.Sprintf("c s-%03d 150 150", i); !contains(fmt.Sprint(rows), want) {
			t.Fatalf("rows %v lack %q", rows, want)
		}
	}
}

func TestLease_PartitionsAreLeasedSeparatelyAndShareTheWork(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	head := appendEvents(t, e, 12, 20)
	m := newModel(t, e, "parts")
	// Two copies of the app, each running a runner per partition.
	var runners []*cqrs.Runner
	done := make(chan error, 8)
	for range 2 {
		for _, p := range cqrs.Partitions(m, 3) {
			l := e.sink.Locker()
			l.RetryInterval, l.CheckInterval = 20*time.Millisecond, 20*time.Millisecond
			r := runner(t, e, e.sink, p, cqrs.WithLocker(l))
			runners = append(runners, r)
			go func() { done <- r.Run(ctx) }()
		}
	}
	waitFor(t, "every partition at the head", func() bool {
		for i := range 3 {
			cp, err := e.sink.Checkpoint(context.Background(), fmt.Sprintf("parts/%d-of-3", i))
			if err != nil || cp != head {
				return false
			}
		}
		return true
	})
	running := 0
	for _, r := range runners {
		if r.Status().State == cqrs.StateRunning {
			running++
		}
	}
	cancel()
	for range runners {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if running != 3 {
		t.Fatalf("%d runners were running, want one per partition", running)
	}
	rows := fmt.Sprint(m.rows(t, e))
	for i := range 12 {
		if want := fmt.Sprintf("c s-%03d 20 20", i); !contains(rows, want) {
			t.Fatalf("rows %v lack %q", rows, want)
		}
	}
}
