package pgsink

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/esgen-dev/esgen/cqrs"
)

// Locker is a [cqrs.Locker] on Postgres session advisory locks. Build it
// with [Sink.Locker]. It is safe for concurrent use.
//
// The lease of a projection is pg_try_advisory_lock on a key hashed from the
// schema and the projection's name, held by a connection of its own (not
// the pool's) for as long as the runner runs. When the holder stops, it
// unlocks; when its process dies, the server ends the session and the lock
// goes with it. Waiters try again every RetryInterval, so the lease moves
// within about that long. A holder pings its connection every
// CheckInterval and gives up the lease (cancelling the context Lock
// returned) when the ping fails. The lease connection asks the server for
// TCP keepalives of a few seconds, so that a holder cut off by the network
// loses the lock within seconds rather than the system's default of hours.
//
// A holder cut off from the server may run on for up to CheckInterval after
// the server released its lock; the sink's fenced checkpoint makes any batch
// it commits in that window fail with cqrs.ErrCheckpointMoved, so effects
// are never doubled.
type Locker struct {
	sink          *Sink
	RetryInterval time.Duration
	CheckInterval time.Duration
}

var _ cqrs.Locker = (*Locker)(nil)

// Locker returns a Locker for the projections of this sink's schema, trying
// and checking every second.
func (s *Sink) Locker() *Locker {
	return &Locker{sink: s, RetryInterval: time.Second, CheckInterval: time.Second}
}

// The key mixes schema and projection so that apps sharing a database do
// not contend; hashtextextended is stable across servers and versions.
const tryLockSQL = `SELECT pg_try_advisory_lock(hashtextextended('esgen.projection.' || $1 || '.' || $2, 0))`
const unlockSQL = `SELECT pg_advisory_unlock(hashtextextended('esgen.projection.' || $1 || '.' || $2, 0))`

func (l *Locker) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := l.sink.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["tcp_keepalives_idle"] = "5"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "2"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	cfg.RuntimeParams["application_name"] = "esgen projection lease"
	return pgx.ConnectConfig(ctx, cfg)
}

// Lock implements [cqrs.Locker]. It blocks until the lease is held or ctx is
// done; errors connecting are retried.
func (l *Locker) Lock(ctx context.Context, projection string) (context.Context, func(), error) {
	for {
		held, release, ok, err := l.tryLock(ctx, projection)
		if ok {
			return held, release, nil
		}
		if err != nil && ctx.Err() == nil {
			l.sink.cfg.logger.Warn("pgsink: lease connection failed; retrying", "projection", projection, "error", err)
		}
		t := time.NewTimer(l.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("pgsink: wait for the lease of projection %q: %w", projection, ctx.Err())
		case <-t.C:
		}
	}
}

// tryLock makes one attempt at the lease, on a new connection that it keeps
// only if it got the lease.
func (l *Locker) tryLock(ctx context.Context, projection string) (context.Context, func(), bool, error) {
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, tryLockSQL, l.sink.cfg.schema, projection).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, nil, false, err
	}
	held, release := l.hold(ctx, conn, projection)
	return held, release, true, nil
}

// hold keeps conn, checking it, until release or until it fails.
func (l *Locker) hold(ctx context.Context, conn *pgx.Conn, projection string) (context.Context, func()) {
	held, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(l.CheckInterval)
		defer t.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-t.C:
			}
			// A slow answer is not a lost lease: only a failed or very
			// late one is.
			pctx, pcancel := context.WithTimeout(held, max(l.CheckInterval, 2*time.Second))
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && held.Err() == nil {
				l.sink.cfg.logger.Warn("pgsink: lease connection lost", "projection", projection, "error", err)
				cancel(fmt.Errorf("%w: %v", cqrs.ErrLeaseLost, err))
				return
			}
		}
	}()
	var once sync.Once
	return held, func() {
		once.Do(func() {
			cancel(nil)
			wg.Wait()
			uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer ucancel()
			_, _ = conn.Exec(uctx, unlockSQL, l.sink.cfg.schema, projection)
			_ = conn.Close(uctx)
		})
	}
}
