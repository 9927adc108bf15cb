package pgstore

import (
	"context"
	"fmt"
	"hash/fnv"
	"iter"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/es"
)

// wakeup is a broadcast: signal wakes everyone who took channel before it.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) channel() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *wakeup) signal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// Subscribe implements [es.Store.Subscribe]. Catch-up and live delivery are
// the same gap-safe query repeated after the last position seen, so there is
// no hand-over to get wrong: when a page comes back short, the subscription
// waits for a local append, a notification from another process, or the
// poll interval, and queries again.
func (s *Store) Subscribe(ctx context.Context, after es.Position, filter es.Filter) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		s.listenOnce.Do(s.startListener)
		d := newDecoder()
		pos := after
		timer := time.NewTimer(s.cfg.pollInterval)
		defer timer.Stop()
		// next is the page being read; wake was taken before its query
		// started, so an append committed after that query's snapshot
		// still ends the wait below.
		var (
			next func() fetched
			wake <-chan struct{}
		)
		start := func(after es.Position) {
			wake = s.wake.channel()
			next = s.readAhead(ctx, d, after, d.pageSize(s.cfg.pageSize))
		}
		defer func() {
			if next != nil {
				next()
			}
		}()
		for {
			if next == nil {
				start(pos)
			}
			f, pageWake := next(), wake
			next = nil
			if f.err != nil {
				yield(es.Event{}, f.err)
				return
			}
			if f.full {
				start(f.events[len(f.events)-1].Position)
			}
			for i := range f.events {
				pos = f.events[i].Position
				if filter.Match(&f.events[i]) && !yield(f.events[i], nil) {
					return
				}
			}
			if f.full {
				continue
			}
			timer.Reset(s.cfg.pollInterval)
			select {
			case <-ctx.Done():
				yield(es.Event{}, fmt.Errorf("pgstore: subscribe after %s: %w", pos, ctx.Err()))
				return
			case <-s.stopCtx.Done():
				yield(es.Event{}, fmt.Errorf("pgstore: subscribe after %s: %w", pos, es.ErrClosed))
				return
			case <-pageWake:
			case <-timer.C:
			}
		}
	}
}

// channelName is the NOTIFY channel of a schema; Postgres identifiers are
// at most 63 bytes.
func channelName(schema string) string {
	name := "esgen_events_" + schema
	if len(name) <= 63 {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("esgen_events_%x", h.Sum64())
}

// startListener runs, until Close, a goroutine that LISTENs on a dedicated
// connection (not one of the pool's) and wakes subscribers on each
// notification. When the connection fails it reconnects after the poll
// interval; subscribers keep polling meanwhile.
func (s *Store) startListener() {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx := s.stopCtx
		for ctx.Err() == nil {
			err := s.listen(ctx)
			if ctx.Err() != nil {
				return
			}
			s.cfg.logger.Warn("pgstore: event notification listener failed; subscribers fall back to polling until it reconnects",
				"schema", s.cfg.schema, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(s.cfg.pollInterval):
			}
		}
	}()
}

func (s *Store) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.sql.channel}.Sanitize()); err != nil {
		return err
	}
	// Events may have been committed while we were not listening.
	s.wake.signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake.signal()
	}
}

// notifier sends one NOTIFY per burst of appends, from its own goroutine and
// transaction: a NOTIFY inside the append would make every appending
// transaction take the notify queue's lock at commit, serialising commits.
type notifier struct{ pending chan struct{} }

// poke asks for a notification; bursts of pokes coalesce into one.
func (n *notifier) poke() {
	select {
	case n.pending <- struct{}{}:
	default: // a notification is already pending
	}
}

func newNotifier(s *Store) *notifier {
	n := &notifier{pending: make(chan struct{}, 1)}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx := s.stopCtx
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.pending:
			}
			if _, err := s.pool.Exec(ctx, s.sql.notify, s.sql.channel); err != nil && ctx.Err() == nil {
				s.cfg.logger.Warn("pgstore: send event notification; other processes fall back to polling",
					"schema", s.cfg.schema, "error", err)
			}
		}
	}()
	return n
}
